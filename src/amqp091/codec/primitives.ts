/**
 * Writers for the AMQP 0-9-1 argument types that need more than one Buffer call. The generated
 * method and property codecs call these; decoding is inlined in the generated code, so there is
 * no reader here. Every writer takes the offset to write at and returns the offset after it, and
 * writes into a buffer the caller sized with the matching `…Length`/`…Size` function (habit 4).
 *
 * Size functions throw RangeError for values the wire cannot carry (a shortstr over 255 bytes):
 * that is a bug in the caller, not a peer's protocol error.
 */

const TWO_32 = 4294967296;

/** Byte length of a shortstr's text (without its length octet); throws RangeError above 255. */
export function shortstrLength(s: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  if (n > 255) throw new RangeError(`shortstr of ${n} bytes: AMQP 0-9-1 allows at most 255 (§4.2.5.3)`);
  return n;
}

export function writeShortstr(b: Buffer, o: number, s: string): number {
  const n = s.length === 0 ? 0 : b.write(s, o + 1, 'utf8');
  b[o] = n;
  return o + 1 + n;
}

/** Byte length of a longstr's content (without its 4-byte length). */
export function longstrLength(v: Buffer | string): number {
  return typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length;
}

export function writeLongstr(b: Buffer, o: number, v: Buffer | string): number {
  let n: number;
  if (typeof v === 'string') {
    n = v.length === 0 ? 0 : b.write(v, o + 4, 'utf8');
  } else {
    n = v.length;
    b.set(v, o + 4);
  }
  b.writeUInt32BE(n, o);
  return o + 4 + n;
}

/**
 * longlong and timestamp as two uint32 writes: exact for 0 ≤ v ≤ 2^53, which covers delivery
 * tags. RangeError (from writeUInt32BE) for negative values.
 */
export function writeLonglong(b: Buffer, o: number, v: number): number {
  const hi = Math.floor(v / TWO_32);
  b.writeUInt32BE(hi, o);
  b.writeUInt32BE(v - hi * TWO_32, o + 4);
  return o + 8;
}
