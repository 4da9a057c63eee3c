/**
 * What every AMQP 0-9-1 connection shares: the core, the settings, the user database, and one
 * timer that sweeps all connections for heartbeats, handshake and consumer timeouts (one timer
 * for all is cheaper than one per connection, as in the MQTT adapter).
 */
import type { UserDb } from '../auth/users.js';
import type { BrokerCore } from '../core/broker-core.js';
import type { Logger } from '../util/log.js';

export interface AmqpSettings {
  /** Offered in connection.tune, seconds; 0 = no heartbeats. */
  heartbeat: number;
  /** Offered in connection.tune, bytes including the 8 bytes of frame overhead. */
  frameMax: number;
  channelMax: number;
  maxMessageSize: number;
  /** ms; 0 = never. */
  consumerTimeout: number;
  handshakeTimeout: number;
}

export interface AmqpStats {
  connections: number;
  channels: number;
  messagesIn: number;
  messagesOut: number;
}

export interface Sweepable {
  sweep(now: number): void;
}

/** A connection a resource alarm blocked (it published while the alarm was on). */
export interface Blockable {
  unblockPublishing(): void;
}

/** Unsent bytes on a connection past which its consumers stop receiving until it drains. */
export const OUTPUT_HIGH_WATER = 1 << 20;
const SWEEP_MS = 1000;

export class AmqpContext {
  readonly connections = new Set<Sweepable>();
  readonly stats: AmqpStats = { connections: 0, channels: 0, messagesIn: 0, messagesOut: 0 };
  /**
   * A resource alarm's reason ("low on memory") while one is set (broker.alarms): a connection
   * that publishes is then blocked (connection.blocked, no longer read) until it clears.
   */
  blockedReason: string | undefined;
  /** Connections blocked by the alarm. */
  readonly blocked = new Set<Blockable>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly core: BrokerCore,
    readonly settings: AmqpSettings,
    readonly users: UserDb,
    readonly log: Logger,
    /** Server properties that vary by build: product version, platform. */
    readonly version: string,
  ) {}

  /** An alarm set (`reason`) or cleared (undefined); blocked connections resume on clear. */
  setPublishersBlocked(reason: string | undefined): void {
    this.blockedReason = reason;
    if (reason !== undefined) return;
    const bs = [...this.blocked];
    this.blocked.clear();
    for (const c of bs) c.unblockPublishing();
  }

  start(): void {
    this.timer ??= setInterval(() => {
      const now = Date.now();
      for (const c of this.connections) c.sweep(now);
    }, SWEEP_MS).unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
