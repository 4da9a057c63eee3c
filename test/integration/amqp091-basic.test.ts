/**
 * AMQP 0-9-1 basic class with amqplib (§1.8): publish and deliver with every property, ack /
 * nack / reject, prefetch as RabbitMQ reads it, basic.get, recover, cancel from either side,
 * mandatory returns, exclusive consumers, consumer tags, the headers exchange, sender-selected
 * distribution, large messages and ordering. Reply texts follow RabbitMQ's rabbit_channel.erl.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Channel, ConfirmChannel, Options } from 'amqplib';
import {
  type AmqpHarness,
  amqpHarness,
  asyncChannelError,
  channelError,
  connectionError,
  consume,
  nextReturn,
  rawPublish,
  rpc,
  uniq,
  waitFor,
  watch,
  within,
} from '../helpers/amqp.js';

const T = { timeout: 20_000 };

/** Publishes on a confirm channel and waits for the ack: the message is enqueued. */
function publish(ch: ConfirmChannel, exchange: string, key: string, body: string | Buffer, opts: Options.Publish = {}) {
  return new Promise<void>((resolve, reject) => {
    const content = typeof body === 'string' ? Buffer.from(body) : body;
    ch.publish(exchange, key, content, opts, (err) => (err ? reject(err) : resolve()));
  });
}

/** Ready messages and consumers of `queue`, by a passive declare on a throwaway channel. */
async function counts(h: AmqpHarness, queue: string): Promise<{ ready: number; consumers: number }> {
  const ch = await h.channel();
  const ok = await ch.checkQueue(queue);
  await ch.close();
  return { ready: ok.messageCount, consumers: ok.consumerCount };
}

/** A confirm channel and a fresh named queue with `n` messages m0..m(n-1) in it. */
async function filled(h: AmqpHarness, n: number, args: Options.AssertQueue = {}) {
  const pub = await h.confirmChannel();
  const queue = uniq('q');
  await pub.assertQueue(queue, { durable: false, ...args });
  for (let i = 0; i < n; i++) await publish(pub, '', queue, `m${i}`);
  return { pub, queue };
}

describe('AMQP 0-9-1 basic (§1.8)', () => {
  describe('publish and deliver', () => {
    test('every basic property and a rich headers table survive the round trip', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.channel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      const headers = {
        str: 'text',
        small: 42,
        negative: -7,
        short: 1000,
        int: 100_000,
        long: 2 ** 40,
        float: 1.5,
        yes: true,
        no: false,
        nested: { a: { b: 'c', n: 1 } },
        list: [1, 'two', true, { x: 1 }, [3]],
        bytes: Buffer.from([0, 1, 2, 255]),
        stamp: { '!': 'timestamp', value: 1_700_000_000 },
      };
      const props = {
        contentType: 'application/json',
        contentEncoding: 'gzip',
        headers,
        deliveryMode: 2,
        priority: 5,
        correlationId: 'corr-1',
        replyTo: 'reply-queue',
        expiration: '60000',
        messageId: 'mid-1',
        timestamp: 1_700_000_123,
        type: 'order.created',
        userId: 'guest',
        appId: 'braid-test',
      };
      const c = await consume(ch, queue, { noAck: true });
      ch.sendToQueue(queue, Buffer.from('{"ok":true}'), props);
      ch.sendToQueue(queue, Buffer.alloc(0));
      await c.waitCount(2);
      const [m, empty] = c.msgs;
      assert.equal(m.content.toString(), '{"ok":true}');
      assert.equal(m.fields.exchange, '');
      assert.equal(m.fields.routingKey, queue);
      assert.equal(m.fields.redelivered, false);
      assert.equal(m.fields.consumerTag, c.tag);
      const p = m.properties;
      for (const k of Object.keys(props) as Array<keyof typeof props>) {
        if (k !== 'headers') assert.deepEqual(p[k], props[k], `property ${k}`);
      }
      assert.deepEqual(p.headers, headers);
      assert.equal(empty.content.length, 0, 'an empty body is delivered');
      assert.equal(empty.properties.deliveryMode, undefined);
    });

    test('[rabbitmq validated-user-id] a user-id other than the connection user is 406', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.channel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      ch.sendToQueue(queue, Buffer.from('x'), { userId: 'bob' });
      await asyncChannelError(ch, 406, /user_id property set to 'bob' but authenticated user was 'guest'/);
    });

    test('publishing to a missing exchange closes the channel with 404', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.channel();
      ch.publish('nope', 'k', Buffer.from('x'));
      await asyncChannelError(ch, 404, /no exchange 'nope' in vhost '\/'/);
    });

    test('[rabbitmq] immediate=true closes the connection with 540 NOT_IMPLEMENTED', T, async (t) => {
      const h = await amqpHarness(t);
      const conn = await h.connect();
      const ch = await h.channel(conn);
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await connectionError(
        conn,
        () => rawPublish(ch, { exchange: '', routingKey: queue, immediate: true }, Buffer.from('x')),
        540,
        /immediate=true/,
      );
    });

    test('mandatory and unroutable: basic.return 312 NO_ROUTE with the message (§1.8.3.8)', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.channel();
      const returned = nextReturn(ch);
      ch.publish('amq.direct', 'nobody', Buffer.from('lost'), { mandatory: true, correlationId: 'c1' });
      const r = await returned;
      assert.equal(r.fields.replyCode, 312);
      assert.equal(r.fields.replyText, 'NO_ROUTE');
      assert.equal(r.fields.exchange, 'amq.direct');
      assert.equal(r.fields.routingKey, 'nobody');
      assert.equal(r.content.toString(), 'lost');
      assert.equal(r.properties.correlationId, 'c1');
      ch.publish('amq.direct', 'nobody', Buffer.from('dropped'));
      await ch.checkExchange('amq.direct');
      assert.equal(watch(ch).isClosed, false, 'an unroutable non-mandatory message is dropped quietly');
    });

    test('[rabbitmq sender-selected] CC and BCC headers add routing keys; BCC is removed', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.channel();
      const qs: string[] = [];
      for (const key of ['to', 'cc', 'bcc']) {
        const { queue } = await ch.assertQueue('', { exclusive: true });
        await ch.bindQueue(queue, 'amq.direct', key);
        qs.push(queue);
      }
      const cs = await Promise.all(qs.map((q) => consume(ch, q, { noAck: true })));
      ch.publish('amq.direct', 'to', Buffer.from('memo'), { CC: 'cc', BCC: ['bcc'] });
      await Promise.all(cs.map((c) => c.waitCount(1)));
      for (const c of cs) {
        assert.equal(c.msgs[0].content.toString(), 'memo');
        assert.deepEqual(c.msgs[0].properties.headers?.CC, ['cc']);
        assert.equal(c.msgs[0].properties.headers?.BCC, undefined);
      }
    });

    test('a 1 MiB message crosses many frames intact', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.channel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      const body = Buffer.alloc(1024 * 1024);
      for (let i = 0; i < body.length; i++) body[i] = (i * 31 + 7) & 0xff;
      const c = await consume(ch, queue, { noAck: true });
      ch.sendToQueue(queue, body);
      await c.waitCount(1, 10_000);
      assert.equal(c.msgs[0].content.length, body.length);
      assert.ok(c.msgs[0].content.equals(body));
    });

    test('10,000 messages arrive complete and in publish order', T, async (t) => {
      const h = await amqpHarness(t);
      const pub = await h.channel();
      const sub = await h.channel();
      const { queue } = await sub.assertQueue('', { exclusive: true });
      const c = await consume(sub, queue, { noAck: true });
      const N = 10_000;
      for (let i = 0; i < N; i++) {
        if (!pub.sendToQueue(queue, Buffer.from(String(i)))) {
          await within(new Promise((r) => pub.once('drain', r)), 10_000, 'drain');
        }
      }
      await c.waitCount(N, 15_000);
      const seq = c.msgs.map((m) => Number(m.content.toString()));
      assert.deepEqual(
        seq,
        Array.from({ length: N }, (_, i) => i),
      );
    });
  });

  describe('acknowledgements (§1.8.3.13 ack, nack, reject)', () => {
    test('ack with multiple settles every earlier delivery; nothing comes back on close', T, async (t) => {
      const h = await amqpHarness(t);
      const { queue } = await filled(h, 3);
      const ch = await h.channel();
      const c = await consume(ch, queue);
      await c.waitCount(3);
      assert.deepEqual(
        c.msgs.map((m) => m.fields.deliveryTag),
        [1, 2, 3],
      );
      ch.ack(c.msgs[2], true);
      await ch.close();
      assert.deepEqual(await counts(h, queue), { ready: 0, consumers: 0 });
    });

    test('unacknowledged deliveries are requeued with redelivered=true when the channel closes', T, async (t) => {
      const h = await amqpHarness(t);
      const { queue } = await filled(h, 2);
      const ch = await h.channel();
      const c = await consume(ch, queue);
      await c.waitCount(2);
      ch.ack(c.msgs[0]);
      await ch.close();
      const again = await consume(await h.channel(), queue);
      await again.waitCount(1);
      assert.equal(again.bodies()[0], 'm1');
      assert.equal(again.msgs[0].fields.redelivered, true);
    });

    test('nack multiple with requeue redelivers them all, in order, marked redelivered', T, async (t) => {
      const h = await amqpHarness(t);
      const { queue } = await filled(h, 3);
      const ch = await h.channel();
      const c = await consume(ch, queue);
      await c.waitCount(3);
      ch.nack(c.msgs[2], true, true);
      await c.waitCount(6);
      assert.deepEqual(c.bodies().slice(3), ['m0', 'm1', 'm2']);
      assert.ok(c.msgs.slice(3).every((m) => m.fields.redelivered));
      assert.ok(c.msgs.slice(0, 3).every((m) => !m.fields.redelivered));
    });

    test('reject with requeue redelivers; reject and nack without requeue drop (no DLX)', T, async (t) => {
      const h = await amqpHarness(t);
      const { queue } = await filled(h, 2);
      const ch = await h.channel();
      const c = await consume(ch, queue);
      await c.waitCount(2);
      ch.reject(c.msgs[0], true);
      await c.waitCount(3);
      assert.equal(c.bodies()[2], 'm0');
      assert.equal(c.msgs[2].fields.redelivered, true);
      ch.reject(c.msgs[2], false);
      ch.nack(c.msgs[1], false, false);
      await ch.close();
      assert.equal((await counts(h, queue)).ready, 0);
    });

    test('acknowledging an unknown delivery tag is 406 PRECONDITION_FAILED', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.channel();
      ch.ack({ fields: { deliveryTag: 999 } } as never);
      await asyncChannelError(ch, 406, /unknown delivery tag 999/);
    });

    test('acknowledging the same delivery twice is 406 (unknown delivery tag)', T, async (t) => {
      const h = await amqpHarness(t);
      const { queue } = await filled(h, 1);
      const ch = await h.channel();
      const c = await consume(ch, queue);
      await c.waitCount(1);
      ch.ack(c.msgs[0]);
      ch.ack(c.msgs[0]);
      await asyncChannelError(ch, 406, /unknown delivery tag 1/);
    });

    test('basic.recover requeues unacknowledged deliveries, which come back redelivered', T, async (t) => {
      const h = await amqpHarness(t);
      const { queue } = await filled(h, 2);
      const ch = await h.channel();
      const c = await consume(ch, queue);
      await c.waitCount(2);
      await ch.recover();
      await c.waitCount(4);
      assert.deepEqual(c.bodies().slice(2).sort(), ['m0', 'm1']);
      assert.ok(c.msgs.slice(2).every((m) => m.fields.redelivered));
    });
  });

  describe('prefetch (§1.8.3.1 basic.qos, as RabbitMQ reads it)', () => {
    test('prefetch count limits unacknowledged deliveries; an ack lets the next through', T, async (t) => {
      const h = await amqpHarness(t);
      const { queue } = await filled(h, 5);
      const ch = await h.channel();
      await ch.prefetch(2);
      const c = await consume(ch, queue);
      await c.waitCount(2);
      assert.equal((await counts(h, queue)).ready, 3, 'three are held back');
      assert.equal(c.msgs.length, 2);
      ch.ack(c.msgs[0]);
      await c.waitCount(3);
      assert.equal((await counts(h, queue)).ready, 2);
      assert.deepEqual(c.bodies(), ['m0', 'm1', 'm2']);
    });

    test('[rabbitmq consumer-prefetch] global=false is per consumer: each gets the count', T, async (t) => {
      const h = await amqpHarness(t);
      const a = await filled(h, 5);
      const b = await filled(h, 5);
      const ch = await h.channel();
      await ch.prefetch(2, false);
      const ca = await consume(ch, a.queue);
      const cb = await consume(ch, b.queue);
      await ca.waitCount(2);
      await cb.waitCount(2);
      assert.equal((await counts(h, a.queue)).ready, 3);
      assert.equal((await counts(h, b.queue)).ready, 3);
    });

    test('[rabbitmq consumer-prefetch] global=true is one limit shared by the channel’s consumers', T, async (t) => {
      const h = await amqpHarness(t);
      const a = await filled(h, 5);
      const b = await filled(h, 5);
      const ch = await h.channel();
      await ch.prefetch(3, true);
      const ca = await consume(ch, a.queue);
      const cb = await consume(ch, b.queue);
      await waitFor(() => ca.msgs.length + cb.msgs.length >= 3, 5000, 'three deliveries');
      const ready = (await counts(h, a.queue)).ready + (await counts(h, b.queue)).ready;
      assert.equal(ready, 7, 'three unacknowledged over both consumers');
      assert.equal(ca.msgs.length + cb.msgs.length, 3);
    });

    test('prefetch does not limit noAck consumers', T, async (t) => {
      const h = await amqpHarness(t);
      const { queue } = await filled(h, 5);
      const ch = await h.channel();
      await ch.prefetch(1);
      const c = await consume(ch, queue, { noAck: true });
      await c.waitCount(5);
      assert.equal((await counts(h, queue)).ready, 0);
    });
  });

  describe('basic.get (§1.8.3.10)', () => {
    test('get returns a message with the remaining count; an empty queue gives get-empty', T, async (t) => {
      const h = await amqpHarness(t);
      const { queue } = await filled(h, 2);
      const ch = await h.channel();
      const m = await ch.get(queue);
      assert.ok(m);
      assert.equal(m.content.toString(), 'm0');
      assert.equal(m.fields.messageCount, 1);
      assert.equal(m.fields.redelivered, false);
      assert.equal(m.fields.routingKey, queue);
      ch.ack(m);
      const n = await ch.get(queue, { noAck: true });
      assert.ok(n);
      assert.equal(n.content.toString(), 'm1');
      assert.equal(n.fields.messageCount, 0);
      assert.equal(await ch.get(queue), false);
      await ch.close();
      assert.equal((await counts(h, queue)).ready, 0);
    });

    test('a got and unacknowledged message is requeued when the channel closes', T, async (t) => {
      const h = await amqpHarness(t);
      const { queue } = await filled(h, 1);
      const ch = await h.channel();
      assert.ok(await ch.get(queue));
      await ch.close();
      const again = await (await h.channel()).get(queue, { noAck: true });
      assert.ok(again);
      assert.equal(again.fields.redelivered, true);
    });

    test('get from a missing queue is 404', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.channel();
      await channelError(ch, () => ch.get('nope'), 404, /no queue 'nope'/);
    });
  });

  describe('consumers (§1.8.3.3 consume, §1.8.3.5 cancel)', () => {
    test('server-generated consumer tags are amq.ctag-… and unique; client tags are kept', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.channel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      const a = await consume(ch, queue);
      const b = await consume(ch, queue);
      assert.match(a.tag, /^amq\.ctag-/);
      assert.notEqual(a.tag, b.tag);
      const mine = await consume(ch, queue, { consumerTag: 'my-tag' });
      assert.equal(mine.tag, 'my-tag');
      const other = await h.channel();
      const same = await consume(other, queue, { consumerTag: 'my-tag' });
      assert.equal(same.tag, 'my-tag', 'tags are per channel');
    });

    test('[rabbitmq] reusing a consumer tag on a channel is a connection error 530 NOT_ALLOWED', T, async (t) => {
      const h = await amqpHarness(t);
      const conn = await h.connect();
      const ch = await h.channel(conn);
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await consume(ch, queue, { consumerTag: 'dup' });
      await connectionError(
        conn,
        () => ch.consume(queue, () => {}, { consumerTag: 'dup' }),
        530,
        /attempt to reuse consumer tag 'dup'/,
      );
    });

    test('basic.cancel stops deliveries; cancelling an unknown tag is still cancel-ok', T, async (t) => {
      const h = await amqpHarness(t);
      const pub = await h.confirmChannel();
      const ch = await h.channel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      const c = await consume(ch, queue, { noAck: true });
      await publish(pub, '', queue, 'before');
      await c.waitCount(1);
      const ok = await ch.cancel(c.tag);
      assert.equal(ok.consumerTag, c.tag);
      await publish(pub, '', queue, 'after');
      assert.deepEqual(await counts(h, queue), { ready: 1, consumers: 0 });
      assert.deepEqual(c.bodies(), ['before']);
      await ch.cancel('never-was');
      assert.equal(watch(ch).isClosed, false);
    });

    test('[rabbitmq consumer-cancel] deleting the queue sends basic.cancel to its consumers', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.channel();
      const queue = uniq('doomed');
      await ch.assertQueue(queue, { durable: false });
      const c = await consume(ch, queue);
      await (await h.channel()).deleteQueue(queue);
      await waitFor(() => c.cancelled, 5000, 'basic.cancel from the server');
      assert.equal(watch(ch).isClosed, false, 'the channel stays open');
      await ch.assertQueue('', { exclusive: true });
    });

    test('an exclusive consumer shuts others out: 403 ACCESS_REFUSED either way round', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.channel();
      const queue = uniq('excl-consumer');
      await ch.assertQueue(queue, { durable: false });
      await consume(ch, queue, { exclusive: true });
      const b = await h.channel();
      await channelError(b, () => b.consume(queue, () => {}), 403, /in exclusive use/);
      const queue2 = uniq('shared');
      await ch.assertQueue(queue2, { durable: false });
      await consume(ch, queue2);
      const c = await h.channel();
      await channelError(c, () => c.consume(queue2, () => {}, { exclusive: true }), 403, /in exclusive use/);
    });

    test('consuming from a missing queue is 404', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.channel();
      await channelError(ch, () => ch.consume('nope', () => {}), 404, /no queue 'nope' in vhost '\/'/);
    });

    test('messages are spread round-robin over the consumers of a queue', T, async (t) => {
      const h = await amqpHarness(t);
      const { queue } = await filled(h, 0);
      const ch = await h.channel();
      const a = await consume(ch, queue, { noAck: true });
      const b = await consume(ch, queue, { noAck: true });
      const pub = await h.confirmChannel();
      for (let i = 0; i < 10; i++) await publish(pub, '', queue, `m${i}`);
      await waitFor(() => a.msgs.length + b.msgs.length === 10, 5000, 'all ten');
      assert.equal(a.msgs.length, 5);
      assert.equal(b.msgs.length, 5);
    });
  });

  describe('headers exchange (§3.1.3.4)', () => {
    test('x-match all and any; a binding without arguments matches everything', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.confirmChannel();
      const x = uniq('hdr');
      await ch.assertExchange(x, 'headers', { durable: false });
      const bind = async (args: Record<string, unknown>) => {
        const { queue } = await ch.assertQueue('', { exclusive: true });
        await ch.bindQueue(queue, x, '', args);
        return queue;
      };
      const all = await bind({ 'x-match': 'all', a: 1, b: 'two' });
      const any = await bind({ 'x-match': 'any', a: 1, c: 'three' });
      const dflt = await bind({ a: 1 });
      const everything = await bind({});
      await publish(ch, x, '', 'ab', { headers: { a: 1, b: 'two' } });
      await publish(ch, x, '', 'a', { headers: { a: 1 } });
      await publish(ch, x, '', 'c', { headers: { c: 'three' } });
      await publish(ch, x, '', 'b-wrong', { headers: { a: 2, b: 'two' } });
      const got = async (q: string) => {
        const out: string[] = [];
        for (let m = await ch.get(q, { noAck: true }); m; m = await ch.get(q, { noAck: true })) {
          out.push(m.content.toString());
        }
        return out;
      };
      assert.deepEqual(await got(all), ['ab']);
      assert.deepEqual(await got(any), ['ab', 'a', 'c']);
      assert.deepEqual(await got(dflt), ['ab', 'a'], 'x-match defaults to all');
      assert.deepEqual(await got(everything), ['ab', 'a', 'c', 'b-wrong']);
    });

    test('amq.match and amq.headers are headers exchanges', T, async (t) => {
      const h = await amqpHarness(t);
      const ch: Channel = await h.channel();
      for (const x of ['amq.match', 'amq.headers']) {
        const { queue } = await ch.assertQueue('', { exclusive: true });
        await ch.bindQueue(queue, x, '', { 'x-match': 'any', kind: 'k' });
        const c = await consume(ch, queue, { noAck: true });
        ch.publish(x, 'ignored', Buffer.from(x), { headers: { kind: 'k' } });
        await c.waitCount(1);
        assert.equal(c.bodies()[0], x);
      }
    });
  });

  describe('what RabbitMQ does not implement', () => {
    test('[rabbitmq] basic.qos with prefetch_size ≠ 0 is a connection error 540 NOT_IMPLEMENTED', T, async (t) => {
      const h = await amqpHarness(t);
      const conn = await h.connect();
      const ch = await h.channel(conn);
      const qos = { prefetchSize: 1024, prefetchCount: 0, global: false };
      await connectionError(conn, () => rpc(ch, 'BasicQos', qos, 'BasicQosOk'), 540, /prefetch_size!=0 \(1024\)/);
    });

    test('[rabbitmq] channel.flow active=true gets flow-ok; active=false is 540 NOT_IMPLEMENTED', T, async (t) => {
      const h = await amqpHarness(t);
      const conn = await h.connect();
      const ch = await h.channel(conn);
      const ok = await rpc(ch, 'ChannelFlow', { active: true }, 'ChannelFlowOk');
      assert.equal(ok.active, true);
      await connectionError(
        conn,
        () => rpc(ch, 'ChannelFlow', { active: false }, 'ChannelFlowOk'),
        540,
        /active=false/,
      );
    });
  });
});
