/**
 * Variable Byte Integer (MQTT 5.0 §1.5.5, 3.1.1 §2.2.3): 7 bits per byte, least significant
 * group first, continuation in bit 7, at most 4 bytes, so at most 268,435,455.
 */
import { MqttProtocolError } from './packets.js';

export const VBI_MAX = 268_435_455;

/** Bytes needed to encode `n` (1..4). Throws RangeError outside 0..VBI_MAX. */
export function vbiSize(n: number): number {
  if (n < 128) {
    if (n < 0) throw new RangeError(`variable byte integer ${n} is negative`);
    return 1;
  }
  if (n < 16_384) return 2;
  if (n < 2_097_152) return 3;
  if (n <= VBI_MAX) return 4;
  throw new RangeError(`variable byte integer ${n} exceeds ${VBI_MAX}`);
}

/** Writes `n` at `off` and returns the offset after it. The caller has sized the buffer. */
export function writeVBI(buf: Buffer, off: number, n: number): number {
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    buf[off++] = b;
  } while (n > 0);
  return off;
}

/**
 * Reads a VBI from buf[off..end). Returns the value, or -1 when the bytes stop before the last
 * byte of the integer. Because the encoding must be minimal, the number of bytes read is always
 * `vbiSize(value)`, so no second result is needed.
 * Throws 0x81 for a fifth byte or a non-minimal encoding [MQTT-1.5.5-1].
 */
export function readVBI(buf: Buffer, off: number, end: number): number {
  let value = 0;
  let mul = 1;
  for (let n = 0; n < 4; n++) {
    if (off + n >= end) return -1;
    const b = buf[off + n]!;
    value += (b & 0x7f) * mul;
    if (b < 0x80) {
      // A multi-byte integer whose last byte is 0 could have been shorter.
      if (b === 0 && n > 0) {
        throw new MqttProtocolError(0x81, 'variable byte integer is not minimally encoded', 'MQTT-1.5.5-1');
      }
      return value;
    }
    mul *= 128;
  }
  // §1.5.5 caps the field at four bytes; there is no statement id for it.
  throw new MqttProtocolError(0x81, 'variable byte integer longer than 4 bytes (§1.5.5)');
}
