/** mqtt.js helpers: connect with a promise, collect messages, wait for conditions. */
import assert from 'node:assert/strict';
import mqtt, {
  type ClientSubscribeCallback,
  type IClientOptions,
  type IClientSubscribeOptions,
  type MqttClient,
} from 'mqtt';

/** The protocol versions most tests run with: 3.1.1 and 5.0. */
export const VERSIONS = [4, 5] as const;
/** The name of a protocol level, for test titles. */
export const versionName = (v: 3 | 4 | 5): string => (v === 3 ? 'MQTT 3.1' : v === 4 ? 'MQTT 3.1.1' : 'MQTT 5.0');

export async function connect(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', (err) => reject(err));
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
  client.removeAllListeners('error');
  client.on('error', () => {});
  return client;
}

export interface Received {
  topic: string;
  payload: Buffer;
  packet: mqtt.IPublishPacket;
}

export function collect(client: MqttClient): Received[] {
  const out: Received[] = [];
  client.on('message', (topic, payload, packet) => out.push({ topic, payload, packet }));
  return out;
}

export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function end(...clients: Array<MqttClient | undefined>): Promise<void> {
  await Promise.all(clients.map((c) => (c ? c.endAsync(true).catch(() => {}) : undefined)));
}

/**
 * Publishes one marker to `topic` and waits until every listed subscriber (all subscribed to
 * it) has it: whatever was published before it has been routed, so absences can be asserted.
 */
export async function fence(pub: MqttClient, topic: string, ...subs: Received[][]): Promise<void> {
  const marker = `fence-${Math.random()}`;
  await pub.publishAsync(topic, marker, { qos: 1 });
  await waitFor(() => subs.every((s) => s.some((m) => m.payload.toString() === marker)), 5000, 'the fence');
}
export const isFence = (m: Received): boolean => m.payload.toString().startsWith('fence-');
/** The messages that are not fence markers. */
export const real = (msgs: Received[]): Received[] => msgs.filter((m) => !isFence(m));
/** The payloads of the messages that are not fence markers, as strings. */
export const payloads = (msgs: Received[]): string[] => real(msgs).map((m) => m.payload.toString());

/** The refusal mqtt.js reports for a CONNACK with a non-zero code: its `code`. */
export async function refusal(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: number }).code;
  }
  assert.fail('the connection was accepted');
}

/** The code of a rejected publish (mqtt.js rejects on PUBACK / PUBREC reason codes ≥ 0x80). */
export async function publishCode(c: MqttClient, ...args: Parameters<MqttClient['publishAsync']>): Promise<number> {
  try {
    await c.publishAsync(...args);
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

/** SUBACK reason codes, failures included (mqtt.js rejects subscribeAsync on a failure). */
export function subackCodes(
  c: MqttClient,
  filters: string | string[],
  opts: IClientSubscribeOptions = { qos: 1 },
): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const done: ClientSubscribeCallback = (_err, _granted, packet) => {
      if (!packet) reject(new Error('no SUBACK'));
      else resolve(packet.granted as number[]);
    };
    c.subscribe(filters, opts, done);
  });
}
