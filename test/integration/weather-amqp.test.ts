/**
 * The seed's AMQP example, unchanged: an application publishes {"temperature": 25.5} to the
 * exchange `weather_updates` (topic, declared by the producer) with routing key
 * `station01.temperature`; the queue `temperature_readings_for_dashboard`, bound with
 * `station01.*`, gets it with its routing key. And across protocols: a sensor publishing over
 * MQTT to /weather/station01/temperature reaches both an MQTT dashboard subscribed to
 * /weather/+/temperature and an AMQP queue bound to amq.topic with `.weather.*.temperature`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ChannelModel, ConsumeMessage } from 'amqplib';
import type { MqttClient } from 'mqtt';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { collect, connect, end, waitFor } from '../helpers/mqtt.js';
import { amqpConnect, closeQuietly, consumeAll } from '../helpers/raw-amqp.js';

const T = { timeout: 30_000 };
const PAYLOAD = '{"temperature": 25.5}';
const TOPIC = '/weather/station01/temperature';

describe('weather example over AMQP 0-9-1', () => {
  let tb: TestBroker;
  let amqpPort: number;
  const conns: ChannelModel[] = [];
  const clients: MqttClient[] = [];

  before(async () => {
    tb = await startBroker({ listeners: { amqp: { port: 0, host: '127.0.0.1' } } });
    amqpPort = tb.broker.address('amqp')!.port;
  });

  after(async () => {
    await end(...clients);
    await closeQuietly(...conns);
    await tb?.stop();
  });

  async function open(): Promise<ChannelModel> {
    const c = await amqpConnect(amqpPort);
    conns.push(c);
    return c;
  }

  it(
    'the dashboard queue bound with station01.* gets {"temperature": 25.5} with key station01.temperature',
    T,
    async () => {
      // The dashboard: its queue, bound to the exchange (declared with the producer's arguments).
      const dashboard = await (await open()).createChannel();
      await dashboard.assertExchange('weather_updates', 'topic');
      await dashboard.assertQueue('temperature_readings_for_dashboard');
      await dashboard.bindQueue('temperature_readings_for_dashboard', 'weather_updates', 'station01.*');
      const got: ConsumeMessage[] = await consumeAll(dashboard, 'temperature_readings_for_dashboard', false);

      // The application: declares the exchange and publishes the reading.
      const app = await (await open()).createConfirmChannel();
      await app.assertExchange('weather_updates', 'topic');
      app.publish('weather_updates', 'station01.temperature', Buffer.from(PAYLOAD));
      app.publish('weather_updates', 'station02.temperature', Buffer.from('{"temperature": 19}'));
      app.publish('weather_updates', 'station01.humidity', Buffer.from('{"humidity": 40}'));
      await app.waitForConfirms();

      await waitFor(() => got.length >= 2, 10_000, 'the station01 readings');
      const m = got[0]!;
      assert.deepEqual(JSON.parse(m.content.toString()), { temperature: 25.5 });
      assert.equal(m.content.toString(), PAYLOAD);
      assert.equal(m.fields.routingKey, 'station01.temperature');
      assert.equal(m.fields.exchange, 'weather_updates');
      assert.equal(got[1]!.fields.routingKey, 'station01.humidity');
      for (const msg of got) dashboard.ack(msg);
      // Nothing else: station02 does not match station01.*.
      const q = await dashboard.checkQueue('temperature_readings_for_dashboard');
      assert.equal(q.messageCount, 0);
      assert.equal(got.length, 2);
      await dashboard.deleteQueue('temperature_readings_for_dashboard');
    },
  );

  it(
    'an MQTT sensor reaches an MQTT dashboard on /weather/+/temperature and an AMQP queue on .weather.*.temperature',
    T,
    async () => {
      const mqttDashboard = await connect(tb.url, { clientId: 'dashboard-mqtt', protocolVersion: 5 });
      clients.push(mqttDashboard);
      const mqttGot = collect(mqttDashboard);
      await mqttDashboard.subscribeAsync('/weather/+/temperature', { qos: 1 });

      const ch = await (await open()).createChannel();
      await ch.assertQueue('temperature_readings_for_dashboard');
      await ch.bindQueue('temperature_readings_for_dashboard', 'amq.topic', '.weather.*.temperature');
      const amqpGot = await consumeAll(ch, 'temperature_readings_for_dashboard');

      const sensor = await connect(tb.url, { clientId: 'station01', protocolVersion: 4 });
      clients.push(sensor);
      await sensor.publishAsync(TOPIC, PAYLOAD, { qos: 1 });
      await waitFor(() => mqttGot.length >= 1 && amqpGot.length >= 1, 10_000, 'the reading on both dashboards');

      assert.equal(mqttGot[0]!.topic, TOPIC);
      assert.deepEqual(JSON.parse(mqttGot[0]!.payload.toString()), { temperature: 25.5 });
      assert.equal(amqpGot[0]!.fields.exchange, 'amq.topic');
      assert.equal(amqpGot[0]!.fields.routingKey, '.weather.station01.temperature');
      assert.equal(amqpGot[0]!.content.toString(), PAYLOAD);

      // And back: an AMQP publish to amq.topic reaches the MQTT dashboard as a topic.
      ch.publish('amq.topic', '.weather.station02.temperature', Buffer.from('{"temperature": 19}'));
      await waitFor(() => mqttGot.length >= 2, 10_000, 'the AMQP reading on the MQTT dashboard');
      assert.equal(mqttGot[1]!.topic, '/weather/station02/temperature');
      assert.deepEqual(JSON.parse(mqttGot[1]!.payload.toString()), { temperature: 19 });
      await ch.deleteQueue('temperature_readings_for_dashboard');
    },
  );
});
