import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GroupCommit, type Txn } from '../../src/store/embedded/group-commit.js';
import { StoreError } from '../../src/store/store.js';

function deferred(): { promise: Promise<boolean>; resolve(): void; reject(e: Error): void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<boolean>((res, rej) => {
    resolve = () => res(true);
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((r) => setImmediate(r));

test('one Txn per distinct promise; callbacks wait for their transaction, in call order', async () => {
  const committed: Txn[] = [];
  const gc = new GroupCommit(
    (t) => committed.push(t),
    () => {},
  );
  const a = deferred();
  const b = deferred();
  const order: string[] = [];
  const t1 = gc.track(a.promise);
  assert.equal(gc.track(a.promise), t1, 'same promise, same Txn');
  gc.whenDurable(() => order.push('a1'));
  gc.whenDurable(() => order.push('a2'));
  gc.track(b.promise);
  gc.whenDurable(() => order.push('b1'));
  assert.equal(gc.pending, true);
  // b settles first: its callbacks still wait for a's.
  b.resolve();
  await tick();
  assert.deepEqual(order, []);
  a.resolve();
  await tick();
  assert.deepEqual(order, ['a1', 'a2', 'b1']);
  assert.equal(gc.pending, false);
  assert.equal(committed.length, 2);
});

test('a failed commit fails its callbacks and every later one (sticky)', async () => {
  const failures: Error[] = [];
  const gc = new GroupCommit(
    () => {},
    (e) => failures.push(e),
  );
  const a = deferred();
  const b = deferred();
  const got: (Error | undefined)[] = [];
  gc.track(a.promise);
  gc.whenDurable((e) => got.push(e));
  a.reject(new Error('ENOSPC'));
  gc.track(b.promise);
  gc.whenDurable((e) => got.push(e));
  b.resolve();
  await tick();
  gc.whenDurable((e) => got.push(e)); // nothing pending, still failed
  await tick();
  assert.equal(got.length, 3);
  for (const e of got) {
    assert.ok(e instanceof StoreError);
    assert.match(e.message, /commit failed: ENOSPC/);
  }
  assert.equal(failures.length, 1);
  assert.ok(gc.error);
});
