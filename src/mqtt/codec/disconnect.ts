/**
 * DISCONNECT (5.0 §3.14, 3.1.1 §3.14). In 3/4 the Remaining Length is 0. In 5.0 the Reason
 * Code and properties are optional: Remaining Length 0 means reason 0x00 (§3.14.2.1), 1 means a
 * reason code and no properties. The encoder writes the shortest form.
 */
import type { DisconnectPacket, ProtocolVersion } from './packets.js';
import { decodeProperties, encodeProperties, propertiesContentSize } from './properties.js';
import type { Reader } from './reader.js';
import { vbiSize } from './vbi.js';
import type { Writer } from './writer.js';

const DISCONNECT = 14;

export function decodeDisconnect(r: Reader, ver: ProtocolVersion): DisconnectPacket {
  const p: DisconnectPacket = { type: DISCONNECT, reasonCode: 0 };
  if (ver === 5 && r.off < r.end) {
    p.reasonCode = r.readU8();
    if (r.off < r.end) {
      const properties = decodeProperties(r, DISCONNECT);
      if (properties !== undefined) p.properties = properties;
    }
  }
  return p;
}

export function disconnectSize(p: DisconnectPacket, ver: ProtocolVersion): number {
  if (ver !== 5) return 0;
  const props = propertiesContentSize(p.properties, DISCONNECT);
  if (props > 0) return 1 + vbiSize(props) + props;
  return p.reasonCode === 0 ? 0 : 1;
}

export function encodeDisconnect(w: Writer, p: DisconnectPacket, ver: ProtocolVersion): void {
  if (ver !== 5) return;
  const props = propertiesContentSize(p.properties, DISCONNECT);
  if (props > 0) {
    w.writeU8(p.reasonCode);
    encodeProperties(w, p.properties, DISCONNECT);
  } else if (p.reasonCode !== 0) {
    w.writeU8(p.reasonCode);
  }
}
