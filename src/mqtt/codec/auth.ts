/**
 * AUTH (5.0 §3.15), which exists only in 5.0 (type 15 is reserved in 3.1.1). Like DISCONNECT,
 * Remaining Length 0 means reason 0x00 (Success) with no properties (§3.15.2.1).
 */
import type { AuthPacket } from './packets.js';
import { decodeProperties, encodeProperties, propertiesContentSize } from './properties.js';
import type { Reader } from './reader.js';
import { vbiSize } from './vbi.js';
import type { Writer } from './writer.js';

const AUTH = 15;

export function decodeAuth(r: Reader): AuthPacket {
  const p: AuthPacket = { type: AUTH, reasonCode: 0 };
  if (r.off < r.end) {
    p.reasonCode = r.readU8();
    if (r.off < r.end) {
      const properties = decodeProperties(r, AUTH);
      if (properties !== undefined) p.properties = properties;
    }
  }
  return p;
}

export function authSize(p: AuthPacket): number {
  const props = propertiesContentSize(p.properties, AUTH);
  if (props > 0) return 1 + vbiSize(props) + props;
  return p.reasonCode === 0 ? 0 : 1;
}

export function encodeAuth(w: Writer, p: AuthPacket): void {
  const props = propertiesContentSize(p.properties, AUTH);
  if (props > 0) {
    w.writeU8(p.reasonCode);
    encodeProperties(w, p.properties, AUTH);
  } else if (p.reasonCode !== 0) {
    w.writeU8(p.reasonCode);
  }
}
