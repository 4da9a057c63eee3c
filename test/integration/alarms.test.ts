/**
 * Resource alarms with real clients (issue 5, "Resource alarms"): while an alarm is set,
 * connections that publish are blocked (AMQP connection.blocked, MQTT sockets not read) and
 * consumers keep draining; when it clears, everything held completes. The alarm is raised by
 * hand (`broker.alarms.set`), as the measurements are unit-tested in test/unit/alarms.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ConfirmChannel } from 'amqplib';
import amqp from 'amqplib';
import mqtt from 'mqtt';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { collect, connect, end, sleep, waitFor } from '../helpers/mqtt.js';

const T = { timeout: 20_000 };

/** What the adapters hold, read from the broker's insides (they are private to it). */
function held(b: TestBroker): { mqtt: number; amqp: number } {
  const inner = b.broker as unknown as { mqtt: { alarmHeldCount: number }; amqp: { blocked: Set<unknown> } };
  return { mqtt: inner.mqtt.alarmHeldCount, amqp: inner.amqp.blocked.size };
}

async function startWithAmqp(): Promise<{ b: TestBroker; url: string }> {
  const b = await startBroker({ listeners: { amqp: { port: 0, host: '127.0.0.1' } } });
  return { b, url: `amqp://guest:guest@127.0.0.1:${b.broker.address('amqp')!.port}` };
}

describe('resource alarms', () => {
  test(
    'AMQP: a publisher is blocked with connection.blocked, a consumer keeps receiving, all confirms come after clear',
    T,
    async (t) => {
      const { b, url } = await startWithAmqp();
      const pubConn = await amqp.connect(url);
      const subConn = await amqp.connect(url);
      t.after(async () => {
        for (const c of [pubConn, subConn]) await c.close().catch(() => {});
        await b.stop();
      });
      const events: string[] = [];
      pubConn.on('blocked', (reason: string) => events.push(`blocked: ${reason}`));
      pubConn.on('unblocked', () => events.push('unblocked'));
      subConn.on('blocked', () => events.push('consumer blocked'));
      pubConn.on('error', () => {});

      const sub = await subConn.createChannel();
      const q = (await sub.assertQueue('', { exclusive: true })).queue;
      const pub: ConfirmChannel = await pubConn.createConfirmChannel();
      for (let i = 0; i < 5; i++) pub.sendToQueue(q, Buffer.from(`before-${i}`));
      await pub.waitForConfirms();

      b.broker.alarms.set('memory', true);
      assert.equal(b.broker.alarms.blocked, true);
      const confirmed: string[] = [];
      const all: Array<Promise<void>> = [];
      for (let i = 0; i < 5; i++) {
        all.push(
          new Promise((resolve, reject) =>
            pub.sendToQueue(q, Buffer.from(`during-${i}`), {}, (err) => {
              if (err) reject(err);
              else {
                confirmed.push(`during-${i}`);
                resolve();
              }
            }),
          ),
        );
      }
      await waitFor(() => events.includes('blocked: low on memory'), 5000, 'connection.blocked');
      assert.equal(held(b).amqp, 1);

      // The consumer's connection never published: it is still read, its acks and RPCs flow.
      const got: string[] = [];
      await sub.consume(q, (m) => {
        if (m === null) return;
        got.push(m.content.toString());
        sub.ack(m);
      });
      await waitFor(() => got.length >= 6, 5000, 'the queued messages and the publish that blocked');
      assert.equal((await sub.checkQueue(q)).messageCount, 0, 'acked while the alarm is on');
      await sleep(200);
      assert.deepEqual(confirmed, ['during-0'], 'only the publish read before the block is confirmed');
      assert.deepEqual(got, ['before-0', 'before-1', 'before-2', 'before-3', 'before-4', 'during-0']);
      assert.ok(!events.includes('consumer blocked'));

      b.broker.alarms.set('memory', false);
      await Promise.all(all);
      await waitFor(() => got.length === 10, 5000, 'every message');
      assert.deepEqual(got.slice(6), ['during-1', 'during-2', 'during-3', 'during-4']);
      await waitFor(() => events.includes('unblocked'), 5000, 'connection.unblocked');
      assert.deepEqual(events, ['blocked: low on memory', 'unblocked']);
      assert.equal(held(b).amqp, 0);
      // Back to normal: the next publish is confirmed at once.
      pub.sendToQueue(q, Buffer.from('after'));
      await pub.waitForConfirms();
      await waitFor(() => got.length === 11, 5000, 'the message after');
      assert.ok(b.logs.some((l) => /memory resource limit alarm set; publishers will be blocked/.test(l)));
      assert.ok(b.logs.some((l) => /memory resource limit alarm cleared/.test(l)));
    },
  );

  test('AMQP: a client that closes while blocked is seen gone once the alarm clears', T, async (t) => {
    // A blocked socket is not read, so its close is noticed when reading resumes (or when a
    // heartbeat write fails), as with RabbitMQ.
    const { b, url } = await startWithAmqp();
    t.after(() => b.stop());
    const stats = (b.broker as unknown as { amqp: { stats: { connections: number } } }).amqp.stats;
    const c = await amqp.connect(url);
    c.on('error', () => {});
    let blocked = false;
    c.on('blocked', () => {
      blocked = true;
    });
    const ch = await c.createChannel();
    b.broker.alarms.set('disk', true);
    ch.sendToQueue('nowhere', Buffer.from('x'));
    await waitFor(() => blocked, 5000, 'connection.blocked');
    assert.equal(held(b).amqp, 1);
    await c.close().catch(() => {});
    b.broker.alarms.set('disk', false);
    assert.equal(held(b).amqp, 0);
    await waitFor(() => stats.connections === 0, 5000, 'the connection gone');
  });

  for (const version of [4, 5] as const) {
    test(
      `MQTT ${version === 5 ? '5.0' : '3.1.1'}: a QoS 1 publisher's PUBACKs stop, a subscriber keeps receiving, all completes after clear`,
      T,
      async (t) => {
        const b = await startBroker();
        t.after(() => b.stop());
        const id = `alarm-sub-${version}`;
        const opts = {
          protocolVersion: version,
          clean: false,
          clientId: id,
          ...(version === 5 && { properties: { sessionExpiryInterval: 300 } }),
        };
        const first = await connect(b.url, opts);
        await first.subscribeAsync('alarm/#', { qos: 1 });
        await first.endAsync();

        const pub = await connect(b.url, { protocolVersion: version });
        t.after(() => end(pub));
        for (let i = 0; i < 5; i++) await pub.publishAsync('alarm/t', `before-${i}`, { qos: 1 });

        b.broker.alarms.set('memory', true);
        const acked: string[] = [];
        const all: Array<Promise<void>> = [];
        for (let i = 0; i < 5; i++) {
          all.push(
            new Promise((resolve, reject) =>
              pub.publish('alarm/t', `during-${i}`, { qos: 1 }, (err) => {
                if (err) reject(err);
                else {
                  acked.push(`during-${i}`);
                  resolve();
                }
              }),
            ),
          );
        }
        await waitFor(() => held(b).mqtt === 1, 5000, 'the publisher held');

        // The subscriber comes back while the alarm is on: its queued messages are delivered and
        // its own packets (SUBSCRIBE, PUBACK) are read.
        // Listening before CONNACK: the queued messages follow it at once.
        const sub = mqtt.connect(b.url, { ...opts, reconnectPeriod: 0 });
        t.after(() => end(sub));
        const got = collect(sub);
        await new Promise((resolve) => sub.once('connect', resolve));
        await sub.subscribeAsync('other/#', { qos: 1 });
        await waitFor(() => got.length >= 6, 5000, 'the queued messages');
        await sleep(200);
        assert.deepEqual(acked, ['during-0'], 'only the PUBLISH read before the hold is acknowledged');
        assert.deepEqual(
          got.map((m) => m.payload.toString()),
          ['before-0', 'before-1', 'before-2', 'before-3', 'before-4', 'during-0'],
        );
        assert.equal(held(b).mqtt, 1, 'the subscriber is not held');

        b.broker.alarms.set('memory', false);
        await Promise.all(all);
        assert.deepEqual(acked, ['during-0', 'during-1', 'during-2', 'during-3', 'during-4']);
        await waitFor(() => got.length === 10, 5000, 'every message');
        assert.deepEqual(
          got.slice(6).map((m) => m.payload.toString()),
          ['during-1', 'during-2', 'during-3', 'during-4'],
        );
        assert.equal(held(b).mqtt, 0);
        await pub.publishAsync('alarm/t', 'after', { qos: 1 });
        await waitFor(() => got.length === 11, 5000, 'the message after');
      },
    );
  }

  test('config: limits reach the broker; persistence off means no disk alarm', async () => {
    const b = await startBroker({
      limits: { memoryHighWatermark: 2 ** 40, diskFreeLimit: 2 ** 52, alarmCheckInterval: 0 },
    });
    try {
      assert.equal(b.broker.alarms.memoryLimit(), 2 ** 40);
      await b.broker.alarms.check();
      assert.equal(b.broker.alarms.blocked, false, 'huge diskFreeLimit, but no data dir to watch');
    } finally {
      await b.stop();
    }
  });
});
