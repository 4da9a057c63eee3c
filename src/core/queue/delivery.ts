/** One hand-out of one message from one queue: the `Delivery` handle adapters settle. */
import type { Message } from '../message.js';
import type { Binding, Delivery } from '../types.js';
import type { ConsumerState } from './consumers.js';
import type { Queue } from './queue.js';

export const DeliveryStates = { ready: 0, outstanding: 1, settled: 2 } as const;
export type DeliveryState = (typeof DeliveryStates)[keyof typeof DeliveryStates];

export class QueueDelivery implements Delivery {
  /** @internal */ state: DeliveryState = DeliveryStates.ready;
  /** @internal Undefined while ready, after basic.get, or once its consumer left without requeueing. */
  consumer: ConsumerState | undefined = undefined;
  /** @internal Neighbours in the consumer's unsettled list. */
  prev: QueueDelivery | undefined = undefined;
  /** @internal */ next: QueueDelivery | undefined = undefined;
  /** @internal Written to the store (a persistent message in a durable queue): removed when it leaves. */
  persisted = false;
  /** The adapter's tag from before a restart (see `Delivery.tag`). */
  tag: unknown = undefined;
  readonly queueName: string;
  constructor(
    /** @internal */ readonly queue: Queue,
    readonly message: Message,
    readonly matched: readonly Binding[],
    readonly redelivered: boolean,
    readonly deliveryCount: number,
    /** @internal Enqueue order, kept across requeues so requeued messages regain their order. */
    readonly seq: number,
    /**
     * @internal When the message expires, in ms since the epoch: the earlier of the queue's
     * x-message-ttl from enqueue and the message's own expiry (RabbitMQ `calculate_msg_expiry`);
     * 0 = never. Expired once the clock is past it, so a TTL of 0 still reaches a consumer that
     * is ready at once (https://www.rabbitmq.com/docs/ttl).
     */
    readonly expiry: number,
  ) {
    this.queueName = queue.name;
  }
}
