/**
 * PINGREQ and PINGRESP (§3.12, §3.13): a fixed header with Remaining Length 0 in every version.
 * The pre-built wire forms let a connection answer a ping without encoding (STYLE.md habit 4);
 * they are shared, so never write into them.
 */
import type { PingreqPacket, PingrespPacket } from './packets.js';

export const PINGREQ_BYTES: Buffer = Buffer.from([0xc0, 0x00]);
export const PINGRESP_BYTES: Buffer = Buffer.from([0xd0, 0x00]);

/** The body is empty: the caller rejects any byte inside the Remaining Length. */
export function decodePingreq(): PingreqPacket {
  return { type: 12 };
}

export function decodePingresp(): PingrespPacket {
  return { type: 13 };
}

export function pingSize(): number {
  return 0;
}
