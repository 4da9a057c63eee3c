/**
 * AMQP 0-9-1 basic properties ⇄ the core message (RabbitMQ `mc_amqpl`). The core's property
 * vocabulary is 0-9-1's, so the way in is one to one; the way out undoes what other protocols put
 * there, as RabbitMQ's MQTT plugin does (mc_mqtt `convert_to(mc_amqpl, ...)`, see
 * `toBasicProperties`). The way back to MQTT is src/mqtt/mapping.ts `messageProperties`.
 */

import { isUtf8 } from 'node:buffer';
import {
  createMessage,
  type Headers,
  type HeaderValue,
  type Message,
  type MessageProperties,
  RAW_PROPERTIES,
} from '../core/broker-core.js';
import { type BasicProperties, encodeBasicProperties } from './codec/index.js';
import { amqpError } from './errors.js';

/** Headers of RabbitMQ's MQTT plugin (mc_mqtt.erl) for what basic properties cannot hold. */
export const CORRELATION_HEADER = 'x-correlation-id';
export const REPLY_TO_TOPIC_HEADER = 'x-reply-to-topic';

const EMPTY: MessageProperties = Object.freeze({});

export interface InboundContext {
  vhost: string;
  exchange: string;
  routingKey: string;
  publisherId: string;
  now: number;
  /** The property bytes as the publisher sent them, when `p` is exactly what they encode. */
  raw?: Buffer;
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
    ...(ctx.raw !== undefined && { annotations: { [RAW_PROPERTIES]: ctx.raw } }),
    publisherId: ctx.publisherId,
    ...(expiresAt !== undefined && { expiresAt }),
    createdAt: ctx.now,
  });
}

/** The properties of a content header with no flags set, shared. */
export const EMPTY_BASIC: BasicProperties = Object.freeze({});

/** Set by src/mqtt/mapping.ts `publishToMessage` on every MQTT-published message (its QoS). */
const MQTT_QOS_ANNOTATION = 'x-mqtt-publish-qos';

type MutableHeaders = Array<readonly [string, HeaderValue]>;

/** A string a shortstr can carry (at most 255 bytes of UTF-8). */
function fitsShortstr(s: string): boolean {
  return s.length <= 85 || Buffer.byteLength(s) <= 255;
}

/** ASCII only (`mc_util:utf8_string_is_ascii`): any other character takes more UTF-8 bytes than UTF-16 units. */
const isAscii = (s: string): boolean => Buffer.byteLength(s) === s.length;

/**
 * Header pairs the table encoder can write: no name over 255 bytes (RabbitMQ drops such MQTT User
 * Properties, mc_mqtt `convert_to(mc_amqpl, ...)`), and for an MQTT message no name twice
 * ("Duplicate fields are illegal", 0-9-1 §4.2.5.5; the first is kept, as by RabbitMQ's
 * `lists:usort`). `extra` pairs are the broker's own (`x-correlation-id`, `x-reply-to-topic`): they
 * win over a header of the same name and come last. Order is otherwise kept (RabbitMQ sorts by name).
 */
function tableHeaders(
  h: Headers | undefined,
  extra: MutableHeaders | undefined,
  dedupe: boolean,
): BasicProperties['headers'] {
  const n = h?.length ?? 0;
  if (extra === undefined && (n <= 1 || !dedupe)) {
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = fitsShortstr(h![i]![0]);
    if (ok) return n > 0 ? (h as BasicProperties['headers']) : undefined;
  }
  const seen = new Set<string>();
  if (extra) for (const [k] of extra) seen.add(k);
  const out: MutableHeaders = [];
  for (let i = 0; i < n; i++) {
    const pair = h![i]!;
    const k = pair[0];
    if (!fitsShortstr(k) || seen.has(k)) continue;
    if (dedupe) seen.add(k);
    out.push(pair);
  }
  if (extra) out.push(...extra);
  return out.length > 0 ? (out as BasicProperties['headers']) : undefined;
}

/**
 * 0-9-1 properties of a core message, whoever published it. What 0-9-1 cannot carry as a property
 * goes where RabbitMQ puts it (mc_mqtt `convert_to(mc_amqpl, ...)`): Correlation Data that is not
 * a valid shortstr (255 bytes of UTF-8 without NUL, `mc_util:is_valid_shortstr`) → header
 * `x-correlation-id`; an MQTT Response Topic → header `x-reply-to-topic` (and reply-to too, Braid's
 * DESIGN.md mapping, when it fits a shortstr); an MQTT Content Type that is not ASCII or too long
 * is dropped; an MQTT Message Expiry Interval → expiration in ms.
 */
export function toBasicProperties(msg: Message): BasicProperties {
  const p = msg.properties;
  const fromMqtt = msg.annotations[MQTT_QOS_ANNOTATION] !== undefined;
  let extra: MutableHeaders | undefined;
  let correlationId: string | undefined;
  const corr = p.correlationId;
  if (corr !== undefined) {
    if (typeof corr === 'string') {
      if (fitsShortstr(corr)) correlationId = corr;
      else extra = [[CORRELATION_HEADER, corr]];
    } else if (corr.length <= 255 && !corr.includes(0) && isUtf8(corr)) {
      correlationId = corr.toString('utf8');
    } else {
      // RabbitMQ sends a longstr; bytes that are not UTF-8 go as a byte array, which clients that
      // decode longstr as text (amqplib) hand back unchanged.
      extra = [[CORRELATION_HEADER, isUtf8(corr) ? corr.toString('utf8') : corr]];
    }
  }
  const replyTo = p.replyTo;
  if (replyTo !== undefined && fromMqtt) (extra ??= []).push([REPLY_TO_TOPIC_HEADER, replyTo]);
  let contentType = p.contentType;
  if (contentType !== undefined && (!fitsShortstr(contentType) || (fromMqtt && !isAscii(contentType)))) {
    contentType = undefined;
  }
  const headers = tableHeaders(p.headers, extra, fromMqtt);
  let expiration = p.expiration;
  if (expiration === undefined && msg.expiresAt !== undefined) {
    expiration = String(Math.max(0, msg.expiresAt - msg.createdAt));
  }
  const out: { -readonly [K in keyof BasicProperties]: BasicProperties[K] } = {};
  if (contentType !== undefined) out.contentType = contentType;
  if (p.contentEncoding !== undefined && fitsShortstr(p.contentEncoding)) out.contentEncoding = p.contentEncoding;
  if (headers !== undefined) out.headers = headers;
  if (p.deliveryMode !== undefined) out.deliveryMode = p.deliveryMode;
  if (p.priority !== undefined) out.priority = p.priority;
  if (correlationId !== undefined) out.correlationId = correlationId;
  if (replyTo !== undefined && fitsShortstr(replyTo)) out.replyTo = replyTo;
  if (expiration !== undefined) out.expiration = expiration;
  if (p.messageId !== undefined && fitsShortstr(p.messageId)) out.messageId = p.messageId;
  if (p.timestamp !== undefined) out.timestamp = p.timestamp;
  if (p.type !== undefined && fitsShortstr(p.type)) out.type = p.type;
  if (p.userId !== undefined && fitsShortstr(p.userId)) out.userId = p.userId;
  if (p.appId !== undefined && fitsShortstr(p.appId)) out.appId = p.appId;
  return out;
}

const encodedCache = new WeakMap<Message, Buffer>();

/**
 * The encoded property list of a message, built once per message: a fan-out to many AMQP
 * consumers encodes it once (STYLE.md habit 7, RabbitMQ keeps the original bytes likewise).
 */
export function encodedProperties(msg: Message): Buffer {
  const raw = msg.annotations[RAW_PROPERTIES];
  if (Buffer.isBuffer(raw)) return raw;
  let b = encodedCache.get(msg);
  if (b === undefined) {
    b = encodeBasicProperties(toBasicProperties(msg));
    encodedCache.set(msg, b);
  }
  return b;
}
