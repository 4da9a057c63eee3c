/**
 * MQTT ⇄ core mapping (DESIGN.md "MQTT on the model"): topics ⇄ routing keys by swapping `/`
 * and `.` both ways, and MQTT 5 properties ⇄ AMQP basic properties and headers, after
 * RabbitMQ's mc_mqtt conventions.
 */
import {
  type Annotations,
  createMessage,
  type HeaderValue,
  type Message,
  type MessageProperties,
} from '../core/broker-core.js';
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

/** The inverse of `filterToBindingKey`: a stored binding back to its MQTT filter. */
export function bindingKeyToFilter(key: string): string {
  const levels = key.split('.');
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    levels[i] = l === '*' ? '+' : l.replace(SWAP, swapChar);
  }
  return levels.join('/');
}

/**
 * The publisher's QoS, as a header for AMQP consumers: RabbitMQ 3.x before 3.13 set it
 * (`rabbit_mqtt_processor`); 3.13/4.x (`mc_mqtt:convert_to(mc_amqpl, ...)`) set only delivery-mode.
 * Braid keeps both. The same key names the annotation that marks an MQTT-published message.
 */
export const QOS_HEADER = 'x-mqtt-publish-qos';
export const QOS_ANNOTATION = 'x-mqtt-publish-qos';
export const RETAIN_ANNOTATION = 'x-mqtt-retain';
export const PFI_ANNOTATION = 'x-mqtt-payload-format';
/** AMQP 0-9-1 headers RabbitMQ uses for what basic properties cannot hold (mc_mqtt.erl). */
export const REPLY_TO_TOPIC_HEADER = 'x-reply-to-topic';
export const CORRELATION_HEADER = 'x-correlation-id';

export interface PublishContext {
  vhost: string;
  exchange: string;
  publisherId: string;
  now: number;
}

/**
 * Builds the core message for an inbound PUBLISH whose topic is already `routingKey`
 * (`topicToKey`, computed once by the caller). `payload` must be a buffer the message may own.
 * After mc_mqtt `convert_to(mc_amqpl, ...)`: QoS 0 → delivery-mode 1, QoS 1/2 → 2; user
 * properties → headers (order and repeats kept here; the 0-9-1 side drops repeats); Content
 * Type → content-type; Correlation Data → correlation-id (bytes); Response Topic → reply-to (a
 * routing key); Message Expiry Interval → the message's expiry. Retain and Payload Format
 * Indicator are annotations: RabbitMQ carries neither to AMQP 0-9-1.
 */
export function publishToMessage(p: PublishPacket, routingKey: string, payload: Buffer, ctx: PublishContext): Message {
  const props = p.properties;
  let properties: MessageProperties = QOS_PROPS[p.qos];
  let expiresAt: number | undefined;
  let annotations: Annotations = (p.retain ? RETAINED_ANN : PLAIN_ANN)[p.qos];
  if (props) {
    if (
      props.userProperties !== undefined ||
      props.contentType !== undefined ||
      props.correlationData !== undefined ||
      props.responseTopic !== undefined
    ) {
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
    }
    if (props.messageExpiryInterval !== undefined) expiresAt = ctx.now + props.messageExpiryInterval * 1000;
    if (props.payloadFormatIndicator === 1) annotations = { ...annotations, [PFI_ANNOTATION]: 1 };
  }
  return createMessage({
    vhost: ctx.vhost,
    exchange: ctx.exchange,
    routingKey,
    body: payload,
    properties,
    annotations,
    publisherId: ctx.publisherId,
    ...(expiresAt !== undefined && { expiresAt }),
    createdAt: ctx.now,
  });
}

const qosProps = (qos: QoS): MessageProperties =>
  Object.freeze({
    deliveryMode: qos > 0 ? 2 : 1,
    headers: Object.freeze([Object.freeze([QOS_HEADER, qos] as const)]),
  });
/** Shared by every PUBLISH of that QoS without message properties: no allocation per message. */
const QOS_PROPS: readonly MessageProperties[] = [qosProps(0), qosProps(1), qosProps(2)];
const qosAnn = (qos: QoS, retain: boolean): Annotations => {
  const a: Record<string, number | boolean> = { [QOS_ANNOTATION]: qos };
  if (retain) a[RETAIN_ANNOTATION] = true;
  return Object.freeze(a);
};
const PLAIN_ANN: readonly Annotations[] = [qosAnn(0, false), qosAnn(1, false), qosAnn(2, false)];
const RETAINED_ANN: readonly Annotations[] = [qosAnn(0, true), qosAnn(1, true), qosAnn(2, true)];

/**
 * The QoS a message has for MQTT subscribers, before the subscription's maximum is applied:
 * what the MQTT publisher used, else 1 if persistent and 0 if not (mc_mqtt
 * `convert_from(mc_amqpl, ...)`: delivery_mode 2 → QoS 1). An `x-mqtt-publish-qos` header on
 * an AMQP publish (one that republishes an MQTT message, say) does not count.
 */
export function messageQos(msg: Message): QoS {
  const q = msg.annotations[QOS_ANNOTATION];
  if (q !== undefined) return q as QoS;
  return msg.properties.deliveryMode === 2 ? 1 : 0;
}

/**
 * An AMQP 0-9-1 header value as an MQTT User Property value, or undefined when it has none
 * (mc_mqtt `amqpl_field_to_utf8_string_pair/1`): strings without U+0000; integers and floats in
 * decimal; booleans `true`/`false`; void → ``; timestamps in seconds; byte arrays, arrays and
 * tables are dropped ("Raw binary data is not UTF-8 encoded").
 */
export function headerToUserProperty(v: HeaderValue): string | undefined {
  switch (typeof v) {
    case 'string':
      return v.includes('\0') ? undefined : v;
    case 'number':
    case 'bigint':
      return String(v);
    case 'boolean':
      return v ? 'true' : 'false';
    default:
      if (v === null) return '';
      if (v instanceof Date) return String(Math.floor(v.getTime() / 1000));
      return undefined;
  }
}

/**
 * An AMQP reply-to as an MQTT Response Topic. A routing key is swapped like any topic (DESIGN.md;
 * RabbitMQ ignores reply_to from 0-9-1). RabbitMQ's address forms for the MQTT exchange are
 * understood as in mc_mqtt `convert_from(mc_amqp, ...)`: `/exchanges/X/key` (percent-encoded,
 * 4.x) and `/exchange/X/key`, `/topic/key` (3.13); an address of another exchange has no topic.
 */
export function replyToTopic(replyTo: string, mqttExchange: string): string | undefined {
  if (replyTo.charCodeAt(0) !== 0x2f) return keyToTopic(replyTo);
  let key: string | undefined;
  if (replyTo.startsWith('/topic/')) key = mqttExchange === 'amq.topic' ? replyTo.slice(7) : undefined;
  else if (replyTo.startsWith('/exchange/')) key = addressKey(replyTo.slice(10), mqttExchange, false);
  else if (replyTo.startsWith('/exchanges/')) key = addressKey(replyTo.slice(11), mqttExchange, true);
  else return keyToTopic(replyTo);
  return key === undefined ? undefined : keyToTopic(key);
}

function addressKey(rest: string, mqttExchange: string, encoded: boolean): string | undefined {
  const slash = rest.indexOf('/');
  if (slash === -1) return undefined;
  let x = rest.slice(0, slash);
  let key = rest.slice(slash + 1);
  if (encoded) {
    try {
      x = decodeURIComponent(x);
      key = decodeURIComponent(key);
    } catch {
      return undefined;
    }
  }
  return x === mqttExchange ? key : undefined;
}

const propsCache = new WeakMap<Message, Properties | null>();

/**
 * MQTT 5 PUBLISH properties for a core message, without the per-delivery ones (expiry,
 * subscription identifiers, topic alias). Cached per message: a fan-out builds them once.
 *
 * An MQTT-published message gets its own properties back. Any other follows mc_mqtt
 * `convert_from(mc_amqpl, ...)`: content-type → Content Type; correlation-id, else the
 * `x-correlation-id` header → Correlation Data; the `x-reply-to-topic` header, else reply-to
 * (`replyToTopic`) → Response Topic; the other headers → User Properties in order
 * (`headerToUserProperty`); content-encoding, message-id, type, app-id, user-id, timestamp and
 * priority have no MQTT counterpart and are dropped. `x-mqtt-publish-qos` never becomes a User
 * Property. `mqttExchange` (the MQTT topic exchange) defaults to the message's exchange.
 */
export function messageProperties(msg: Message, mqttExchange: string = msg.exchange): Properties | null {
  const cached = propsCache.get(msg);
  if (cached !== undefined) return cached;
  const p = msg.properties;
  const fromMqtt = msg.annotations[QOS_ANNOTATION] !== undefined;
  let correlation: Buffer | undefined;
  if (p.correlationId !== undefined) {
    correlation = typeof p.correlationId === 'string' ? Buffer.from(p.correlationId) : p.correlationId;
  }
  let responseTopic: string | undefined;
  let userProperties: Array<[string, string]> | undefined;
  const headers = p.headers;
  if (headers) {
    for (let i = 0; i < headers.length; i++) {
      const [k, v] = headers[i]!;
      if (k === QOS_HEADER) continue;
      if (!fromMqtt) {
        if (k === REPLY_TO_TOPIC_HEADER && responseTopic === undefined && typeof v === 'string') {
          responseTopic = keyToTopic(v);
          continue;
        }
        if (k === CORRELATION_HEADER && correlation === undefined) {
          if (typeof v === 'string') correlation = Buffer.from(v);
          else if (Buffer.isBuffer(v)) correlation = v;
          if (correlation !== undefined) continue;
        }
      }
      const s = headerToUserProperty(v);
      if (s !== undefined && !k.includes('\0')) (userProperties ??= []).push([k, s]);
    }
  }
  if (responseTopic === undefined && p.replyTo !== undefined) {
    responseTopic = fromMqtt ? keyToTopic(p.replyTo) : replyToTopic(p.replyTo, mqttExchange);
  }
  // [MQTT-3.3.2-14]: a Response Topic is a topic name: not empty, no wildcards (nor U+0000).
  if (responseTopic !== undefined && !fromMqtt && !/^[^+#\0]+$/.test(responseTopic)) responseTopic = undefined;
  const out: Properties = {};
  let any = false;
  if (userProperties !== undefined) {
    out.userProperties = userProperties;
    any = true;
  }
  if (p.contentType !== undefined && (fromMqtt || !p.contentType.includes('\0'))) {
    out.contentType = p.contentType;
    any = true;
  }
  if (correlation !== undefined) {
    out.correlationData = correlation;
    any = true;
  }
  if (responseTopic !== undefined) {
    out.responseTopic = responseTopic;
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
