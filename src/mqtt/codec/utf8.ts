/**
 * MQTT UTF-8 Encoded Strings (5.0 §1.5.4, 3.1.1 §1.5.3): well-formed UTF-8 as defined by
 * RFC 3629 / Unicode Table 3-7 — no overlong forms, no encoded surrogates U+D800..U+DFFF and
 * nothing above U+10FFFF [MQTT-1.5.4-1] — and no U+0000 [MQTT-1.5.4-2]. A leading BOM is kept
 * as U+FEFF, never stripped [MQTT-1.5.4-3].
 *
 * Topics, client ids and property strings are short and almost always ASCII, so decoding
 * scans for bytes 0x01..0x7F first and only then falls back to the full check; no regex and no
 * TextDecoder (which would need a subarray per string) on the hot path.
 */
import { MqttProtocolError } from './packets.js';

export const Utf8Check = { OK: 0, ILL_FORMED: 1, NULL_CHARACTER: 2 } as const;
export type Utf8CheckResult = (typeof Utf8Check)[keyof typeof Utf8Check];

/**
 * Checks buf[start..end) strictly. ILL_FORMED wins over NULL_CHARACTER wherever they are, so
 * `!== ILL_FORMED` alone checks UTF-8 Encoded Character Data (a 5.0 payload with Payload
 * Format Indicator 1), where U+0000 is allowed.
 */
export function checkUtf8(buf: Buffer, start: number, end: number): Utf8CheckResult {
  let sawNull = false;
  let i = start;
  while (i < end) {
    const b = buf[i]!;
    if (b < 0x80) {
      if (b === 0) sawNull = true;
      i++;
      continue;
    }
    // 0x80..0xBF cannot lead; 0xC0/0xC1 only start overlong 2-byte forms.
    if (b < 0xc2) return Utf8Check.ILL_FORMED;
    if (b < 0xe0) {
      if (i + 1 >= end || (buf[i + 1]! & 0xc0) !== 0x80) return Utf8Check.ILL_FORMED;
      i += 2;
      continue;
    }
    if (b < 0xf0) {
      if (i + 2 >= end) return Utf8Check.ILL_FORMED;
      const b1 = buf[i + 1]!;
      // E0 needs A0..BF (else overlong); ED needs 80..9F (else a surrogate).
      const lo = b === 0xe0 ? 0xa0 : 0x80;
      const hi = b === 0xed ? 0x9f : 0xbf;
      if (b1 < lo || b1 > hi || (buf[i + 2]! & 0xc0) !== 0x80) return Utf8Check.ILL_FORMED;
      i += 3;
      continue;
    }
    if (b < 0xf5) {
      if (i + 3 >= end) return Utf8Check.ILL_FORMED;
      const b1 = buf[i + 1]!;
      // F0 needs 90..BF (else overlong); F4 needs 80..8F (else above U+10FFFF).
      const lo = b === 0xf0 ? 0x90 : 0x80;
      const hi = b === 0xf4 ? 0x8f : 0xbf;
      if (b1 < lo || b1 > hi || (buf[i + 2]! & 0xc0) !== 0x80 || (buf[i + 3]! & 0xc0) !== 0x80) {
        return Utf8Check.ILL_FORMED;
      }
      i += 4;
      continue;
    }
    return Utf8Check.ILL_FORMED;
  }
  return sawNull ? Utf8Check.NULL_CHARACTER : Utf8Check.OK;
}

const TINY_STRING = 8;

/** Decodes buf[start..end) as an MQTT UTF-8 string; throws 0x81 when it is not one. */
export function decodeUtf8(buf: Buffer, start: number, end: number): string {
  if (end - start <= TINY_STRING) {
    // Property keys and values are often a few bytes: building them in JS beats the native
    // call's fixed cost (about 60 ns on Node 20).
    let s = '';
    for (let i = start; i < end; i++) {
      const b = buf[i]!;
      if (b === 0 || b >= 0x80) return decodeChecked(buf, start, end, i);
      s += String.fromCharCode(b);
    }
    return s;
  }
  let i = start;
  for (; i < end; i++) {
    const b = buf[i]!;
    if (b === 0 || b >= 0x80) break;
  }
  if (i === end) return buf.toString('latin1', start, end);
  return decodeChecked(buf, start, end, i);
}

/** The slow path: buf[start..from) is known to be ASCII without U+0000. */
function decodeChecked(buf: Buffer, start: number, end: number, from: number): string {
  const check = checkUtf8(buf, from, end);
  if (check === Utf8Check.NULL_CHARACTER) {
    throw new MqttProtocolError(0x81, 'UTF-8 string contains U+0000', 'MQTT-1.5.4-2');
  }
  if (check === Utf8Check.ILL_FORMED) {
    throw new MqttProtocolError(0x81, 'ill-formed UTF-8 string', 'MQTT-1.5.4-1');
  }
  return buf.toString('utf8', start, end);
}

/** Below this many UTF-16 units a JS loop beats the native call (measured on Node 20). */
const SHORT_STRING = 64;

/**
 * Bytes `s` takes in UTF-8, matching what `Buffer.write` produces (a lone surrogate becomes
 * U+FFFD, 3 bytes).
 */
export function utf8Length(s: string): number {
  const n = s.length;
  if (n >= SHORT_STRING) return Buffer.byteLength(s, 'utf8');
  let len = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      len += 1;
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      // A surrogate pair: 2 units, 4 bytes.
      len += 2;
      i++;
    } else {
      len += 2;
    }
  }
  return len;
}

/** Writes `s` as UTF-8 at `off` and returns the number of bytes written. */
export function writeUtf8(buf: Buffer, off: number, s: string): number {
  const n = s.length;
  if (n < SHORT_STRING) {
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[off + i] = c;
    }
    if (i === n) return n;
  }
  return buf.write(s, off, 'utf8');
}
