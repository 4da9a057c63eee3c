/**
 * A FIFO over one ring buffer whose capacity is a power of two, so that index arithmetic is a
 * mask (STYLE.md habit 9; the idea of undici `lib/dispatcher/fixed-queue.js`). `Array.shift` is
 * O(n) once V8 leaves its fast path, and a queue of 100k messages shifted per delivery would be
 * quadratic; here push, shift and unshift are O(1) amortised and only growth copies.
 */

const MIN_CAPACITY = 16;

export class FixedQueue<T> implements Iterable<T> {
  private buf: (T | undefined)[];
  private mask: number;
  private head = 0;
  private len = 0;
  private readonly initialCapacity: number;

  constructor(initialCapacity = MIN_CAPACITY) {
    let cap = MIN_CAPACITY;
    while (cap < initialCapacity) cap *= 2;
    this.initialCapacity = cap;
    this.buf = new Array<T | undefined>(cap);
    this.mask = cap - 1;
  }

  get length(): number {
    return this.len;
  }

  get capacity(): number {
    return this.buf.length;
  }

  /** Appends at the tail. */
  push(item: T): void {
    if (this.len === this.buf.length) this.grow();
    this.buf[(this.head + this.len) & this.mask] = item;
    this.len++;
  }

  /** Prepends at the head (a requeued message goes back in front). */
  unshift(item: T): void {
    if (this.len === this.buf.length) this.grow();
    this.head = (this.head - 1) & this.mask;
    this.buf[this.head] = item;
    this.len++;
  }

  /** Removes and returns the head, or undefined when empty. */
  shift(): T | undefined {
    if (this.len === 0) return undefined;
    const item = this.buf[this.head];
    // Clear the slot so a consumed message's body can be collected.
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    this.len--;
    return item;
  }

  /** The head without removing it. */
  peek(): T | undefined {
    return this.len === 0 ? undefined : this.buf[this.head];
  }

  /** The i-th item from the head (0-based), or undefined out of range. */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.len) return undefined;
    return this.buf[(this.head + i) & this.mask];
  }

  /** Drops every item. A buffer that grew large is released rather than kept at its peak size. */
  clear(): void {
    if (this.buf.length > this.initialCapacity) {
      this.buf = new Array<T | undefined>(this.initialCapacity);
      this.mask = this.initialCapacity - 1;
    } else {
      for (let i = 0; i < this.len; i++) this.buf[(this.head + i) & this.mask] = undefined;
    }
    this.head = 0;
    this.len = 0;
  }

  /**
   * Removes every item for which `pred` returns true, keeping the others in order, in one pass.
   * Returns how many were removed. `pred` must not modify this queue.
   */
  removeIf(pred: (item: T) => boolean): number {
    const n = this.len;
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const idx = (this.head + i) & this.mask;
      const item = this.buf[idx] as T;
      if (pred(item)) continue;
      if (kept !== i) this.buf[(this.head + kept) & this.mask] = item;
      kept++;
    }
    for (let i = kept; i < n; i++) this.buf[(this.head + i) & this.mask] = undefined;
    this.len = kept;
    return n - kept;
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let i = 0; i < this.len; i++) yield this.buf[(this.head + i) & this.mask] as T;
  }

  private grow(): void {
    const old = this.buf;
    const cap = old.length * 2;
    const next = new Array<T | undefined>(cap);
    for (let i = 0; i < this.len; i++) next[i] = old[(this.head + i) & this.mask];
    this.buf = next;
    this.mask = cap - 1;
    this.head = 0;
  }
}
