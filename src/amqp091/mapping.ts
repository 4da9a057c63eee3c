/**
 * AMQP 0-9-1 basic properties ⇄ the core message (RabbitMQ `mc_amqpl`). The core's property
 * vocabulary is 0-9-1's, so the way in is nearly one to one; the way out undoes what other
 * protocols put there: MQTT 5 Correlation Data is bytes, and 0-9-1's correlation-id a shortstr,
 * so bytes that are not short UTF-8 travel in the `x-correlation-id` header instead, as RabbitMQ's
 * MQTT plugin does; an MQTT Message Expiry Interval becomes `expiration` in ms.
 */
import {
  createMessage,
  type Headers,
  type HeaderValue,
  type Message,
  type MessageProperties,
} from '../core/broker-core.js';
import { type BasicProperties, encodeBasicProperties } from './codec/index.js';
import { amqpError } from './errors.js';

export const CORRELATION_HEADER = 'x-correlation-id';

const EMPTY: MessageProperties = Object.freeze({});

export interface InboundContext {
  vhost: string;
  exchange: string;
  routingKey: string;
  publisherId: string;
  now: number;
}

/**
 * RabbitMQ checks `expiration` when it is published: a non-negative integer in decimal
 * (`rabbit_basic:parse_expiration`), else 406.
 */
function checkExpiration(v: string): void {
  if (!/^\d+$/.test(v) || Number(v) > 0xffffffff) {
    throw amqpError('PRECONDITION_FAILED', `invalid expiration '${v}': no_integer`);
  }
}

/** Builds the core message for a completed basic.publish. `body` must be a buffer the message may own. */
export function toCoreMessage(p: BasicProperties, body: Buffer, ctx: InboundContext): Message {
  let properties: MessageProperties = EMPTY;
  let expiresAt: number | undefined;
  if (p !== EMPTY_BASIC) {
    if (p.expiration !== undefined) {
      checkExpiration(p.expiration);
      expiresAt = ctx.now + Number(p.expiration);
    }
    const out: { -readonly [K in keyof MessageProperties]: MessageProperties[K] } = {};
    if (p.contentType !== undefined) out.contentType = p.contentType;
    if (p.contentEncoding !== undefined) out.contentEncoding = p.contentEncoding;
    if (p.headers !== undefined) out.headers = p.headers as Headers;
    if (p.deliveryMode !== undefined) out.deliveryMode = p.deliveryMode === 2 ? 2 : 1;
    if (p.priority !== undefined) out.priority = p.priority;
    if (p.correlationId !== undefined) out.correlationId = p.correlationId;
    if (p.replyTo !== undefined) out.replyTo = p.replyTo;
    if (p.expiration !== undefined) out.expiration = p.expiration;
    if (p.messageId !== undefined) out.messageId = p.messageId;
    if (p.timestamp !== undefined) out.timestamp = p.timestamp;
    if (p.type !== undefined) out.type = p.type;
    if (p.userId !== undefined) out.userId = p.userId;
    if (p.appId !== undefined) out.appId = p.appId;
    properties = out;
  }
  return createMessage({
    vhost: ctx.vhost,
    exchange: ctx.exchange,
    routingKey: ctx.routingKey,
    body,
    properties,
    publisherId: ctx.publisherId,
    ...(expiresAt !== undefined && { expiresAt }),
    createdAt: ctx.now,
  });
}

/** The properties of a content header with no flags set, shared. */
export const EMPTY_BASIC: BasicProperties = Object.freeze({});

function isShortUtf8(b: Buffer): boolean {
  if (b.length > 255) return false;
  const s = b.toString('utf8');
  return Buffer.byteLength(s) === b.length && !s.includes('\uFFFD');
}

/** 0-9-1 properties of a core message, whoever published it. */
export function toBasicProperties(msg: Message): BasicProperties {
  const p = msg.properties;
  let headers = p.headers as BasicProperties['headers'];
  let correlationId: string | undefined;
  if (p.correlationId !== undefined) {
    if (typeof p.correlationId === 'string') correlationId = p.correlationId;
    else if (isShortUtf8(p.correlationId)) correlationId = p.correlationId.toString('utf8');
    else headers = [...(headers ?? []), [CORRELATION_HEADER, p.correlationId as HeaderValue]];
  }
  let expiration = p.expiration;
  if (expiration === undefined && msg.expiresAt !== undefined) {
    expiration = String(Math.max(0, msg.expiresAt - msg.createdAt));
  }
  const out: { -readonly [K in keyof BasicProperties]: BasicProperties[K] } = {};
  if (p.contentType !== undefined) out.contentType = p.contentType;
  if (p.contentEncoding !== undefined) out.contentEncoding = p.contentEncoding;
  if (headers !== undefined && headers.length > 0) out.headers = headers;
  if (p.deliveryMode !== undefined) out.deliveryMode = p.deliveryMode;
  if (p.priority !== undefined) out.priority = p.priority;
  if (correlationId !== undefined) out.correlationId = correlationId;
  if (p.replyTo !== undefined) out.replyTo = p.replyTo;
  if (expiration !== undefined) out.expiration = expiration;
  if (p.messageId !== undefined) out.messageId = p.messageId;
  if (p.timestamp !== undefined) out.timestamp = p.timestamp;
  if (p.type !== undefined) out.type = p.type;
  if (p.userId !== undefined) out.userId = p.userId;
  if (p.appId !== undefined) out.appId = p.appId;
  return out;
}

const encodedCache = new WeakMap<Message, Buffer>();

/**
 * The encoded property list of a message, built once per message: a fan-out to many AMQP
 * consumers encodes it once (STYLE.md habit 7, RabbitMQ keeps the original bytes likewise).
 */
export function encodedProperties(msg: Message): Buffer {
  let b = encodedCache.get(msg);
  if (b === undefined) {
    b = encodeBasicProperties(toBasicProperties(msg));
    encodedCache.set(msg, b);
  }
  return b;
}
