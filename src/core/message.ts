/**
 * The one protocol-neutral message (STYLE.md habit 7). Immutable once routed: every queue it
 * lands in, every retained slot and every encoder shares the same object and the same body
 * buffer by reference. Delivery state (packet ids, delivery tags, granted QoS) never lives here.
 */

/** A header value as AMQP 0-9-1 field tables can carry it; MQTT user properties are strings. */
export type HeaderValue =
  | string
  | number
  | bigint
  | boolean
  | null
  | Buffer
  | Date
  | HeaderValue[]
  | { readonly [key: string]: HeaderValue };

/** Ordered `[key, value]` pairs, so that repeated MQTT 5 user properties keep their order. */
export type Headers = ReadonlyArray<readonly [string, HeaderValue]>;

/** AMQP 0-9-1 basic properties, the common vocabulary of every adapter. */
export interface MessageProperties {
  readonly contentType?: string;
  readonly contentEncoding?: string;
  readonly headers?: Headers;
  /** 1 = transient, 2 = persistent (AMQP); MQTT QoS 0 maps to 1, QoS 1/2 to 2. */
  readonly deliveryMode?: 1 | 2;
  readonly priority?: number;
  /** AMQP shortstr, or the raw bytes of MQTT 5 Correlation Data. */
  readonly correlationId?: string | Buffer;
  readonly replyTo?: string;
  /** AMQP per-message TTL in milliseconds, as the decimal string AMQP carries. */
  readonly expiration?: string;
  readonly messageId?: string;
  /** Seconds since the epoch. */
  readonly timestamp?: number;
  readonly type?: string;
  readonly userId?: string;
  readonly appId?: string;
}

/**
 * Adapter annotations that must survive routing but are not AMQP properties
 * (RabbitMQ `mc` annotations). Keys are namespaced: `x-mqtt-retain`, `x-mqtt-payload-format`,
 * `x-mqtt-publish-qos` (the MQTT publisher's QoS; its presence marks a message from MQTT).
 */
/**
 * An adapter's encoded copy of `properties` (AMQP 0-9-1: the property flags and list exactly as
 * the publisher sent them), so that same-protocol deliveries, and a restart, keep every header
 * field type byte-exact (RabbitMQ keeps `mc_amqpl`'s original binary likewise). Valid only while
 * `properties` are unchanged: `deriveMessage` drops it when they change.
 */
export const RAW_PROPERTIES = 'x-amqp091-properties';

export type Annotations = Readonly<Record<string, string | number | boolean | Buffer | undefined>>;

export interface Message {
  /** Process-unique, increasing; identifies one published message across queues. */
  readonly id: number;
  readonly vhost: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Buffer;
  readonly properties: MessageProperties;
  readonly annotations: Annotations;
  /** Identity of the publishing session/connection, for MQTT No Local. */
  readonly publisherId: string | undefined;
  /** Absolute expiry in ms since the epoch (MQTT Message Expiry Interval, AMQP expiration). */
  readonly expiresAt: number | undefined;
  /** ms since the epoch when the broker accepted the message. */
  readonly createdAt: number;
}

export interface MessageInit {
  vhost: string;
  exchange: string;
  routingKey: string;
  body: Buffer;
  properties?: MessageProperties;
  annotations?: Annotations;
  publisherId?: string;
  expiresAt?: number;
  createdAt?: number;
}

const EMPTY_PROPS: MessageProperties = Object.freeze({});
const EMPTY_ANN: Annotations = Object.freeze({});
let nextId = 1;

/**
 * Builds a message. The body must already be a buffer the message may own: a `subarray` of a
 * socket chunk pins the whole chunk, so adapters copy once before calling this when the message
 * can be retained or queued (STYLE.md habit 6).
 */
export function createMessage(init: MessageInit): Message {
  const createdAt = init.createdAt ?? Date.now();
  let expiresAt = init.expiresAt;
  if (expiresAt === undefined && init.properties?.expiration !== undefined) {
    const ttl = Number(init.properties.expiration);
    if (Number.isFinite(ttl) && ttl >= 0) expiresAt = createdAt + ttl;
  }
  return {
    id: nextId++,
    vhost: init.vhost,
    exchange: init.exchange,
    routingKey: init.routingKey,
    body: init.body,
    properties: init.properties ?? EMPTY_PROPS,
    annotations: init.annotations ?? EMPTY_ANN,
    publisherId: init.publisherId,
    expiresAt,
    createdAt,
  };
}

export function isExpired(msg: Message, now: number): boolean {
  return msg.expiresAt !== undefined && msg.expiresAt <= now;
}

/** A copy with some fields replaced (dead-lettering, retained re-publish); the body stays shared. */
export function deriveMessage(msg: Message, changes: Partial<MessageInit>): Message {
  let annotations = changes.annotations ?? msg.annotations;
  if (changes.properties !== undefined && annotations[RAW_PROPERTIES] !== undefined) {
    // The encoded copy describes the old properties.
    const { [RAW_PROPERTIES]: _stale, ...rest } = annotations;
    annotations = rest;
  }
  return createMessage({
    vhost: changes.vhost ?? msg.vhost,
    exchange: changes.exchange ?? msg.exchange,
    routingKey: changes.routingKey ?? msg.routingKey,
    body: changes.body ?? msg.body,
    properties: changes.properties ?? msg.properties,
    annotations,
    publisherId: 'publisherId' in changes ? changes.publisherId : msg.publisherId,
    expiresAt: 'expiresAt' in changes ? changes.expiresAt : msg.expiresAt,
    createdAt: changes.createdAt ?? msg.createdAt,
  });
}
