/**
 * One AMQP 0-9-1 channel: method dispatch, content assembly, consumers, delivery tags and the
 * unacknowledged set, publisher confirms and transactions (AMQP 0-9-1 §1.5–§1.10, with
 * RabbitMQ's extensions and readings).
 *
 * Invariants:
 * - `unacked` holds every delivery this channel handed out in ack mode and has not settled, in
 *   delivery-tag order (a Map keeps insertion order), so `multiple` acks walk it from the front.
 * - In a transaction, acks move their entries from `unacked` to the transaction; a rollback puts
 *   them back (RabbitMQ `rabbit_channel` tx handling), a commit settles them.
 * - Closing the channel, by either side, requeues everything still unsettled, in original order.
 */
import type { ConsumerSink, Delivery, Message, Queue } from '../core/broker-core.js';
import {
  type BasicAck,
  type BasicConsume,
  type BasicGet,
  type BasicNack,
  type BasicQos,
  type BasicReject,
  encodeBasicProperties,
  encodeMethodWithContent,
  type Method,
  MethodId,
} from './codec/index.js';
import type { AmqpConnection } from './connection.js';
import {
  exchangeBind,
  exchangeDeclare,
  exchangeDelete,
  queueBind,
  queueDeclare,
  queueDelete,
  queuePurge,
} from './declare.js';
import { AmqpError, amqpError, toAmqpError } from './errors.js';
import { encodedProperties, toBasicProperties } from './mapping.js';
import { ContentAssembler, Publisher } from './publish.js';

export const REPLY_TO_QUEUE = 'amq.rabbitmq.reply-to';

interface Unacked {
  readonly tag: number;
  readonly delivery: Delivery;
  readonly queue: Queue;
  /** A consumer delivery (counts toward global prefetch), not a basic.get. */
  readonly consumed: boolean;
  /** Coarse time of hand-out (ms), for `amqp.consumerTimeout`. */
  readonly at: number;
}

export type TxPublish = {
  msg: Message;
  mandatory: boolean;
  targets: ReturnType<AmqpConnection['core']['resolve']>;
};
type TxAck = { kind: 'ack' | 'nack'; entries: Unacked[]; requeue: boolean };

export class AmqpConsumer implements ConsumerSink {
  readonly offerDirect: ConsumerSink['offerDirect'];
  constructor(
    readonly channel: AmqpChannel,
    readonly tag: string,
    readonly queue: Queue,
    readonly noAck: boolean,
    readonly prefetch: number,
  ) {
    // At-most-once consumers take a message straight from routing when nothing waits ahead of it.
    this.offerDirect = noAck ? (msg) => this.channel.deliverDirect(this, msg) : undefined;
  }

  canDeliver(): boolean {
    return this.channel.canDeliver();
  }

  deliver(d: Delivery): void {
    this.channel.deliver(this, d);
  }

  cancelled(): void {
    this.channel.consumerCancelledByServer(this);
  }
}

export class AmqpChannel {
  /** 'closing': we sent channel.close and wait for close-ok, dropping everything else (§1.5.2.5). */
  state: 'open' | 'closing' = 'open';
  /**
   * Confirms may still be sent: until our channel.close or close-ok is on the wire. Confirms
   * decided before a close go out before it (RabbitMQ sends them as each method completes).
   */
  confirmsOpen = true;
  /** Consumer deliveries not yet settled, acks held in an open transaction included (global prefetch). */
  private held = 0;
  lastQueue: string | undefined;
  readonly consumers = new Map<string, AmqpConsumer>();
  readonly unacked = new Map<number, Unacked>();
  /** basic.qos global=false: the prefetch of consumers started from now on. */
  consumerPrefetch = 0;
  /** basic.qos global=true: a limit shared by every consumer of the channel (RabbitMQ). */
  channelPrefetch = 0;
  confirm = false;
  tx: { publishes: TxPublish[]; acks: TxAck[] } | undefined;
  replyTo: { name: string; tag: string; close(): void } | undefined;
  readonly assembler: ContentAssembler;
  readonly publisher: Publisher;
  private nextTag = 1;

  constructor(
    readonly conn: AmqpConnection,
    readonly id: number,
  ) {
    this.assembler = new ContentAssembler(this);
    this.publisher = new Publisher(this);
  }

  /** Sends a method on this channel. */
  send(m: Method): void {
    this.conn.sendMethod(this.id, m);
  }

  handle(m: Method): void {
    switch (m.id) {
      case MethodId.BasicPublish:
        this.assembler.start(m);
        return;
      case MethodId.BasicAck:
        this.onAck(m);
        return;
      case MethodId.BasicNack:
      case MethodId.BasicReject:
        this.onNack(m);
        return;
      case MethodId.BasicConsume:
        this.onConsume(m);
        return;
      case MethodId.BasicCancel: {
        this.cancelConsumer(m.consumerTag);
        if (!m.nowait) this.send({ id: MethodId.BasicCancelOk, consumerTag: m.consumerTag });
        return;
      }
      case MethodId.BasicQos:
        this.onQos(m);
        return;
      case MethodId.BasicGet:
        this.onGet(m);
        return;
      case MethodId.BasicRecover:
      case MethodId.BasicRecoverAsync:
        // RabbitMQ implements only requeue=true (`rabbit_channel`, basic.recover_async).
        if (!m.requeue) throw amqpError('NOT_IMPLEMENTED', 'requeue=false');
        this.requeueUnacked();
        if (m.id === MethodId.BasicRecover) this.send({ id: MethodId.BasicRecoverOk });
        return;
      case MethodId.ExchangeDeclare:
        exchangeDeclare(this, m);
        return;
      case MethodId.ExchangeDelete:
        exchangeDelete(this, m);
        return;
      case MethodId.ExchangeBind:
      case MethodId.ExchangeUnbind:
        exchangeBind(this, m);
        return;
      case MethodId.QueueDeclare:
        queueDeclare(this, m);
        return;
      case MethodId.QueueBind:
      case MethodId.QueueUnbind:
        queueBind(this, m);
        return;
      case MethodId.QueuePurge:
        queuePurge(this, m);
        return;
      case MethodId.QueueDelete:
        queueDelete(this, m);
        return;
      case MethodId.ConfirmSelect:
        if (this.tx !== undefined) throw amqpError('PRECONDITION_FAILED', 'cannot switch from tx to confirm mode');
        this.confirm = true;
        if (!m.nowait) this.send({ id: MethodId.ConfirmSelectOk });
        return;
      case MethodId.TxSelect:
        if (this.confirm) throw amqpError('PRECONDITION_FAILED', 'cannot switch from confirm to tx mode');
        this.tx ??= { publishes: [], acks: [] };
        this.send({ id: MethodId.TxSelectOk });
        return;
      case MethodId.TxCommit:
        this.commit();
        return;
      case MethodId.TxRollback:
        this.rollback();
        return;
      case MethodId.ChannelFlow:
        // RabbitMQ no longer lets a client stop deliveries with flow: active=false is refused.
        if (!m.active) throw amqpError('NOT_IMPLEMENTED', 'active=false');
        this.send({ id: MethodId.ChannelFlowOk, active: true });
        return;
      case MethodId.ChannelFlowOk:
        return;
      case MethodId.AccessRequest:
        this.send({ id: MethodId.AccessRequestOk, ticket: 1 });
        return;
      default:
        throw amqpError('COMMAND_INVALID', `unexpected method ${methodLabel(m.id)} on a channel`);
    }
  }

  // ---- queues ------------------------------------------------------------------------------

  /** The queue a method names; '' is the last queue declared on this channel (0-9-1 §1.7.2.3). */
  resolveQueue(name: string): Queue {
    const n = name === '' ? this.lastQueue : name;
    if (n === undefined) throw amqpError('NOT_FOUND', 'no previously declared queue');
    const q = this.conn.core.getQueue(this.conn.vhost, n);
    if (q === undefined) throw amqpError('NOT_FOUND', `no queue '${n}' in vhost '${this.conn.vhost}'`);
    this.checkExclusive(q);
    return q;
  }

  /** RabbitMQ `check_exclusive_access`: another connection's exclusive queue is locked (405). */
  checkExclusive(q: Queue): void {
    q.assertExclusiveAccess(this.conn.id);
  }

  // ---- consumers and deliveries ------------------------------------------------------------

  private onQos(m: BasicQos): void {
    if (m.prefetchSize !== 0) throw amqpError('NOT_IMPLEMENTED', `prefetch_size!=0 (${m.prefetchSize})`);
    if (m.global) {
      this.channelPrefetch = m.prefetchCount;
      this.wakeConsumers();
    } else this.consumerPrefetch = m.prefetchCount;
    this.send({ id: MethodId.BasicQosOk });
  }

  private onConsume(m: BasicConsume): void {
    let tag = m.consumerTag;
    if (tag === '') tag = `amq.ctag-${this.conn.randomToken()}`;
    else if (this.consumers.has(tag)) throw amqpError('NOT_ALLOWED', `attempt to reuse consumer tag '${tag}'`);
    if (m.queue === REPLY_TO_QUEUE) {
      this.consumeReplyTo(m, tag);
      return;
    }
    const q = this.resolveQueue(m.queue);
    const prio = m.arguments['x-priority'];
    const opts = { exclusive: m.exclusive, ...(typeof prio === 'number' && { priority: prio }) };
    q.assertCanConsume(opts);
    const c = new AmqpConsumer(this, tag, q, m.noAck, this.consumerPrefetch);
    this.consumers.set(tag, c);
    // consume-ok goes out before the first delivery the consumer may get at once.
    if (!m.nowait) this.send({ id: MethodId.BasicConsumeOk, consumerTag: tag });
    q.addConsumer(c, opts);
  }

  /** RabbitMQ direct reply-to: a pseudo-queue whose name routes straight to this consumer. */
  private consumeReplyTo(m: BasicConsume, tag: string): void {
    if (!m.noAck) throw amqpError('PRECONDITION_FAILED', 'reply consumer cannot acknowledge');
    if (this.replyTo !== undefined) throw amqpError('PRECONDITION_FAILED', 'reply consumer already set');
    const reg = this.conn.core.registerReplyTo(this.conn.vhost, (msg) => {
      if (this.state !== 'open') return false;
      this.sendDeliver(tag, 0, false, msg);
      return true;
    });
    this.replyTo = { name: reg.name, tag, close: () => reg.close() };
    if (!m.nowait) this.send({ id: MethodId.BasicConsumeOk, consumerTag: tag });
  }

  canDeliver(): boolean {
    if (this.state !== 'open' || this.conn.congested) return false;
    return this.channelPrefetch === 0 || this.held < this.channelPrefetch;
  }

  deliver(c: AmqpConsumer, d: Delivery): void {
    let frames: Buffer[];
    const tag = this.nextTag++;
    try {
      frames = this.encodeDeliver(c.tag, tag, d.redelivered, d.message, deliveryCountProps(c.queue, d));
    } catch (err) {
      // A message 0-9-1 cannot carry (a routing key over 255 bytes from another protocol or a
      // dead-letter key): dropped, never thrown into the queue's dispatch.
      this.conn.ctx.log.warn('AMQP delivery dropped: message cannot be encoded', {
        queue: c.queue.name,
        error: (err as Error).message,
      });
      c.queue.nack(d, false);
      return;
    }
    if (c.noAck) c.queue.ack(d);
    else this.track(tag, d, c.queue, true);
    this.conn.sendFrames(frames);
    this.conn.ctx.stats.messagesOut++;
  }

  /** The at-most-once path for no-ack consumers; false when the connection cannot take it now. */
  deliverDirect(c: AmqpConsumer, msg: Message): boolean {
    if (!this.canDeliver()) return false;
    this.sendDeliver(c.tag, this.nextTag++, false, msg);
    return true;
  }

  private track(tag: number, d: Delivery, queue: Queue, consumed: boolean): void {
    this.unacked.set(tag, { tag, delivery: d, queue, consumed, at: this.conn.clock });
    if (consumed) this.held++;
  }

  private sendDeliver(consumerTag: string, deliveryTag: number, redelivered: boolean, msg: Message): void {
    let frames: Buffer[];
    try {
      frames = this.encodeDeliver(consumerTag, deliveryTag, redelivered, msg, encodedProperties(msg));
    } catch (err) {
      this.conn.ctx.log.warn('AMQP delivery dropped: message cannot be encoded', { error: (err as Error).message });
      return;
    }
    this.conn.sendFrames(frames);
    this.conn.ctx.stats.messagesOut++;
  }

  private encodeDeliver(
    consumerTag: string,
    deliveryTag: number,
    redelivered: boolean,
    msg: Message,
    props: Buffer,
  ): Buffer[] {
    return encodeMethodWithContent(
      this.id,
      {
        id: MethodId.BasicDeliver,
        consumerTag,
        deliveryTag: deliveryTag === 0 ? this.nextTag++ : deliveryTag,
        redelivered,
        exchange: msg.exchange,
        routingKey: msg.routingKey,
      },
      props,
      msg.body,
      this.conn.frameMax,
    );
  }

  private onGet(m: BasicGet): void {
    const q = this.resolveQueue(m.queue);
    const d = q.get({ noAck: m.noAck });
    if (d === undefined) {
      this.send({ id: MethodId.BasicGetEmpty, clusterId: '' });
      return;
    }
    const tag = this.nextTag++;
    const msg = d.message;
    let frames: Buffer[];
    try {
      frames = encodeMethodWithContent(
        this.id,
        {
          id: MethodId.BasicGetOk,
          deliveryTag: tag,
          redelivered: d.redelivered,
          exchange: msg.exchange,
          routingKey: msg.routingKey,
          messageCount: q.messageCount,
        },
        deliveryCountProps(q, d),
        msg.body,
        this.conn.frameMax,
      );
    } catch (err) {
      this.conn.ctx.log.warn('AMQP basic.get: message cannot be encoded, dropped', { error: (err as Error).message });
      if (!m.noAck) q.nack(d, false);
      this.send({ id: MethodId.BasicGetEmpty, clusterId: '' });
      return;
    }
    if (!m.noAck) this.track(tag, d, q, false);
    this.conn.sendFrames(frames);
    this.conn.ctx.stats.messagesOut++;
  }

  /** Entries a basic.ack/nack/reject names; an unknown tag is a 406 (RabbitMQ). */
  private take(tag: number, multiple: boolean): Unacked[] {
    if (multiple) {
      // The named tag itself must be outstanding (§1.8.3.13, rabbit_channel collect_acks).
      if (tag !== 0 && !this.unacked.has(tag)) throw amqpError('PRECONDITION_FAILED', `unknown delivery tag ${tag}`);
      const out: Unacked[] = [];
      for (const [t, u] of this.unacked) {
        if (tag !== 0 && t > tag) break;
        out.push(u);
      }
      if (out.length === 0 && tag !== 0) throw amqpError('PRECONDITION_FAILED', `unknown delivery tag ${tag}`);
      for (const u of out) this.unacked.delete(u.tag);
      return out;
    }
    const u = this.unacked.get(tag);
    if (u === undefined) throw amqpError('PRECONDITION_FAILED', `unknown delivery tag ${tag}`);
    this.unacked.delete(tag);
    return [u];
  }

  private onAck(m: BasicAck): void {
    const entries = this.take(m.deliveryTag, m.multiple);
    if (this.tx !== undefined) this.tx.acks.push({ kind: 'ack', entries, requeue: false });
    else this.settle(entries, 'ack', false);
  }

  private onNack(m: BasicNack | BasicReject): void {
    const multiple = m.id === MethodId.BasicNack ? m.multiple : false;
    const entries = this.take(m.deliveryTag, multiple);
    if (this.tx !== undefined) this.tx.acks.push({ kind: 'nack', entries, requeue: m.requeue });
    else this.settle(entries, 'nack', m.requeue);
  }

  private settle(entries: readonly Unacked[], kind: 'ack' | 'nack', requeue: boolean): void {
    for (const u of entries) if (u.consumed) this.held--;
    if (kind === 'ack') {
      for (const u of entries) u.queue.ack(u.delivery);
    } else if (entries.length === 1) {
      entries[0]!.queue.nack(entries[0]!.delivery, requeue);
    } else {
      for (const [q, ds] of byQueue(entries)) q.nackMany(ds, requeue);
    }
    if (this.channelPrefetch !== 0) this.wakeConsumers();
  }

  /** Requeues every unsettled delivery of the channel, in order (basic.recover, channel close). */
  requeueUnacked(): void {
    const entries = [...this.unacked.values()];
    this.unacked.clear();
    if (this.tx !== undefined) {
      for (const a of this.tx.acks) entries.push(...a.entries);
      this.tx.acks = [];
      entries.sort((a, b) => a.tag - b.tag);
    }
    this.held = 0;
    for (const [q, ds] of byQueue(entries)) q.nackMany(ds, true);
    if (this.channelPrefetch !== 0) this.wakeConsumers();
  }

  private wakeConsumers(): void {
    for (const c of this.consumers.values()) c.queue.consumerReady(c);
  }

  /** The connection drained below its high-water mark. */
  drained(): void {
    this.wakeConsumers();
  }

  cancelConsumer(tag: string): void {
    if (this.replyTo?.tag === tag) {
      this.replyTo.close();
      this.replyTo = undefined;
      return;
    }
    const c = this.consumers.get(tag);
    if (c === undefined) return;
    this.consumers.delete(tag);
    // Its unacked deliveries stay on the channel and can still be acked (0-9-1 §1.8.3.5).
    c.queue.removeConsumer(c, { requeue: false });
  }

  /** The queue went away under the consumer: basic.cancel to clients that asked for it. */
  consumerCancelledByServer(c: AmqpConsumer): void {
    if (this.consumers.get(c.tag) !== c) return;
    this.consumers.delete(c.tag);
    // Its unacked deliveries stay: acking them is accepted and does nothing (rabbit_channel handle_eol).
    if (this.state === 'open' && this.conn.clientCapability('consumer_cancel_notify')) {
      this.send({ id: MethodId.BasicCancel, consumerTag: c.tag, nowait: true });
    }
  }

  // ---- transactions --------------------------------------------------------------------------

  private commit(): void {
    const tx = this.tx;
    if (tx === undefined) throw amqpError('PRECONDITION_FAILED', 'channel is not transactional');
    for (const p of tx.publishes) this.publisher.deliverResolved(p);
    this.tx = { publishes: [], acks: [] };
    for (const a of tx.acks) this.settle(a.entries, a.kind, a.requeue);
    // commit-ok promises the publishes are stored: it waits for the group commit.
    this.conn.core.whenDurable(() => {
      if (this.state === 'open') this.send({ id: MethodId.TxCommitOk });
    });
  }

  private rollback(): void {
    const tx = this.tx;
    if (tx === undefined) throw amqpError('PRECONDITION_FAILED', 'channel is not transactional');
    // Acked-in-transaction deliveries become unacked again, in tag order.
    const back = [...this.unacked.values()];
    for (const a of tx.acks) back.push(...a.entries);
    back.sort((a, b) => a.tag - b.tag);
    this.unacked.clear();
    for (const u of back) this.unacked.set(u.tag, u);
    this.tx = { publishes: [], acks: [] };
    this.send({ id: MethodId.TxRollbackOk });
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /** Consumer timeout (RabbitMQ `consumer_timeout`): the oldest unacked delivery is too old. */
  sweep(now: number): void {
    const limit = this.conn.ctx.settings.consumerTimeout;
    if (limit === 0 || this.state !== 'open') return;
    const first = this.unacked.values().next();
    if (first.done || now - first.value.at <= limit) return;
    this.conn.channelError(
      this,
      new AmqpError(
        'PRECONDITION_FAILED',
        `delivery acknowledgement on channel ${this.id} timed out. Timeout value used: ${limit} ms. ` +
          'This timeout value can be configured, see consumers doc guide to learn more',
      ),
    );
  }

  /** Releases everything: consumers, reply-to, unsettled deliveries (requeued). Idempotent. */
  release(): void {
    this.assembler.reset();
    if (this.replyTo !== undefined) {
      this.replyTo.close();
      this.replyTo = undefined;
    }
    for (const c of this.consumers.values()) c.queue.removeConsumer(c, { requeue: false });
    this.consumers.clear();
    this.requeueUnacked();
    this.tx = undefined;
  }

  /** Runs a handler, turning anything thrown into this channel's or the connection's close. */
  guard(classId: number, methodId: number, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      const e = toAmqpError(err, classId, methodId);
      if (e.hard) this.conn.connectionError(e);
      else this.conn.channelError(this, e);
    }
  }
}

/**
 * A quorum queue's redelivery carries `x-delivery-count`, the number of earlier deliveries
 * (RabbitMQ 3.13 quorum queues); everything else shares the message's cached properties.
 */
function deliveryCountProps(q: Queue, d: Delivery): Buffer {
  if (q.type !== 'quorum' || d.deliveryCount <= 1) return encodedProperties(d.message);
  const p = toBasicProperties(d.message);
  const headers = (p.headers ?? []).filter((h) => h[0] !== 'x-delivery-count');
  headers.push(['x-delivery-count', d.deliveryCount - 1]);
  return encodeBasicProperties({ ...p, headers });
}

function byQueue(entries: readonly Unacked[]): Map<Queue, Delivery[]> {
  const m = new Map<Queue, Delivery[]>();
  for (const u of entries) {
    let ds = m.get(u.queue);
    if (ds === undefined) m.set(u.queue, (ds = []));
    ds.push(u.delivery);
  }
  return m;
}

export function methodLabel(id: number): string {
  return `${id >>> 16}/${id & 0xffff}`;
}
