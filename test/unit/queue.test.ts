import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { CoreError } from '../../src/core/errors.js';
import { createBinding } from '../../src/core/exchange/exchange.js';
import { createMessage, type Message } from '../../src/core/message.js';
import { Queue, type QueueInit, validateQueueArgs } from '../../src/core/queue/queue.js';
import type { Binding, ConsumerSink, Delivery } from '../../src/core/types.js';
import { FixedQueue } from '../../src/util/fixed-queue.js';

const B: Binding = createBinding({
  vhost: '/',
  source: 'x',
  destination: 'q',
  destinationKind: 'queue',
  bindingKey: 'k',
});
const M = [B];

function msg(n: number, expiresAt?: number): Message {
  return createMessage({ vhost: '/', exchange: 'x', routingKey: 'k', body: Buffer.from(String(n)), expiresAt });
}

function bodies(ds: readonly Delivery[]): string[] {
  return ds.map((d) => d.message.body.toString());
}

class TestConsumer implements ConsumerSink {
  readonly got: Delivery[] = [];
  ready = true;
  cancelledCount = 0;
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
  cancelled(): void {
    this.cancelledCount++;
  }
}

function queue(init: Partial<QueueInit> = {}): Queue {
  return new Queue({ vhost: '/', name: 'q', ...init });
}

describe('FixedQueue', () => {
  it('is FIFO across wrap-around and growth', () => {
    const q = new FixedQueue<number>(4);
    assert.equal(q.capacity, 16);
    for (let i = 0; i < 10; i++) q.push(i);
    for (let i = 0; i < 8; i++) assert.equal(q.shift(), i);
    for (let i = 10; i < 40; i++) q.push(i);
    assert.equal(q.length, 32);
    assert.equal(q.capacity, 32);
    assert.equal(q.peek(), 8);
    assert.equal(q.at(31), 39);
    assert.equal(q.at(32), undefined);
    assert.deepEqual(
      [...q],
      Array.from({ length: 32 }, (_, i) => i + 8),
    );
  });

  it('unshift, removeIf and clear', () => {
    const q = new FixedQueue<number>();
    q.push(2);
    q.push(3);
    q.unshift(1);
    q.unshift(0);
    assert.deepEqual([...q], [0, 1, 2, 3]);
    assert.equal(
      q.removeIf((x) => x % 2 === 1),
      2,
    );
    assert.deepEqual([...q], [0, 2]);
    q.clear();
    assert.equal(q.length, 0);
    assert.equal(q.shift(), undefined);
    assert.equal(q.peek(), undefined);
  });

  it('property: behaves like an array model', () => {
    const op = fc.oneof(
      fc.record({ op: fc.constant('push' as const), v: fc.integer() }),
      fc.record({ op: fc.constant('unshift' as const), v: fc.integer() }),
      fc.record({ op: fc.constant('shift' as const) }),
      fc.record({ op: fc.constant('removeOdd' as const) }),
      fc.record({ op: fc.constant('clear' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const q = new FixedQueue<number>();
        const model: number[] = [];
        for (const o of ops) {
          if (o.op === 'push') {
            q.push(o.v);
            model.push(o.v);
          } else if (o.op === 'unshift') {
            q.unshift(o.v);
            model.unshift(o.v);
          } else if (o.op === 'shift') assert.equal(q.shift(), model.shift());
          else if (o.op === 'clear') {
            q.clear();
            model.splice(0);
          } else {
            const odd = (x: number) => Math.abs(x) % 2 === 1;
            assert.equal(q.removeIf(odd), model.filter(odd).length);
            model.splice(0, model.length, ...model.filter((x) => !odd(x)));
          }
          assert.equal(q.length, model.length);
          assert.equal(q.peek(), model[0]);
        }
        assert.deepEqual([...q], model);
      }),
    );
  });
});

describe('Queue', () => {
  it('holds messages until a consumer comes, then delivers in order', () => {
    const q = queue();
    for (let i = 1; i <= 3; i++) assert.equal(q.offer(msg(i), M), true);
    assert.equal(q.messageCount, 3);
    const c = new TestConsumer('c');
    q.addConsumer(c);
    assert.deepEqual(bodies(c.got), ['1', '2', '3']);
    assert.equal(q.messageCount, 0);
    assert.equal(q.unackedCount, 3);
    const d = c.got[0]!;
    assert.equal(d.redelivered, false);
    assert.equal(d.deliveryCount, 1);
    assert.equal(d.queueName, 'q');
    assert.equal(d.matched, M);
    for (const x of c.got) assert.equal(q.ack(x), true);
    assert.equal(q.unackedCount, 0);
    assert.deepEqual(q.stats, { enqueued: 3, delivered: 3, acked: 3, dropped: 0, expired: 0, deadLettered: 0 });
  });

  it('respects prefetch and refills on ack', () => {
    const q = queue();
    const c = new TestConsumer('c', 2);
    q.addConsumer(c);
    for (let i = 1; i <= 5; i++) q.offer(msg(i), M);
    assert.deepEqual(bodies(c.got), ['1', '2']);
    assert.equal(q.messageCount, 3);
    q.ack(c.got[0]!);
    assert.deepEqual(bodies(c.got), ['1', '2', '3']);
  });

  it('round-robins over consumers with capacity', () => {
    const q = queue();
    const a = new TestConsumer('a');
    const b = new TestConsumer('b');
    q.addConsumer(a);
    q.addConsumer(b);
    for (let i = 1; i <= 4; i++) q.offer(msg(i), M);
    assert.deepEqual(bodies(a.got), ['1', '3']);
    assert.deepEqual(bodies(b.got), ['2', '4']);
    assert.equal(q.consumerCount, 2);
  });

  it('skips a consumer whose canDeliver is false until consumerReady', () => {
    const q = queue();
    const c = new TestConsumer('c');
    c.ready = false;
    q.addConsumer(c);
    q.offer(msg(1), M);
    assert.equal(c.got.length, 0);
    c.ready = true;
    q.consumerReady(c);
    assert.deepEqual(bodies(c.got), ['1']);
  });

  it('nack with requeue puts a fresh redelivered delivery at the head; the old handle is stale', () => {
    const q = queue();
    q.offer(msg(1), M);
    q.offer(msg(2), M);
    const c = new TestConsumer('c', 1);
    q.addConsumer(c);
    const first = c.got[0]!;
    assert.equal(q.nack(first, true), true);
    const again = c.got[1]!;
    assert.equal(again.message, first.message);
    assert.equal(again.redelivered, true);
    assert.equal(again.deliveryCount, 2);
    assert.equal(q.ack(first), false, 'stale handle');
    assert.equal(q.nack(first, false), false);
    assert.equal(q.ack(again), true);
    assert.equal(q.ack(again), false, 'already settled');
    assert.deepEqual(bodies(c.got), ['1', '1', '2']);
    assert.equal(q.nack(c.got[2]!, false), true);
    assert.equal(q.stats.dropped, 1);
    assert.equal(q.unackedCount, 0);
    assert.equal(queue().ack(again), false, 'foreign queue');
  });

  it('removeConsumer with requeue returns unsettled deliveries to the head in original order', () => {
    const q = queue();
    const c1 = new TestConsumer('c1', 3);
    q.addConsumer(c1);
    for (let i = 1; i <= 5; i++) q.offer(msg(i), M);
    q.ack(c1.got[1]!); // 2 settled; 1 and 3 outstanding, 4 got delivered next
    assert.deepEqual(bodies(c1.got), ['1', '2', '3', '4']);
    q.removeConsumer(c1, { requeue: true });
    assert.equal(q.unackedCount, 0);
    assert.equal(q.messageCount, 4);
    const c2 = new TestConsumer('c2');
    q.addConsumer(c2);
    assert.deepEqual(bodies(c2.got), ['1', '3', '4', '5']);
    assert.deepEqual(
      c2.got.map((d) => d.redelivered),
      [true, true, true, false],
    );
    assert.equal(q.ack(c1.got[0]!), false, 'old handles are stale after requeue');
  });

  it('removeConsumer without requeue leaves deliveries settleable through their handles', () => {
    const q = queue();
    const c = new TestConsumer('c');
    q.addConsumer(c);
    q.offer(msg(1), M);
    q.offer(msg(2), M);
    q.removeConsumer(c, { requeue: false });
    assert.equal(q.consumerCount, 0);
    assert.equal(q.unackedCount, 2);
    q.offer(msg(3), M);
    assert.equal(q.messageCount, 1);
    assert.equal(q.ack(c.got[0]!), true);
    assert.equal(q.nack(c.got[1]!, true), true);
    assert.equal(q.unackedCount, 0);
    const c2 = new TestConsumer('c2');
    q.addConsumer(c2);
    assert.deepEqual(bodies(c2.got), ['2', '3']);
    assert.equal(c2.got[0]!.redelivered, true);
  });

  it('is re-entrancy safe: ack inside deliver', () => {
    const q = queue();
    const c = new TestConsumer('c', 1);
    c.onDeliver = (d) => q.ack(d);
    q.addConsumer(c);
    for (let i = 1; i <= 100; i++) q.offer(msg(i), M);
    assert.equal(c.got.length, 100);
    assert.equal(q.unackedCount, 0);
    assert.equal(q.stats.acked, 100);
  });

  it('is re-entrancy safe: removeConsumer and offer inside deliver', () => {
    const q = queue();
    const a = new TestConsumer('a');
    const b = new TestConsumer('b');
    a.onDeliver = () => {
      if (a.got.length === 2) {
        q.removeConsumer(a, { requeue: true });
        q.offer(msg(99), M);
      }
    };
    q.addConsumer(a);
    q.addConsumer(b);
    for (let i = 1; i <= 6; i++) q.offer(msg(i), M);
    assert.equal(q.consumerCount, 1);
    assert.deepEqual(bodies(a.got), ['1', '3']);
    // a's two deliveries went back to the head, in order, ahead of what a offered meanwhile.
    assert.deepEqual(bodies(b.got), ['2', '1', '3', '99', '4', '5', '6']);
    assert.deepEqual(
      b.got.map((d) => d.redelivered),
      [false, true, true, false, false, false, false],
    );
    assert.equal(q.unackedCount, 7);
  });

  it('a consumer that rejects inside deliver does not spin synchronously', async () => {
    const q = queue();
    const c = new TestConsumer('c', 1);
    let rejections = 0;
    c.onDeliver = (d) => {
      if (rejections < 3) {
        rejections++;
        q.nack(d, true);
      } else q.ack(d);
    };
    q.addConsumer(c);
    q.offer(msg(1), M);
    assert.equal(c.got.length, 1);
    for (let i = 0; i < 5 && c.got.length < 4; i++) await new Promise((r) => setImmediate(r));
    assert.equal(c.got.length, 4);
    assert.equal(c.got[3]!.deliveryCount, 4);
    assert.equal(q.unackedCount, 0);
  });

  it('drops messages already expired on offer, and expired heads on dispatch', async () => {
    const q = queue();
    assert.equal(q.offer(msg(1, Date.now() - 1), M), false);
    q.offer(msg(2, Date.now() + 15), M);
    q.offer(msg(3), M);
    await sleep(30);
    const c = new TestConsumer('c');
    q.addConsumer(c);
    assert.deepEqual(bodies(c.got), ['3']);
    assert.equal(q.stats.expired, 2);
  });

  it('applies x-message-ttl from enqueue time; TTL 0 still reaches a ready consumer', async () => {
    const q = queue({ args: { 'x-message-ttl': 10 } });
    q.offer(msg(1), M);
    await sleep(25);
    // Expired by the queue's own timer, with no consumer attached (queue-features.test.ts).
    assert.equal(q.dropExpired(), 0);
    assert.equal(q.messageCount, 0);
    assert.equal(q.stats.expired, 1);
    const z = queue({ args: { 'x-message-ttl': 0 } });
    const c = new TestConsumer('c');
    z.addConsumer(c);
    z.offer(msg(2), M);
    assert.deepEqual(bodies(c.got), ['2']);
  });

  it('offerDirect takes messages with no bookkeeping, only when there is no backlog', () => {
    const q = queue();
    const direct: string[] = [];
    let accept = true;
    const c: ConsumerSink & { got: Delivery[] } = {
      tag: 'd',
      prefetch: 0,
      got: [],
      offerDirect(m) {
        if (accept) direct.push(m.body.toString());
        return accept;
      },
      deliver(d) {
        this.got.push(d);
      },
    };
    q.addConsumer(c);
    assert.equal(q.offer(msg(1), M), true);
    assert.deepEqual(direct, ['1']);
    assert.equal(q.messageCount + q.unackedCount, 0);
    assert.equal(q.stats.delivered, 1);
    assert.equal(q.stats.enqueued, 0);
    accept = false;
    q.offer(msg(2), M);
    assert.deepEqual(bodies(c.got), ['2'], 'refused → queued and delivered as usual');
    assert.equal(q.unackedCount, 1);
  });

  it('offerDirect round-robins and is skipped behind a backlog', () => {
    const q = queue();
    const seen: string[] = [];
    const mk = (tag: string): ConsumerSink => ({
      tag,
      prefetch: 1,
      offerDirect: () => {
        seen.push(tag);
        return true;
      },
      deliver: () => {},
    });
    q.addConsumer(mk('a'));
    q.addConsumer(mk('b'));
    q.offer(msg(1), M);
    q.offer(msg(2), M);
    q.offer(msg(3), M);
    assert.deepEqual(seen, ['a', 'b', 'a']);
    const r = queue();
    r.offer(msg(0), M); // backlog, no consumer yet
    const held: ConsumerSink = {
      tag: 'h',
      prefetch: 0,
      canDeliver: () => false,
      offerDirect: () => true,
      deliver() {},
    };
    r.addConsumer(held);
    r.offer(msg(1), M);
    assert.equal(r.messageCount, 2, 'no overtaking of queued messages');
  });

  it('admission can drop before enqueue', () => {
    const q = queue();
    const seen: Binding[][] = [];
    q.admission = {
      admit: (m, matched) => {
        seen.push([...matched]);
        return m.body.toString() !== 'no';
      },
    };
    assert.equal(q.offer(msg(1), M), true);
    assert.equal(
      q.offer(createMessage({ vhost: '/', exchange: '', routingKey: 'q', body: Buffer.from('no') }), M),
      false,
    );
    assert.equal(q.messageCount, 1);
    assert.equal(q.stats.dropped, 1);
    assert.deepEqual(seen, [M, M]);
  });

  it('auto-delete fires when the last consumer leaves after having had one', () => {
    let unused = 0;
    const q = queue({ autoDelete: true, onUnused: () => unused++ });
    q.offer(msg(1), M);
    assert.equal(unused, 0);
    const a = new TestConsumer('a');
    const b = new TestConsumer('b');
    q.addConsumer(a);
    q.addConsumer(b);
    q.removeConsumer(a, { requeue: true });
    assert.equal(unused, 0);
    q.removeConsumer(b, { requeue: true });
    assert.equal(unused, 1);
  });

  it('purge drops ready messages only; delete cancels consumers and stales handles', () => {
    const q = queue();
    const c = new TestConsumer('c', 1);
    q.addConsumer(c);
    for (let i = 1; i <= 3; i++) q.offer(msg(i), M);
    assert.equal(q.purge(), 2);
    assert.equal(q.unackedCount, 1);
    q.offer(msg(4), M);
    assert.equal(q.delete(), 1);
    assert.equal(c.cancelledCount, 1);
    assert.equal(q.consumerCount, 0);
    assert.equal(q.isDeleted, true);
    assert.equal(q.ack(c.got[0]!), false);
    assert.equal(q.offer(msg(5), M), false);
    assert.throws(() => q.addConsumer(new TestConsumer('x')), CoreError);
    assert.equal(q.delete(), 0);
  });

  it('x-max-length drop-head drops the oldest ready messages', () => {
    const q = queue({ args: { 'x-max-length': 2 } });
    for (let i = 1; i <= 4; i++) assert.equal(q.offer(msg(i), M), true);
    const c = new TestConsumer('c');
    q.addConsumer(c);
    assert.deepEqual(bodies(c.got), ['3', '4']);
    assert.equal(q.stats.dropped, 2);
  });

  it('x-max-length reject-publish refuses new messages', () => {
    const q = queue({ args: { 'x-max-length': 2, 'x-overflow': 'reject-publish' } });
    assert.deepEqual(
      [1, 2, 3].map((i) => q.offer(msg(i), M)),
      [true, true, false],
    );
    const c = new TestConsumer('c');
    q.addConsumer(c);
    assert.deepEqual(bodies(c.got), ['1', '2']);
  });

  it('validates the arguments it implements with 406', () => {
    const bad: Record<string, unknown>[] = [
      { 'x-message-ttl': -1 },
      { 'x-message-ttl': 'soon' },
      { 'x-max-length': 1.5 },
      { 'x-overflow': 'explode' },
    ];
    for (const args of bad) {
      assert.throws(
        () => validateQueueArgs(args, 'q', '/'),
        (e: unknown) => e instanceof CoreError && e.code === 406 && /invalid arg 'x-/.test(e.message),
      );
    }
    validateQueueArgs({ 'x-message-ttl': 1000n, 'x-max-length': 0, 'x-overflow': 'drop-head', other: {} }, 'q', '/');
  });
});
