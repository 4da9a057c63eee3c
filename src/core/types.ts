/**
 * Shared shapes of the core model. Adapters see these through `broker-core.ts`, which
 * re-exports them; nothing here knows MQTT or AMQP framing.
 */
import type { Message } from './message.js';

export const ExchangeKinds = ['direct', 'fanout', 'topic', 'headers'] as const;
export type ExchangeKind = (typeof ExchangeKinds)[number];

/** Opaque binding arguments: AMQP `x-match` etc.; MQTT keeps its subscription options here. */
export type BindingArgs = Readonly<Record<string, unknown>>;

export interface Binding {
  readonly vhost: string;
  readonly source: string;
  /** Queue or exchange name. */
  readonly destination: string;
  readonly destinationKind: 'queue' | 'exchange';
  readonly bindingKey: string;
  readonly args: BindingArgs;
  /**
   * MQTT [MQTT-4.7.2-1]: a filter starting with a wildcard does not match a topic starting
   * with `$`. Set by the MQTT adapter on its bindings; AMQP bindings leave it false.
   */
  readonly noDollarWildcard: boolean;
}

export interface ExchangeOptions {
  durable?: boolean;
  autoDelete?: boolean;
  internal?: boolean;
  args?: Readonly<Record<string, unknown>>;
}

export interface QueueOptions {
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  /** Connection or session that owns an exclusive queue. */
  owner?: string;
  args?: Readonly<Record<string, unknown>>;
}

/**
 * A delivery handle: one message handed to one consumer, awaiting settlement. It stays valid
 * after its consumer is removed with `requeue: false` (an MQTT session keeps its in-flight
 * messages across a reconnect and settles them later).
 */
export interface Delivery {
  readonly message: Message;
  /** Every binding through which the message reached the queue (MQTT: max QoS, subscription ids). */
  readonly matched: readonly Binding[];
  /** True when this message was handed to a consumer before (AMQP redelivered, MQTT DUP). */
  readonly redelivered: boolean;
  /** How many times the message has been handed out, this delivery included. */
  readonly deliveryCount: number;
  /**
   * What the adapter attached to this message's last hand-out before a restart (`Queue.tagDelivery`:
   * an MQTT packet id), read back with the message; undefined otherwise.
   */
  readonly tag?: unknown;
  readonly queueName: string;
}

/**
 * A consumer as the queue sees it. The adapter implements it; the queue calls it.
 * `prefetch` bounds unsettled deliveries (0 = unbounded). A consumer that cannot take more for
 * another reason (socket backpressure, MQTT Receive Maximum) returns false from `canDeliver`
 * and later calls `Queue.consumerReady(this)`.
 */
export interface ConsumerSink {
  readonly tag: string;
  readonly prefetch: number;
  /** Extra readiness check beyond prefetch; omitted means always ready. */
  canDeliver?(): boolean;
  /**
   * At-most-once fast path (DESIGN.md "direct delivery"): offered only when the queue holds no
   * backlog. Return true when the consumer took the message outright (sent, or dropped by its
   * own policy) so the queue does no bookkeeping; false to have it queued as usual.
   */
  offerDirect?(message: Message, matched: readonly Binding[]): boolean;
  deliver(delivery: Delivery): void;
  /**
   * The queue was deleted under the consumer (queue.delete, auto-delete, vhost removal): AMQP
   * sends basic.cancel to consumers that asked for it; MQTT closes or re-creates the session.
   * The consumer is already detached when this is called; its deliveries can no longer be settled.
   */
  cancelled?(): void;
}

/** What a queue's owner may decide about a message before it is enqueued. */
export interface QueueAdmission {
  /** Return false to drop the message (counted as dropped), e.g. QoS 0 to an offline MQTT session. */
  admit(message: Message, matched: readonly Binding[]): boolean;
}

export interface RouteResult {
  /** Number of queues the message was enqueued in or delivered to directly. */
  readonly queues: number;
  /**
   * Number of queues that refused it because of `x-overflow: reject-publish` or
   * `reject-publish-dlx`: an AMQP publisher confirm must then be a basic.nack (RabbitMQ
   * `send_reject_publish`). A message that expired on arrival or that the queue's `admission`
   * refused counts in neither.
   */
  readonly rejected: number;
}
