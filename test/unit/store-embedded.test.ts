import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded/index.js';
import type { MessageRecord, QueueEntry, StoredValue } from '../../src/store/store.js';
import { createLogger } from '../../src/util/log.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'braid-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function openStore(dir: string): Promise<[EmbeddedStore, Awaited<ReturnType<EmbeddedStore['open']>>]> {
  const s = createEmbeddedStore({ dir: join(dir, 'data', 'nested') });
  const defs = await s.open();
  return [s, defs];
}

function durable(s: EmbeddedStore): Promise<Error | undefined> {
  return new Promise((resolve) => s.whenDurable(resolve));
}

/** Every value type a header may hold, including the edge cases of each. */
const ALL_VALUES: [string, StoredValue][] = [
  ['str', 'héllo ✓'],
  ['empty', ''],
  ['int', 42],
  ['neg', -7],
  ['float', 1.5],
  ['big float', 2 ** 60],
  ['nan', Number.NaN],
  ['inf', Number.POSITIVE_INFINITY],
  ['max safe', Number.MAX_SAFE_INTEGER],
  ['bigint', 123n],
  ['bigint neg', -5n],
  ['bigint 64', 2n ** 63n - 1n],
  ['bigint huge', -(2n ** 100n)],
  ['bigint zero', 0n],
  ['true', true],
  ['false', false],
  ['null', null],
  ['buffer', Buffer.from([0, 1, 2, 255])],
  ['empty buffer', Buffer.alloc(0)],
  ['date', new Date(1_700_000_000_123)],
  ['old date', new Date(-86_400_001)],
  ['array', [1, 'two', [3n, null], Buffer.from('x')]],
  ['object', { a: 1, b: { c: [true, new Date(5)] }, 'with space': 'v' }],
  ['empty object', {}],
  ['nul string', 'a\u0000b'],
];

function message(body: string | Buffer, extra: Partial<MessageRecord> = {}): MessageRecord {
  return {
    vhost: '/',
    exchange: 'amq.topic',
    routingKey: 'a.b',
    body: typeof body === 'string' ? Buffer.from(body) : body,
    properties: { contentType: 'text/plain', headers: ALL_VALUES.map(([k, v]) => [k, v]) },
    annotations: { 'x-death': [{ count: 1n, reason: 'expired' }] },
    publisherId: 'pub-1',
    expiresAt: undefined,
    createdAt: 1_700_000_000_000,
    ...extra,
  };
}

function entry(seq: number, body = `m${seq}`, extra: Partial<QueueEntry> = {}): QueueEntry {
  return {
    seq,
    message: message(body),
    delivered: false,
    deliveryCount: 0,
    tag: undefined,
    transient: false,
    ...extra,
  };
}

test('every record kind and value type round-trips across close and reopen', async (t) => {
  const dir = tempDir(t);
  const [s, empty] = await openStore(dir);
  assert.deepEqual(empty.vhosts, []);
  assert.equal(empty.records.size, 0);
  const args = Object.fromEntries(ALL_VALUES);
  s.putVhost('/');
  s.putVhost('v2');
  s.putVhost('gone');
  s.removeVhost('gone');
  const x = { vhost: '/', name: 'ex', kind: 'topic', autoDelete: false, internal: true, args };
  s.putExchange(x);
  s.putExchange({ ...x, name: 'gone' });
  s.removeExchange('/', 'gone');
  const q = { vhost: '/', name: 'q1', autoDelete: false, args };
  s.putQueue(q);
  const b = {
    vhost: '/',
    source: 'ex',
    destination: 'q1',
    destinationKind: 'queue' as const,
    bindingKey: 'a.#',
    args,
    noDollarWildcard: true,
  };
  s.putBinding(b);
  // Same key, other arguments: a distinct binding (AMQP binding identity includes arguments).
  s.putBinding({ ...b, args: { 'x-match': 'any' } });
  s.putBinding({ ...b, bindingKey: 'gone' });
  s.removeBinding({ ...b, bindingKey: 'gone' });
  const longTopic = 't/'.repeat(20_000); // far beyond LMDB's 1978-byte key limit
  s.putRetained('/', 'a.b', message('retained'));
  s.putRetained('/', longTopic, message('long', { routingKey: longTopic, expiresAt: 123, publisherId: undefined }));
  s.putRetained('/', 'gone', message('x'));
  s.removeRetained('/', 'gone');
  s.putRecord('mqtt.session', 'client-1', { expiry: 3600n, subs: [['a/#', 1]], will: Buffer.from('w') });
  s.putRecord('mqtt.session', 'x'.repeat(5000), 'long key');
  s.putRecord('mqtt.will', 'c', null);
  s.putRecord('mqtt.will', 'gone', 1);
  s.putRecord('mqtt.will', 'gone', undefined);
  const e = entry(0, 'body', { delivered: true, deliveryCount: 2, tag: { packetId: 7, pubrec: true } });
  s.putEntry('/', 'q1', e);
  s.putEntry('/', 'q1', entry(1, '', { tag: 5n }));
  assert.equal(await durable(s), undefined);
  await s.close();

  const [s2, d] = await openStore(dir);
  t.after(() => s2.close());
  assert.deepEqual([...d.vhosts].sort(), ['/', 'v2']);
  assert.deepEqual(d.exchanges, [x]);
  assert.deepEqual(d.queues, [q]);
  assert.equal(d.bindings.length, 2);
  assert.deepEqual(
    d.bindings.find((r) => r.bindingKey === 'a.#' && r.args['x-match'] === undefined),
    b,
  );
  assert.equal(d.retained.length, 2);
  const r1 = d.retained.find((r) => r.routingKey === 'a.b')!;
  assert.deepEqual(r1.message, message('retained'));
  const r2 = d.retained.find((r) => r.routingKey === longTopic)!;
  assert.equal(r2.vhost, '/');
  assert.deepEqual(r2.message, message('long', { routingKey: longTopic, expiresAt: 123, publisherId: undefined }));
  assert.deepEqual(d.records.get('mqtt.session')?.get('client-1'), {
    expiry: 3600n,
    subs: [['a/#', 1]],
    will: Buffer.from('w'),
  });
  assert.equal(d.records.get('mqtt.session')?.get('x'.repeat(5000)), 'long key');
  assert.deepEqual([...(d.records.get('mqtt.will') ?? new Map())], [['c', null]]);
  const got = s2.readEntries('/', 'q1', -1, 10);
  assert.deepEqual(got, [e, entry(1, '', { tag: 5n })]);
  // Each header value individually, with its exact type.
  const headers = got[0]!.message.properties.headers as [string, StoredValue][];
  for (const [i, [k, v]] of ALL_VALUES.entries()) {
    assert.equal(headers[i]![0], k);
    assert.deepStrictEqual(headers[i]![1], v, k);
    assert.equal(typeof headers[i]![1], typeof v, k);
  }
  assert.ok(Buffer.isBuffer(got[0]!.message.body));
});

test('the writes of one turn are one commit; whenDurable calls back in call order', async (t) => {
  const dir = tempDir(t);
  const [s] = await openStore(dir);
  t.after(() => s.close());
  await durable(s);
  const before = s.lastTxnId();
  const order: number[] = [];
  for (let i = 0; i < 5000; i++) {
    s.putEntry('/', 'q', entry(i));
    s.whenDurable((err) => {
      assert.equal(err, undefined);
      order.push(i);
    });
  }
  assert.equal(s.pending, true);
  await durable(s);
  assert.equal(s.lastTxnId() - before, 1, 'one LMDB transaction for the turn');
  // Two more turns (one or two more transactions); callbacks still in order across them.
  s.putEntry('/', 'q', entry(5000));
  s.whenDurable(() => order.push(5000));
  await new Promise((r) => setImmediate(r));
  s.putEntry('/', 'q', entry(5001));
  s.whenDurable(() => order.push(5001));
  await durable(s);
  assert.equal(s.pending, false);
  assert.deepEqual(
    order,
    Array.from({ length: 5002 }, (_, i) => i),
  );
  assert.equal(s.queueStats('/', 'q').count, 5002);
});

test('whenDurable with nothing pending calls back asynchronously, in order', async (t) => {
  const [s] = await openStore(tempDir(t));
  t.after(() => s.close());
  await durable(s);
  assert.equal(s.pending, false);
  const order: string[] = [];
  s.whenDurable(() => order.push('a'));
  s.whenDurable(() => order.push('b'));
  assert.equal(order.length, 0, 'not synchronously');
  s.putRecord('n', 'k', 1);
  s.whenDurable(() => order.push('c'));
  s.whenDurable(() => order.push('d'));
  await durable(s);
  assert.deepEqual(order, ['a', 'b', 'c', 'd']);
});

test('readEntries pages in order with limits; reads see this turn’s writes', async (t) => {
  const [s] = await openStore(tempDir(t));
  t.after(() => s.close());
  for (let i = 0; i < 100; i++) s.putEntry('/', 'q', entry(i * 2)); // seqs 0, 2, ..., 198
  s.putEntry('/', 'other', entry(1));
  // Same turn, nothing committed yet: the overlay answers.
  assert.deepEqual(
    s.readEntries('/', 'q', -1, 3).map((e) => e.seq),
    [0, 2, 4],
  );
  await durable(s);
  const seqs = (after: number, limit: number) => s.readEntries('/', 'q', after, limit).map((e) => e.seq);
  assert.deepEqual(seqs(-1, 3), [0, 2, 4]);
  assert.deepEqual(seqs(4, 2), [6, 8]);
  assert.deepEqual(seqs(5, 2), [6, 8]);
  assert.deepEqual(seqs(196, 10), [198]);
  assert.deepEqual(seqs(198, 10), []);
  assert.deepEqual(seqs(-1, 0), []);
  assert.equal(seqs(-1, 1000).length, 100);
  assert.deepEqual(s.readEntries('/', 'missing', -1, 10), []);
  // Paging through the whole queue.
  const all: number[] = [];
  for (let after = -1; ; ) {
    const page = seqs(after, 7);
    if (page.length === 0) break;
    all.push(...page);
    after = page[page.length - 1]!;
  }
  assert.deepEqual(
    all,
    Array.from({ length: 100 }, (_, i) => i * 2),
  );
  // Uncommitted removes, puts (between committed ones) and overwrites merge in order.
  s.removeEntry('/', 'q', 2);
  s.putEntry('/', 'q', entry(3, 'new 3'));
  s.putEntry('/', 'q', entry(4, 'overwritten'));
  s.putEntry('/', 'q', entry(500));
  const mixed = s.readEntries('/', 'q', -1, 4);
  assert.deepEqual(
    mixed.map((e) => e.seq),
    [0, 3, 4, 6],
  );
  assert.equal(mixed[2]!.message.body.toString(), 'overwritten');
  assert.deepEqual(seqs(190, 10), [192, 194, 196, 198, 500]);
  let bytes = 0;
  for (let i = 0; i < 100; i++) bytes += `m${i * 2}`.length;
  bytes += -'m2'.length + 'new 3'.length - 'm4'.length + 'overwritten'.length + 'm500'.length;
  assert.deepEqual(s.queueStats('/', 'q'), { count: 101, bytes, nextSeq: 501 });
  await durable(s);
  assert.deepEqual(
    s.readEntries('/', 'q', -1, 4).map((e) => e.seq),
    [0, 3, 4, 6],
  );
  assert.equal(s.readEntries('/', 'q', 3, 1)[0]!.message.body.toString(), 'overwritten');
});

test('markDelivered is merged into readEntries, before and after commit and reopen', async (t) => {
  const dir = tempDir(t);
  const [s] = await openStore(dir);
  for (let i = 0; i < 5; i++) s.putEntry('/', 'q', entry(i));
  s.markDelivered('/', 'q', 0, 1, { packetId: 1 }); // same turn as the put
  await durable(s);
  s.markDelivered('/', 'q', 2, 1);
  s.markDelivered('/', 'q', 3, 1, 'a');
  const check = (st: EmbeddedStore) => {
    const got = st.readEntries('/', 'q', -1, 10);
    assert.deepEqual(
      got.map((e) => [e.seq, e.delivered, e.deliveryCount, e.tag]),
      [
        [0, true, 1, { packetId: 1 }],
        [1, false, 0, undefined],
        [2, true, 1, undefined],
        [3, true, 2, 'b'],
        [4, false, 0, undefined],
      ],
    );
  };
  s.markDelivered('/', 'q', 3, 2, 'b');
  check(s); // uncommitted delivery rows
  await durable(s);
  check(s); // committed delivery rows
  await s.close();
  const [s2] = await openStore(dir);
  t.after(() => s2.close());
  check(s2);
  s2.removeEntry('/', 'q', 3);
  s2.markDelivered('/', 'q', 3, 9); // after removal: ignored
  await durable(s2);
  assert.deepEqual(
    s2.readEntries('/', 'q', 2, 10).map((e) => e.seq),
    [4],
  );
});

test('removeQueue removes every entry; a queue of the same name starts empty', async (t) => {
  const dir = tempDir(t);
  const [s] = await openStore(dir);
  s.putQueue({ vhost: '/', name: 'q', autoDelete: false, args: {} });
  for (let i = 0; i < 25_000; i++) s.putEntry('/', 'q', entry(i));
  s.markDelivered('/', 'q', 3, 1);
  s.putEntry('/', 'keep', entry(0));
  await durable(s);
  assert.equal(s.rawEntryCount(), 25_001);
  s.putEntry('/', 'q', entry(25_000)); // same turn as the removal
  s.removeQueue('/', 'q');
  assert.deepEqual(s.queueStats('/', 'q'), { count: 0, bytes: 0, nextSeq: 0 });
  assert.deepEqual(s.readEntries('/', 'q', -1, 10), []);
  s.putEntry('/', 'q', entry(7, 'reborn'));
  await s.idle();
  assert.equal(s.rawEntryCount(), 2, 'range deleted (in chunks, after the removal committed)');
  assert.deepEqual(
    s.readEntries('/', 'q', -1, 10).map((e) => e.message.body.toString()),
    ['reborn'],
  );
  await s.close();
  const [s2, d] = await openStore(dir);
  t.after(() => s2.close());
  assert.deepEqual(d.queues, []);
  assert.deepEqual(s2.queueStats('/', 'q'), { count: 1, bytes: 6, nextSeq: 8 });
  assert.deepEqual(s2.queueStats('/', 'keep').count, 1);
});

test('a removal interrupted before its range delete is finished at the next open', async (t) => {
  const dir = tempDir(t);
  const [s] = await openStore(dir);
  for (let i = 0; i < 100; i++) s.putEntry('/', 'q', entry(i));
  await durable(s);
  // Simulate the crash: stop the background delete from running by closing right away.
  s.removeQueue('/', 'q');
  await s.close();
  const [s2] = await openStore(dir);
  t.after(() => s2.close());
  await s2.idle();
  assert.equal(s2.rawEntryCount(), 0);
  assert.deepEqual(s2.queueStats('/', 'q'), { count: 0, bytes: 0, nextSeq: 0 });
});

test('queue stats are rebuilt at open; transient entries are dropped; seqs keep increasing', async (t) => {
  const dir = tempDir(t);
  const lines: string[] = [];
  const [s] = await openStore(dir);
  for (let i = 0; i < 10; i++) s.putEntry('/', 'a', entry(i, 'x'.repeat(i)));
  s.putEntry('/', 'a', entry(10, 'transient!', { transient: true }));
  s.putEntry('v', 'b', entry(100, 'yy'));
  s.removeEntry('/', 'a', 0);
  s.removeEntry('/', 'a', 9);
  s.removeEntry('/', 'a', 9); // twice: counted once
  s.removeEntry('/', 'a', 77); // absent
  const stats = s.queueStats('/', 'a');
  assert.deepEqual(stats, { count: 9, bytes: 36 + 10, nextSeq: 11 });
  await durable(s);
  s.removeEntry('v', 'b', 100);
  await s.close();
  const s2 = createEmbeddedStore({
    dir: join(dir, 'data', 'nested'),
    logger: createLogger({ write: (l) => lines.push(l) }),
  });
  await s2.open();
  t.after(() => s2.close());
  assert.deepEqual(s2.queueStats('/', 'a'), { count: 8, bytes: 36, nextSeq: 11 });
  assert.deepEqual(
    s2.readEntries('/', 'a', -1, 100).map((e) => e.seq),
    [1, 2, 3, 4, 5, 6, 7, 8],
  );
  // Emptied before close: its next seq is kept anyway.
  assert.deepEqual(s2.queueStats('v', 'b'), { count: 0, bytes: 0, nextSeq: 101 });
  assert.ok(lines.some((l) => l.includes('dropped transient')));
});

test('after close, writes throw and whenDurable still calls back', async (t) => {
  const [s] = await openStore(tempDir(t));
  s.putVhost('/');
  await s.close();
  assert.throws(() => s.putVhost('x'), /not open/);
  assert.equal(await durable(s), undefined);
});
