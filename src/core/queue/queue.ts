/**
 * The queue: an ordered backlog of ready messages, the consumers it hands them to, and the
 * deliveries awaiting settlement (AMQP 0-9-1 §3.1.4, with RabbitMQ's classic-queue behaviour,
 * `rabbit_amqqueue_process`; quorum queues add `x-delivery-limit`, `rabbit_fifo`).
 *
 * Invariants:
 * - A message is in exactly one place: `ready`, outstanding at one consumer, outstanding with no
 *   consumer (basic.get, or its consumer left with `requeue: false`), or gone.
 * - Each hand-out is a new `QueueDelivery` object, so a stale handle (from before a requeue)
 *   can never settle the message's later delivery; settling it is a no-op.
 * - Dispatch is synchronous but never re-entered: a consumer's `deliver` may call `ack`,
 *   `nack`, `removeConsumer` or `offer` on this queue; those only flag another round.
 * - A message that leaves without being consumed (rejected, expired, dropped by overflow, over
 *   the delivery limit) goes to the dead-letter callback when the queue has a DLX.
 * - At most two timers per queue, both unref'd: the head's expiry (RabbitMQ `ensure_ttl_timer`:
 *   expired messages go even with no consumer) and x-expires (`ensure_expiry_timer`).
 *
 * Plain queues pay nothing for the optional features: each is a flag or a field set once in the
 * constructor and tested where it applies.
 */

import type { StoredValue } from '../../store/store.js';
import { FixedQueue } from '../../util/fixed-queue.js';
import { CoreError, describe, notFound } from '../errors.js';
import { createBinding } from '../exchange/exchange.js';
import type { Message } from '../message.js';
import { fromRecord, type QueueLog } from '../persist.js';
import type { Binding, ConsumerSink, Delivery, QueueAdmission } from '../types.js';
import { type Args, type OverflowMode, parseQueueSettings, type QueueType } from './args.js';
import { ConsumerSet } from './consumers.js';
import { DeliveryStates, QueueDelivery } from './delivery.js';
import type { DeadLetterReason } from './dlx.js';
import { PriorityReady, type ReadyList } from './ready.js';

export { type OverflowMode, OverflowModes, type QueueType, validateQueueArgs } from './args.js';
export { DeliveryStates, QueueDelivery } from './delivery.js';
export type { DeadLetterReason } from './dlx.js';

/** What `offerRouted` did with a message. */
export const OfferResults = {
  /** Not taken: expired, refused by `admission`, or the queue is gone. */
  dropped: 0,
  /** Enqueued, or taken by a consumer's `offerDirect`. */
  taken: 1,
  /** Refused by `x-overflow: reject-publish(-dlx)`: a publisher confirm must be a nack. */
  rejected: 2,
} as const;
export type OfferResult = (typeof OfferResults)[keyof typeof OfferResults];

export interface QueueInit {
  readonly vhost: string;
  readonly name: string;
  readonly durable?: boolean;
  readonly exclusive?: boolean;
  readonly autoDelete?: boolean;
  readonly owner?: string;
  readonly args?: Args;
  /**
   * Called when an auto-delete queue loses its last consumer, or an x-expires queue has been
   * unused for that long; the owner deletes it.
   */
  readonly onUnused?: (queue: Queue) => void;
  /** Republishes a message that died here to the queue's dead-letter exchange (the vhost's router). */
  readonly deadLetter?: (queue: Queue, message: Message, reason: DeadLetterReason) => void;
  /** A durable queue's store: persistent messages are written to it (core/persist.ts). */
  readonly log?: QueueLog;
}

/** basic.consume options the queue enforces. */
export interface ConsumeOptions {
  /** AMQP exclusive consume: no other consumer while this one is attached. */
  readonly exclusive?: boolean;
  /** Consumer priority (`x-priority`); higher goes first while it has capacity. Default 0. */
  readonly priority?: number;
}

const NO_ARGS: Args = Object.freeze({});
const { outstanding: OUTSTANDING, settled: SETTLED } = DeliveryStates;
const { dropped: DROPPED, taken: TAKEN, rejected: REJECTED } = OfferResults;
/** setTimeout's largest delay; longer waits re-arm when it fires. */
const MAX_TIMEOUT = 0x7fffffff;
const bySeq = (a: QueueDelivery, b: QueueDelivery): number => a.seq - b.seq;
/**
 * Paging (durable queues without priorities): past this many ready messages in memory, new
 * messages are only written to the store, and are read back in batches of PAGE_BATCH when the
 * in-memory head runs dry. 2048 × a typical 1 KiB message keeps a few MiB per queue in memory.
 */
export const PAGE_HEAD = 2048;
const PAGE_BATCH = 1024;

export class Queue {
  readonly name: string;
  readonly vhost: string;
  readonly durable: boolean;
  readonly exclusive: boolean;
  readonly autoDelete: boolean;
  readonly owner: string | undefined;
  readonly args: Args;
  /** `x-queue-type`: classic (default) or quorum. */
  readonly type: QueueType;
  /** `x-message-ttl` in ms. */
  readonly messageTtl: number | undefined;
  /** `x-expires` in ms: deleted after that long without consumers, basic.get or redeclare. */
  readonly expires: number | undefined;
  /** `x-max-length`, in ready messages. */
  readonly maxLength: number | undefined;
  /** `x-max-length-bytes`, in body bytes of ready messages. */
  readonly maxLengthBytes: number | undefined;
  readonly overflow: OverflowMode;
  readonly deadLetterExchange: string | undefined;
  readonly deadLetterRoutingKey: string | undefined;
  /** `x-max-priority`: message priorities 0..maxPriority, highest dispatched first. */
  readonly maxPriority: number | undefined;
  readonly singleActiveConsumer: boolean;
  /** `x-delivery-limit` (quorum): a message returned more often than this is dead-lettered. */
  readonly deliveryLimit: number | undefined;
  /** Set by the queue's owner (an MQTT session drops QoS 0 while offline). */
  admission: QueueAdmission | undefined = undefined;
  /**
   * Counters: `dropped` counts messages discarded by the queue (overflow, reject without requeue,
   * delivery limit), `expired` those whose TTL passed, `deadLettered` those of both that were
   * republished to the dead-letter exchange.
   */
  readonly stats = { enqueued: 0, delivered: 0, acked: 0, dropped: 0, expired: 0, deadLettered: 0 };
  /** The implicit binding from the default exchange, keyed by the queue's name. */
  readonly defaultBinding: Binding;
  /** @internal Routing scratch owned by BrokerCore: epoch of the last publish that hit this queue. */
  routeEpoch = 0;
  /** @internal Index of this queue in that publish's hit list. */
  routeSlot = 0;

  private readonly ready: ReadyList<QueueDelivery>;
  private readonly cons: ConsumerSet;
  private directRr = 0;
  private unacked = 0;
  private readyBytes = 0;
  private seq = 0;
  private hadConsumer = false;
  private deleted = false;
  private dispatching = false;
  private redispatch = false;
  private deferred = false;
  /** Set when a delivery is requeued or dead-lettered from inside `deliver`: ends the round. */
  private yielded = false;
  /** x-max-length or x-max-length-bytes is set; the limits are Infinity when unset. */
  private readonly limited: boolean;
  private readonly maxLen: number;
  private readonly maxBytes: number;
  private readonly rejectOnOverflow: boolean;
  private readonly onUnused: ((queue: Queue) => void) | undefined;
  private readonly log: QueueLog | undefined;
  /** Paging is possible: a store, and a FIFO ready list (priority queues stay in memory). */
  private readonly pageable: boolean;
  /** Ready messages that are only on disk (all with seq > memSeq), and their body bytes. */
  private diskCount = 0;
  private diskBytes = 0;
  /** Highest seq brought into memory; disk-only entries come after it. */
  private memSeq = -1;
  /** Entries below this seq were written before the last start: their transient ones are stale. */
  private restoredBelow = 0;
  /** Turns a stored entry's routes into this queue's current bindings (set by recovery). */
  private resolveRoutes: ((routes: unknown) => readonly Binding[]) | undefined;
  /** Undefined unless the queue has a dead-letter exchange. */
  private readonly onDeadLetter: ((queue: Queue, message: Message, reason: DeadLetterReason) => void) | undefined;
  private ttlTimer: NodeJS.Timeout | undefined = undefined;
  private ttlTimerAt = 0;
  private expiryTimer: NodeJS.Timeout | undefined = undefined;
  private expiryAt = 0;
  private readonly deferredDispatch = (): void => {
    this.deferred = false;
    this.dispatch();
  };
  private readonly onTtlTimer = (): void => {
    this.ttlTimer = undefined;
    this.ttlTimerAt = 0;
    if (!this.deleted) this.dropExpired();
  };
  private readonly onExpiryTimer = (): void => {
    this.expiryTimer = undefined;
    if (this.deleted || this.cons.size > 0) return;
    const left = this.expiryAt - Date.now();
    if (left > 0) this.startExpiryTimer(left);
    else this.onUnused?.(this);
  };

  constructor(init: QueueInit) {
    this.name = init.name;
    this.vhost = init.vhost;
    this.durable = init.durable ?? false;
    this.exclusive = init.exclusive ?? false;
    this.autoDelete = init.autoDelete ?? false;
    this.owner = init.owner;
    this.args = init.args ?? NO_ARGS;
    this.onUnused = init.onUnused;
    this.log = this.durable ? init.log : undefined;
    const s = parseQueueSettings(this.args);
    this.type = s.type;
    this.messageTtl = s.messageTtl;
    this.expires = s.expires;
    this.maxLength = s.maxLength;
    this.maxLengthBytes = s.maxLengthBytes;
    this.overflow = s.overflow;
    this.deadLetterExchange = s.deadLetterExchange;
    this.deadLetterRoutingKey = s.deadLetterRoutingKey;
    this.maxPriority = s.maxPriority;
    this.singleActiveConsumer = s.singleActiveConsumer;
    this.deliveryLimit = s.deliveryLimit;
    this.limited = s.maxLength !== undefined || s.maxLengthBytes !== undefined;
    this.maxLen = s.maxLength ?? Number.POSITIVE_INFINITY;
    this.maxBytes = s.maxLengthBytes ?? Number.POSITIVE_INFINITY;
    this.rejectOnOverflow = s.overflow !== 'drop-head';
    this.onDeadLetter = s.deadLetterExchange !== undefined ? init.deadLetter : undefined;
    this.ready =
      s.maxPriority !== undefined && s.maxPriority > 0
        ? new PriorityReady<QueueDelivery>(s.maxPriority)
        : new FixedQueue<QueueDelivery>();
    this.cons = new ConsumerSet(this.name, this.vhost, s.singleActiveConsumer);
    this.pageable = this.log !== undefined && !(s.maxPriority !== undefined && s.maxPriority > 0);
    this.defaultBinding = createBinding({
      vhost: this.vhost,
      source: '',
      destination: this.name,
      destinationKind: 'queue',
      bindingKey: this.name,
    });
    this.touch();
  }

  /** Ready messages, not handed out. */
  get messageCount(): number {
    return this.ready.length + this.diskCount;
  }

  /** Ready messages held in memory (the rest of `messageCount` is paged out to the store). */
  get messagesInMemory(): number {
    return this.ready.length;
  }

  /** Body bytes of the ready messages (what x-max-length-bytes limits). */
  get messageBytes(): number {
    return this.readyBytes + this.diskBytes;
  }

  /** Handed out and not yet settled, including basic.get ones and those whose consumer has left. */
  get unackedCount(): number {
    return this.unacked;
  }

  get consumerCount(): number {
    return this.cons.size;
  }

  /** Number of attached consumers (same as `consumerCount`). */
  get consumers(): number {
    return this.cons.size;
  }

  /** With x-single-active-consumer, the consumer that gets the messages; otherwise undefined. */
  get activeConsumer(): ConsumerSink | undefined {
    return this.cons.active?.sink;
  }

  /** Whether `sink` is attached and may receive messages (false for a waiting SAC consumer). */
  isActive(sink: ConsumerSink): boolean {
    const st = this.cons.get(sink);
    if (st === undefined) return false;
    return !this.singleActiveConsumer || this.cons.active === st;
  }

  get isDeleted(): boolean {
    return this.deleted;
  }

  /**
   * RabbitMQ `check_exclusive_access(Q, Owner, lax)`: only its owner may use an exclusive queue
   * (consume, get, purge, delete, bind); 405 otherwise.
   */
  assertExclusiveAccess(owner: string | undefined): void {
    if (!this.exclusive || this.owner === owner) return;
    throw new CoreError(
      'RESOURCE_LOCKED',
      `cannot obtain exclusive access to locked ${describe('queue', this.name, this.vhost)}. It could be originally ` +
        'declared on another connection or the exclusive property value does not match that of the original declaration.',
    );
  }

  /**
   * What routing calls. Returns false when the message was not taken (expired, refused by
   * `admission`, or rejected by `x-overflow: reject-publish`); `offerRouted` tells which.
   */
  offer(msg: Message, matched: readonly Binding[]): boolean {
    return this.offerRouted(msg, matched) === TAKEN;
  }

  offerRouted(msg: Message, matched: readonly Binding[]): OfferResult {
    if (this.deleted) return DROPPED;
    let now = 0;
    let expiry = 0;
    if (msg.expiresAt !== undefined) {
      // A message whose expiry has come (expiration 0, or a millisecond spent routing) is not
      // dropped here: it is "delivered now or never" below (RabbitMQ counts TTL from enqueue).
      now = Date.now();
      expiry = msg.expiresAt;
    }
    // (1) At-most-once fast path: nothing waits ahead of it, so a consumer may take it outright.
    if (this.cons.directOk && this.ready.length === 0) {
      const cs = this.cons.list;
      const n = cs.length;
      for (let k = 0; k < n; k++) {
        const idx = (this.directRr + k) % n;
        const c = cs[idx]!;
        if (c.removed || c.sink.offerDirect === undefined) continue;
        if (c.sink.offerDirect(msg, matched)) {
          this.directRr = idx + 1;
          this.stats.delivered++;
          return TAKEN;
        }
      }
    }
    // (2) The owner's policy.
    if (this.admission !== undefined && !this.admission.admit(msg, matched)) {
      this.stats.dropped++;
      return DROPPED;
    }
    // (3) Enqueue. x-max-length(-bytes) count ready messages only (RabbitMQ `will_overflow`).
    if (
      this.limited &&
      this.rejectOnOverflow &&
      (this.ready.length + this.diskCount >= this.maxLen ||
        this.readyBytes + this.diskBytes + msg.body.length > this.maxBytes)
    ) {
      this.stats.dropped++;
      if (this.overflow === 'reject-publish-dlx') this.deadLetter(msg, 'maxlen');
      return REJECTED;
    }
    if (this.messageTtl !== undefined) {
      const t = (now || Date.now()) + this.messageTtl;
      if (expiry === 0 || t < expiry) expiry = t;
    }
    // Expiring on arrival (expiration or x-message-ttl 0): delivered now to a consumer that is
    // ready, or never (RabbitMQ TTL docs). Only possible when nothing waits ahead of it.
    const nowOrNever = expiry !== 0 && expiry <= (now || (now = Date.now()));
    if (nowOrNever && this.ready.length > 0) {
      this.stats.expired++;
      this.deadLetter(msg, 'expired');
      return DROPPED;
    }
    if (this.pageable && (this.diskCount > 0 || this.ready.length >= PAGE_HEAD) && !nowOrNever) {
      // Paging: the message waits on disk only (transient ones too, flagged so a restart drops them).
      const seq = this.seq++;
      this.log!.put(seq, msg, matched, msg.properties.deliveryMode !== 2);
      this.diskCount++;
      this.diskBytes += msg.body.length;
      this.stats.enqueued++;
      if (this.limited && !this.rejectOnOverflow) this.dropHead();
      return TAKEN;
    }
    const d = new QueueDelivery(this, msg, matched, false, 1, this.seq++, expiry);
    this.memSeq = d.seq;
    if (this.log !== undefined && msg.properties.deliveryMode === 2) {
      this.log.put(d.seq, msg, matched);
      d.persisted = true;
    }
    this.ready.push(d);
    this.readyBytes += msg.body.length;
    this.stats.enqueued++;
    const deliveredBefore = this.stats.delivered;
    this.dispatch();
    if (nowOrNever) {
      // No consumer took it at once: it expires (here, or already in dispatch), and is not taken.
      if (this.ready.peek() === d) {
        this.takeReady();
        this.expire(d);
        return DROPPED;
      }
      if (this.stats.delivered === deliveredBefore) return DROPPED;
    }
    // drop-head: the oldest ready messages make room (after dispatch, so a waiting consumer
    // still gets a message that a max-length of 0 would not keep).
    if (this.limited && !this.rejectOnOverflow) this.dropHead();
    return TAKEN;
  }

  /**
   * Attaches a consumer (basic.consume). Throws 403 `... in exclusive use` when `exclusive` is
   * asked while others consume (or on a single-active-consumer queue), or another consumer is
   * exclusive; 404 when the queue was deleted.
   */
  addConsumer(c: ConsumerSink, opts?: ConsumeOptions): void {
    if (this.deleted) throw notFound('queue', this.name, this.vhost);
    if (this.cons.get(c) !== undefined) return;
    this.cons.add(c, opts?.priority ?? 0, opts?.exclusive ?? false);
    this.hadConsumer = true;
    this.dispatch();
  }

  /**
   * Throws what `addConsumer` would (404 when deleted, 403 exclusive use) without attaching, so
   * an adapter can refuse basic.consume before it sends consume-ok.
   */
  assertCanConsume(opts?: ConsumeOptions): void {
    if (this.deleted) throw notFound('queue', this.name, this.vhost);
    this.cons.check(opts?.exclusive ?? false);
  }

  /**
   * Detaches a consumer. With `requeue`, its unsettled deliveries return to the head in their
   * original order, marked redelivered (AMQP basic.cancel / channel close). Without, they stay
   * outstanding and remain settleable through their handles (an MQTT session that reconnects).
   */
  removeConsumer(c: ConsumerSink, opts: { requeue: boolean }): void {
    const st = this.cons.remove(c);
    if (st === undefined) return;
    const list = st.takeAll();
    if (opts.requeue && list.length > 0) this.requeueAll(list);
    // Without requeue the deliveries stay outstanding, with no consumer, until settled.
    if (this.cons.size === 0) {
      if (this.autoDelete && this.hadConsumer && this.onUnused !== undefined) {
        this.onUnused(this);
        return;
      }
      this.touch();
    }
    if (this.ready.length > 0) this.dispatch();
  }

  /**
   * Recovery: the queue's stored entries become its ready messages: the first PAGE_HEAD in
   * memory (all of them for a priority queue), the rest paged in as the head drains. Returns
   * how many entries the store holds for it.
   */
  restoreFromLog(resolveRoutes: (routes: unknown) => readonly Binding[]): number {
    const log = this.log;
    if (log === undefined) return 0;
    this.resolveRoutes = resolveRoutes;
    const st = log.stats();
    this.restoredBelow = st.nextSeq;
    if (st.nextSeq > this.seq) this.seq = st.nextSeq;
    this.diskCount = st.count;
    this.diskBytes = st.bytes;
    if (this.pageable) this.pageIn(PAGE_HEAD);
    else while (this.diskCount > 0 && this.pageIn(PAGE_BATCH * 16)) {}
    this.armTtl();
    return st.count;
  }

  /** Reads the next batch of disk-only entries into memory; false when there was none. */
  private pageIn(limit = PAGE_BATCH): boolean {
    const log = this.log;
    if (log === undefined || this.diskCount === 0) return false;
    const entries = log.read(this.memSeq, limit);
    if (entries.length === 0) {
      // The store holds fewer than we counted: trust the store.
      this.diskCount = 0;
      this.diskBytes = 0;
      return false;
    }
    const now = Date.now();
    for (const e of entries) {
      this.memSeq = e.seq;
      this.diskCount--;
      this.diskBytes -= e.message.body.length;
      if (e.transient && e.seq < this.restoredBelow) {
        log.remove(e.seq);
        continue;
      }
      const msg = fromRecord(e.message);
      let expiry = msg.expiresAt ?? 0;
      if (this.messageTtl !== undefined) {
        const t = msg.createdAt + this.messageTtl;
        if (expiry === 0 || t < expiry) expiry = t;
      }
      const matched = this.resolveRoutes?.(e.routes) ?? [this.defaultBinding];
      const count = e.delivered ? e.deliveryCount + 1 : 1;
      const d = new QueueDelivery(this, msg, matched, e.delivered, count, e.seq, expiry);
      d.persisted = true;
      if (e.delivered && e.tag !== undefined && e.tag !== null) d.tag = e.tag;
      if (expiry !== 0 && expiry <= now) {
        this.expire(d);
        continue;
      }
      this.ready.push(d);
      this.readyBytes += msg.body.length;
    }
    if (this.diskCount < 0) this.diskCount = this.diskBytes = 0;
    return this.ready.length > 0 || this.diskCount > 0;
  }

  /** Drops the disk-only ready messages (queue.purge); returns how many. */
  private purgeDisk(): number {
    const log = this.log;
    const n = this.diskCount;
    if (log === undefined || n === 0) return 0;
    for (;;) {
      const entries = log.read(this.memSeq, 4096);
      if (entries.length === 0) break;
      for (const e of entries) {
        this.memSeq = e.seq;
        log.remove(e.seq);
      }
    }
    this.diskCount = this.diskBytes = 0;
    return n;
  }

  /** The consumer has capacity again (credit, socket drained, in-flight window reopened). */
  consumerReady(c: ConsumerSink): void {
    if (this.ready.length > 0 && this.cons.get(c) !== undefined) this.dispatch();
  }

  /**
   * basic.get: takes the head (highest priority first), skipping expired messages. With `noAck`
   * the message is settled at once; otherwise the delivery is outstanding, with no consumer,
   * until `ack`/`nack`. Undefined when the queue is empty. Counts as use for x-expires.
   */
  get(opts: { noAck: boolean }): Delivery | undefined {
    if (this.deleted) return undefined;
    this.touch();
    let now = 0;
    if (this.ready.length === 0 && this.diskCount > 0) this.pageIn();
    for (let head = this.ready.peek(); head !== undefined; head = this.ready.peek()) {
      this.takeReady();
      if (head.expiry !== 0) {
        if (now === 0) now = Date.now();
        if (now > head.expiry) {
          this.expire(head);
          continue;
        }
      }
      this.stats.delivered++;
      if (opts.noAck) {
        head.state = SETTLED;
        this.stats.acked++;
        this.gone(head);
      } else {
        head.state = OUTSTANDING;
        this.unacked++;
        if (head.persisted) this.log!.delivered(head.seq, head.deliveryCount);
      }
      this.armTtl();
      return head;
    }
    return undefined;
  }

  /**
   * Records adapter state with an outstanding persistent delivery (an MQTT packet id), so that
   * after a restart the message comes back with it (`Delivery.tag`). A no-op for anything else.
   */
  tagDelivery(d: Delivery, tag: StoredValue): void {
    const qd = this.own(d);
    if (qd === undefined || !qd.persisted) return;
    qd.tag = tag;
    this.log!.delivered(qd.seq, qd.deliveryCount, tag);
  }

  /** Settles a delivery; false (and nothing happens) for an unknown or already settled one. */
  ack(d: Delivery): boolean {
    const qd = this.own(d);
    if (qd === undefined) return false;
    this.settle(qd);
    this.gone(qd);
    this.stats.acked++;
    if (this.ready.length > 0) this.dispatch();
    return true;
  }

  /**
   * Negative acknowledgement: with `requeue`, back to the head, redelivered and counted again
   * (or dead-lettered past `x-delivery-limit`); without, dead-lettered (`rejected`) or dropped.
   */
  nack(d: Delivery, requeue: boolean): boolean {
    const qd = this.own(d);
    if (qd === undefined) return false;
    this.settle(qd);
    if (requeue) {
      this.requeue(qd);
      if (this.limited && !this.rejectOnOverflow) this.dropHead();
    } else {
      this.stats.dropped++;
      this.gone(qd);
      if (this.onDeadLetter === undefined) {
        if (this.ready.length > 0) this.dispatch();
        return true;
      }
      this.deadLetter(qd.message, 'rejected');
    }
    this.afterReturn();
    return true;
  }

  /**
   * Settles several deliveries at once, in their original order (AMQP basic.nack multiple,
   * basic.recover, channel close): requeued ones regain their order at the head, marked
   * redelivered, and dispatch runs once. Unknown or settled handles are skipped; returns how
   * many were settled.
   */
  nackMany(ds: readonly Delivery[], requeue: boolean): number {
    const own: QueueDelivery[] = [];
    for (const d of ds) {
      const qd = this.own(d);
      if (qd === undefined) continue;
      this.settle(qd);
      own.push(qd);
    }
    if (own.length === 0) return 0;
    if (requeue) this.requeueAll(own);
    else {
      own.sort(bySeq);
      for (const qd of own) {
        this.stats.dropped++;
        this.gone(qd);
        this.deadLetter(qd.message, 'rejected');
      }
    }
    this.afterReturn();
    return own.length;
  }

  /** Drops every ready message; outstanding deliveries are untouched (AMQP queue.purge). */
  purge(): number {
    const n = this.ready.length + this.purgeDisk();
    for (const d of this.ready) {
      d.state = SETTLED;
      if (!this.deleted) this.gone(d);
    }
    this.ready.clear();
    this.readyBytes = 0;
    return n;
  }

  /**
   * Removes (and dead-letters) expired messages from the head, then schedules the timer for the
   * next head's expiry. Expiry is checked at the head only, as RabbitMQ does. Returns how many.
   */
  dropExpired(now = Date.now()): number {
    let n = 0;
    for (let d = this.ready.peek(); d !== undefined && d.expiry !== 0 && now > d.expiry; d = this.ready.peek()) {
      this.takeReady();
      this.expire(d);
      n++;
    }
    if (!this.deleted) this.armTtl();
    return n;
  }

  /**
   * Marks the queue used (queue.declare, basic.get): while it has no consumers, its x-expires
   * countdown restarts (RabbitMQ `ensure_expiry_timer`). A no-op without x-expires.
   */
  touch(): void {
    if (this.expires === undefined || this.deleted || this.cons.size > 0) return;
    this.expiryAt = Date.now() + this.expires;
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.startExpiryTimer(this.expires);
  }

  /**
   * Marks the queue deleted, drops its messages, detaches every consumer and then calls their
   * `cancelled`. Returns the number of ready messages dropped. Used by `BrokerCore.deleteQueue`,
   * which removes the bindings first.
   */
  delete(): number {
    if (this.deleted) return 0;
    this.deleted = true;
    if (this.ttlTimer !== undefined) clearTimeout(this.ttlTimer);
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.ttlTimer = this.expiryTimer = undefined;
    const n = this.purge();
    const cs = this.cons.clear();
    this.unacked = 0;
    for (const st of cs) st.takeAll();
    let failure: unknown;
    for (const st of cs) {
      try {
        st.sink.cancelled?.();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
    return n;
  }

  private own(d: Delivery): QueueDelivery | undefined {
    if (this.deleted || !(d instanceof QueueDelivery) || d.queue !== this) return undefined;
    return d.state === OUTSTANDING ? d : undefined;
  }

  private settle(d: QueueDelivery): void {
    d.state = SETTLED;
    if (d.consumer !== undefined) d.consumer.unlink(d);
    this.unacked--;
  }

  private takeReady(): QueueDelivery | undefined {
    const d = this.ready.shift();
    if (d !== undefined) this.readyBytes -= d.message.body.length;
    return d;
  }

  /**
   * Puts a copy of an outstanding delivery back at the head; the old handle becomes stale. Past
   * a quorum queue's x-delivery-limit the message is dead-lettered instead (`rabbit_fifo`
   * `return_one`: the count of returns, this one included, exceeds the limit).
   */
  private requeue(d: QueueDelivery): void {
    if (d.state === OUTSTANDING) this.settle(d);
    if (this.deliveryLimit !== undefined && d.deliveryCount > this.deliveryLimit) {
      this.stats.dropped++;
      this.gone(d);
      this.deadLetter(d.message, 'delivery_limit');
      return;
    }
    const again = new QueueDelivery(this, d.message, d.matched, true, d.deliveryCount + 1, d.seq, d.expiry);
    again.persisted = d.persisted;
    again.tag = d.tag;
    this.ready.unshift(again);
    this.readyBytes += d.message.body.length;
  }

  /** Requeues in original (enqueue) order; RabbitMQ `requeue_and_run` then applies drop-head. */
  private requeueAll(list: QueueDelivery[]): void {
    list.sort(bySeq);
    for (let i = list.length - 1; i >= 0; i--) this.requeue(list[i]!);
    if (this.limited && !this.rejectOnOverflow) this.dropHead();
  }

  /**
   * After messages went back or died: a consumer that rejects inside `deliver` would otherwise
   * get them (or their dead-lettered copies) straight back in a synchronous loop that never
   * yields; end this round and give I/O a turn first.
   */
  private afterReturn(): void {
    if (this.dispatching) {
      this.yielded = true;
      this.deferDispatch();
    } else if (this.ready.length > 0) this.dispatch();
  }

  private dropHead(): void {
    while (this.ready.length + this.diskCount > this.maxLen || this.readyBytes + this.diskBytes > this.maxBytes) {
      if (this.ready.length === 0 && !this.pageIn()) break;
      const d = this.takeReady()!;
      d.state = SETTLED;
      this.stats.dropped++;
      this.gone(d);
      this.deadLetter(d.message, 'maxlen');
    }
  }

  /** The message left the queue for good: its stored copy goes (in this turn's transaction). */
  private gone(d: QueueDelivery): void {
    if (d.persisted) this.log!.remove(d.seq);
  }

  private expire(d: QueueDelivery): void {
    d.state = SETTLED;
    this.gone(d);
    this.stats.expired++;
    this.deadLetter(d.message, 'expired');
  }

  private deadLetter(msg: Message, reason: DeadLetterReason): void {
    if (this.onDeadLetter === undefined) return;
    this.stats.deadLettered++;
    this.onDeadLetter(this, msg, reason);
  }

  /** One timer for the head's expiry; rescheduled only when the head now expires sooner. */
  private armTtl(): void {
    const head = this.ready.peek();
    if (head === undefined || head.expiry === 0) return;
    const at = head.expiry;
    if (this.ttlTimer !== undefined) {
      if (at >= this.ttlTimerAt) return;
      clearTimeout(this.ttlTimer);
    }
    this.ttlTimerAt = at;
    const t = setTimeout(this.onTtlTimer, Math.min(MAX_TIMEOUT, Math.max(0, at - Date.now() + 1)));
    t.unref();
    this.ttlTimer = t;
  }

  private startExpiryTimer(ms: number): void {
    const t = setTimeout(this.onExpiryTimer, Math.min(MAX_TIMEOUT, ms));
    t.unref();
    this.expiryTimer = t;
  }

  private deferDispatch(): void {
    if (this.deferred) return;
    this.deferred = true;
    setImmediate(this.deferredDispatch);
  }

  private dispatch(): void {
    if (this.dispatching) {
      this.redispatch = true;
      return;
    }
    this.dispatching = true;
    this.yielded = false;
    try {
      do {
        this.redispatch = false;
        this.drain();
      } while (this.redispatch && !this.deleted && !this.yielded);
    } finally {
      this.dispatching = false;
    }
  }

  private drain(): void {
    let now = 0;
    const ready = this.ready;
    for (;;) {
      if (this.deleted || this.yielded) break;
      if (ready.length === 0) {
        // The in-memory head ran dry: the next batch comes from the store, if a consumer waits.
        if (this.diskCount === 0 || this.cons.size === 0 || !this.pageIn()) break;
        continue;
      }
      const head = ready.peek()!;
      if (head.expiry !== 0) {
        if (now === 0) now = Date.now();
        if (now > head.expiry) {
          this.takeReady();
          this.expire(head);
          continue;
        }
      }
      const c = this.cons.pick();
      if (c === undefined) break;
      this.takeReady();
      head.state = OUTSTANDING;
      c.link(head);
      this.unacked++;
      this.stats.delivered++;
      if (head.persisted) this.log!.delivered(head.seq, head.deliveryCount);
      c.sink.deliver(head);
    }
    if (ready.length > 0 && !this.deleted) this.armTtl();
  }
}
