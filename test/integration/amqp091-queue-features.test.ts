/**
 * RabbitMQ queue features over AMQP 0-9-1 with amqplib: message and queue TTL, priorities,
 * dead-lettering with x-death, length limits, quorum delivery limits, direct reply-to, single
 * active consumer, consumer priorities, the consumer timeout and the message size limit. Each
 * test names the RabbitMQ documentation page it follows.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ConfirmChannel, ConsumeMessage, Options, XDeath } from 'amqplib';
import {
  type AmqpHarness,
  amqpHarness,
  asyncChannelError,
  channelError,
  closedWith,
  consume,
  sleep,
  uniq,
  waitFor,
} from '../helpers/amqp.js';

const T = { timeout: 30_000 };

function publish(ch: ConfirmChannel, exchange: string, key: string, body: string, opts: Options.Publish = {}) {
  return new Promise<void>((resolve, reject) => {
    ch.publish(exchange, key, Buffer.from(body), opts, (err) => (err ? reject(err) : resolve()));
  });
}

/** A dead-letter setup: fanout exchange `dlx` into queue `dlq`, both fresh. */
async function deadLetters(h: AmqpHarness, ch: ConfirmChannel) {
  const dlx = uniq('dlx');
  const dlq = uniq('dlq');
  await ch.assertExchange(dlx, 'fanout', { durable: false });
  await ch.assertQueue(dlq, { durable: false });
  await ch.bindQueue(dlq, dlx, '');
  const sub = await h.channel();
  const dead = await consume(sub, dlq, { noAck: true });
  return { dlx, dlq, dead };
}

const xDeath = (m: ConsumeMessage): XDeath[] => (m.properties.headers?.['x-death'] ?? []) as XDeath[];

describe('RabbitMQ queue features over AMQP 0-9-1', () => {
  describe('[rabbitmq ttl] time-to-live', () => {
    test('a per-message expiration drops the message once it has passed', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.confirmChannel();
      const queue = uniq('ttl');
      await ch.assertQueue(queue, { durable: false });
      await publish(ch, '', queue, 'short', { expiration: '50' });
      await publish(ch, '', queue, 'keeps');
      await sleep(250);
      const m = await ch.get(queue, { noAck: true });
      assert.ok(m);
      assert.equal(m.content.toString(), 'keeps');
      assert.equal(await ch.get(queue, { noAck: true }), false);
    });

    test('expiration 0 means deliver now or never: with no consumer it is gone', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.confirmChannel();
      const queue = uniq('ttl0');
      await ch.assertQueue(queue, { durable: false });
      await publish(ch, '', queue, 'now-or-never', { expiration: '0' });
      assert.equal(await ch.get(queue, { noAck: true }), false);
      const c = await consume(ch, queue, { noAck: true });
      await publish(ch, '', queue, 'caught', { expiration: '0' });
      await c.waitCount(1);
      assert.equal(c.bodies()[0], 'caught');
    });

    test('x-message-ttl expires every message of the queue', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.confirmChannel();
      const queue = uniq('qttl');
      await ch.assertQueue(queue, { durable: false, messageTtl: 50 });
      await publish(ch, '', queue, 'a');
      await publish(ch, '', queue, 'b');
      await sleep(250);
      assert.equal(await ch.get(queue, { noAck: true }), false);
      await publish(ch, '', queue, 'fresh');
      const m = await ch.get(queue, { noAck: true });
      assert.ok(m, 'a fresh message is there');
    });

    test('an invalid expiration is 406 PRECONDITION_FAILED', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.channel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      ch.sendToQueue(queue, Buffer.from('x'), { expiration: 'soon' });
      await asyncChannelError(ch, 406, /invalid expiration/);
    });
  });

  describe('[rabbitmq priority] priority queues', () => {
    test('higher priorities are delivered first, FIFO within one, above max counts as max', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.confirmChannel();
      const queue = uniq('prio');
      await ch.assertQueue(queue, { durable: false, maxPriority: 10 });
      const sends: Array<[string, number | undefined]> = [
        ['p1', 1],
        ['p5a', 5],
        ['none', undefined],
        ['p9', 9],
        ['p5b', 5],
        ['p0', 0],
        ['p200', 200],
      ];
      for (const [body, priority] of sends)
        await publish(ch, '', queue, body, priority === undefined ? {} : { priority });
      const c = await consume(await h.channel(), queue, { noAck: true });
      await c.waitCount(sends.length);
      assert.deepEqual(c.bodies(), ['p200', 'p9', 'p5a', 'p5b', 'p1', 'none', 'p0']);
      assert.equal(c.msgs[0].properties.priority, 200, 'the property itself is not changed');
    });
  });

  describe('[rabbitmq dlx] dead-lettering', () => {
    test('a rejected message is dead-lettered with x-death reason rejected', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.confirmChannel();
      const { dlx, dead } = await deadLetters(h, ch);
      const queue = uniq('work');
      await ch.assertQueue(queue, { durable: false, deadLetterExchange: dlx });
      await ch.bindQueue(queue, 'amq.direct', 'jobs');
      const worker = await h.channel();
      const w = await consume(worker, queue, {}, (m) => worker.reject(m, false));
      await publish(ch, 'amq.direct', 'jobs', 'job-1', { correlationId: 'c-1', headers: { mine: 'kept' } });
      await dead.waitCount(1);
      const m = dead.msgs[0];
      assert.equal(m.content.toString(), 'job-1');
      assert.equal(m.fields.exchange, dlx);
      assert.equal(m.fields.routingKey, 'jobs', 'the original routing key, with no x-dead-letter-routing-key');
      assert.equal(m.properties.correlationId, 'c-1');
      const headers = m.properties.headers ?? {};
      assert.equal(headers.mine, 'kept');
      const deaths = xDeath(m);
      assert.equal(deaths.length, 1);
      assert.equal(deaths[0].reason, 'rejected');
      assert.equal(deaths[0].count, 1);
      assert.equal(deaths[0].queue, queue);
      assert.equal(deaths[0].exchange, 'amq.direct');
      assert.deepEqual(deaths[0]['routing-keys'], ['jobs']);
      assert.equal(deaths[0].time?.['!'], 'timestamp');
      assert.equal(headers['x-first-death-reason'], 'rejected');
      assert.equal(headers['x-first-death-queue'], queue);
      assert.equal(headers['x-first-death-exchange'], 'amq.direct');
      assert.equal(w.msgs.length, 1);
    });

    test('x-dead-letter-routing-key replaces the routing key; nack without requeue dead-letters too', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.confirmChannel();
      const dlx = uniq('dlx-direct');
      await ch.assertExchange(dlx, 'direct', { durable: false });
      const { queue: dlq } = await ch.assertQueue('', { exclusive: true });
      await ch.bindQueue(dlq, dlx, 'dead');
      const dead = await consume(ch, dlq, { noAck: true });
      const queue = uniq('work');
      await ch.assertQueue(queue, { durable: false, deadLetterExchange: dlx, deadLetterRoutingKey: 'dead' });
      const worker = await h.channel();
      await consume(worker, queue, {}, (m) => worker.nack(m, false, false));
      await publish(ch, '', queue, 'j');
      await dead.waitCount(1);
      assert.equal(dead.msgs[0].fields.routingKey, 'dead');
      assert.deepEqual(xDeath(dead.msgs[0])[0]['routing-keys'], [queue]);
      assert.equal(xDeath(dead.msgs[0])[0].exchange, '');
    });

    test('an expired message is dead-lettered with reason expired and original-expiration', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.confirmChannel();
      const { dlx, dead } = await deadLetters(h, ch);
      const queue = uniq('expiring');
      await ch.assertQueue(queue, { durable: false, deadLetterExchange: dlx });
      await publish(ch, '', queue, 'late', { expiration: '20' });
      await dead.waitCount(1, 10_000);
      const m = dead.msgs[0];
      const d = xDeath(m)[0];
      assert.equal(d.reason, 'expired');
      assert.equal(d.queue, queue);
      assert.equal(d['original-expiration'], '20');
      assert.equal(m.properties.expiration, undefined, 'the expiration is removed');
    });

    test('x-message-ttl expiry dead-letters with reason expired', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.confirmChannel();
      const { dlx, dead } = await deadLetters(h, ch);
      const queue = uniq('qttl-dl');
      await ch.assertQueue(queue, { durable: false, deadLetterExchange: dlx, messageTtl: 20 });
      await publish(ch, '', queue, 'x');
      await dead.waitCount(1, 10_000);
      assert.equal(xDeath(dead.msgs[0])[0].reason, 'expired');
    });

    test('x-max-length with drop-head dead-letters the oldest with reason maxlen', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.confirmChannel();
      const { dlx, dead } = await deadLetters(h, ch);
      const queue = uniq('capped');
      await ch.assertQueue(queue, { durable: false, deadLetterExchange: dlx, maxLength: 2 });
      for (const b of ['a', 'b', 'c']) await publish(ch, '', queue, b);
      await dead.waitCount(1);
      assert.equal(dead.bodies()[0], 'a');
      assert.equal(xDeath(dead.msgs[0])[0].reason, 'maxlen');
      const left = [await ch.get(queue, { noAck: true }), await ch.get(queue, { noAck: true })];
      assert.deepEqual(
        left.map((m) => (m ? m.content.toString() : m)),
        ['b', 'c'],
      );
    });

    test('x-max-length-bytes drops from the head by body size', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.confirmChannel();
      const queue = uniq('bytes');
      await ch.assertQueue(queue, { durable: false, arguments: { 'x-max-length-bytes': 10 } });
      await publish(ch, '', queue, 'aaaaaa');
      await publish(ch, '', queue, 'bbbbbb');
      const m = await ch.get(queue, { noAck: true });
      assert.ok(m);
      assert.equal(m.content.toString(), 'bbbbbb');
      assert.equal(await ch.get(queue, { noAck: true }), false);
    });

    test('a retry loop through two queues counts each death in x-death, most recent first', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.confirmChannel();
      const [work, retry] = [uniq('work'), uniq('retry')];
      await ch.assertQueue(work, { durable: false, deadLetterExchange: '', deadLetterRoutingKey: retry });
      await ch.assertQueue(retry, {
        durable: false,
        messageTtl: 10,
        deadLetterExchange: '',
        deadLetterRoutingKey: work,
      });
      const worker = await h.channel();
      const w = await consume(worker, work, {}, (m) => {
        if (w.msgs.length < 3) worker.reject(m, false);
        else worker.ack(m);
      });
      await publish(ch, '', work, 'flaky');
      await w.waitCount(3, 10_000);
      assert.deepEqual(xDeath(w.msgs[0]), []);
      const second = xDeath(w.msgs[1]).map((d) => [d.queue, d.reason, d.count]);
      assert.deepEqual(second, [
        [retry, 'expired', 1],
        [work, 'rejected', 1],
      ]);
      const third = xDeath(w.msgs[2]).map((d) => [d.queue, d.reason, d.count]);
      assert.deepEqual(third, [
        [retry, 'expired', 2],
        [work, 'rejected', 2],
      ]);
      assert.equal(w.msgs[2].properties.headers?.['x-first-death-queue'], work);
    });

    test('[rabbitmq quorum-queues] x-delivery-limit dead-letters after too many returns', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.confirmChannel();
      const { dlx, dead } = await deadLetters(h, ch);
      const queue = uniq('qq');
      await ch.assertQueue(queue, {
        durable: true,
        deadLetterExchange: dlx,
        arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 1 },
      });
      const worker = await h.channel();
      const w = await consume(worker, queue, {}, (m) => worker.nack(m, false, true));
      await publish(ch, '', queue, 'poison');
      await dead.waitCount(1);
      assert.equal(w.msgs.length, 2, 'delivered once, redelivered once');
      assert.equal(w.msgs[1].fields.redelivered, true);
      assert.equal(xDeath(dead.msgs[0])[0].reason, 'delivery_limit');
      await worker.close();
      await ch.deleteQueue(queue);
    });
  });

  describe('[rabbitmq direct-reply-to] direct reply-to', () => {
    test('an RPC through amq.rabbitmq.reply-to: the server replies to the rewritten reply-to', T, async (t) => {
      const h = await amqpHarness(t);
      const serverConn = await h.connect();
      const srv = await h.channel(serverConn);
      const rpcQueue = uniq('rpc');
      await srv.assertQueue(rpcQueue, { durable: false });
      const seenReplyTo: string[] = [];
      await consume(srv, rpcQueue, { noAck: true }, (m) => {
        seenReplyTo.push(m.properties.replyTo);
        srv.sendToQueue(m.properties.replyTo, Buffer.from(`re:${m.content}`), {
          correlationId: m.properties.correlationId,
        });
      });
      const client = await h.channel(await h.connect());
      const replies = await consume(client, 'amq.rabbitmq.reply-to', { noAck: true });
      client.sendToQueue(rpcQueue, Buffer.from('q1'), { replyTo: 'amq.rabbitmq.reply-to', correlationId: 'c1' });
      client.sendToQueue(rpcQueue, Buffer.from('q2'), { replyTo: 'amq.rabbitmq.reply-to', correlationId: 'c2' });
      await replies.waitCount(2);
      assert.deepEqual(replies.bodies(), ['re:q1', 're:q2']);
      assert.deepEqual(
        replies.msgs.map((m) => m.properties.correlationId),
        ['c1', 'c2'],
      );
      assert.equal(replies.msgs[0].fields.consumerTag, replies.tag);
      assert.match(seenReplyTo[0], /^amq\.rabbitmq\.reply-to\..+/, 'the server sees a routable reply-to');
    });

    test('the reply-to consumer must be noAck (406 reply consumer cannot acknowledge)', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.channel();
      await channelError(
        ch,
        () => ch.consume('amq.rabbitmq.reply-to', () => {}),
        406,
        /reply consumer cannot acknowledge/,
      );
    });

    test('publishing with reply-to amq.rabbitmq.reply-to and no reply consumer is 406', T, async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.channel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      ch.sendToQueue(queue, Buffer.from('x'), { replyTo: 'amq.rabbitmq.reply-to' });
      await asyncChannelError(ch, 406, /fast reply consumer does not exist/);
    });
  });

  describe('consumers', () => {
    test('[rabbitmq consumers] single active consumer: one gets everything until it cancels', T, async (t) => {
      const h = await amqpHarness(t);
      const pub = await h.confirmChannel();
      const queue = uniq('sac');
      await pub.assertQueue(queue, { durable: false, arguments: { 'x-single-active-consumer': true } });
      const ca = await h.channel();
      const cb = await h.channel();
      const a = await consume(ca, queue, {}, (m) => ca.ack(m));
      const b = await consume(cb, queue, {}, (m) => cb.ack(m));
      for (let i = 0; i < 4; i++) await publish(pub, '', queue, `m${i}`);
      await a.waitCount(4);
      assert.equal(b.msgs.length, 0);
      assert.equal((await pub.checkQueue(queue)).consumerCount, 2);
      await ca.cancel(a.tag);
      for (let i = 4; i < 6; i++) await publish(pub, '', queue, `m${i}`);
      await b.waitCount(2);
      assert.deepEqual(b.bodies(), ['m4', 'm5']);
    });

    test('[rabbitmq consumer-priority] a higher x-priority consumer gets messages first', T, async (t) => {
      const h = await amqpHarness(t);
      const pub = await h.confirmChannel();
      const queue = uniq('cprio');
      await pub.assertQueue(queue, { durable: false });
      const ch = await h.channel();
      const low = await consume(ch, queue, { noAck: true, priority: 0 });
      const high = await consume(ch, queue, { noAck: true, priority: 10 });
      for (let i = 0; i < 10; i++) await publish(pub, '', queue, `m${i}`);
      await high.waitCount(10);
      assert.equal(low.msgs.length, 0);
    });

    test(
      '[rabbitmq consumer-priority] a blocked high-priority consumer lets lower ones have messages',
      T,
      async (t) => {
        const h = await amqpHarness(t);
        const pub = await h.confirmChannel();
        const queue = uniq('cprio2');
        await pub.assertQueue(queue, { durable: false });
        const hc = await h.channel();
        await hc.prefetch(1);
        const high = await consume(hc, queue, { priority: 10 });
        const low = await consume(await h.channel(), queue, { noAck: true });
        for (let i = 0; i < 5; i++) await publish(pub, '', queue, `m${i}`);
        await waitFor(() => high.msgs.length + low.msgs.length === 5, 5000, 'all five');
        assert.equal(high.msgs.length, 1, 'only as many as its prefetch allows');
        assert.equal(low.msgs.length, 4);
      },
    );

    test(
      '[rabbitmq consumers] a delivery not acknowledged within amqp.consumerTimeout closes the channel (406)',
      T,
      async (t) => {
        const h = await amqpHarness(t, { amqp: { consumerTimeout: 300 } });
        const pub = await h.confirmChannel();
        const queue = uniq('slow');
        await pub.assertQueue(queue, { durable: false });
        const ch = await h.channel();
        const c = await consume(ch, queue);
        await publish(pub, '', queue, 'never-acked');
        await c.waitCount(1);
        const err = await closedWith(ch, 15_000);
        assert.equal(err?.code, 406);
        assert.match(err?.message ?? '', /delivery acknowledgement on channel \d+ timed out/);
        const back = await pub.get(queue, { noAck: true });
        assert.ok(back, 'the delivery is requeued');
        assert.equal(back.fields.redelivered, true);
      },
    );
  });

  test('[rabbitmq] a message larger than amqp.maxMessageSize is 406 and not enqueued', T, async (t) => {
    const h = await amqpHarness(t, { amqp: { maxMessageSize: 1024 } });
    const ch = await h.channel();
    const queue = uniq('big');
    await ch.assertQueue(queue, { durable: false });
    ch.sendToQueue(queue, Buffer.alloc(2000));
    await asyncChannelError(ch, 406, /message size 2000 is larger than configured max size 1024/);
    const other = await h.channel();
    assert.equal((await other.checkQueue(queue)).messageCount, 0);
  });
});
