/**
 * AMQP 0-9-1 field tables and field values, with RabbitMQ's type letters (the 0-9-1 errata,
 * https://www.rabbitmq.com/amqp-0-9-1-errata.html, and `rabbit_binary_parser.erl` `parse_table/1`):
 *
 *   t bool      b int8     B uint8    s int16    u uint16   I int32    i uint32
 *   l int64     L int64    f float32  d float64  D decimal  S longstr  x byte array
 *   A array     T timestamp (uint64 seconds)     F table    V void
 *
 * Decoding: S → string (UTF-8), x → Buffer (a copy: never a view into a socket chunk), T → Date,
 * l/L → number when it is a safe integer, otherwise bigint, D → number (lossy), V → null.
 * Encoding picks the letter from the JS type: string S, Buffer x, boolean t, null/undefined V,
 * Date T, bigint l, array A, plain object F; a number is I when it fits int32, l when it is
 * another safe integer, d otherwise.
 *
 * Any decoding failure is an AmqpCodecError(502); encoding a value the wire cannot carry (a key
 * over 255 bytes, a function) is a RangeError/TypeError, a bug in the caller.
 */
import { AmqpCodecError } from './errors.js';
import { shortstrLength, writeShortstr } from './primitives.js';

/** A field value, the same shape as the core's HeaderValue (src/core/message.ts). */
export type FieldValue = string | number | bigint | boolean | null | Buffer | Date | FieldValue[] | FieldTable;
/** Method arguments and nested tables. */
export type FieldTable = { [key: string]: FieldValue };
/** Message headers (basic properties): pairs, so that order and repeated keys survive. */
export type HeaderPairs = ReadonlyArray<readonly [string, FieldValue]>;

const TWO_32 = 4294967296;

/**
 * Nesting limit for F and A values. Each level costs a peer at most 7 bytes, so without a limit a
 * 128 KiB frame could recurse ~18,000 deep and overflow the stack (a RangeError, not a 502).
 * RabbitMQ has no limit (Erlang recursion is heap-allocated); 100 is far above any real use.
 */
const MAX_DEPTH = 100;

// Type letters.
const T_BOOL = 0x74; // t
const T_INT8 = 0x62; // b
const T_UINT8 = 0x42; // B
const T_INT16 = 0x73; // s
const T_UINT16 = 0x75; // u
const T_INT32 = 0x49; // I
const T_UINT32 = 0x69; // i
const T_INT64 = 0x6c; // l
const T_INT64_L = 0x4c; // L
const T_FLOAT = 0x66; // f
const T_DOUBLE = 0x64; // d
const T_DECIMAL = 0x44; // D
const T_LONGSTR = 0x53; // S
const T_BYTES = 0x78; // x
const T_ARRAY = 0x41; // A
const T_TIMESTAMP = 0x54; // T
const T_TABLE = 0x46; // F
const T_VOID = 0x56; // V

function truncated(what: string): never {
  throw new AmqpCodecError(502, `field table: ${what} truncated`);
}

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * Offset just past the value the last readFieldValue call decoded. A module-level cursor instead
 * of a returned {value, next} pair: no allocation per value. Set last, after any recursion.
 */
let valueEnd = 0;

function readFieldValue(b: Buffer, o: number, end: number, depth: number): FieldValue {
  if (o >= end) truncated('value');
  const tag = b[o]!;
  o += 1;
  switch (tag) {
    case T_LONGSTR: {
      if (o + 4 > end) truncated('longstr length');
      const n = b.readUInt32BE(o);
      o += 4;
      if (n > end - o) truncated('longstr');
      valueEnd = o + n;
      return b.toString('utf8', o, o + n);
    }
    case T_INT32:
      if (o + 4 > end) truncated('int32');
      valueEnd = o + 4;
      return b.readInt32BE(o);
    case T_TABLE: {
      if (o + 4 > end) truncated('table length');
      const n = b.readUInt32BE(o);
      o += 4;
      if (n > end - o) truncated('nested table');
      if (depth >= MAX_DEPTH) throw new AmqpCodecError(502, `field table nested deeper than ${MAX_DEPTH}`);
      const t = readTableBody(b, o, o + n, depth + 1);
      valueEnd = o + n;
      return t;
    }
    case T_BOOL:
      if (o >= end) truncated('bool');
      valueEnd = o + 1;
      return b[o] !== 0;
    case T_INT64:
    case T_INT64_L: {
      // RabbitMQ reads both l and L as signed 64-bit (rabbit_binary_parser.erl, errata).
      if (o + 8 > end) truncated('int64');
      valueEnd = o + 8;
      const hi = b.readInt32BE(o);
      if (hi >= -0x200000 && hi < 0x200000) {
        const v = hi * TWO_32 + b.readUInt32BE(o + 4);
        if (Number.isSafeInteger(v)) return v;
      }
      return b.readBigInt64BE(o);
    }
    case T_TIMESTAMP:
      if (o + 8 > end) truncated('timestamp');
      valueEnd = o + 8;
      return new Date((b.readUInt32BE(o) * TWO_32 + b.readUInt32BE(o + 4)) * 1000);
    case T_ARRAY: {
      if (o + 4 > end) truncated('array length');
      const n = b.readUInt32BE(o);
      o += 4;
      if (n > end - o) truncated('array');
      if (depth >= MAX_DEPTH) throw new AmqpCodecError(502, `field array nested deeper than ${MAX_DEPTH}`);
      const a = readArrayBody(b, o, o + n, depth + 1);
      valueEnd = o + n;
      return a;
    }
    case T_BYTES: {
      if (o + 4 > end) truncated('byte array length');
      const n = b.readUInt32BE(o);
      o += 4;
      if (n > end - o) truncated('byte array');
      valueEnd = o + n;
      // A copy: a header value outlives the socket chunk it arrived in.
      return Buffer.from(b.subarray(o, o + n));
    }
    case T_VOID:
      valueEnd = o;
      return null;
    case T_INT8:
      if (o >= end) truncated('int8');
      valueEnd = o + 1;
      return b.readInt8(o);
    case T_UINT8:
      if (o >= end) truncated('uint8');
      valueEnd = o + 1;
      return b[o]!;
    case T_INT16:
      if (o + 2 > end) truncated('int16');
      valueEnd = o + 2;
      return b.readInt16BE(o);
    case T_UINT16:
      if (o + 2 > end) truncated('uint16');
      valueEnd = o + 2;
      return b.readUInt16BE(o);
    case T_UINT32:
      if (o + 4 > end) truncated('uint32');
      valueEnd = o + 4;
      return b.readUInt32BE(o);
    case T_FLOAT:
      if (o + 4 > end) truncated('float');
      valueEnd = o + 4;
      return b.readFloatBE(o);
    case T_DOUBLE:
      if (o + 8 > end) truncated('double');
      valueEnd = o + 8;
      return b.readDoubleBE(o);
    case T_DECIMAL:
      // scale octet + 32-bit digits (unsigned, as RabbitMQ reads it). Returned as digits / 10^scale:
      // lossy (binary floating point, and scales above ~22 underflow precision), but a decimal in
      // a header is rare and nothing in the broker computes with it.
      if (o + 5 > end) truncated('decimal');
      valueEnd = o + 5;
      return b.readUInt32BE(o + 1) / 10 ** b[o]!;
    default:
      throw new AmqpCodecError(502, `field table: unknown field value type 0x${tag.toString(16).padStart(2, '0')}`);
  }
}

function readArrayBody(b: Buffer, o: number, end: number, depth: number): FieldValue[] {
  const a: FieldValue[] = [];
  while (o < end) {
    a.push(readFieldValue(b, o, end, depth));
    o = valueEnd;
  }
  return a;
}

function readTableBody(b: Buffer, o: number, end: number, depth: number): FieldTable {
  const t: FieldTable = {};
  while (o < end) {
    const kl = b[o]!;
    o += 1;
    if (kl > end - o) truncated('key');
    const key = b.toString('utf8', o, o + kl);
    o += kl;
    const v = readFieldValue(b, o, end, depth);
    o = valueEnd;
    setKey(t, key, v);
  }
  return t;
}

/** Plain objects, but a `__proto__` key becomes an own property instead of a prototype change. */
function setKey(t: FieldTable, key: string, v: FieldValue): void {
  if (key === '__proto__') {
    Object.defineProperty(t, key, { value: v, enumerable: true, writable: true, configurable: true });
  } else {
    t[key] = v;
  }
}

/**
 * The table whose body (after its 4-byte length) is b[o..end). Throws AmqpCodecError(502), tagged
 * with `method` ((classId << 16) | methodId) when the table is that method's argument.
 */
export function readFieldTable(b: Buffer, o: number, end: number, method = 0): FieldTable {
  try {
    return readTableBody(b, o, end, 0);
  } catch (e) {
    if (method !== 0 && e instanceof AmqpCodecError) throw new AmqpCodecError(e.code, e.message, method);
    throw e;
  }
}

/** Header pairs from the table body b[o..end), in wire order. Throws AmqpCodecError(502). */
export function readHeaderPairs(b: Buffer, o: number, end: number): Array<[string, FieldValue]> {
  const pairs: Array<[string, FieldValue]> = [];
  while (o < end) {
    const kl = b[o]!;
    o += 1;
    if (kl > end - o) truncated('key');
    const key = b.toString('utf8', o, o + kl);
    o += kl;
    const v = readFieldValue(b, o, end, 0);
    o = valueEnd;
    pairs.push([key, v]);
  }
  return pairs;
}

/** Decodes a complete encoded table (4-byte length + body), as encodeFieldTable writes it. */
export function decodeFieldTable(buf: Buffer): FieldTable {
  if (buf.length < 4) truncated('length');
  const n = buf.readUInt32BE(0);
  if (n !== buf.length - 4) {
    throw new AmqpCodecError(502, `field table: length ${n} does not match the ${buf.length - 4} bytes given`);
  }
  return readTableBody(buf, 4, buf.length, 0);
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Encoded size of one value including its type letter. */
export function fieldValueSize(v: FieldValue | undefined): number {
  switch (typeof v) {
    case 'string':
      return 5 + Buffer.byteLength(v, 'utf8');
    case 'number':
      return (v | 0) === v ? 5 : 9;
    case 'boolean':
      return 2;
    case 'bigint':
      return 9;
    case 'undefined':
      return 1;
    case 'object':
      if (v === null) return 1;
      if (v instanceof Uint8Array) return 5 + v.length;
      if (v instanceof Date) return 9;
      if (Array.isArray(v)) return 1 + fieldArraySize(v);
      return 1 + fieldTableSize(v);
    default:
      throw new TypeError(`cannot encode a ${typeof v} in an AMQP field table`);
  }
}

function fieldArraySize(a: readonly FieldValue[]): number {
  let n = 4;
  for (let i = 0; i < a.length; i++) n += fieldValueSize(a[i]);
  return n;
}

/** Encoded size of a table including its 4-byte length. `undefined` encodes as an empty table. */
export function fieldTableSize(t: FieldTable | undefined): number {
  let n = 4;
  if (t == null) return n;
  const keys = Object.keys(t);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    n += 1 + shortstrLength(k) + fieldValueSize(t[k]);
  }
  return n;
}

/** Encoded size of header pairs as a table, including the 4-byte length. */
export function headerPairsSize(h: HeaderPairs): number {
  let n = 4;
  for (let i = 0; i < h.length; i++) {
    const p = h[i]!;
    n += 1 + shortstrLength(p[0]) + fieldValueSize(p[1]);
  }
  return n;
}

export function writeFieldValue(b: Buffer, o: number, v: FieldValue | undefined): number {
  switch (typeof v) {
    case 'string': {
      b[o] = T_LONGSTR;
      const n = v.length === 0 ? 0 : b.write(v, o + 5, 'utf8');
      b.writeUInt32BE(n, o + 1);
      return o + 5 + n;
    }
    case 'number':
      if ((v | 0) === v) {
        b[o] = T_INT32;
        return b.writeInt32BE(v, o + 1);
      }
      if (Number.isSafeInteger(v)) {
        b[o] = T_INT64;
        const hi = Math.floor(v / TWO_32);
        b.writeInt32BE(hi, o + 1);
        return b.writeUInt32BE(v - hi * TWO_32, o + 5);
      }
      b[o] = T_DOUBLE;
      return b.writeDoubleBE(v, o + 1);
    case 'boolean':
      b[o] = T_BOOL;
      b[o + 1] = v ? 1 : 0;
      return o + 2;
    case 'bigint':
      b[o] = T_INT64;
      return b.writeBigInt64BE(v, o + 1);
    case 'undefined':
      b[o] = T_VOID;
      return o + 1;
    case 'object': {
      if (v === null) {
        b[o] = T_VOID;
        return o + 1;
      }
      if (v instanceof Uint8Array) {
        b[o] = T_BYTES;
        b.writeUInt32BE(v.length, o + 1);
        b.set(v, o + 5);
        return o + 5 + v.length;
      }
      if (v instanceof Date) {
        const s = Math.floor(v.getTime() / 1000);
        if (!(s >= 0)) throw new RangeError(`timestamp field value must be a valid date after 1970: ${v}`);
        b[o] = T_TIMESTAMP;
        const hi = Math.floor(s / TWO_32);
        b.writeUInt32BE(hi, o + 1);
        return b.writeUInt32BE(s - hi * TWO_32, o + 5);
      }
      if (Array.isArray(v)) {
        b[o] = T_ARRAY;
        const start = o + 1;
        o += 5;
        for (let i = 0; i < v.length; i++) o = writeFieldValue(b, o, v[i]);
        b.writeUInt32BE(o - start - 4, start);
        return o;
      }
      b[o] = T_TABLE;
      return writeFieldTable(b, o + 1, v);
    }
    default:
      throw new TypeError(`cannot encode a ${typeof v} in an AMQP field table`);
  }
}

/** Writes the 4-byte length and the table; returns the offset after it. */
export function writeFieldTable(b: Buffer, o: number, t: FieldTable | undefined): number {
  const start = o;
  o += 4;
  if (t != null) {
    const keys = Object.keys(t);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      o = writeShortstr(b, o, k);
      o = writeFieldValue(b, o, t[k]);
    }
  }
  b.writeUInt32BE(o - start - 4, start);
  return o;
}

/** Writes header pairs as a table (4-byte length first); returns the offset after it. */
export function writeHeaderPairs(b: Buffer, o: number, h: HeaderPairs): number {
  const start = o;
  o += 4;
  for (let i = 0; i < h.length; i++) {
    const p = h[i]!;
    o = writeShortstr(b, o, p[0]);
    o = writeFieldValue(b, o, p[1]);
  }
  b.writeUInt32BE(o - start - 4, start);
  return o;
}

/** A complete encoded table: 4-byte length + body. */
export function encodeFieldTable(t: FieldTable): Buffer {
  const b = Buffer.allocUnsafe(fieldTableSize(t));
  writeFieldTable(b, 0, t);
  return b;
}
