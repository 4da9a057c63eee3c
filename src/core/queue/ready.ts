/**
 * The ready list of a priority queue (`x-max-priority`; https://www.rabbitmq.com/docs/priority):
 * one FIFO per priority level, highest level first, FIFO within a level. A message without a
 * priority counts as 0 and one above the maximum as the maximum, as RabbitMQ does. A requeued
 * message goes back to the head of its level. Every operation is O(1) amortised; `top` only
 * moves down past levels that emptied.
 *
 * It has the shape of the `FixedQueue` that plain queues use, so the queue code is one path.
 */
import { FixedQueue } from '../../util/fixed-queue.js';
import type { Message } from '../message.js';

export interface ReadyItem {
  readonly message: Message;
}

/** What the queue needs of its ready list; `FixedQueue` and `PriorityReady` both provide it. */
export interface ReadyList<T> extends Iterable<T> {
  readonly length: number;
  push(item: T): void;
  unshift(item: T): void;
  shift(): T | undefined;
  peek(): T | undefined;
  clear(): void;
}

export class PriorityReady<T extends ReadyItem> implements ReadyList<T> {
  private readonly levels: (FixedQueue<T> | undefined)[];
  /** Highest level that may be non-empty. */
  private top = 0;
  private len = 0;

  constructor(readonly maxPriority: number) {
    this.levels = new Array<FixedQueue<T> | undefined>(maxPriority + 1);
  }

  get length(): number {
    return this.len;
  }

  /** The level a message is kept at. */
  levelOf(msg: Message): number {
    const p = msg.properties.priority;
    if (p === undefined || !(p > 0)) return 0;
    return p >= this.maxPriority ? this.maxPriority : Math.floor(p);
  }

  push(item: T): void {
    this.level(this.levelOf(item.message)).push(item);
  }

  unshift(item: T): void {
    this.level(this.levelOf(item.message)).unshift(item);
  }

  shift(): T | undefined {
    const q = this.nonEmptyTop();
    if (q === undefined) return undefined;
    this.len--;
    return q.shift();
  }

  peek(): T | undefined {
    return this.nonEmptyTop()?.peek();
  }

  clear(): void {
    for (const q of this.levels) q?.clear();
    this.top = 0;
    this.len = 0;
  }

  /** Highest level first, FIFO within a level: the order messages would be handed out in. */
  *[Symbol.iterator](): Iterator<T> {
    for (let i = this.top; i >= 0; i--) {
      const q = this.levels[i];
      if (q !== undefined) yield* q;
    }
  }

  private level(p: number): FixedQueue<T> {
    let q = this.levels[p];
    if (q === undefined) this.levels[p] = q = new FixedQueue<T>();
    if (p > this.top) this.top = p;
    this.len++;
    return q;
  }

  private nonEmptyTop(): FixedQueue<T> | undefined {
    if (this.len === 0) return undefined;
    for (;;) {
      const q = this.levels[this.top];
      if (q !== undefined && q.length > 0) return q;
      this.top--;
    }
  }
}
