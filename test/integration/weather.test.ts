/**
 * The seed example: a sensor publishes {"temperature": 25.5} to
 * /weather/station01/temperature; a dashboard subscribed to that topic and one subscribed to
 * /weather/+/temperature both get it, over TCP and over WebSocket, with MQTT 3.1.1 and 5.0.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { harness } from '../helpers/harness.js';
import { type Received, waitFor } from '../helpers/mqtt.js';

const T = { timeout: 20_000 };
const TOPIC = '/weather/station01/temperature';
const PAYLOAD = '{"temperature": 25.5}';

describe('weather example', () => {
  for (const transport of ['tcp', 'ws'] as const) {
    for (const v of [4, 5] as const) {
      const label = `${transport === 'tcp' ? 'TCP' : 'WebSocket'}, ${v === 4 ? 'MQTT 3.1.1' : 'MQTT 5.0'}`;
      test(`${label}: both dashboards receive {"temperature": 25.5} from the station`, T, async (t) => {
        const h = await harness(t);
        const url = transport === 'tcp' ? h.b.url : h.b.wsUrl;
        const exact = await h.open({ protocolVersion: v, clientId: `dashboard-exact-${transport}-${v}` }, url);
        const wild = await h.open({ protocolVersion: v, clientId: `dashboard-wild-${transport}-${v}` }, url);
        const sensor = await h.open({ protocolVersion: v, clientId: `station01-${transport}-${v}` }, url);
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
      const exact = await h.open({ protocolVersion: 5, ...login }, h.b.wsUrl);
      const wild = await h.open({ protocolVersion: 4, ...login }, h.b.wsUrl);
      const sensor = await h.open({ protocolVersion: 4, clientId: 'python_publisher', ...login }, h.b.url);
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
