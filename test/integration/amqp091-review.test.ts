/**
 * Second review of the AMQP 0-9-1 adapter (src/amqp091): delivery-tag bookkeeping, prefetch,
 * transactions, publisher confirms around errors and closes, flow control, heartbeats and the
 * exception paths out of core callbacks. Each test names the behaviour and where it comes from
 * (the AMQP 0-9-1 spec, or RabbitMQ's rabbit_channel.erl / rabbit_reader.erl). Tests that pass
 * guard behaviour no other test covers.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { describe, test } from 'node:test';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import {
  type AmqpHarness,
  amqpHarness,
  asyncChannelError,
  closedWith,
  consume,
  defs,
  methodId,
  type RawAmqp,
  type RawFrame,
  sleep,
  txCommit,
  txSelect,
  uniq,
  waitFor,
  watch,
} from '../helpers/amqp.js';
import { basicPublish, bodyFrame, contentHeader, publish as rawPublishFrames } from '../helpers/raw-amqp.js';

const T = { timeout: 30_000 };

// ---------------------------------------------------------------------------------------------
// Helpers

/** Publishes on a confirm channel and waits for the ack. */
function publish(ch: ConfirmChannel, exchange: string, key: string, body: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    ch.publish(exchange, key, Buffer.from(body), {}, (err) => (err ? reject(err) : resolve()));
  });
}

/** A fresh queue holding m0..m(n-1), and the confirm channel that filled it. */
async function filled(h: AmqpHarness, n: number): Promise<{ pub: ConfirmChannel; queue: string }> {
  const pub = await h.confirmChannel();
  const queue = uniq('q');
  await pub.assertQueue(queue, { durable: false });
  for (let i = 0; i < n; i++) await publish(pub, '', queue, `m${i}`);
  return { pub, queue };
}

/** The encoded frame of a method, by amqplib's name for it. */
const methodBytes = (channel: number, name: string, fields: object = {}): Buffer =>
  defs.encodeMethod(methodId(name), channel, fields);

/** A raw client past the handshake with channel 1 open (confirm mode when asked). */
async function rawChannel(h: AmqpHarness, opts: { confirm?: boolean } = {}): Promise<RawAmqp> {
  const raw = await h.raw();
  const hs = await raw.handshake({ heartbeat: 0 });
  assert.equal(hs.result.name, 'ConnectionOpenOk');
  raw.method(1, 'ChannelOpen');
  await raw.expect('ChannelOpenOk');
  if (opts.confirm) {
    raw.method(1, 'ConfirmSelect', { nowait: false });
    await raw.expect('ConfirmSelectOk');
  }
  return raw;
}

/** Every frame the raw client receives within `ms` (heartbeats skipped). */
async function drain(raw: RawAmqp, ms: number): Promise<RawFrame[]> {
  const out: RawFrame[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return out;
    try {
      out.push(await raw.next(left));
    } catch {
      return out;
    }
  }
}

const label = (f: RawFrame): string =>
  f.name === 'BasicAck' || f.name === 'BasicNack'
    ? `${f.name}(${String(f.fields.deliveryTag)}${f.fields.multiple ? ',multiple' : ''})@${f.channel}`
    : `${f.name}@${f.channel}`;

/** The broker's AMQP connections (internal: for checking output buffering and leaks). */
interface ServerConn {
  state: string;
  conn: { bufferedBytes: number };
}
const serverConns = (h: AmqpHarness): Set<ServerConn> =>
  (h.b.broker as unknown as { amqp: { connections: Set<ServerConn> } }).amqp.connections;

/** The socket under an amqplib connection, to drop it without a close handshake. */
const socketOf = (c: ChannelModel): net.Socket => (c.connection as unknown as { stream: net.Socket }).stream;

/** Records uncaught exceptions for the rest of the test. */
function recordUncaught(t: { after(fn: () => void): void }): unknown[] {
  const seen: unknown[] = [];
  const on = (err: unknown) => seen.push(err);
  process.on('uncaughtException', on);
  t.after(() => process.off('uncaughtException', on));
  return seen;
}

// ---------------------------------------------------------------------------------------------

describe('AMQP 0-9-1 review: delivery tags (§1.8.3.13, rabbit_channel collect_acks)', () => {
  test('[rabbit_channel collect_acks] ack multiple naming a tag that is no longer outstanding is 406', T, async (t) => {
    // §1.8.3.13: "The server MUST validate that a non-zero delivery-tag refers to a delivered
    // message"; RabbitMQ's collect_acks walks the whole unacked queue looking for the tag and
    // raises 406 "unknown delivery tag" when it is not there, multiple or not.
    const h = await amqpHarness(t);
    const { queue } = await filled(h, 3);
    const ch = await h.channel();
    const c = await consume(ch, queue);
    await c.waitCount(3);
    ch.ack(c.msgs[2]!); // tag 3 settled
    ch.ack(c.msgs[2]!, true); // tag 3 again, multiple: must not silently settle 1 and 2
    await asyncChannelError(ch, 406, /unknown delivery tag 3/);
  });

  test('[rabbit_channel handle_eol] acking a delivery whose queue was deleted meanwhile is accepted', T, async (t) => {
    // RabbitMQ keeps the unacked entries when a consumed queue goes away (handle_eol only cancels
    // the consumers) and rabbit_queue_type:settle ignores a queue it no longer knows: the ack of a
    // message still being processed when its queue was deleted does not close the channel.
    const h = await amqpHarness(t);
    const { queue } = await filled(h, 1);
    const ch = await h.channel();
    const c = await consume(ch, queue);
    await c.waitCount(1);
    const other = await h.channel(await h.connect());
    await other.deleteQueue(queue);
    await waitFor(() => c.cancelled, 5000, 'basic.cancel from the server');
    ch.ack(c.msgs[0]!);
    await ch.checkExchange('amq.direct'); // a round trip after the ack
    assert.deepEqual(
      watch(ch).errors.map((e) => e.message),
      [],
    );
  });

  test('ack with multiple and delivery-tag 0 settles every outstanding delivery (§1.8.3.13)', T, async (t) => {
    const h = await amqpHarness(t);
    const { queue } = await filled(h, 3);
    const ch = await h.channel();
    const c = await consume(ch, queue);
    await c.waitCount(3);
    const got = await ch.get(queue, { noAck: false });
    assert.equal(got, false);
    ch.ackAll();
    await ch.close();
    const q = h.b.broker.core.getQueue('/', queue)!;
    assert.equal(q.messageCount, 0);
    assert.equal(q.unackedCount, 0);
  });

  test('deliveries of a cancelled consumer stay acknowledgeable on the channel (§1.8.3.5)', T, async (t) => {
    const h = await amqpHarness(t);
    const { queue } = await filled(h, 2);
    const ch = await h.channel();
    const c = await consume(ch, queue);
    await c.waitCount(2);
    await ch.cancel(c.tag);
    ch.ack(c.msgs[0]!);
    ch.nack(c.msgs[1]!, false, true); // requeued: back in the queue, not redelivered to anyone
    await ch.checkExchange('amq.direct');
    const q = h.b.broker.core.getQueue('/', queue)!;
    assert.equal(q.unackedCount, 0);
    assert.equal(q.messageCount, 1);
  });
});

describe('AMQP 0-9-1 review: prefetch (basic.qos, rabbit_limiter)', () => {
  test('[rabbit_channel notify_limiter] basic.get deliveries do not count toward global prefetch', T, async (t) => {
    // RabbitMQ's limiter counts what queues send to consumers (can_send); basic.get never passes
    // through it, and notify_limiter skips basic.get acks. An unacked basic.get must not starve
    // the channel's consumers under basic.qos(global=true).
    const h = await amqpHarness(t);
    const { pub, queue: qa } = await filled(h, 1);
    const qb = uniq('qb');
    await pub.assertQueue(qb, { durable: false });
    await publish(pub, '', qb, 'b1');
    const ch = await h.channel();
    await ch.prefetch(1, true);
    const got = await ch.get(qa, { noAck: false });
    assert.ok(got, 'basic.get-ok');
    const c = await consume(ch, qb);
    await c.waitCount(1, 2000);
  });

  test(
    '[rabbit_channel basic.recover_async] recover frees global prefetch for consumers of other queues',
    T,
    async (t) => {
      // basic.recover requeues the unacked deliveries and then notify_limiter: the limit they held
      // is free again, so a consumer on another queue that was blocked by it gets its message.
      const h = await amqpHarness(t);
      const { pub, queue: qa } = await filled(h, 1);
      const qb = uniq('qb');
      await pub.assertQueue(qb, { durable: false });
      await publish(pub, '', qb, 'b1');
      const ch = await h.channel();
      await ch.prefetch(1, true);
      const a = await consume(ch, qa);
      await a.waitCount(1);
      await ch.cancel(a.tag); // its delivery stays unacked and keeps the channel's limit full
      const b = await consume(ch, qb);
      await sleep(200);
      assert.equal(b.msgs.length, 0, 'the global limit holds b1 back while a1 is unacked');
      await ch.recover();
      await b.waitCount(1, 2000);
    },
  );

  test(
    '[rabbit_channel tx] an ack in an open transaction does not free global prefetch before commit',
    T,
    async (t) => {
      // In a transaction RabbitMQ keeps acks in the tx and calls settle_acks → notify_limiter only
      // on tx.commit: until then the delivery still counts against basic.qos(global=true).
      const h = await amqpHarness(t);
      const { pub, queue } = await filled(h, 1);
      const ch = await h.channel();
      await ch.prefetch(1, true);
      await txSelect(ch);
      const c = await consume(ch, queue);
      await c.waitCount(1);
      ch.ack(c.msgs[0]!);
      await ch.checkQueue(queue); // the ack is in
      await publish(pub, '', queue, 'm1'); // a new message makes the queue dispatch
      await sleep(200);
      assert.equal(c.msgs.length, 1, 'no second delivery before tx.commit');
      await txCommit(ch);
      await c.waitCount(2, 2000);
    },
  );

  test('[rabbit_limiter can_send] a no-ack consumer is held by the global limit as well', T, async (t) => {
    // rabbit_limiter:can_send refuses any send once the channel's limit is reached, no-ack or not.
    const h = await amqpHarness(t);
    const { pub, queue: qa } = await filled(h, 1);
    const qb = uniq('qb');
    await pub.assertQueue(qb, { durable: false });
    await publish(pub, '', qb, 'b1');
    const ch = await h.channel();
    await ch.prefetch(1, true);
    const a = await consume(ch, qa);
    await a.waitCount(1);
    const b = await consume(ch, qb, { noAck: true });
    await sleep(200);
    assert.equal(b.msgs.length, 0);
    ch.ack(a.msgs[0]!);
    await b.waitCount(1, 2000);
  });
});

describe('AMQP 0-9-1 review: transactions (§1.9, rabbit_channel tx.commit)', () => {
  test(
    '[rabbit_channel basic.publish] in a transaction, publishing to an internal exchange is 403 at once',
    T,
    async (t) => {
      // rabbit_channel checks the exchange (lookup_or_die, check_internal_exchange) and routes when
      // basic.publish arrives, tx or not; only the delivery to the queues waits for tx.commit.
      const h = await amqpHarness(t);
      const ch = await h.channel();
      const x = uniq('internal');
      await ch.assertExchange(x, 'fanout', { durable: false, internal: true });
      await txSelect(ch);
      ch.publish(x, '', Buffer.from('m'));
      await asyncChannelError(ch, 403, /internal/);
    },
  );

  test('[rabbit_channel tx.commit] a commit after the target exchange was deleted still commits', T, async (t) => {
    // RabbitMQ routed the publish when it arrived ({Delivery, QNames} in the tx): tx.commit
    // delivers to those queues whatever happened to the exchange since.
    const h = await amqpHarness(t);
    const ch = await h.channel();
    const x = uniq('x');
    const queue = uniq('q');
    await ch.assertExchange(x, 'fanout', { durable: false });
    await ch.assertQueue(queue, { durable: false });
    await ch.bindQueue(queue, x, '');
    await txSelect(ch);
    ch.publish(x, '', Buffer.from('m'));
    await ch.checkQueue(queue); // the publish is in
    await (await h.channel(await h.connect())).deleteExchange(x);
    await txCommit(ch);
    assert.equal(h.b.broker.core.getQueue('/', queue)?.messageCount, 1);
  });

  test('a tx.commit that fails never strands the acks of its transaction (message stuck unacked)', T, async (t) => {
    // Whatever tx.commit answers, each delivery acked in the transaction must end up settled (the
    // commit happened) or back in the queue (it did not): never outstanding with no channel.
    const h = await amqpHarness(t);
    const { queue } = await filled(h, 1);
    const ch = await h.channel();
    const x = uniq('x');
    await ch.assertExchange(x, 'fanout', { durable: false });
    await txSelect(ch);
    const c = await consume(ch, queue);
    await c.waitCount(1);
    ch.publish(x, '', Buffer.from('p'));
    ch.ack(c.msgs[0]!);
    await ch.checkQueue(queue);
    await (await h.channel(await h.connect())).deleteExchange(x);
    const committed = await txCommit(ch).then(
      () => true,
      () => false,
    );
    if (committed) await ch.close();
    else await closedWith(ch);
    const q = h.b.broker.core.getQueue('/', queue)!;
    await sleep(100);
    assert.deepEqual(
      { committed, unacked: q.unackedCount, ready: q.messageCount },
      { committed, unacked: 0, ready: committed ? 0 : 1 },
    );
  });
});

describe('AMQP 0-9-1 review: publisher confirms around errors and closes', () => {
  test(
    '[rabbit_channel noreply→send_confirms_and_nacks] confirms decided before a channel error are sent before channel.close',
    T,
    async (t) => {
      // RabbitMQ sends the confirms of each method as it finishes handling it, so the two
      // unroutable publishes are acked before the third (to a missing exchange) closes the channel.
      // Dropping them makes the client republish messages that were routed.
      const h = await amqpHarness(t);
      const raw = await rawChannel(h, { confirm: true });
      raw.send(
        Buffer.concat([
          rawPublishFrames(1, 'amq.direct', 'nowhere', 'a'),
          rawPublishFrames(1, 'amq.direct', 'nowhere', 'b'),
          rawPublishFrames(1, uniq('missing'), 'k', 'c'),
        ]),
      );
      const frames = await drain(raw, 1000);
      const seq = frames.map(label);
      const close = seq.findIndex((s) => s.startsWith('ChannelClose@'));
      assert.ok(close >= 0, `channel.close: ${seq.join(', ')}`);
      const acked = frames.slice(0, close).some((f) => f.name === 'BasicAck' && f.fields.deliveryTag === 2);
      assert.ok(acked, `basic.ack up to tag 2 before channel.close; got ${seq.join(', ')}`);
    },
  );

  test(
    'no basic.ack follows channel.close-ok when publishes and channel.close arrive in one read (§1.5.2.5)',
    T,
    async (t) => {
      // After close-ok the channel is gone; amqplib answers a frame on it with connection.close 504
      // ("Frame on unknown channel"). RabbitMQ acks the publish before it handles channel.close.
      const h = await amqpHarness(t);
      const raw = await rawChannel(h, { confirm: true });
      raw.send(
        Buffer.concat([
          rawPublishFrames(1, 'amq.direct', 'nowhere', 'a'),
          methodBytes(1, 'ChannelClose', { replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 }),
        ]),
      );
      const seq = (await drain(raw, 800)).map(label);
      assert.deepEqual(seq, ['BasicAck(1)@1', 'ChannelCloseOk@1']);
    },
  );

  test('amqplib: publishing on a confirm channel and closing it at once does not kill the connection', T, async (t) => {
    // The same race through a real client: amqplib writes the publishes and channel.close back to
    // back; a basic.ack arriving after close-ok makes amqplib close the whole connection with 504.
    const h = await amqpHarness(t);
    const conn = await h.connect();
    const w = watch(conn);
    let failure: unknown;
    try {
      for (let round = 0; round < 5 && !w.isClosed; round++) {
        const ch = await conn.createConfirmChannel();
        ch.on('error', () => {});
        // One TCP write for the publishes and the close, as a busy client's writes coalesce.
        const sock = socketOf(conn);
        sock.cork();
        for (let i = 0; i < 5; i++) ch.publish('amq.direct', 'nowhere', Buffer.from('x'), {}, () => {});
        const closing = ch.close().catch(() => {});
        await sleep(20); // amqplib's channel mux writes on a later tick
        sock.uncork();
        await closing;
      }
      await sleep(200);
    } catch (err) {
      failure = err;
    }
    const why = `${w.errors.map((e) => `${e.code} ${e.message}`).join('; ')} ${String(failure ?? '')}`;
    assert.equal(failure, undefined, `the channel cycle failed: ${why}`);
    assert.equal(w.isClosed, false, `connection closed: ${why}`);
    await (await conn.createChannel()).checkExchange('amq.direct');
  });

  test(
    'nothing is sent after connection.close when a hard error follows confirmed publishes in one read',
    T,
    async (t) => {
      // §1.4.2.9 / RabbitMQ: once connection.close is sent, the only frame left to send is close-ok.
      const h = await amqpHarness(t);
      const raw = await rawChannel(h, { confirm: true });
      raw.send(
        Buffer.concat([
          rawPublishFrames(1, 'amq.direct', 'nowhere', 'a'),
          basicPublish(1, 'amq.direct', 'k', 2), // immediate=true: 540 NOT_IMPLEMENTED, a hard error
          contentHeader(1, 1),
          bodyFrame(1, 'b'),
        ]),
      );
      const seq = (await drain(raw, 800)).map(label);
      const close = seq.indexOf('ConnectionClose@0');
      assert.ok(close >= 0, `connection.close: ${seq.join(', ')}`);
      assert.deepEqual(seq.slice(close + 1), [], `frames after connection.close: ${seq.join(', ')}`);
    },
  );

  test('[rabbit_channel coalesce_and_send] an ack never uses multiple across a nacked publish', T, async (t) => {
    const h = await amqpHarness(t);
    const setup = await h.channel();
    const full = uniq('full');
    const other = uniq('other');
    await setup.assertQueue(full, { durable: false, arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
    await setup.assertQueue(other, { durable: false });
    const raw = await rawChannel(h, { confirm: true });
    raw.send(
      Buffer.concat([
        rawPublishFrames(1, '', other, '1'),
        rawPublishFrames(1, '', full, '2'),
        rawPublishFrames(1, '', other, '3'),
        rawPublishFrames(1, '', other, '4'),
      ]),
    );
    const seq = (await drain(raw, 800)).map(label);
    assert.deepEqual(seq, ['BasicAck(1)@1', 'BasicNack(2)@1', 'BasicAck(4,multiple)@1']);
    // ack 4 multiple covers 3 and 4 only: 2 was nacked before it, so the client has nothing left there
  });
});

describe('AMQP 0-9-1 review: exceptions out of core callbacks', () => {
  test(
    'a message the 0-9-1 codec cannot carry (routing key > 255 bytes) does not crash the broker when a consumer drops',
    T,
    async (t) => {
      // x-dead-letter-routing-key is a longstr, so a dead-lettered message can carry a routing key
      // longer than basic.deliver's shortstr. Delivering it throws RangeError from the codec inside
      // the queue's dispatch; when that dispatch runs from a socket 'close' (the consumer holding
      // the message drops and it is requeued to another consumer), nothing catches it and
      // `braid start` exits (src/cli/start.ts: uncaughtException → exit 1).
      // No heartbeats: amqplib keeps its heartbeat timer for a socket destroyed under it.
      const h = await amqpHarness(t, { amqp: { heartbeat: 0 } });
      const uncaught = recordUncaught(t);
      const setup = await h.channel();
      const dlx = uniq('dlx');
      const src = uniq('src');
      const dst = uniq('dst');
      await setup.assertExchange(dlx, 'fanout', { durable: false });
      await setup.assertQueue(dst, { durable: false });
      await setup.bindQueue(dst, dlx, '');
      await setup.assertQueue(src, {
        durable: false,
        arguments: { 'x-dead-letter-exchange': dlx, 'x-dead-letter-routing-key': 'k'.repeat(300) },
      });
      const cx = await h.connect();
      const x = await consume(await h.channel(cx), dst);
      const cy = await h.connect();
      const y = await consume(await h.channel(cy), dst);
      setup.sendToQueue(src, Buffer.from('poison'));
      await setup.checkQueue(src);
      const got = await setup.get(src, { noAck: false });
      assert.ok(got);
      setup.nack(got, false, false); // dead-lettered into dst with the 300-byte routing key
      await setup.checkQueue(src);
      const q = h.b.broker.core.getQueue('/', dst)!;
      // The broker cannot encode it for basic.deliver: it drops it at the first hand-out (and logs
      // why) instead of keeping it outstanding and throwing later from a socket close.
      await waitFor(() => q.messageCount === 0 && q.unackedCount === 0, 2000, 'the poison message dropped');
      assert.ok(
        h.b.logs.some((l) => /cannot be encoded/.test(l)),
        'the drop is logged',
      );
      socketOf(cy).destroy();
      await sleep(500);
      assert.deepEqual(
        uncaught.map((e) => String(e)),
        [],
      );
      assert.equal(x.msgs.length + y.msgs.length, 0);
      assert.equal(q.consumerCount, 1, 'the other consumer is still attached');
      void cx;
    },
  );

  test('a client capabilities entry of the wrong type is ignored (no crash, no basic.cancel)', T, async (t) => {
    const h = await amqpHarness(t);
    const raw = await h.raw();
    const hs = await raw.handshake({ capabilities: 'consumer_cancel_notify' as unknown as Record<string, boolean> });
    assert.equal(hs.result.name, 'ConnectionOpenOk');
    raw.method(1, 'ChannelOpen');
    await raw.expect('ChannelOpenOk');
    const queue = uniq('q');
    raw.method(1, 'QueueDeclare', { queue, durable: false, exclusive: false, autoDelete: false, arguments: {} });
    await raw.expect('QueueDeclareOk');
    raw.method(1, 'BasicConsume', { queue, consumerTag: 'c1', noAck: true, arguments: {} });
    await raw.expect('BasicConsumeOk');
    raw.method(1, 'QueueDelete', { queue });
    await raw.expect('QueueDeleteOk');
  });
});

describe('AMQP 0-9-1 review: flow control and closing', () => {
  test(
    'a consumer that stops reading holds the broker’s output near the high-water mark; all arrive after',
    T,
    async (t) => {
      const h = await amqpHarness(t);
      const setup = await h.channel();
      const queue = uniq('q');
      await setup.assertQueue(queue, { durable: false });
      const raw = await rawChannel(h);
      raw.method(1, 'BasicConsume', { queue, consumerTag: 'c', noAck: true, arguments: {} });
      await raw.expect('BasicConsumeOk');
      raw.socket.pause();
      const pub = await h.confirmChannel();
      const n = 3000;
      const body = Buffer.alloc(4096, 'x');
      let maxBuffered = 0;
      for (let i = 0; i < n; i++) {
        pub.sendToQueue(queue, Buffer.concat([Buffer.from(`${String(i).padStart(6, '0')}:`), body]));
        if (i % 100 === 99) {
          await pub.waitForConfirms();
          for (const c of serverConns(h)) maxBuffered = Math.max(maxBuffered, c.conn.bufferedBytes);
        }
      }
      await pub.waitForConfirms();
      assert.ok(maxBuffered < 3 * (1 << 20), `output buffered for one connection: ${maxBuffered} bytes`);
      assert.ok((h.b.broker.core.getQueue('/', queue)?.messageCount ?? 0) > 0, 'the rest waits in the queue');
      raw.socket.resume();
      let seen = 0;
      while (seen < n) {
        const f = await raw.next(10_000);
        if (f.name !== 'body') continue;
        assert.equal(f.content?.subarray(0, 6).toString(), String(seen).padStart(6, '0'), 'in order');
        seen++;
      }
    },
  );

  test('consumers of a shared queue are detached when their socket just goes away', T, async (t) => {
    // No heartbeats: amqplib keeps its heartbeat timer for a socket destroyed under it.
    const h = await amqpHarness(t, { amqp: { heartbeat: 0 } });
    const { queue } = await filled(h, 0);
    const conn = await h.connect();
    const ch = await h.channel(conn);
    await consume(ch, queue);
    await consume(await h.channel(conn), queue, { noAck: true });
    const q = h.b.broker.core.getQueue('/', queue)!;
    assert.equal(q.consumerCount, 2);
    const before = serverConns(h).size;
    socketOf(conn).destroy();
    await waitFor(() => q.consumerCount === 0, 3000, 'consumers detached');
    await waitFor(() => serverConns(h).size === before - 1, 3000, 'the connection forgotten');
  });

  test(
    'channel.close while a message is half-assembled: close-ok, nothing is published, the id is reusable',
    T,
    async (t) => {
      const h = await amqpHarness(t);
      const setup = await h.channel();
      const queue = uniq('q');
      await setup.assertQueue(queue, { durable: false });
      const raw = await rawChannel(h);
      raw.send(
        Buffer.concat([
          basicPublish(1, '', queue),
          contentHeader(1, 10),
          bodyFrame(1, 'abc'), // 3 of 10 bytes
          methodBytes(1, 'ChannelClose', { replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 }),
        ]),
      );
      await raw.expect('ChannelCloseOk');
      raw.method(1, 'ChannelOpen');
      await raw.expect('ChannelOpenOk');
      raw.send(rawPublishFrames(1, '', queue, 'whole'));
      await waitFor(() => h.b.broker.core.getQueue('/', queue)?.messageCount === 1, 2000, 'the later publish');
    },
  );
});

describe('AMQP 0-9-1 review: heartbeats (§4.2.7, rabbit_reader tune_ok)', () => {
  test('[rabbit_reader] a client answering heartbeat 0 to the server’s offer turns heartbeats off', T, async (t) => {
    // rabbit_reader starts its heartbeaters with ClientHeartbeat from tune-ok: 0 means none, even
    // though the server offered one (the "lower non-zero" rule is the client's, amqp_network_connection).
    const h = await amqpHarness(t, { amqp: { heartbeat: 1 } });
    const raw = await h.raw();
    const hs = await raw.handshake({ heartbeat: 0 });
    assert.equal(hs.tune?.fields.heartbeat, 1);
    assert.equal(hs.result.name, 'ConnectionOpenOk');
    const frames: RawFrame[] = [];
    const deadline = Date.now() + 3500;
    while (Date.now() < deadline) {
      try {
        frames.push(await raw.next(deadline - Date.now(), true));
      } catch {
        break;
      }
    }
    assert.deepEqual(
      frames.map((f) => f.name),
      [],
    );
    assert.equal(raw.closed, false, 'a silent client with heartbeats off is not timed out');
  });

  test('any frame from the client counts as liveness, not only heartbeat frames (§4.2.7)', T, async (t) => {
    const h = await amqpHarness(t, { amqp: { heartbeat: 1 } });
    const raw = await h.raw();
    const hs = await raw.handshake({ heartbeat: 1 });
    assert.equal(hs.result.name, 'ConnectionOpenOk');
    raw.method(1, 'ChannelOpen');
    await raw.expect('ChannelOpenOk');
    const until = Date.now() + 4000;
    while (Date.now() < until) {
      raw.method(1, 'ChannelFlow', { active: true });
      await raw.expect('ChannelFlowOk');
      await sleep(400);
    }
    assert.equal(raw.closed, false, 'open after 4 s of methods and no heartbeat frames');
  });

  test('a client that sends nothing after tune-ok with heartbeat 1 is dropped within ~3 s', T, async (t) => {
    const h = await amqpHarness(t, { amqp: { heartbeat: 1 } });
    const raw = await h.raw();
    await raw.handshake({ heartbeat: 1 });
    await raw.waitClosed(5000);
  });
});
