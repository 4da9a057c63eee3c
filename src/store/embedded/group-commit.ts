/**
 * Group commit bookkeeping over lmdb-js's write batching (DESIGN.md "Storage").
 *
 * lmdb-js puts every asynchronous write issued during one event-loop turn into one transaction
 * (`eventTurnBatching`, on by default) and returns the same promise for all unconditional writes
 * of that transaction (write.js keeps one `commitPromise` until the next transaction starts).
 * So the store hands each write's promise to `track`, which allocates a `Txn` only when it sees
 * a new promise: one per turn, not one per message. `whenDurable` appends the callback to the
 * newest `Txn`; no promise or closure is created per callback.
 *
 * Callbacks run in call order: `Txn`s that carry callbacks wait in a FIFO drained from the head,
 * so even if two transactions settled out of order their callbacks would not.
 *
 * A failed commit is sticky: every later callback gets the error too. Its writes are lost, and a
 * later transaction's success does not make "everything written so far" durable.
 */

import { FixedQueue } from '../../util/fixed-queue.js';
import { StoreError } from '../store.js';

type Callback = (err?: Error) => void;

export class Txn {
  done = false;
  err: Error | undefined = undefined;
  cbs: Callback[] | undefined = undefined;
  /** Flat [owner, key, item] triples the store clears once this transaction commits. */
  touched: unknown[] = [];
  queued = false;
  constructor(readonly promise: PromiseLike<unknown> | undefined) {}
}

export class GroupCommit {
  private last: Txn | undefined;
  private outstanding = 0;
  private failed: Error | undefined;
  private readonly waiting = new FixedQueue<Txn>();
  private drainScheduled = false;

  constructor(
    private readonly onCommitted: (t: Txn) => void,
    private readonly onFailed: (err: Error) => void,
  ) {}

  get pending(): boolean {
    return this.outstanding > 0;
  }

  get error(): Error | undefined {
    return this.failed;
  }

  /** Registers the promise lmdb-js returned for a write; returns the transaction it belongs to. */
  track(p: PromiseLike<unknown>): Txn {
    const last = this.last;
    if (last !== undefined && last.promise === p && !last.done) return last;
    const t = new Txn(p);
    this.last = t;
    this.outstanding++;
    p.then(
      () => this.settle(t, undefined),
      (e: unknown) => this.settle(t, e instanceof Error ? e : new Error(String(e))),
    );
    return t;
  }

  whenDurable(cb: Callback): void {
    let t = this.last;
    if (t === undefined || t.done) {
      // Nothing pending: call back asynchronously, after any earlier callbacks.
      const tail = this.waiting.length > 0 ? this.waiting.at(this.waiting.length - 1) : undefined;
      if (tail !== undefined && tail.promise === undefined) t = tail;
      else {
        t = new Txn(undefined);
        t.done = true;
        t.err = this.failed;
      }
      this.scheduleDrain();
    }
    if (t.cbs === undefined) t.cbs = [cb];
    else t.cbs.push(cb);
    if (!t.queued) {
      t.queued = true;
      this.waiting.push(t);
    }
  }

  private settle(t: Txn, err: Error | undefined): void {
    t.done = true;
    this.outstanding--;
    if (err !== undefined) {
      const wrapped = new StoreError(`commit failed: ${err.message}`, { cause: err });
      if (this.failed === undefined) {
        this.failed = wrapped;
        this.onFailed(wrapped);
      }
      t.err = wrapped;
    } else t.err = this.failed;
    if (err === undefined) this.onCommitted(t);
    t.touched = [];
    if (t.queued) this.drain();
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    queueMicrotask(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  private drain(): void {
    while (this.waiting.length > 0) {
      const head = this.waiting.peek()!;
      if (!head.done) return;
      this.waiting.shift();
      const cbs = head.cbs!;
      head.cbs = undefined;
      for (let i = 0; i < cbs.length; i++) {
        try {
          cbs[i]!(head.err);
        } catch (e) {
          // A throwing callback must not strand the ones after it.
          queueMicrotask(() => {
            throw e;
          });
        }
      }
    }
  }
}
