/**
 * UNSUBACK (5.0 §3.11, 3.1.1 §3.11). In 3/4 it is only a Packet Identifier (Remaining Length
 * 2); in 5.0 properties and one reason code per filter follow.
 */
import type { ProtocolVersion, UnsubackPacket } from './packets.js';
import { decodeProperties, encodeProperties, propertiesSize } from './properties.js';
import { type Reader, readPacketId } from './reader.js';
import type { Writer } from './writer.js';

const UNSUBACK = 11;

export function decodeUnsuback(r: Reader, ver: ProtocolVersion): UnsubackPacket {
  const p: UnsubackPacket = { type: UNSUBACK, packetId: readPacketId(r, ver), reasonCodes: [] };
  if (ver === 5) {
    const properties = decodeProperties(r, UNSUBACK);
    while (r.off < r.end) p.reasonCodes.push(r.readU8());
    if (properties !== undefined) p.properties = properties;
  }
  return p;
}

export function unsubackSize(p: UnsubackPacket, ver: ProtocolVersion): number {
  return ver === 5 ? 2 + propertiesSize(p.properties, UNSUBACK) + p.reasonCodes.length : 2;
}

export function encodeUnsuback(w: Writer, p: UnsubackPacket, ver: ProtocolVersion): void {
  w.writeU16(p.packetId);
  if (ver !== 5) return;
  encodeProperties(w, p.properties, UNSUBACK);
  for (const code of p.reasonCodes) w.writeU8(code);
}
