/**
 * What every MQTT connection of one broker shares: settings, the core, users, hooks, the
 * session registry, and one keep-alive sweep for all connections (cheaper than a timer each).
 */
import type { EventEmitter } from 'node:events';
import type { UserDb } from '../auth/users.js';
import type { BrokerCore, Queue } from '../core/broker-core.js';
import type { Logger } from '../util/log.js';
import type { Will } from './codec/packets.js';
import type { MqttHooks } from './hooks.js';
import { bindingKeyToFilter } from './mapping.js';
import type { Session, SubscriptionArgs } from './session.js';
import { publishWill } from './will.js';

function splitSessionKey(key: string): [vhost: string, clientId: string] {
  const i = key.indexOf('\0');
  return i < 0 ? ['/', key] : [key.slice(0, i), key.slice(i + 1)];
}

/** Store namespace of persistent session records: `{ expiry }` by session key. */
export const SESSION_RECORDS = 'mqtt.session';
export const SESSION_QUEUE_PREFIX = 'mqtt-session.';
/** Store namespace of wills waiting out their Will Delay Interval: `{ will, fireAt }` by session key. */
export const WILL_RECORDS = 'mqtt.will';
/** Store namespace of outbound QoS 2 packet ids whose PUBREL is owed (PUBREC received), by session key. */
export const PUBREL_RECORDS = 'mqtt.pubrel';
/** Store namespace of QoS 2 packet ids received and not yet released, by session key. */
export const QOS2_RECORDS = 'mqtt.qos2';

export interface MqttSettings {
  maxKeepAlive: number;
  maxPacketSize: number;
  maxPacketSizeUnauthenticated: number;
  receiveMaximum: number;
  maxInflightMessages: number;
  maxQueuedMessages: number;
  maxQos: 0 | 1 | 2;
  retainAvailable: boolean;
  wildcardSubscriptionAvailable: boolean;
  subscriptionIdentifierAvailable: boolean;
  sharedSubscriptionAvailable: boolean;
  topicAliasMaximum: number;
  topicExchange: string;
  vhost: string;
  qos0MaxBufferedBytes: number;
  queueQos0Offline: boolean;
  maxSessionExpiryInterval: number;
  connectTimeout: number;
  maxClientIdLength: number;
}

/** A connection the sweep looks after. */
export interface Sweepable {
  sweep(now: number): void;
}

/** A connection as publisher back-pressure sees it. */
export interface FlowParty {
  readonly bufferedBytes: number;
  /** Stop reading: some subscriber's output is full. */
  holdReading(): void;
  /** Read again: no subscriber output is full any more. */
  releaseReading(): void;
}

/** A connection a resource alarm held (it published while the alarm was on). */
export interface AlarmParty {
  unblockPublishing(): void;
}

/** Unsent bytes above which a connection's output counts as full (publishers are held). */
export const OUTPUT_HIGH_WATER = 1 << 20;
/** A full output that has not drained for this long is treated as stuck and stops holding publishers. */
const STUCK_AFTER_MS = 1000;

export interface MqttStats {
  connections: number;
  messagesIn: number;
  messagesOut: number;
  qos0Dropped: number;
  oversizeDropped: number;
}

export class MqttContext {
  /** Sessions by `vhost \0 clientId`, online or not. */
  readonly sessions = new Map<string, Session>();
  readonly connections = new Set<Sweepable>();
  /** Shared-subscription queues (`vhost \0 queue`) and how many sessions subscribe to each. */
  private readonly sharedRefs = new Map<string, number>();
  readonly stats: MqttStats = { connections: 0, messagesIn: 0, messagesOut: 0, qos0Dropped: 0, oversizeDropped: 0 };
  /**
   * Publisher back-pressure (STYLE habit 9, "pull-based reads that stop while downstream is
   * full"): while any subscriber's output is above OUTPUT_HIGH_WATER, connections that publish
   * stop reading, so a fast QoS 0 publisher slows to the pace of its subscribers instead of
   * having messages dropped at mqtt.qos0MaxBufferedBytes. A subscriber that does not drain
   * within STUCK_AFTER_MS stops counting until it drains, so one dead client cannot hold
   * everyone; its QoS 0 messages are then dropped at the limit, its QoS 1/2 stay queued.
   */
  private readonly congested = new Map<FlowParty, number>();
  private readonly stuck = new Set<FlowParty>();
  private readonly held = new Set<FlowParty>();
  /**
   * A resource alarm is on (broker.alarms): a connection that publishes stops being read, and
   * the packets it already sent wait, until the alarm clears. Subscribers are still served.
   */
  publishersBlocked = false;
  private readonly alarmHeld = new Set<AlarmParty>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private clientIdSeq = 0;

  constructor(
    readonly core: BrokerCore,
    readonly settings: MqttSettings,
    readonly users: UserDb,
    readonly log: Logger,
    readonly hooks: MqttHooks,
    readonly events: EventEmitter,
  ) {}

  get congestion(): boolean {
    return this.congested.size > 0;
  }

  /** Called after writing to `out` when it is above the high-water mark. */
  congest(out: FlowParty): void {
    if (!this.congested.has(out) && !this.stuck.has(out)) this.congested.set(out, Date.now());
  }

  /** `out` drained. */
  relieve(out: FlowParty): void {
    this.stuck.delete(out);
    if (this.congested.delete(out) && this.congested.size === 0) this.releaseAll();
  }

  hold(reader: FlowParty): void {
    if (this.held.has(reader)) return;
    this.held.add(reader);
    reader.holdReading();
  }

  /** `party` published while the alarm is on and stopped reading. */
  alarmHold(party: AlarmParty): void {
    this.alarmHeld.add(party);
  }

  get alarmHeldCount(): number {
    return this.alarmHeld.size;
  }

  /** An alarm set or cleared; held connections resume on clear. */
  setPublishersBlocked(on: boolean): void {
    this.publishersBlocked = on;
    if (on) return;
    const held = [...this.alarmHeld];
    this.alarmHeld.clear();
    for (const c of held) c.unblockPublishing();
  }

  forget(party: FlowParty & AlarmParty): void {
    this.alarmHeld.delete(party);
    this.held.delete(party);
    this.relieve(party);
  }

  private releaseAll(): void {
    const held = [...this.held];
    this.held.clear();
    for (const r of held) r.releaseReading();
  }

  private sweepCongestion(now: number): void {
    for (const [out, since] of this.congested) {
      if (out.bufferedBytes < OUTPUT_HIGH_WATER) this.congested.delete(out);
      else if (now - since > STUCK_AFTER_MS) {
        this.congested.delete(out);
        this.stuck.add(out);
      }
    }
    if (this.congested.size === 0 && this.held.size > 0) this.releaseAll();
  }

  start(): void {
    // 250 ms: keep-alive is enforced at 1.5 × the interval in whole seconds [MQTT-3.1.2-24],
    // so a quarter second of slack is well inside the spec's tolerance.
    this.sweepTimer = setInterval(() => {
      const now = Date.now();
      for (const c of this.connections) c.sweep(now);
      this.sweepCongestion(now);
    }, 250);
    this.sweepTimer.unref();
  }

  /**
   * After the core replayed the store: every durable session queue `mqtt-session.<id>` becomes
   * an offline session again, with its subscriptions rebuilt from its bindings and its expiry
   * (from the session record) counting from now.
   */
  restoreSessions(makeSession: (vhost: string, clientId: string, queue: Queue) => Session): number {
    const records = this.core.recoveredRecordsOf(SESSION_RECORDS);
    let n = 0;
    for (const vhost of this.core.vhostNames()) {
      const vh = this.core.vhost(vhost)!;
      for (const q of [...vh.queues.values()]) {
        if (!q.durable || !q.name.startsWith(SESSION_QUEUE_PREFIX)) continue;
        const clientId = q.name.slice(SESSION_QUEUE_PREFIX.length);
        const key = this.sessionKey(vhost, clientId);
        const session = makeSession(vhost, clientId, q);
        const rec = records.get(key) as { expiry?: number } | undefined;
        // No record: the session was ending when the broker stopped (both are written in one transaction).
        session.expiryInterval = typeof rec?.expiry === 'number' ? rec.expiry : 0;
        for (const b of this.core.bindingsOf(vhost, q.name)) {
          if (b.source !== this.settings.topicExchange) continue;
          const a = b.args as Partial<SubscriptionArgs>;
          const filter = bindingKeyToFilter(b.bindingKey);
          session.subscriptions.set(filter, {
            filter,
            qos: (a.qos ?? 0) as 0 | 1 | 2,
            noLocal: a.noLocal ?? false,
            retainAsPublished: a.retainAsPublished ?? false,
            retainHandling: a.retainHandling ?? 0,
            subscriptionId: a.subscriptionId,
            sharedQueue: undefined,
          });
        }
        const w = this.core.recoveredRecordsOf(WILL_RECORDS).get(key) as { will?: Will; fireAt?: number } | undefined;
        if (w?.will !== undefined && typeof w.fireAt === 'number') session.restoreWill(w.will, w.fireAt);
        const pubrels = this.core.recoveredRecordsOf(PUBREL_RECORDS).get(key);
        if (Array.isArray(pubrels))
          session.restorePubrels(pubrels.filter((id): id is number => typeof id === 'number'));
        const qos2 = this.core.recoveredRecordsOf(QOS2_RECORDS).get(key);
        if (Array.isArray(qos2)) for (const id of qos2) if (typeof id === 'number') session.inboundQos2.add(id);
        this.sessions.set(key, session);
        session.scheduleExpiry(() => {
          if (this.sessions.get(key) === session) this.sessions.delete(key);
          session.end();
        });
        n++;
      }
    }
    // Wills of sessions that did not outlive the restart (clean sessions) are due now.
    for (const [key, value] of this.core.recoveredRecordsOf(WILL_RECORDS)) {
      if (this.sessions.has(key)) continue;
      const w = value as { will?: Will } | undefined;
      const [vhost, clientId] = splitSessionKey(key);
      this.core.putRecord(WILL_RECORDS, key, undefined);
      if (w?.will !== undefined && this.core.vhost(vhost) !== undefined) publishWill(this, vhost, clientId, w.will);
    }
    return n;
  }

  /** The broker stops: session timers (wills, expiry) stop too; what is stored stays for the next start. */
  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const s of this.sessions.values()) s.suspend();
  }

  sessionKey(vhost: string, clientId: string): string {
    return `${vhost}\0${clientId}`;
  }

  /** One more session subscribes to the shared queue. */
  retainShared(vhost: string, queueName: string): void {
    const k = this.sessionKey(vhost, queueName);
    this.sharedRefs.set(k, (this.sharedRefs.get(k) ?? 0) + 1);
  }

  /** One session fewer; true when it was the last, and the queue should go. */
  releaseShared(vhost: string, queueName: string): boolean {
    const k = this.sessionKey(vhost, queueName);
    const n = (this.sharedRefs.get(k) ?? 1) - 1;
    if (n > 0) {
      this.sharedRefs.set(k, n);
      return false;
    }
    this.sharedRefs.delete(k);
    return true;
  }

  /** Assigned Client Identifier for an empty client id [MQTT-3.1.3-6]. */
  assignClientId(): string {
    return `braid-${process.pid.toString(36)}-${Date.now().toString(36)}-${(++this.clientIdSeq).toString(36)}`;
  }
}
