/**
 * SUBSCRIBE (5.0 §3.8, 3.1.1 §3.8). The decoder checks the options byte and that there is at
 * least one filter; filter syntax is the handler's (validTopicFilter in topic.ts), since 5.0
 * answers a bad filter with SUBACK 0x8F.
 *
 * Reason codes follow 5.0's wording: reserved bits are a Malformed Packet [MQTT-3.8.3-5], while
 * Maximum QoS 3, Retain Handling 3 and an empty payload are Protocol Errors (§3.8.3,
 * [MQTT-3.8.3-2]). 3.1.1 closes the connection for all of them; its reason code is 0x81.
 */
import type { ProtocolVersion, QoS, SubscribePacket, SubscriptionRequest } from './packets.js';
import { decodeProperties, encodeProperties, propertiesSize, utf8FieldSize } from './properties.js';
import { malformed, protocolError, type Reader, readPacketId } from './reader.js';
import type { Writer } from './writer.js';

const SUBSCRIBE = 8;

const Option = { QOS: 0x03, NO_LOCAL: 0x04, RETAIN_AS_PUBLISHED: 0x08, RETAIN_HANDLING: 0x30, RESERVED: 0xc0 } as const;

export function decodeSubscribe(r: Reader, ver: ProtocolVersion): SubscribePacket {
  const packetId = readPacketId(r, ver);
  const properties = ver === 5 ? decodeProperties(r, SUBSCRIBE) : undefined;
  const subscriptions: SubscriptionRequest[] = [];
  while (r.off < r.end) {
    const topicFilter = r.readUtf8();
    const options = r.readU8();
    const qos = options & Option.QOS;
    if (ver === 5) {
      if ((options & Option.RESERVED) !== 0) {
        throw malformed('reserved subscription option bits are set', 'MQTT-3.8.3-5');
      }
      if (qos === 3) throw protocolError('subscription with Maximum QoS 3');
      const retainHandling = (options & Option.RETAIN_HANDLING) >>> 4;
      if (retainHandling === 3) throw protocolError('subscription with Retain Handling 3');
      subscriptions.push({
        topicFilter,
        qos: qos as QoS,
        noLocal: (options & Option.NO_LOCAL) !== 0,
        retainAsPublished: (options & Option.RETAIN_AS_PUBLISHED) !== 0,
        retainHandling: retainHandling as 0 | 1 | 2,
      });
    } else {
      if ((options & ~Option.QOS) !== 0 || qos === 3) {
        throw malformed('reserved bits set or QoS 3 in a requested QoS byte', 'MQTT-3-8.3-4');
      }
      subscriptions.push({ topicFilter, qos: qos as QoS, noLocal: false, retainAsPublished: false, retainHandling: 0 });
    }
  }
  if (subscriptions.length === 0) {
    throw ver === 5
      ? protocolError('SUBSCRIBE without a topic filter', 'MQTT-3.8.3-2')
      : malformed('SUBSCRIBE without a topic filter', 'MQTT-3.8.3-3');
  }
  const p: SubscribePacket = { type: SUBSCRIBE, packetId, subscriptions };
  if (properties !== undefined) p.properties = properties;
  return p;
}

export function subscribeSize(p: SubscribePacket, ver: ProtocolVersion): number {
  let n = 2;
  if (ver === 5) n += propertiesSize(p.properties, SUBSCRIBE);
  for (const s of p.subscriptions) n += utf8FieldSize(s.topicFilter) + 1;
  return n;
}

export function encodeSubscribe(w: Writer, p: SubscribePacket, ver: ProtocolVersion): void {
  w.writeU16(p.packetId);
  if (ver === 5) encodeProperties(w, p.properties, SUBSCRIBE);
  for (const s of p.subscriptions) {
    w.writeUtf8(s.topicFilter);
    let options = s.qos;
    if (ver === 5) {
      if (s.noLocal) options |= Option.NO_LOCAL;
      if (s.retainAsPublished) options |= Option.RETAIN_AS_PUBLISHED;
      options |= s.retainHandling << 4;
    }
    w.writeU8(options);
  }
}
