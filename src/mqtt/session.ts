/**
 * An MQTT session (MQTT 5.0 §4.1): its queue `mqtt-session.<clientId>` in the core, its
 * subscriptions (bindings from the topic exchange), QoS 1/2 state in both directions, the will
 * and the expiry timers. A session outlives its connection when its expiry interval is > 0.
 */
import type { Binding, ConsumerSink, Delivery, Message, Queue, StoredValue } from '../core/broker-core.js';
import { createMessage, isExpired } from '../core/broker-core.js';
import { type LongTimer, setLongTimeout } from '../util/long-timer.js';
import type { QoS, Will } from './codec/packets.js';
import {
  type MqttContext,
  OUTPUT_HIGH_WATER,
  PUBREL_RECORDS,
  QOS2_RECORDS,
  SESSION_RECORDS,
  WILL_RECORDS,
} from './context.js';
import { messageQos } from './mapping.js';
import { publishWill } from './will.js';

/** MQTT subscription options kept as binding arguments (DESIGN.md mapping table). */
export interface SubscriptionArgs {
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  subscriptionId: number | undefined;
}

export interface Subscription extends SubscriptionArgs {
  filter: string;
  /** For `$share/group/filter`: the shared queue this session consumes from. */
  sharedQueue: string | undefined;
}

/** One QoS 1/2 delivery awaiting PUBACK, or PUBREC then PUBCOMP. */
export interface OutFlight {
  packetId: number;
  qos: 1 | 2;
  /** 'publish': PUBLISH sent, waiting for PUBACK/PUBREC; 'pubrel': PUBREL sent, waiting for PUBCOMP. */
  state: 'publish' | 'pubrel';
  message: Message;
  retain: boolean;
  subscriptionIds: number[] | undefined;
  /** The core delivery to settle; undefined once settled (after PUBREC). */
  delivery: Delivery | undefined;
  queue: Queue | undefined;
}

/** What a session needs from the connection it is attached to. */
export interface SessionOutput {
  readonly clientMaxInflight: number;
  readonly bufferedBytes: number;
  /** Sends a PUBLISH; returns false when the packet was too large for the client and was discarded. */
  sendPublish(
    msg: Message,
    qos: QoS,
    retain: boolean,
    dup: boolean,
    packetId: number | undefined,
    subscriptionIds: number[] | undefined,
  ): boolean;
  sendPubrel(packetId: number): void;
}

/** Stands in for the message of a restored PUBREL-pending exchange (the message itself was acked). */
const PUBREL_PLACEHOLDER = createMessage({ vhost: '', exchange: '', routingKey: '', body: Buffer.alloc(0) });

function storedPacketId(tag: unknown): number | undefined {
  const p = typeof tag === 'object' && tag !== null ? (tag as { p?: unknown }).p : undefined;
  return typeof p === 'number' && p >= 1 && p <= 65535 ? p : undefined;
}

/** The binding marker for retained messages sent because of a new subscription [MQTT-3.3.1-9]. */
export const RETAINED_DELIVERY = 'x-mqtt-retained-delivery';

export class Session implements ConsumerSink {
  readonly tag: string;
  readonly prefetch = 0;
  readonly subscriptions = new Map<string, Subscription>();
  readonly outflight = new Map<number, OutFlight>();
  /** QoS 2 packet ids received (PUBREC sent) and not yet released [MQTT-4.3.3-10]. */
  readonly inboundQos2 = new Set<number>();
  output: SessionOutput | undefined;
  /** Session Expiry Interval in seconds; 0xFFFFFFFF never expires. */
  expiryInterval = 0;
  will: Will | undefined;
  private willTimer: LongTimer | undefined;
  private expiryTimer: LongTimer | undefined;
  private nextPacketId = 1;
  private readonly sharedSinks = new Map<string, SharedSink>();
  private ended = false;

  constructor(
    private readonly ctx: MqttContext,
    readonly vhost: string,
    readonly clientId: string,
    readonly queue: Queue,
  ) {
    this.tag = `mqtt:${clientId}`;
    // Offline, QoS 0 messages are dropped unless configured otherwise [MQTT-3.1.2-?; Mosquitto
    // queue_qos0_messages], and queue length is capped by mqtt.maxQueuedMessages.
    queue.admission = { admit: (msg, matched) => this.admit(msg, matched) };
  }

  /** A QoS 2 PUBLISH was accepted (PUBREC follows); remembered across restarts for a persistent session. */
  addInboundQos2(packetId: number): void {
    this.inboundQos2.add(packetId);
    this.saveInboundQos2();
  }

  /** PUBREL: the id is released. False when it was not known. */
  releaseInboundQos2(packetId: number): boolean {
    const known = this.inboundQos2.delete(packetId);
    if (known) this.saveInboundQos2();
    return known;
  }

  private saveInboundQos2(): void {
    if (!this.queue.durable) return;
    this.ctx.core.putRecord(QOS2_RECORDS, this.key, this.inboundQos2.size > 0 ? [...this.inboundQos2] : undefined);
  }

  get online(): boolean {
    return this.output !== undefined;
  }

  get key(): string {
    return this.ctx.sessionKey(this.vhost, this.clientId);
  }

  // ---- ConsumerSink (the session's own queue) ----

  canDeliver(): boolean {
    const out = this.output;
    return out !== undefined && this.outflight.size < out.clientMaxInflight && out.bufferedBytes < OUTPUT_HIGH_WATER;
  }

  offerDirect(msg: Message, matched: readonly Binding[]): boolean {
    const out = this.output;
    if (!out) return false;
    const plan = this.plan(msg, matched);
    if (plan === undefined) return true; // filtered by No Local: taken and dropped
    if (plan.qos > 0) return false;
    this.sendQos0(out, msg, plan.retain, plan.subscriptionIds);
    return true;
  }

  deliver(d: Delivery): void {
    const plan = this.plan(d.message, d.matched);
    if (plan === undefined) {
      this.queue.ack(d);
      return;
    }
    this.send(d, plan.qos, plan.retain, plan.subscriptionIds, this.queue);
  }

  cancelled(): void {
    // The queue was deleted under us (management action); the session cannot go on.
    this.output = undefined;
  }

  private admit(msg: Message, matched: readonly Binding[]): boolean {
    const plan = this.plan(msg, matched);
    if (plan === undefined) return false;
    if (!this.online && plan.qos === 0 && !this.ctx.settings.queueQos0Offline) return false;
    const max = this.ctx.settings.maxQueuedMessages;
    if (max > 0 && this.queue.messageCount >= max) return false;
    return true;
  }

  /**
   * The delivery plan for a message that reached this session through `matched`: the highest
   * granted QoS among overlapping subscriptions, all their subscription identifiers
   * [MQTT-3.3.4-3..5], and the RETAIN flag [MQTT-3.3.1-12, -13]. undefined when No Local
   * excludes every matching subscription [MQTT-3.8.3-3].
   */
  plan(
    msg: Message,
    matched: readonly Binding[],
  ): { qos: QoS; retain: boolean; subscriptionIds: number[] | undefined } | undefined {
    let maxSubQos = -1;
    let retain = false;
    let ids: number[] | undefined;
    const own = msg.publisherId === this.clientId;
    for (let i = 0; i < matched.length; i++) {
      const b = matched[i]!;
      const a = b.args as Partial<SubscriptionArgs> & { [RETAINED_DELIVERY]?: boolean };
      if (a.noLocal && own) continue;
      const q = a.qos ?? 0;
      if (q > maxSubQos) maxSubQos = q;
      if (a[RETAINED_DELIVERY] || (a.retainAsPublished && msg.annotations['x-mqtt-retain'] === true)) retain = true;
      if (a.subscriptionId !== undefined) {
        if (!ids) ids = [a.subscriptionId];
        else if (!ids.includes(a.subscriptionId)) ids.push(a.subscriptionId);
      }
    }
    if (maxSubQos < 0) return undefined;
    const msgQos = messageQos(msg);
    const qos = Math.min(msgQos, maxSubQos) as QoS;
    return { qos, retain, subscriptionIds: ids };
  }

  private sendQos0(out: SessionOutput, msg: Message, retain: boolean, ids: number[] | undefined): void {
    // DESIGN.md: QoS 0 to an online session is dropped only when the connection already holds
    // mqtt.qos0MaxBufferedBytes unsent, so a subscriber that keeps up loses nothing.
    if (out.bufferedBytes > this.ctx.settings.qos0MaxBufferedBytes) {
      this.ctx.stats.qos0Dropped++;
      return;
    }
    if (isExpired(msg, Date.now())) return;
    out.sendPublish(msg, 0, retain, false, undefined, ids);
  }

  /** Sends one queued delivery at `qos`; QoS 0 is settled at once, QoS 1/2 enter the in-flight window. */
  send(d: Delivery, qos: QoS, retain: boolean, ids: number[] | undefined, queue: Queue): void {
    const out = this.output;
    if (!out) {
      queue.nack(d, true);
      return;
    }
    if (qos === 0) {
      queue.ack(d);
      this.sendQos0(out, d.message, retain, ids);
      return;
    }
    // A message in flight before a restart goes out again with its packet id [MQTT-4.4.0-1], so
    // a QoS 2 receiver recognises it; the id is stored with the delivery for that.
    const before = queue === this.queue ? storedPacketId(d.tag) : undefined;
    const packetId = before !== undefined && !this.outflight.has(before) ? before : this.allocatePacketId();
    if (queue.durable) queue.tagDelivery(d, { p: packetId });
    const f: OutFlight = {
      packetId,
      qos,
      state: 'publish',
      message: d.message,
      retain,
      subscriptionIds: ids,
      delivery: d,
      queue,
    };
    this.outflight.set(packetId, f);
    // [MQTT-3.1.2-25]: a message too large for the client is discarded as if it had been sent.
    // A message this session was sent before (in flight when the broker stopped) goes out with
    // DUP [MQTT-3.3.1-1]; one that was only queued never does.
    const dup = d.redelivered && queue === this.queue;
    if (!out.sendPublish(d.message, qos, retain, dup, packetId, ids)) this.settle(f);
  }

  /** [MQTT-2.2.1-3]: a fresh, unused packet identifier for each new QoS 1/2 PUBLISH. */
  private allocatePacketId(): number {
    for (;;) {
      const id = this.nextPacketId;
      this.nextPacketId = id === 65535 ? 1 : id + 1;
      if (!this.outflight.has(id)) return id;
    }
  }

  /** PUBACK for QoS 1, or PUBCOMP for QoS 2, or a discarded delivery. */
  settle(f: OutFlight): void {
    this.outflight.delete(f.packetId);
    if (f.delivery && f.queue) f.queue.ack(f.delivery);
    f.delivery = undefined;
    this.wake();
  }

  handlePuback(packetId: number): boolean {
    const f = this.outflight.get(packetId);
    if (f?.qos !== 1) return false;
    this.settle(f);
    return true;
  }

  /** PUBREC: the receiver owns the message now; settle it in the queue and release. */
  handlePubrec(packetId: number, reasonCode: number): 'pubrel' | 'done' | 'unknown' {
    const f = this.outflight.get(packetId);
    if (f?.qos !== 2) return 'unknown';
    if (f.delivery && f.queue) f.queue.ack(f.delivery);
    f.delivery = undefined;
    if (reasonCode >= 0x80) {
      // 5.0 §4.3.3: a PUBREC with a Reason Code of 0x80 or above ends the exchange; no PUBREL follows.
      this.outflight.delete(packetId);
      this.wake();
      return 'done';
    }
    f.state = 'pubrel';
    // The message left the queue above; the PUBREL still owed is remembered across a restart
    // (in the same transaction), so a resumed session gets it and the client frees the id.
    this.savePubrels();
    return 'pubrel';
  }

  handlePubcomp(packetId: number): boolean {
    const f = this.outflight.get(packetId);
    if (f?.state !== 'pubrel') return false;
    this.outflight.delete(packetId);
    this.savePubrels();
    this.wake();
    return true;
  }

  /** Recovery: PUBRELs owed to the client when the broker stopped, resent when it resumes. */
  restorePubrels(ids: readonly number[]): void {
    for (const packetId of ids) {
      this.outflight.set(packetId, {
        packetId,
        qos: 2,
        state: 'pubrel',
        message: PUBREL_PLACEHOLDER,
        retain: false,
        subscriptionIds: undefined,
        delivery: undefined,
        queue: undefined,
      });
    }
  }

  private savePubrels(): void {
    if (!this.queue.durable) return;
    const ids: number[] = [];
    for (const f of this.outflight.values()) if (f.state === 'pubrel') ids.push(f.packetId);
    this.ctx.core.putRecord(PUBREL_RECORDS, this.key, ids.length > 0 ? ids : undefined);
  }

  /** Capacity freed: let the queues hand out more. */
  wake(): void {
    if (!this.output) return;
    this.queue.consumerReady(this);
    for (const s of this.sharedSinks.values()) s.queue.consumerReady(s);
  }

  // ---- attach / detach ----

  /** A connection takes this session: resend unacknowledged messages, then consume again. */
  attach(out: SessionOutput, resume: boolean): void {
    this.cancelTimers();
    this.output = out;
    if (resume) {
      // [MQTT-4.4.0-1]: on resume, resend unacknowledged PUBLISH with DUP=1 and PUBREL, in order.
      for (const f of this.outflight.values()) {
        if (f.state === 'pubrel') out.sendPubrel(f.packetId);
        else if (!out.sendPublish(f.message, f.qos, f.retain, true, f.packetId, f.subscriptionIds)) this.settle(f);
      }
    }
    this.queue.addConsumer(this);
    for (const s of this.sharedSinks.values()) s.queue.addConsumer(s);
  }

  /** The connection went away; the session stays (unless it is ended by the caller). */
  detach(): void {
    if (!this.output) return;
    this.output = undefined;
    this.queue.removeConsumer(this, { requeue: false });
    // Shared subscriptions: unsettled messages go to another member of the group.
    for (const s of this.sharedSinks.values()) {
      for (const f of [...this.outflight.values()]) {
        if (f.queue === s.queue && f.state === 'publish') this.outflight.delete(f.packetId);
      }
      s.queue.removeConsumer(s, { requeue: true });
    }
  }

  // ---- shared subscriptions ----

  addSharedConsumer(queue: Queue, sub: Subscription): void {
    let sink = this.sharedSinks.get(queue.name);
    if (!sink) {
      sink = new SharedSink(this, queue, sub);
      this.sharedSinks.set(queue.name, sink);
      if (this.output) queue.addConsumer(sink);
    } else {
      sink.sub = sub;
    }
  }

  removeSharedConsumer(queueName: string): void {
    const sink = this.sharedSinks.get(queueName);
    if (!sink) return;
    this.sharedSinks.delete(queueName);
    sink.queue.removeConsumer(sink, { requeue: true });
  }

  // ---- will and expiry ----

  /**
   * The connection ended without a normal DISCONNECT (or with 0x04): publish the will now, or
   * after the Will Delay Interval unless the session resumes first [MQTT-3.1.3-9].
   */
  scheduleWill(will: Will, delaySeconds: number): void {
    if (delaySeconds <= 0) {
      publishWill(this.ctx, this.vhost, this.clientId, will);
      return;
    }
    this.will = will;
    this.willTimer = setLongTimeout(() => this.fireWill(), delaySeconds * 1000);
    // A pending will outlives a restart: it fires then, or at once if its time has passed.
    this.ctx.core.putRecord(WILL_RECORDS, this.key, {
      will: will as unknown as StoredValue,
      fireAt: Date.now() + delaySeconds * 1000,
    });
  }

  /** Recovery: a will that was pending when the broker stopped. */
  restoreWill(will: Will, fireAt: number): void {
    const left = fireAt - Date.now();
    if (left <= 0) {
      this.ctx.core.putRecord(WILL_RECORDS, this.key, undefined);
      publishWill(this.ctx, this.vhost, this.clientId, will);
      return;
    }
    this.will = will;
    this.willTimer = setLongTimeout(() => this.fireWill(), left);
  }

  private fireWill(): void {
    this.willTimer = undefined;
    this.ctx.core.putRecord(WILL_RECORDS, this.key, undefined);
    const will = this.will;
    this.will = undefined;
    if (will) publishWill(this.ctx, this.vhost, this.clientId, will);
  }

  /** Starts the Session Expiry countdown for an offline session [MQTT-3.1.2-23]. */
  scheduleExpiry(onExpire: () => void): void {
    if (this.expiryInterval === 0xffffffff) return;
    this.expiryTimer = setLongTimeout(onExpire, this.expiryInterval * 1000);
  }

  /** The broker is stopping: timers stop, and the stored will and session records stay as they are. */
  suspend(): void {
    this.willTimer?.cancel();
    this.willTimer = undefined;
    this.expiryTimer?.cancel();
    this.expiryTimer = undefined;
  }

  private cancelTimers(): void {
    if (this.willTimer !== undefined) this.ctx.core.putRecord(WILL_RECORDS, this.key, undefined);
    this.willTimer?.cancel();
    this.willTimer = undefined;
    this.will = undefined;
    this.expiryTimer?.cancel();
    this.expiryTimer = undefined;
  }

  /**
   * The session ends: a pending delayed will is published now [MQTT-3.1.3-9], the queue and
   * its bindings go, shared memberships are dropped.
   */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.willTimer) {
      this.willTimer.cancel();
      this.fireWill();
    }
    this.cancelTimers();
    this.detach();
    for (const name of [...this.sharedSinks.keys()]) {
      this.removeSharedConsumer(name);
      releaseSharedQueue(this.ctx, this.vhost, name);
    }
    for (const f of this.outflight.values()) if (f.delivery && f.queue) f.queue.nack(f.delivery, true);
    this.outflight.clear();
    this.subscriptions.clear();
    this.inboundQos2.clear();
    this.queue.admission = undefined;
    this.ctx.core.putRecord(SESSION_RECORDS, this.key, undefined);
    if (this.queue.durable) {
      this.ctx.core.putRecord(QOS2_RECORDS, this.key, undefined);
      this.ctx.core.putRecord(PUBREL_RECORDS, this.key, undefined);
    }
    try {
      this.ctx.core.deleteQueue(this.vhost, this.queue.name);
    } catch {
      // Already deleted (management action).
    }
  }
}

/** One session's membership of a shared subscription queue. */
class SharedSink implements ConsumerSink {
  readonly tag: string;
  readonly prefetch = 0;

  constructor(
    private readonly session: Session,
    readonly queue: Queue,
    public sub: Subscription,
  ) {
    this.tag = `${session.tag}:${queue.name}`;
  }

  private planFor(msg: Message): { qos: QoS; retain: boolean; ids: number[] | undefined } {
    const msgQos = messageQos(msg);
    const qos = Math.min(msgQos, this.sub.qos) as QoS;
    const retain = this.sub.retainAsPublished && msg.annotations['x-mqtt-retain'] === true;
    const ids = this.sub.subscriptionId !== undefined ? [this.sub.subscriptionId] : undefined;
    return { qos, retain, ids };
  }

  canDeliver(): boolean {
    return this.session.canDeliver();
  }

  offerDirect(msg: Message): boolean {
    const out = this.session.output;
    if (!out) return false;
    const p = this.planFor(msg);
    if (p.qos > 0) return false;
    if (out.bufferedBytes > OUTPUT_HIGH_WATER) return false;
    if (!isExpired(msg, Date.now())) out.sendPublish(msg, 0, p.retain, false, undefined, p.ids);
    return true;
  }

  deliver(d: Delivery): void {
    const p = this.planFor(d.message);
    this.session.send(d, p.qos, p.retain, p.ids, this.queue);
  }
}

/** Drops one session's reference to a shared queue; the last one deletes it. */
export function releaseSharedQueue(ctx: MqttContext, vhost: string, queueName: string): void {
  if (!ctx.releaseShared(vhost, queueName)) return;
  try {
    ctx.core.deleteQueue(vhost, queueName);
  } catch {
    // Already gone.
  }
}
