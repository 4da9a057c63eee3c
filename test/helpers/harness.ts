/**
 * A broker for one test, with the clients (mqtt.js and raw) the test opens on it: all of them
 * are closed, and the broker stopped, when the test ends.
 */
import type { TestContext } from 'node:test';
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import type { MqttClientInfo } from '../../src/index.js';
import { type BrokerOverrides, startBroker } from './broker.js';
import { collect, end, type Received, waitFor } from './mqtt.js';
import { Raw } from './raw-mqtt.js';

/** An mqtt.js client, the messages it receives, and the CONNACK it got. */
export interface Conn {
  c: MqttClient;
  msgs: Received[];
  connack: IConnackPacket;
}

/**
 * Starts a broker (with `overrides`) for the test `t`. `defaults` are mqtt.js options for every
 * `open` (after reconnectPeriod 0 and connectTimeout 5 s, before the options of the call).
 */
export async function harness(t: TestContext, overrides: BrokerOverrides = {}, defaults: IClientOptions = {}) {
  const b = await startBroker(overrides);
  const clients: MqttClient[] = [];
  const raws: Raw[] = [];
  /** Client ids whose connection the broker has finished with, once per connection. */
  const gone: string[] = [];
  b.broker.on('clientDisconnect', (client: MqttClientInfo) => gone.push(client.id));
  t.after(async () => {
    for (const r of raws) r.close();
    await end(...clients);
    await b.stop();
  });
  /** An mqtt.js client, connected: rejects if the server refuses or closes before CONNACK. */
  const open = async (opts: IClientOptions = {}, url = b.url): Promise<Conn> => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...defaults, ...opts });
    clients.push(c);
    const msgs = collect(c);
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      c.once('connect', resolve);
      c.once('error', reject);
      c.once('close', () => reject(new Error('closed before CONNACK')));
    });
    c.removeAllListeners('error');
    c.on('error', () => {});
    return { c, msgs, connack };
  };
  /** A raw TCP socket to the MQTT listener; nothing is sent yet. */
  const raw = async (): Promise<Raw> => {
    const r = await Raw.open(b.port);
    raws.push(r);
    return r;
  };
  /** How many times the broker has finished with a connection of `id`. */
  const goneCount = (id: string): number => gone.filter((g) => g === id).length;
  /** Waits until the broker has finished with the connection of `id` (the n-th time). */
  const disconnected = (id: string, times = 1) =>
    waitFor(() => goneCount(id) >= times, 5000, `the broker to drop ${id}`);
  return { b, open, raw, disconnected, goneCount };
}

export type Harness = Awaited<ReturnType<typeof harness>>;
