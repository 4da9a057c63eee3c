import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreError } from '../../src/core/errors.js';
import { createBinding } from '../../src/core/exchange/exchange.js';
import { createMessage, type Message, type MessageProperties } from '../../src/core/message.js';
import type { DeadLetterReason } from '../../src/core/queue/dlx.js';
import { OfferResults, Queue, type QueueInit } from '../../src/core/queue/queue.js';
import { PriorityReady } from '../../src/core/queue/ready.js';
import type { Binding, ConsumerSink, Delivery } from '../../src/core/types.js';

const B: Binding = createBinding({
  vhost: '/',
  source: 'x',
  destination: 'q',
  destinationKind: 'queue',
  bindingKey: 'k',
});
const M = [B];

function msg(body: string, properties?: MessageProperties, expiresAt?: number): Message {
  return createMessage({ vhost: '/', exchange: 'x', routingKey: 'k', body: Buffer.from(body), properties, expiresAt });
}

function bodies(ds: readonly Delivery[]): string[] {
  return ds.map((d) => d.message.body.toString());
}

class Sink implements ConsumerSink {
  readonly got: Delivery[] = [];
  ready = true;
  onDeliver: ((d: Delivery) => void) | undefined;
  constructor(
    readonly tag: string,
    readonly prefetch = 0,
  ) {}
  canDeliver(): boolean {
    return this.ready;
  }
  deliver(d: Delivery): void {
    this.got.push(d);
    this.onDeliver?.(d);
  }
}

/** A queue whose dead-lettered messages are recorded instead of routed. */
function queue(init: Partial<QueueInit> = {}, died?: [string, DeadLetterReason][]): Queue {
  return new Queue({
    vhost: '/',
    name: 'q',
    deadLetter: (_q, m, reason) => died?.push([m.body.toString(), reason]),
    ...init,
  });
}

function refused(fn: () => unknown, code: number, message: string): void {
  assert.throws(fn, (e: unknown) => e instanceof CoreError && e.code === code && e.message === message);
}

describe('priority queues (x-max-priority, https://www.rabbitmq.com/docs/priority)', () => {
  test('dispatches highest priority first, FIFO within a level; undefined is 0, above max is max', () => {
    const q = queue({ args: { 'x-max-priority': 5 } });
    const prios = [undefined, 3, 9, 0, 3, 5, 1];
    for (const [i, p] of prios.entries()) q.offer(msg(`m${i}`, p === undefined ? undefined : { priority: p }), M);
    const c = new Sink('c');
    q.addConsumer(c);
    // m2's priority 9 is capped at 5 and it came before m5.
    assert.deepEqual(bodies(c.got), ['m2', 'm5', 'm1', 'm4', 'm6', 'm0', 'm3']);
  });

  test('a requeued message goes back to the head of its level, redelivered', () => {
    const q = queue({ args: { 'x-max-priority': 2 } });
    const c = new Sink('c', 1);
    q.offer(msg('low1'), M);
    q.offer(msg('high1', { priority: 2 }), M);
    q.addConsumer(c);
    q.offer(msg('high2', { priority: 2 }), M);
    q.offer(msg('low2'), M);
    assert.deepEqual(bodies(c.got), ['high1']);
    q.nack(c.got[0]!, true);
    assert.deepEqual(bodies(c.got), ['high1', 'high1']);
    assert.equal(c.got[1]!.redelivered, true);
    for (let i = 1; i < 5; i++) q.ack(c.got[i]!);
    assert.deepEqual(bodies(c.got), ['high1', 'high1', 'high2', 'low1', 'low2']);
  });

  test('basic.get respects priorities; x-max-priority 0 is a plain FIFO', () => {
    const q = queue({ args: { 'x-max-priority': 10 } });
    q.offer(msg('a', { priority: 1 }), M);
    q.offer(msg('b', { priority: 7 }), M);
    assert.equal(q.get({ noAck: true })!.message.body.toString(), 'b');
    assert.equal(q.get({ noAck: true })!.message.body.toString(), 'a');
    assert.equal(q.get({ noAck: true }), undefined);
    const z = queue({ args: { 'x-max-priority': 0 } });
    z.offer(msg('a', { priority: 1 }), M);
    z.offer(msg('b', { priority: 7 }), M);
    assert.equal(z.get({ noAck: true })!.message.body.toString(), 'a');
  });

  test('PriorityReady: iteration order and clear', () => {
    const r = new PriorityReady<{ message: Message }>(3);
    for (const p of [0, 3, 1, 3]) r.push({ message: msg(String(p), { priority: p }) });
    assert.deepEqual(
      [...r].map((x) => x.message.body.toString()),
      ['3', '3', '1', '0'],
    );
    assert.equal(r.levelOf(msg('x', { priority: 200 })), 3);
    assert.equal(r.levelOf(msg('x', { priority: -1 })), 0);
    r.clear();
    assert.equal(r.length, 0);
    assert.equal(r.shift(), undefined);
  });
});

describe('consumers', () => {
  test('an exclusive consumer refuses others and is refused when others exist (403)', () => {
    const q = queue();
    const a = new Sink('a');
    q.addConsumer(a, { exclusive: true });
    const text = "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use";
    refused(() => q.addConsumer(new Sink('b')), 403, text);
    refused(() => q.addConsumer(new Sink('b'), { exclusive: true }), 403, text);
    q.removeConsumer(a, { requeue: true });
    q.addConsumer(new Sink('b'));
    refused(() => q.addConsumer(new Sink('c'), { exclusive: true }), 403, text);
  });

  test('consumer priorities: higher priority first while it has capacity, round-robin within', () => {
    const q = queue();
    const low = new Sink('low');
    const hi1 = new Sink('hi1', 2);
    const hi2 = new Sink('hi2', 2);
    q.addConsumer(low);
    q.addConsumer(hi1, { priority: 10 });
    q.addConsumer(hi2, { priority: 10 });
    for (let i = 1; i <= 6; i++) q.offer(msg(String(i)), M);
    assert.deepEqual(bodies(hi1.got), ['1', '3']);
    assert.deepEqual(bodies(hi2.got), ['2', '4']);
    assert.deepEqual(bodies(low.got), ['5', '6']);
    q.ack(hi2.got[0]!);
    q.offer(msg('7'), M);
    assert.deepEqual(bodies(hi2.got), ['2', '4', '7']);
  });

  test('negative priorities go after the default', () => {
    const q = queue();
    const neg = new Sink('neg');
    const def = new Sink('def', 1);
    q.addConsumer(neg, { priority: -5 });
    q.addConsumer(def);
    q.offer(msg('1'), M);
    q.offer(msg('2'), M);
    assert.deepEqual(bodies(def.got), ['1']);
    assert.deepEqual(bodies(neg.got), ['2']);
  });

  test('single active consumer: only the first gets messages; the next takes over when it leaves', () => {
    const q = queue({ args: { 'x-single-active-consumer': true } });
    const a = new Sink('a', 1);
    const b = new Sink('b');
    const c = new Sink('c');
    q.addConsumer(a);
    q.addConsumer(b);
    q.addConsumer(c);
    assert.equal(q.activeConsumer, a);
    assert.equal(q.isActive(a), true);
    assert.equal(q.isActive(b), false);
    for (let i = 1; i <= 3; i++) q.offer(msg(String(i)), M);
    assert.deepEqual(bodies(a.got), ['1'], 'prefetch 1: the others wait rather than take over');
    assert.equal(b.got.length + c.got.length, 0);
    q.removeConsumer(a, { requeue: true });
    assert.equal(q.activeConsumer, b);
    assert.deepEqual(bodies(b.got), ['1', '2', '3']);
    assert.equal(b.got[0]!.redelivered, true);
    assert.equal(c.got.length, 0);
    refused(
      () => q.addConsumer(new Sink('x'), { exclusive: true }),
      403,
      "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use",
    );
  });

  test('single active consumer: a higher-priority waiting consumer is next in line', () => {
    const q = queue({ args: { 'x-single-active-consumer': true } });
    const a = new Sink('a');
    const b = new Sink('b');
    const c = new Sink('c');
    q.addConsumer(a);
    q.addConsumer(b);
    q.addConsumer(c, { priority: 5 });
    q.removeConsumer(a, { requeue: false });
    assert.equal(q.activeConsumer, c);
    assert.equal(q.isActive(b), false);
  });

  test('the direct path is off for SAC queues and prioritised consumers', () => {
    let direct = 0;
    const mk = (tag: string): ConsumerSink & { got: Delivery[] } => ({
      tag,
      prefetch: 0,
      got: [],
      offerDirect: () => {
        direct++;
        return true;
      },
      deliver(d) {
        this.got.push(d);
      },
    });
    const sac = queue({ args: { 'x-single-active-consumer': true } });
    const s1 = mk('s1');
    sac.addConsumer(s1);
    sac.addConsumer(mk('s2'));
    sac.offer(msg('1'), M);
    assert.equal(direct, 0);
    assert.equal(s1.got.length, 1);
    const pq = queue();
    const p1 = mk('p1');
    pq.addConsumer(p1, { priority: 1 });
    pq.addConsumer(mk('p2'));
    pq.offer(msg('1'), M);
    assert.equal(direct, 0);
    assert.equal(p1.got.length, 1);
    const plain = queue();
    plain.addConsumer(mk('d'));
    plain.offer(msg('1'), M);
    assert.equal(direct, 1);
  });
});

describe('basic.get', () => {
  test('with ack: outstanding with no consumer, settleable; noAck settles at once', () => {
    const q = queue();
    q.offer(msg('1'), M);
    q.offer(msg('2'), M);
    const d = q.get({ noAck: false })!;
    assert.equal(d.message.body.toString(), '1');
    assert.equal(d.deliveryCount, 1);
    assert.equal(q.messageCount, 1);
    assert.equal(q.unackedCount, 1);
    assert.equal(q.nack(d, true), true);
    const again = q.get({ noAck: false })!;
    assert.equal(again.message.body.toString(), '1');
    assert.equal(again.redelivered, true);
    assert.equal(q.ack(again), true);
    const n = q.get({ noAck: true })!;
    assert.equal(n.message.body.toString(), '2');
    assert.equal(q.ack(n), false, 'already settled');
    assert.equal(q.unackedCount, 0);
    assert.equal(q.get({ noAck: true }), undefined);
  });

  test('skips and dead-letters expired heads', async () => {
    const died: [string, DeadLetterReason][] = [];
    const q = queue({ args: { 'x-dead-letter-exchange': 'dlx' } }, died);
    q.offer(msg('old', undefined, Date.now() + 5), M);
    q.offer(msg('new'), M);
    await sleep(10);
    // The head timer may already have removed it; either way `get` never returns it.
    assert.equal(q.get({ noAck: true })!.message.body.toString(), 'new');
    assert.deepEqual(died, [['old', 'expired']]);
  });
});

describe('settling many', () => {
  test('nackMany requeues in original order, marked redelivered, dispatching once', () => {
    const q = queue();
    const c = new Sink('c', 3);
    q.addConsumer(c);
    for (let i = 1; i <= 5; i++) q.offer(msg(String(i)), M);
    const [d1, d2, d3] = c.got;
    q.removeConsumer(c, { requeue: false });
    assert.equal(q.nackMany([d3!, d1!, d2!, d1!], true), 3, 'duplicates and stale handles are skipped');
    const c2 = new Sink('c2');
    q.addConsumer(c2);
    assert.deepEqual(bodies(c2.got), ['1', '2', '3', '4', '5']);
    assert.deepEqual(
      c2.got.map((d) => d.redelivered),
      [true, true, true, false, false],
    );
  });

  test('nack(requeue) one by one in reverse order also restores the order', () => {
    const q = queue();
    const c = new Sink('c');
    q.addConsumer(c);
    for (let i = 1; i <= 3; i++) q.offer(msg(String(i)), M);
    q.removeConsumer(c, { requeue: false });
    for (let i = 2; i >= 0; i--) q.nack(c.got[i]!, true);
    assert.deepEqual(
      [1, 2, 3].map(() => q.get({ noAck: true })!.message.body.toString()),
      ['1', '2', '3'],
    );
  });

  test('nackMany without requeue dead-letters each as rejected, in order', () => {
    const died: [string, DeadLetterReason][] = [];
    const q = queue({ args: { 'x-dead-letter-exchange': '' } }, died);
    const c = new Sink('c');
    q.addConsumer(c);
    q.offer(msg('a'), M);
    q.offer(msg('b'), M);
    assert.equal(q.nackMany([c.got[1]!, c.got[0]!], false), 2);
    assert.deepEqual(died, [
      ['a', 'rejected'],
      ['b', 'rejected'],
    ]);
    assert.equal(q.stats.deadLettered, 2);
    assert.equal(q.unackedCount, 0);
  });
});

describe('TTL (https://www.rabbitmq.com/docs/ttl)', () => {
  test('x-message-ttl: expired messages leave by timer with no consumer attached, dead-lettered', async () => {
    const died: [string, DeadLetterReason][] = [];
    const q = queue({ args: { 'x-message-ttl': 50, 'x-dead-letter-exchange': 'dlx' } }, died);
    q.offer(msg('1'), M);
    q.offer(msg('2'), M);
    assert.equal(q.messageCount, 2);
    // No consumer: only the timer can remove them. Polled, not timed (a loaded machine is slow).
    for (let waited = 0; q.messageCount > 0 && waited < 5000; waited += 20) await sleep(20);
    assert.equal(q.messageCount, 0);
    assert.deepEqual(died, [
      ['1', 'expired'],
      ['2', 'expired'],
    ]);
    assert.equal(q.stats.expired, 2);
  });

  test('per-message expiry is applied at the head only, as RabbitMQ does', async () => {
    const q = queue();
    q.offer(msg('long', undefined, Date.now() + 10_000), M);
    q.offer(msg('short', undefined, Date.now() + 5), M);
    await sleep(20);
    assert.equal(q.messageCount, 2, 'the short one waits behind an unexpired head');
    const c = new Sink('c');
    q.addConsumer(c);
    assert.deepEqual(bodies(c.got), ['long']);
    assert.equal(q.stats.expired, 1);
  });

  test('a message with an expiry at the head is expired by timer; the earlier of TTLs wins', async () => {
    const q = queue({ args: { 'x-message-ttl': 60_000 } });
    q.offer(msg('m', undefined, Date.now() + 10), M);
    await sleep(30);
    assert.equal(q.messageCount, 0);
    assert.equal(q.stats.expired, 1);
  });

  test('TTL 0 still reaches a ready consumer; otherwise it expires (dead-lettered)', async () => {
    const died: [string, DeadLetterReason][] = [];
    const q = queue({ args: { 'x-message-ttl': 0, 'x-dead-letter-exchange': 'dlx' } }, died);
    const c = new Sink('c');
    c.ready = false;
    q.addConsumer(c);
    q.offer(msg('late'), M);
    await sleep(10);
    assert.deepEqual(died, [['late', 'expired']]);
    c.ready = true;
    q.offer(msg('now'), M);
    assert.deepEqual(bodies(c.got), ['now']);
  });

  test('a message already expired on arrival is dead-lettered and not taken', () => {
    const died: [string, DeadLetterReason][] = [];
    const q = queue({ args: { 'x-dead-letter-exchange': 'dlx' } }, died);
    assert.equal(q.offerRouted(msg('x', undefined, Date.now() - 1), M), OfferResults.dropped);
    assert.deepEqual(died, [['x', 'expired']]);
  });
});

describe('x-expires (https://www.rabbitmq.com/docs/ttl#queue-ttl)', () => {
  test('an unused queue is deleted after x-expires; basic.get and declare (touch) postpone it', async () => {
    // Margins are wide: a "not yet" check comes well inside the period; "eventually" is polled.
    let expired = 0;
    const q = queue({ args: { 'x-expires': 900 }, onUnused: () => expired++ });
    await sleep(300);
    q.get({ noAck: true });
    await sleep(600);
    assert.equal(expired, 0, 'basic.get reset the countdown');
    q.touch();
    await sleep(600);
    assert.equal(expired, 0, 'redeclare reset the countdown');
    await until(() => expired === 1);
    assert.equal(expired, 1);
  });

  test('a consumer keeps it alive; the countdown restarts when the last one leaves', async () => {
    let expired = 0;
    const q = queue({ args: { 'x-expires': 300 }, onUnused: () => expired++ });
    const c = new Sink('c');
    q.addConsumer(c);
    await sleep(500);
    assert.equal(expired, 0);
    q.removeConsumer(c, { requeue: true });
    assert.equal(expired, 0);
    await until(() => expired === 1);
    assert.equal(expired, 1);
  });
});

/** Polls `cond` every 10 ms for up to 5 s: for what happens "eventually", never by a deadline. */
async function until(cond: () => boolean): Promise<void> {
  for (let waited = 0; !cond() && waited < 5000; waited += 10) await sleep(10);
}

describe('length limits (https://www.rabbitmq.com/docs/maxlength)', () => {
  test('x-max-length-bytes with drop-head drops (and dead-letters) the oldest', () => {
    const died: [string, DeadLetterReason][] = [];
    const q = queue({ args: { 'x-max-length-bytes': 10, 'x-dead-letter-exchange': 'dlx' } }, died);
    q.offer(msg('aaaa'), M);
    q.offer(msg('bbbb'), M);
    assert.equal(q.messageBytes, 8);
    q.offer(msg('cccc'), M);
    assert.equal(q.messageCount, 2);
    assert.equal(q.messageBytes, 8);
    assert.deepEqual(died, [['aaaa', 'maxlen']]);
  });

  test('x-max-length-bytes with reject-publish refuses what would not fit', () => {
    const q = queue({ args: { 'x-max-length-bytes': 6, 'x-overflow': 'reject-publish' } });
    assert.equal(q.offerRouted(msg('aaaa'), M), OfferResults.taken);
    assert.equal(q.offerRouted(msg('bbb'), M), OfferResults.rejected);
    assert.equal(q.offerRouted(msg('cc'), M), OfferResults.taken);
    assert.equal(q.messageBytes, 6);
  });

  test('reject-publish-dlx rejects the new message and dead-letters it as maxlen', () => {
    const died: [string, DeadLetterReason][] = [];
    const q = queue(
      { args: { 'x-max-length': 1, 'x-overflow': 'reject-publish-dlx', 'x-dead-letter-exchange': 'dlx' } },
      died,
    );
    assert.equal(q.offerRouted(msg('1'), M), OfferResults.taken);
    assert.equal(q.offerRouted(msg('2'), M), OfferResults.rejected);
    assert.deepEqual(died, [['2', 'maxlen']]);
    assert.equal(q.messageCount, 1);
  });

  test('requeued messages count toward the limit; drop-head then drops the oldest (requeue_and_run)', () => {
    const q = queue({ args: { 'x-max-length': 1 } });
    const c = new Sink('c', 1);
    q.addConsumer(c);
    q.offer(msg('1'), M);
    q.offer(msg('2'), M);
    assert.equal(q.messageCount, 1);
    q.removeConsumer(c, { requeue: true });
    assert.equal(q.messageCount, 1);
    assert.equal(q.get({ noAck: true })!.message.body.toString(), '2');
  });
});

describe('quorum x-delivery-limit', () => {
  test('a message returned more often than the limit is dead-lettered as delivery_limit', () => {
    const died: [string, DeadLetterReason][] = [];
    const q = queue(
      {
        durable: true,
        args: { 'x-queue-type': 'quorum', 'x-delivery-limit': 2, 'x-dead-letter-exchange': 'dlx' },
      },
      died,
    );
    assert.equal(q.type, 'quorum');
    const c = new Sink('c');
    c.onDeliver = (d) => q.nack(d, true);
    q.addConsumer(c);
    q.offer(msg('m'), M);
    // Deferred redeliveries: let them run.
    return (async () => {
      for (let i = 0; i < 10 && died.length === 0; i++) await sleep(1);
      assert.deepEqual(
        c.got.map((d) => d.deliveryCount),
        [1, 2, 3],
      );
      assert.deepEqual(died, [['m', 'delivery_limit']]);
      assert.equal(q.messageCount + q.unackedCount, 0);
    })();
  });

  test('a classic queue ignores x-delivery-limit settings (it has none)', () => {
    const q = queue({ args: {} });
    assert.equal(q.type, 'classic');
    assert.equal(q.deliveryLimit, undefined);
  });
});

describe('stats and settings', () => {
  test('exposes parsed settings and counters', () => {
    const q = queue({
      args: {
        'x-message-ttl': 1000,
        'x-expires': 60_000,
        'x-max-length': 10,
        'x-max-length-bytes': 1000n,
        'x-overflow': 'reject-publish',
        'x-dead-letter-exchange': Buffer.from('dlx'),
        'x-dead-letter-routing-key': 'dead',
        'x-max-priority': 4,
        'x-single-active-consumer': true,
      },
    });
    assert.deepEqual(
      {
        type: q.type,
        ttl: q.messageTtl,
        expires: q.expires,
        maxLength: q.maxLength,
        maxLengthBytes: q.maxLengthBytes,
        overflow: q.overflow,
        dlx: q.deadLetterExchange,
        dlrk: q.deadLetterRoutingKey,
        maxPriority: q.maxPriority,
        sac: q.singleActiveConsumer,
      },
      {
        type: 'classic',
        ttl: 1000,
        expires: 60_000,
        maxLength: 10,
        maxLengthBytes: 1000,
        overflow: 'reject-publish',
        dlx: 'dlx',
        dlrk: 'dead',
        maxPriority: 4,
        sac: true,
      },
    );
    q.delete();
  });

  test('messageBytes, unackedCount and consumers follow the queue', () => {
    const q = queue();
    q.offer(msg('12345'), M);
    q.offer(msg('678'), M);
    assert.equal(q.messageBytes, 8);
    const c = new Sink('c', 1);
    q.addConsumer(c);
    assert.equal(q.consumers, 1);
    assert.equal(q.messageBytes, 3);
    assert.equal(q.unackedCount, 1);
    q.purge();
    assert.equal(q.messageBytes, 0);
  });
});
