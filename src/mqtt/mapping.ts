/**
 * MQTT ⇄ core mapping (DESIGN.md "MQTT on the model"): topics ⇄ routing keys by swapping `/`
 * and `.` both ways, and MQTT 5 properties ⇄ AMQP basic properties and headers, after
 * RabbitMQ's mc_mqtt conventions.
 */
import { createMessage, type HeaderValue, type Message, type MessageProperties } from '../core/broker-core.js';
import type { Properties, PublishPacket, QoS } from './codec/packets.js';
import { checkUtf8, Utf8Check } from './codec/utf8.js';

const SWAP = /[./]/g;
const swapChar = (c: string): string => (c === '/' ? '.' : '/');

/** `a/b.c` ⇄ `a.b/c`; the same function goes both ways. Wildcards `+` ⇄ `*` only in filters. */
export function topicToKey(topic: string): string {
  return topic.indexOf('/') === -1 && topic.indexOf('.') === -1 ? topic : topic.replace(SWAP, swapChar);
}

export const keyToTopic = topicToKey;

/** MQTT filter → AMQP topic binding key: `/`⇄`.`, each `+` level → `*` (`#` stays `#`). */
export function filterToBindingKey(filter: string): string {
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    levels[i] = l === '+' ? '*' : l.replace(SWAP, swapChar);
  }
  return levels.join('.');
}

/** RabbitMQ keeps the publisher's QoS in this header so an MQTT subscriber can get it back. */
export const QOS_HEADER = 'x-mqtt-publish-qos';
export const RETAIN_ANNOTATION = 'x-mqtt-retain';
export const PFI_ANNOTATION = 'x-mqtt-payload-format';

export interface PublishContext {
  vhost: string;
  exchange: string;
  publisherId: string;
  now: number;
}

/**
 * Builds the core message for an inbound PUBLISH whose topic is already `routingKey`
 * (`topicToKey`, computed once by the caller). `payload` must be a buffer the message may own.
 */
export function publishToMessage(p: PublishPacket, routingKey: string, payload: Buffer, ctx: PublishContext): Message {
  const props = p.properties;
  let properties: MessageProperties;
  let expiresAt: number | undefined;
  let annotations: Record<string, boolean | number> | undefined;
  if (p.retain) annotations = { [RETAIN_ANNOTATION]: true };
  if (props) {
    const headers: Array<[string, HeaderValue]> = [];
    if (props.userProperties) for (const [k, v] of props.userProperties) headers.push([k, v]);
    headers.push([QOS_HEADER, p.qos]);
    properties = {
      deliveryMode: p.qos > 0 ? 2 : 1,
      headers,
      ...(props.contentType !== undefined && { contentType: props.contentType }),
      ...(props.correlationData !== undefined && { correlationId: Buffer.from(props.correlationData) }),
      ...(props.responseTopic !== undefined && { replyTo: topicToKey(props.responseTopic) }),
    };
    if (props.messageExpiryInterval !== undefined) expiresAt = ctx.now + props.messageExpiryInterval * 1000;
    if (props.payloadFormatIndicator === 1) annotations = { ...annotations, [PFI_ANNOTATION]: 1 };
  } else {
    properties = p.qos === 0 ? QOS0_PROPS : p.qos === 1 ? QOS1_PROPS : QOS2_PROPS;
  }
  return createMessage({
    vhost: ctx.vhost,
    exchange: ctx.exchange,
    routingKey,
    body: payload,
    properties,
    ...(annotations && { annotations }),
    publisherId: ctx.publisherId,
    ...(expiresAt !== undefined && { expiresAt }),
    createdAt: ctx.now,
  });
}

const qosProps = (deliveryMode: 1 | 2, qos: QoS): MessageProperties =>
  Object.freeze({ deliveryMode, headers: Object.freeze([Object.freeze([QOS_HEADER, qos] as const)]) });
/** Shared by every property-less PUBLISH of that QoS: no allocation per message. */
const QOS0_PROPS = qosProps(1, 0);
const QOS1_PROPS = qosProps(2, 1);
const QOS2_PROPS = qosProps(2, 2);

/** The QoS the publisher asked for; AMQP messages: persistent → 1, transient → 0 (RabbitMQ). */
export function messageQos(msg: Message): QoS {
  const headers = msg.properties.headers;
  if (headers) {
    for (let i = headers.length - 1; i >= 0; i--) {
      const h = headers[i]!;
      if (h[0] === QOS_HEADER) {
        const q = Number(h[1]);
        return q === 2 ? 2 : q === 1 ? 1 : 0;
      }
    }
  }
  return msg.properties.deliveryMode === 2 ? 1 : 0;
}

function headerToString(v: HeaderValue): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'bigint') return v.toString();
  if (v === null) return '';
  if (typeof v === 'object') return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
  return String(v);
}

const propsCache = new WeakMap<Message, Properties | null>();

/**
 * MQTT 5 PUBLISH properties for a core message, without the per-delivery ones (expiry,
 * subscription identifiers, topic alias). Cached per message: a fan-out builds them once.
 */
export function messageProperties(msg: Message): Properties | null {
  const cached = propsCache.get(msg);
  if (cached !== undefined) return cached;
  const p = msg.properties;
  const out: Properties = {};
  let any = false;
  if (p.headers) {
    const userProperties: Array<[string, string]> = [];
    for (const [k, v] of p.headers) if (!k.startsWith('x-mqtt-')) userProperties.push([k, headerToString(v)]);
    if (userProperties.length > 0) {
      out.userProperties = userProperties;
      any = true;
    }
  }
  if (p.contentType !== undefined) {
    out.contentType = p.contentType;
    any = true;
  }
  if (p.correlationId !== undefined) {
    out.correlationData = typeof p.correlationId === 'string' ? Buffer.from(p.correlationId) : p.correlationId;
    any = true;
  }
  if (p.replyTo !== undefined) {
    out.responseTopic = keyToTopic(p.replyTo);
    any = true;
  }
  if (msg.annotations[PFI_ANNOTATION] === 1) {
    out.payloadFormatIndicator = 1;
    any = true;
  }
  const result = any ? out : null;
  propsCache.set(msg, result);
  return result;
}

/** Payload Format Indicator 1 promises well-formed UTF-8 [MQTT-3.3.2-4]; U+0000 is allowed in a payload. */
export function isUtf8Payload(payload: Buffer): boolean {
  return checkUtf8(payload, 0, payload.length) !== Utf8Check.ILL_FORMED;
}
