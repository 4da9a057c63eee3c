/**
 * PUBLISH (5.0 §3.3, 3.1.1 §3.3) — the hot path both ways. The payload is the rest of the
 * packet and is returned as a view into the read buffer (STYLE.md habit 6); the encoder can
 * write the header alone so that a large payload goes out as its own chunk (habit 4).
 */
import { MqttProtocolError, type ProtocolVersion, type PublishPacket, type QoS } from './packets.js';
import { decodeProperties, encodeProperties, propertiesSize, utf8FieldSize } from './properties.js';
import { malformed, protocolError, type Reader, readPacketId } from './reader.js';
import type { Writer } from './writer.js';

const PUBLISH = 3;

const Flag = { RETAIN: 0x01, QOS: 0x06, DUP: 0x08 } as const;

/** Fixed-header flag rules for PUBLISH; also run as soon as the first byte arrives. */
export function checkPublishFlags(flags: number): void {
  if ((flags & Flag.QOS) === Flag.QOS) throw malformed('PUBLISH with QoS 3', 'MQTT-3.3.1-4');
  if ((flags & Flag.DUP) !== 0 && (flags & Flag.QOS) === 0) {
    throw malformed('DUP flag on a QoS 0 PUBLISH', 'MQTT-3.3.1-2');
  }
}

/** The flag nibble of the fixed header for `p`. */
export function publishFlags(p: PublishPacket): number {
  return (p.dup ? Flag.DUP : 0) | (p.qos << 1) | (p.retain ? Flag.RETAIN : 0);
}

export function decodePublish(r: Reader, flags: number, ver: ProtocolVersion): PublishPacket {
  checkPublishFlags(flags);
  const qos = ((flags & Flag.QOS) >>> 1) as QoS;
  const topic = r.readUtf8();
  if (topic.length === 0) {
    // 5.0 allows an empty Topic Name with a Topic Alias; the handler checks the alias.
    if (ver !== 5) throw protocolError('empty topic name', 'MQTT-4.7.3-1');
  } else {
    for (let i = 0; i < topic.length; i++) {
      const c = topic.charCodeAt(i);
      if (c === 0x23 || c === 0x2b) {
        throw new MqttProtocolError(0x90, 'wildcard in PUBLISH topic name', 'MQTT-3.3.2-2');
      }
    }
  }
  const packetId = qos > 0 ? readPacketId(r, ver) : 0;
  const properties = ver === 5 ? decodeProperties(r, PUBLISH) : undefined;
  const p: PublishPacket = {
    type: PUBLISH,
    dup: (flags & Flag.DUP) !== 0,
    qos,
    retain: (flags & Flag.RETAIN) !== 0,
    topic,
    payload: r.readRest(),
  };
  if (qos > 0) p.packetId = packetId;
  if (properties !== undefined) p.properties = properties;
  return p;
}

/** Bytes of the variable header (topic, packet id, properties), without the payload. */
export function publishVariableHeaderSize(p: PublishPacket, ver: ProtocolVersion): number {
  let n = utf8FieldSize(p.topic);
  if (p.qos > 0) {
    if (p.packetId === undefined) throw new TypeError('QoS > 0 PUBLISH without a packetId');
    n += 2;
  }
  if (ver === 5) n += propertiesSize(p.properties, PUBLISH);
  return n;
}

/** Remaining Length of the packet: variable header plus payload. */
export function publishSize(p: PublishPacket, ver: ProtocolVersion): number {
  return publishVariableHeaderSize(p, ver) + p.payload.length;
}

export function encodePublishVariableHeader(w: Writer, p: PublishPacket, ver: ProtocolVersion): void {
  w.writeUtf8(p.topic);
  if (p.qos > 0) w.writeU16(p.packetId!);
  if (ver === 5) encodeProperties(w, p.properties, PUBLISH);
}

export function encodePublish(w: Writer, p: PublishPacket, ver: ProtocolVersion): void {
  encodePublishVariableHeader(w, p, ver);
  w.writeBuffer(p.payload);
}
