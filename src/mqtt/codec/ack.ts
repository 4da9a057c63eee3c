/**
 * PUBACK, PUBREC, PUBREL, PUBCOMP (5.0 §3.4–3.7, 3.1.1 §3.4–3.7): a Packet Identifier and, in
 * 5.0, an optional Reason Code and properties. 5.0 short forms: Remaining Length 2 means reason
 * 0 and no properties; 3 means a reason code and no properties (§3.4.2.1). The encoder writes
 * the shortest form that carries the packet.
 */
import type { AckPacket, ProtocolVersion } from './packets.js';
import { decodeProperties, encodeProperties, propertiesContentSize } from './properties.js';
import { type Reader, readPacketId } from './reader.js';
import { vbiSize } from './vbi.js';
import type { Writer } from './writer.js';

export type AckType = AckPacket['type'];

export function decodeAck(r: Reader, type: AckType, ver: ProtocolVersion): AckPacket {
  const p: AckPacket = { type, packetId: readPacketId(r, ver), reasonCode: 0 };
  if (ver === 5 && r.off < r.end) {
    p.reasonCode = r.readU8();
    if (r.off < r.end) {
      const properties = decodeProperties(r, type);
      if (properties !== undefined) p.properties = properties;
    }
  }
  return p;
}

export function ackSize(p: AckPacket, ver: ProtocolVersion): number {
  if (ver !== 5) return 2;
  const props = propertiesContentSize(p.properties, p.type);
  if (props > 0) return 3 + vbiSize(props) + props;
  return p.reasonCode === 0 ? 2 : 3;
}

export function encodeAck(w: Writer, p: AckPacket, ver: ProtocolVersion): void {
  w.writeU16(p.packetId);
  if (ver !== 5) return;
  const props = propertiesContentSize(p.properties, p.type);
  if (props > 0) {
    w.writeU8(p.reasonCode);
    encodeProperties(w, p.properties, p.type);
  } else if (p.reasonCode !== 0) {
    w.writeU8(p.reasonCode);
  }
}
