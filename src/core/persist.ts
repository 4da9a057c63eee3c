/**
 * The core's side of durability (DESIGN.md "Storage"): what is written, and when.
 *
 * - A durable exchange, a durable queue, and a binding whose two ends are durable are written
 *   when declared and removed when deleted (RabbitMQ: a binding is durable iff both ends are).
 * - A persistent message (delivery mode 2) routed to a durable queue is written with the queue's
 *   sequence number; its hand-out is recorded (so a restart redelivers it with the redelivered
 *   flag) and it is removed when it leaves the queue for good (ack, reject, expiry, overflow,
 *   dead-lettering, purge). Transient messages and non-durable queues never touch the disk.
 * - Retained messages are written per vhost and routing key.
 *
 * Records are plain data: a message is stored without its process-local id and gets a new one
 * when read back.
 */
import type { MessageRecord, QueueEntry, Store, StoredValue } from '../store/store.js';
import { createMessage, type Message } from './message.js';
import type { Binding } from './types.js';

export function toRecord(msg: Message): MessageRecord {
  return {
    vhost: msg.vhost,
    exchange: msg.exchange,
    routingKey: msg.routingKey,
    body: msg.body,
    properties: msg.properties as unknown as Record<string, StoredValue>,
    annotations: msg.annotations as unknown as Record<string, StoredValue>,
    publisherId: msg.publisherId,
    expiresAt: msg.expiresAt,
    createdAt: msg.createdAt,
  };
}

export function fromRecord(r: MessageRecord): Message {
  return createMessage({
    vhost: r.vhost,
    exchange: r.exchange,
    routingKey: r.routingKey,
    body: r.body,
    properties: r.properties as unknown as Message['properties'],
    annotations: r.annotations as unknown as Message['annotations'],
    ...(r.publisherId !== undefined && r.publisherId !== null && { publisherId: r.publisherId }),
    ...(r.expiresAt !== undefined && r.expiresAt !== null && { expiresAt: r.expiresAt }),
    createdAt: r.createdAt,
  });
}

/** How a stored entry names the bindings it was routed through: [source, bindingKey] pairs. */
export function routesOf(matched: readonly Binding[]): StoredValue {
  if (matched.length === 1) return [[matched[0]!.source, matched[0]!.bindingKey]];
  return matched.map((b) => [b.source, b.bindingKey]);
}

/** One durable queue's view of the store. */
export class QueueLog {
  constructor(
    readonly store: Store,
    readonly vhost: string,
    readonly queue: string,
  ) {}

  put(seq: number, msg: Message, matched: readonly Binding[], transient = false): void {
    // After the broker stopped (a TTL timer firing late), nothing is written: the store is closed.
    if (!this.store.isOpen) return;
    const entry: QueueEntry = {
      seq,
      message: toRecord(msg),
      delivered: false,
      deliveryCount: 0,
      tag: undefined,
      transient,
      routes: routesOf(matched),
    };
    this.store.putEntry(this.vhost, this.queue, entry);
  }

  delivered(seq: number, deliveryCount: number, tag?: StoredValue): void {
    if (!this.store.isOpen) return;
    this.store.markDelivered(this.vhost, this.queue, seq, deliveryCount, tag);
  }

  remove(seq: number): void {
    if (!this.store.isOpen) return;
    this.store.removeEntry(this.vhost, this.queue, seq);
  }

  read(afterSeq: number, limit: number): QueueEntry[] {
    return this.store.readEntries(this.vhost, this.queue, afterSeq, limit);
  }

  stats(): { count: number; bytes: number; nextSeq: number } {
    return this.store.queueStats(this.vhost, this.queue);
  }
}
