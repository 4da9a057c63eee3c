/**
 * SUBACK (5.0 §3.9, 3.1.1 §3.9): Packet Identifier, 5.0 properties, one code per filter.
 * 3.1.1 return codes are 0x00, 0x01, 0x02 and 0x80 only [MQTT-3.9.3-2].
 */
import type { ProtocolVersion, SubackPacket } from './packets.js';
import { decodeProperties, encodeProperties, propertiesSize } from './properties.js';
import { malformed, type Reader, readPacketId } from './reader.js';
import type { Writer } from './writer.js';

const SUBACK = 9;

export function decodeSuback(r: Reader, ver: ProtocolVersion): SubackPacket {
  const packetId = readPacketId(r, ver);
  const properties = ver === 5 ? decodeProperties(r, SUBACK) : undefined;
  const reasonCodes: number[] = [];
  while (r.off < r.end) {
    const code = r.readU8();
    if (ver !== 5 && code > 2 && code !== 0x80) {
      throw malformed(`SUBACK return code 0x${code.toString(16)}`, 'MQTT-3.9.3-2');
    }
    reasonCodes.push(code);
  }
  const p: SubackPacket = { type: SUBACK, packetId, reasonCodes };
  if (properties !== undefined) p.properties = properties;
  return p;
}

export function subackSize(p: SubackPacket, ver: ProtocolVersion): number {
  return 2 + (ver === 5 ? propertiesSize(p.properties, SUBACK) : 0) + p.reasonCodes.length;
}

export function encodeSuback(w: Writer, p: SubackPacket, ver: ProtocolVersion): void {
  w.writeU16(p.packetId);
  if (ver === 5) encodeProperties(w, p.properties, SUBACK);
  for (const code of p.reasonCodes) w.writeU8(code);
}
