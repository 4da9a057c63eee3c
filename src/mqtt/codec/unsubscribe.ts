/**
 * UNSUBSCRIBE (5.0 §3.10, 3.1.1 §3.10): at least one Topic Filter [MQTT-3.10.3-2] — a Protocol
 * Error in 5.0, a Malformed Packet code for 3/4 (which just close the connection).
 */
import type { ProtocolVersion, UnsubscribePacket } from './packets.js';
import { decodeProperties, encodeProperties, propertiesSize, utf8FieldSize } from './properties.js';
import { malformed, protocolError, type Reader, readPacketId } from './reader.js';
import type { Writer } from './writer.js';

const UNSUBSCRIBE = 10;

export function decodeUnsubscribe(r: Reader, ver: ProtocolVersion): UnsubscribePacket {
  const packetId = readPacketId(r, ver);
  const properties = ver === 5 ? decodeProperties(r, UNSUBSCRIBE) : undefined;
  const topicFilters: string[] = [];
  while (r.off < r.end) topicFilters.push(r.readUtf8());
  if (topicFilters.length === 0) {
    throw ver === 5
      ? protocolError('UNSUBSCRIBE without a topic filter', 'MQTT-3.10.3-2')
      : malformed('UNSUBSCRIBE without a topic filter', 'MQTT-3.10.3-2');
  }
  const p: UnsubscribePacket = { type: UNSUBSCRIBE, packetId, topicFilters };
  if (properties !== undefined) p.properties = properties;
  return p;
}

export function unsubscribeSize(p: UnsubscribePacket, ver: ProtocolVersion): number {
  let n = 2;
  if (ver === 5) n += propertiesSize(p.properties, UNSUBSCRIBE);
  for (const f of p.topicFilters) n += utf8FieldSize(f);
  return n;
}

export function encodeUnsubscribe(w: Writer, p: UnsubscribePacket, ver: ProtocolVersion): void {
  w.writeU16(p.packetId);
  if (ver === 5) encodeProperties(w, p.properties, UNSUBSCRIBE);
  for (const f of p.topicFilters) w.writeUtf8(f);
}
