/**
 * The seed example: a sensor publishes {"temperature": 25.5} to
 * /weather/station01/temperature; a dashboard subscribed to that topic and one subscribed to
 * /weather/+/temperature both get it, over TCP and over WebSocket, with MQTT 3.1.1 and 5.0.
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { startBroker } from '../helpers/broker.js';
import { collect, end, type Received, waitFor } from '../helpers/mqtt.js';

const T = { timeout: 20_000 };
const TOPIC = '/weather/station01/temperature';
const PAYLOAD = '{"temperature": 25.5}';

type Overrides = Parameters<typeof startBroker>[0];

async function harness(t: TestContext, overrides: Overrides = {}) {
  const b = await startBroker(overrides);
  const clients: MqttClient[] = [];
  t.after(async () => {
    await end(...clients);
    await b.stop();
  });
  const open = async (url: string, opts: IClientOptions): Promise<{ c: MqttClient; msgs: Received[] }> => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    clients.push(c);
    const msgs = collect(c);
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('error', reject);
      c.once('close', () => reject(new Error('closed before CONNACK')));
    });
    c.removeAllListeners('error');
    c.on('error', () => {});
    return { c, msgs };
  };
  return { b, open };
}

describe('weather example', () => {
  for (const transport of ['tcp', 'ws'] as const) {
    for (const v of [4, 5] as const) {
      const label = `${transport === 'tcp' ? 'TCP' : 'WebSocket'}, ${v === 4 ? 'MQTT 3.1.1' : 'MQTT 5.0'}`;
      test(`${label}: both dashboards receive {"temperature": 25.5} from the station`, T, async (t) => {
        const h = await harness(t);
        const url = transport === 'tcp' ? h.b.url : h.b.wsUrl;
        const exact = await h.open(url, { protocolVersion: v, clientId: `dashboard-exact-${transport}-${v}` });
        const wild = await h.open(url, { protocolVersion: v, clientId: `dashboard-wild-${transport}-${v}` });
        const sensor = await h.open(url, { protocolVersion: v, clientId: `station01-${transport}-${v}` });
        await exact.c.subscribeAsync(TOPIC, { qos: 1 });
        await wild.c.subscribeAsync('/weather/+/temperature', { qos: 1 });
        await sensor.c.publishAsync(TOPIC, PAYLOAD, { qos: 1 });
        await sensor.c.publishAsync('/weather/station02/temperature', '{"temperature": 19}', { qos: 1 });
        await sensor.c.publishAsync('/weather/station01/humidity', '{"humidity": 40}', { qos: 1 });
        await waitFor(() => exact.msgs.length >= 1 && wild.msgs.length >= 2, 5000, 'the readings');
        // A last reading to both, so that nothing else can still be on its way.
        await sensor.c.publishAsync(TOPIC, '{"temperature": 26}', { qos: 1 });
        await waitFor(() => exact.msgs.length >= 2 && wild.msgs.length >= 3, 5000, 'the last reading');

        const got = (msgs: Received[]) => msgs.map((m) => [m.topic, m.payload.toString()]);
        assert.deepEqual(got(exact.msgs), [
          [TOPIC, PAYLOAD],
          [TOPIC, '{"temperature": 26}'],
        ]);
        assert.deepEqual(got(wild.msgs), [
          [TOPIC, PAYLOAD],
          ['/weather/station02/temperature', '{"temperature": 19}'],
          [TOPIC, '{"temperature": 26}'],
        ]);
        assert.deepEqual(JSON.parse(exact.msgs[0]!.payload.toString()), { temperature: 25.5 });
      });
    }
  }

  test(
    'mixed: a 3.1.1 sensor over TCP, 5.0 and 3.1.1 dashboards over WebSocket, logged in as user/password',
    T,
    async (t) => {
      const h = await harness(t, { auth: { users: [{ name: 'user', password: 'password' }] } });
      const login = { username: 'user', password: 'password' };
      const exact = await h.open(h.b.wsUrl, { protocolVersion: 5, ...login });
      const wild = await h.open(h.b.wsUrl, { protocolVersion: 4, ...login });
      const sensor = await h.open(h.b.url, { protocolVersion: 4, clientId: 'python_publisher', ...login });
      await exact.c.subscribeAsync(TOPIC, { qos: 0 });
      await wild.c.subscribeAsync('/weather/+/temperature', { qos: 0 });
      await sensor.c.publishAsync(TOPIC, PAYLOAD, { qos: 0 });
      await waitFor(() => exact.msgs.length === 1 && wild.msgs.length === 1, 5000, 'the reading');
      for (const m of [exact.msgs[0]!, wild.msgs[0]!]) {
        assert.equal(m.topic, TOPIC);
        assert.deepEqual(JSON.parse(m.payload.toString()), { temperature: 25.5 });
      }
    },
  );
});
