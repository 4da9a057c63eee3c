/**
 * AMQP 0-9-1 exchange and queue classes with amqplib: declare (active and passive), the
 * equivalence checks, reserved names, delete with if-unused / if-empty, bindings between
 * exchanges and queues, alternate exchanges, queue arguments and their validation, exclusive
 * and auto-delete queues, purge. Reply codes and texts follow RabbitMQ (rabbit_channel.erl,
 * rabbit_amqqueue.erl).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ConfirmChannel, Options } from 'amqplib';
import {
  type AmqpHarness,
  amqpHarness,
  asyncChannelError,
  type Coded,
  channelError,
  connectionError,
  consume,
  eventually,
  sleep,
  uniq,
  watch,
} from '../helpers/amqp.js';

const T = { timeout: 20_000 };

/** Publishes on a confirm channel and waits for the broker's ack (the message is routed). */
function publish(ch: ConfirmChannel, exchange: string, key: string, body: string, opts: Options.Publish = {}) {
  return new Promise<void>((resolve, reject) => {
    ch.publish(exchange, key, Buffer.from(body), opts, (err) => (err ? reject(err) : resolve()));
  });
}

/** Ready messages in `queue`, by a passive declare on a throwaway channel. */
async function ready(h: AmqpHarness, queue: string): Promise<number> {
  const ch = await h.channel();
  const ok = await ch.checkQueue(queue);
  await ch.close();
  return ok.messageCount;
}

/** Drains `queue` with basic.get and returns the bodies. */
async function drain(h: AmqpHarness, queue: string): Promise<string[]> {
  const ch = await h.channel();
  const out: string[] = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (!m) break;
    out.push(m.content.toString());
  }
  await ch.close();
  return out;
}

/** The reply code an operation on a fresh channel fails with (0 if it succeeds). */
async function codeOf(h: AmqpHarness, op: (ch: Awaited<ReturnType<AmqpHarness['channel']>>) => Promise<unknown>) {
  const ch = await h.channel();
  try {
    await op(ch);
    await ch.close();
    return 0;
  } catch (err) {
    return (err as Coded).code ?? -1;
  }
}

describe('AMQP 0-9-1 exchanges (§1.6 exchange class)', () => {
  test('direct, fanout and topic exchanges route as §3.1.3 describes', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.confirmChannel();
    const [d, f, tp] = [uniq('direct'), uniq('fanout'), uniq('topic')];
    await ch.assertExchange(d, 'direct', { durable: false });
    await ch.assertExchange(f, 'fanout', { durable: false });
    await ch.assertExchange(tp, 'topic', { durable: false });
    const q = async (x: string, key: string) => {
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await ch.bindQueue(queue, x, key);
      return queue;
    };
    const dq = await q(d, 'red');
    const fq = await q(f, 'ignored');
    const star = await q(tp, 'a.*.c');
    const hash = await q(tp, 'a.#');
    const hashOnly = await q(tp, '#');
    await publish(ch, d, 'red', 'd-red');
    await publish(ch, d, 'blue', 'd-blue');
    await publish(ch, f, 'anything', 'f-1');
    await publish(ch, tp, 'a.b.c', 't-abc');
    await publish(ch, tp, 'a.b.b.c', 't-abbc');
    await publish(ch, tp, 'a', 't-a');
    await publish(ch, tp, 'x.y', 't-xy');
    assert.deepEqual(await drain(h, dq), ['d-red']);
    assert.deepEqual(await drain(h, fq), ['f-1']);
    assert.deepEqual(await drain(h, star), ['t-abc']);
    assert.deepEqual(await drain(h, hash), ['t-abc', 't-abbc', 't-a'], '# matches zero or more words');
    assert.deepEqual(await drain(h, hashOnly), ['t-abc', 't-abbc', 't-a', 't-xy']);
  });

  test('the predeclared amq.* exchanges exist and may be redeclared with the same type', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.channel();
    for (const x of ['amq.direct', 'amq.fanout', 'amq.topic', 'amq.headers', 'amq.match']) await ch.checkExchange(x);
    await ch.assertExchange('amq.direct', 'direct', { durable: true });
    await ch.assertExchange('amq.topic', 'topic', { durable: true });
  });

  test('[rabbitmq] an unknown exchange type is a connection error 503 COMMAND_INVALID', T, async (t) => {
    const h = await amqpHarness(t);
    const conn = await h.connect();
    const ch = await h.channel(conn);
    // RabbitMQ: "COMMAND_INVALID - unknown exchange type 'nonsense'"
    await connectionError(conn, () => ch.assertExchange(uniq('x'), 'nonsense'), 503, /COMMAND_INVALID/);
  });

  test('a passive declare of a missing exchange closes the channel with 404 NOT_FOUND', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.channel();
    await channelError(ch, () => ch.checkExchange('nope'), 404, /NOT_FOUND - no exchange 'nope' in vhost '\/'/);
  });

  test('redeclaring with another type or durability is 406 PRECONDITION_FAILED (inequivalent arg)', T, async (t) => {
    const h = await amqpHarness(t);
    const name = uniq('x');
    const ch = await h.channel();
    await ch.assertExchange(name, 'direct', { durable: false });
    await ch.assertExchange(name, 'direct', { durable: false });
    await channelError(ch, () => ch.assertExchange(name, 'fanout', { durable: false }), 406, /inequivalent arg 'type'/);
    const ch2 = await h.channel();
    await channelError(
      ch2,
      () => ch2.assertExchange(name, 'direct', { durable: true }),
      406,
      /inequivalent arg 'durable'/,
    );
  });

  test('declaring a new amq.* exchange is 403 ACCESS_REFUSED', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.channel();
    await channelError(ch, () => ch.assertExchange('amq.mine', 'direct'), 403, /reserved prefix 'amq\.\*'/);
  });

  test('the default exchange cannot be declared, bound to or deleted (403)', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.channel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    assert.equal(await codeOf(h, (c) => c.bindQueue(queue, '', 'k')), 403);
    assert.equal(await codeOf(h, (c) => c.deleteExchange('')), 403);
    assert.equal(await codeOf(h, (c) => c.deleteExchange('amq.direct')), 403, 'amq.* cannot be deleted');
    await ch.checkExchange('amq.direct');
  });

  test('publishing to an internal exchange closes the channel with 403 ACCESS_REFUSED', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.channel();
    const ix = uniq('internal');
    await ch.assertExchange(ix, 'fanout', { durable: false, internal: true });
    ch.publish(ix, '', Buffer.from('x'));
    await asyncChannelError(ch, 403, /cannot publish to internal exchange/);
  });

  test('[rabbitmq e2e] exchange-to-exchange bindings route, also into an internal exchange', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.confirmChannel();
    const [src, dst] = [uniq('src'), uniq('dst')];
    await ch.assertExchange(src, 'topic', { durable: false });
    await ch.assertExchange(dst, 'fanout', { durable: false, internal: true });
    await ch.bindExchange(dst, src, 'orders.#');
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(queue, dst, '');
    await publish(ch, src, 'orders.new', 'o1');
    await publish(ch, src, 'users.new', 'u1');
    assert.deepEqual(await drain(h, queue), ['o1']);
    await ch.unbindExchange(dst, src, 'orders.#');
    await publish(ch, src, 'orders.new', 'o2');
    assert.deepEqual(await drain(h, queue), [], 'unbinding stops the routing');
  });

  test('[rabbitmq ae] an alternate exchange receives what the exchange cannot route', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.confirmChannel();
    const [x, ae] = [uniq('main'), uniq('ae')];
    await ch.assertExchange(ae, 'fanout', { durable: false });
    await ch.assertExchange(x, 'direct', { durable: false, alternateExchange: ae });
    const { queue: routed } = await ch.assertQueue('', { exclusive: true });
    const { queue: caught } = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(routed, x, 'known');
    await ch.bindQueue(caught, ae, '');
    let returned = 0;
    ch.on('return', () => returned++);
    await publish(ch, x, 'known', 'k', { mandatory: true });
    await publish(ch, x, 'unknown', 'u', { mandatory: true });
    assert.deepEqual(await drain(h, routed), ['k']);
    assert.deepEqual(await drain(h, caught), ['u']);
    assert.equal(returned, 0, 'a message the alternate exchange routes is not returned');
  });

  test('exchange.delete: if-unused refuses an exchange with bindings (406); deleting twice is fine', T, async (t) => {
    const h = await amqpHarness(t);
    const name = uniq('x');
    const ch = await h.channel();
    await ch.assertExchange(name, 'direct', { durable: false });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(queue, name, 'k');
    await channelError(ch, () => ch.deleteExchange(name, { ifUnused: true }), 406, /in use/);
    const ch2 = await h.channel();
    await ch2.deleteExchange(name);
    await ch2.deleteExchange(name);
    assert.equal(await codeOf(h, (c) => c.checkExchange(name)), 404);
  });

  test('an auto-delete exchange goes when its last binding is removed', T, async (t) => {
    const h = await amqpHarness(t);
    const name = uniq('ad');
    const ch = await h.channel();
    await ch.assertExchange(name, 'fanout', { durable: false, autoDelete: true });
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue(queue, name, '');
    await ch.checkExchange(name);
    await ch.unbindQueue(queue, name, '');
    await eventually(async () => (await codeOf(h, (c) => c.checkExchange(name))) === 404, 5000, 'the exchange to go');
  });
});

describe('AMQP 0-9-1 queues (§1.7 queue class)', () => {
  test('a server-named queue is amq.gen-…, declare-ok carries its name and zero counts', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.channel();
    const a = await ch.assertQueue('', { exclusive: true });
    const b = await ch.assertQueue('', { exclusive: true });
    assert.match(a.queue, /^amq\.gen-/);
    assert.notEqual(a.queue, b.queue);
    assert.equal(a.messageCount, 0);
    assert.equal(a.consumerCount, 0);
    await ch.checkQueue(a.queue);
  });

  test('a queue named amq.* by the client is 403 ACCESS_REFUSED', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.channel();
    await channelError(ch, () => ch.assertQueue('amq.mine'), 403, /reserved prefix 'amq\.\*'/);
  });

  test('a passive declare of a missing queue closes the channel with 404 NOT_FOUND', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.channel();
    await channelError(ch, () => ch.checkQueue('nope'), 404, /NOT_FOUND - no queue 'nope' in vhost '\/'/);
  });

  test('declare-ok counts ready messages and consumers', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.confirmChannel();
    const name = uniq('counts');
    await ch.assertQueue(name, { durable: false });
    for (let i = 0; i < 3; i++) await publish(ch, '', name, `m${i}`);
    const sub = await h.channel();
    await sub.prefetch(1);
    const c = await consume(sub, name);
    await c.waitCount(1);
    const ok = await ch.assertQueue(name, { durable: false });
    assert.equal(ok.messageCount, 2, 'the unacknowledged message is not counted');
    assert.equal(ok.consumerCount, 1);
  });

  test('redeclaring with other durable / arguments is 406; the same declaration is fine', T, async (t) => {
    const h = await amqpHarness(t);
    const name = uniq('q');
    const ch = await h.channel();
    await ch.assertQueue(name, { durable: false, messageTtl: 1000 });
    await ch.assertQueue(name, { durable: false, messageTtl: 1000 });
    await channelError(
      ch,
      () => ch.assertQueue(name, { durable: true, messageTtl: 1000 }),
      406,
      /inequivalent arg 'durable'/,
    );
    const ch2 = await h.channel();
    await channelError(
      ch2,
      () => ch2.assertQueue(name, { durable: false, messageTtl: 2000 }),
      406,
      /inequivalent arg 'x-message-ttl'/,
    );
  });

  test(
    '[rabbitmq queues] an exclusive queue is locked (405) to other connections, and goes with its owner',
    T,
    async (t) => {
      const h = await amqpHarness(t);
      const owner = await h.connect();
      const other = await h.connect();
      const name = uniq('excl');
      const och = await h.channel(owner);
      await och.assertQueue(name, { exclusive: true });
      await och.checkQueue(name);
      const locked = /RESOURCE_LOCKED - cannot obtain exclusive access to locked queue/;
      for (const op of ['declare', 'passive', 'consume', 'purge', 'delete'] as const) {
        const ch = await h.channel(other);
        await channelError(
          ch,
          () =>
            op === 'declare'
              ? ch.assertQueue(name, { exclusive: true })
              : op === 'passive'
                ? ch.checkQueue(name)
                : op === 'consume'
                  ? ch.consume(name, () => {})
                  : op === 'purge'
                    ? ch.purgeQueue(name)
                    : ch.deleteQueue(name),
          405,
          locked,
        );
      }
      await owner.close();
      await eventually(async () => (await codeOf(h, (c) => c.checkQueue(name))) === 404, 5000, 'the queue to go');
    },
  );

  test('an auto-delete queue is deleted when its last consumer cancels, not before it had one', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.channel();
    const name = uniq('ad');
    await ch.assertQueue(name, { durable: false, autoDelete: true });
    const a = await consume(ch, name);
    const b = await consume(ch, name);
    await ch.cancel(a.tag);
    assert.equal((await ch.checkQueue(name)).consumerCount, 1, 'still there with one consumer');
    await ch.cancel(b.tag);
    await eventually(async () => (await codeOf(h, (c) => c.checkQueue(name))) === 404, 5000, 'the queue to go');
    const never = uniq('ad-never');
    await ch.assertQueue(never, { durable: false, autoDelete: true });
    await ch.checkQueue(never);
  });

  test('[rabbitmq ttl] a queue unused for x-expires is deleted', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.channel();
    const name = uniq('expires');
    await ch.assertQueue(name, { durable: false, expires: 100 });
    // A passive declare renews the lease (RabbitMQ ensure_expiry_timer), so look rarely.
    await eventually(
      async () => {
        await sleep(300);
        return (await codeOf(h, (c) => c.checkQueue(name))) === 404;
      },
      10_000,
      'the queue to expire',
    );
  });

  test('the RabbitMQ queue arguments are accepted', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.channel();
    const dlx = uniq('dlx');
    await ch.assertExchange(dlx, 'fanout', { durable: false });
    const args: Array<Record<string, unknown>> = [
      { 'x-message-ttl': 60_000 },
      { 'x-max-length': 10 },
      { 'x-max-length': 10, 'x-overflow': 'drop-head' },
      { 'x-max-length': 10, 'x-overflow': 'reject-publish' },
      { 'x-max-length': 10, 'x-overflow': 'reject-publish-dlx', 'x-dead-letter-exchange': dlx },
      { 'x-expires': 60_000 },
      { 'x-max-length-bytes': 1_000_000 },
      { 'x-max-priority': 10 },
      { 'x-dead-letter-exchange': dlx, 'x-dead-letter-routing-key': 'dead' },
      { 'x-single-active-consumer': true },
      { 'x-queue-type': 'classic' },
    ];
    for (const a of args) {
      const ok = await ch.assertQueue(uniq('args'), { durable: false, arguments: a });
      assert.equal(ok.messageCount, 0, JSON.stringify(a));
    }
  });

  test('[rabbitmq] an invalid queue argument value is 406 PRECONDITION_FAILED (invalid arg)', T, async (t) => {
    const h = await amqpHarness(t);
    const bad: Array<[string, unknown]> = [
      ['x-message-ttl', -1],
      ['x-message-ttl', 'soon'],
      ['x-max-length', -1],
      ['x-max-length', 'ten'],
      ['x-max-length-bytes', -5],
      ['x-overflow', 'bogus'],
      ['x-expires', 0],
      ['x-expires', -10],
      ['x-max-priority', -1],
      ['x-max-priority', 'high'],
    ];
    for (const [key, value] of bad) {
      const ch = await h.channel();
      const name = uniq('bad');
      await channelError(
        ch,
        () => ch.assertQueue(name, { durable: false, arguments: { [key]: value } }),
        406,
        new RegExp(`invalid arg '${key}' for queue '${name}' in vhost '/'`),
      );
    }
  });

  test('[rabbitmq quorum] quorum queues must be durable and not exclusive; stream ones durable', T, async (t) => {
    const h = await amqpHarness(t);
    const ok = await (await h.channel()).assertQueue(uniq('qq'), {
      durable: true,
      arguments: { 'x-queue-type': 'quorum' },
    });
    assert.equal(ok.messageCount, 0);
    const cases: Array<[Options.AssertQueue, RegExp]> = [
      [{ durable: false, arguments: { 'x-queue-type': 'quorum' } }, /invalid property 'non-durable'/],
      [
        { durable: true, exclusive: true, arguments: { 'x-queue-type': 'quorum' } },
        /invalid property 'exclusive-owner'/,
      ],
      [{ durable: false, arguments: { 'x-queue-type': 'stream' } }, /PRECONDITION_FAILED/],
      [{ durable: true, arguments: { 'x-queue-type': 'bogus' } }, /PRECONDITION_FAILED/],
    ];
    for (const [opts, text] of cases) {
      const ch = await h.channel();
      await channelError(ch, () => ch.assertQueue(uniq('qt'), opts), 406, text);
    }
  });

  test('redeclaring a quorum queue as classic is 406 (inequivalent x-queue-type)', T, async (t) => {
    const h = await amqpHarness(t);
    const name = uniq('qq');
    const ch = await h.channel();
    await ch.assertQueue(name, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await channelError(
      ch,
      () => ch.assertQueue(name, { durable: true, arguments: { 'x-queue-type': 'classic' } }),
      406,
      /inequivalent arg 'x-queue-type'/,
    );
    await (await h.channel()).deleteQueue(name);
  });

  test('queue.bind to a missing queue or exchange is 404; unbind stops the routing', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.confirmChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    assert.equal(await codeOf(h, (c) => c.bindQueue('nope', 'amq.direct', 'k')), 404);
    assert.equal(await codeOf(h, (c) => c.bindQueue(queue, 'nope', 'k')), 404);
    await ch.bindQueue(queue, 'amq.direct', 'k');
    await ch.bindQueue(queue, 'amq.direct', 'k'); // binding twice is one binding
    await publish(ch, 'amq.direct', 'k', 'one');
    assert.deepEqual(await drain(h, queue), ['one']);
    await ch.unbindQueue(queue, 'amq.direct', 'k');
    await ch.unbindQueue(queue, 'amq.direct', 'never-bound');
    await publish(ch, 'amq.direct', 'k', 'two');
    assert.deepEqual(await drain(h, queue), []);
  });

  test('every queue is bound to the default exchange by its name (§3.1.3.1)', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.confirmChannel();
    const name = uniq('dflt');
    await ch.assertQueue(name, { durable: false });
    await publish(ch, '', name, 'hi');
    assert.deepEqual(await drain(h, name), ['hi']);
  });

  test('queue.purge returns the count of ready messages and empties the queue', T, async (t) => {
    const h = await amqpHarness(t);
    const ch = await h.confirmChannel();
    const name = uniq('purge');
    await ch.assertQueue(name, { durable: false });
    for (let i = 0; i < 5; i++) await publish(ch, '', name, `m${i}`);
    const ok = await ch.purgeQueue(name);
    assert.equal(ok.messageCount, 5);
    assert.equal(await ready(h, name), 0);
    assert.equal(await codeOf(h, (c) => c.purgeQueue('nope')), 404);
  });

  test(
    'queue.delete: if-unused (406 with a consumer), if-empty (406 with messages), returns the count',
    T,
    async (t) => {
      const h = await amqpHarness(t);
      const ch = await h.confirmChannel();
      const name = uniq('del');
      await ch.assertQueue(name, { durable: false });
      for (let i = 0; i < 3; i++) await publish(ch, '', name, `m${i}`);
      const empty = await h.channel();
      await channelError(empty, () => empty.deleteQueue(name, { ifEmpty: true }), 406, /not empty/);
      const sub = await h.channel();
      await sub.prefetch(1);
      const c = await consume(sub, name);
      await c.waitCount(1);
      const used = await h.channel();
      await channelError(used, () => used.deleteQueue(name, { ifUnused: true }), 406, /in use/);
      const ok = await (await h.channel()).deleteQueue(name);
      assert.equal(ok.messageCount, 2, 'the ready messages (the unacked one is not counted)');
      assert.equal(await codeOf(h, (c2) => c2.checkQueue(name)), 404);
      const again = await (await h.channel()).deleteQueue(name);
      assert.equal(again.messageCount, 0, 'deleting a missing queue is fine');
      assert.equal(watch(sub).isClosed, false, 'the consumer channel stays open');
    },
  );
});
