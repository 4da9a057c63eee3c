/**
 * What every MQTT connection of one broker shares: settings, the core, users, hooks, the
 * session registry, and one keep-alive sweep for all connections (cheaper than a timer each).
 */
import type { EventEmitter } from 'node:events';
import type { UserDb } from '../auth/users.js';
import type { BrokerCore } from '../core/broker-core.js';
import type { Logger } from '../util/log.js';
import type { MqttHooks } from './hooks.js';
import type { Session } from './session.js';

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
  /** Shared-subscription queues and how many sessions subscribe to each. */
  readonly sharedRefs = new Map<string, number>();
  readonly stats: MqttStats = { connections: 0, messagesIn: 0, messagesOut: 0, qos0Dropped: 0, oversizeDropped: 0 };
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

  start(): void {
    // 250 ms: keep-alive is enforced at 1.5 × the interval in whole seconds [MQTT-3.1.2-24],
    // so a quarter second of slack is well inside the spec's tolerance.
    this.sweepTimer = setInterval(() => {
      const now = Date.now();
      for (const c of this.connections) c.sweep(now);
    }, 250);
    this.sweepTimer.unref();
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
  }

  sessionKey(vhost: string, clientId: string): string {
    return `${vhost}\0${clientId}`;
  }

  /** Assigned Client Identifier for an empty client id [MQTT-3.1.3-6]. */
  assignClientId(): string {
    return `braid-${process.pid.toString(36)}-${Date.now().toString(36)}-${(++this.clientIdSeq).toString(36)}`;
  }
}
