/**
 * CONNACK (5.0 §3.2, 3.1.1 §3.2). In 3/4 the Remaining Length is always 2; in 3.1 the first
 * byte is unused (no Session Present), so it is written as 0 and ignored when read.
 */
import type { ConnackPacket, ProtocolVersion } from './packets.js';
import { decodeProperties, encodeProperties, propertiesSize } from './properties.js';
import { malformed, type Reader } from './reader.js';
import type { Writer } from './writer.js';

const CONNACK = 2;

export function decodeConnack(r: Reader, ver: ProtocolVersion): ConnackPacket {
  const ackFlags = r.readU8();
  if (ver !== 3 && (ackFlags & 0xfe) !== 0) {
    throw malformed('reserved CONNACK acknowledge flags are set', 'MQTT-3.2.2-1');
  }
  const p: ConnackPacket = { type: CONNACK, sessionPresent: ver !== 3 && ackFlags === 1, reasonCode: r.readU8() };
  if (ver === 5) {
    const properties = decodeProperties(r, CONNACK);
    if (properties !== undefined) p.properties = properties;
  }
  return p;
}

export function connackSize(p: ConnackPacket, ver: ProtocolVersion): number {
  return ver === 5 ? 2 + propertiesSize(p.properties, CONNACK) : 2;
}

export function encodeConnack(w: Writer, p: ConnackPacket, ver: ProtocolVersion): void {
  w.writeU8(ver !== 3 && p.sessionPresent ? 1 : 0);
  w.writeU8(p.reasonCode);
  if (ver === 5) encodeProperties(w, p.properties, CONNACK);
}
