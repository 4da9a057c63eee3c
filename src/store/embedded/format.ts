/**
 * The on-disk format of the embedded store (format version 2), and the checks run on the data
 * file before LMDB maps it.
 *
 * Version 2 added a CRC-32 to every value (entry layout 2 and sealed msgpack values, below).
 * Version 1 stores are read as they are (their values carry no checksum) and marked version 2 at
 * open, since new values are written sealed; an older Braid then refuses the store by its version
 * instead of misreading it.
 *
 * One LMDB environment in one file, `<dir>/braid.mdb` (LMDB's lock file beside it is
 * `braid.mdb-lock`), with these named databases:
 *
 * | db         | key (ordered-binary)              | value                                        |
 * |------------|-----------------------------------|----------------------------------------------|
 * | `meta`     | `'format'`                        | `{ magic, format, createdAt }` (msgpack)      |
 * | `defs`     | `defKey(['v'|'x'|'q'|'b', ...])`  | the record (msgpack)                          |
 * | `qids`     | `defKey([vhost, queue])`          | `[vhost, queue, qid, seqFloor]` (msgpack)     |
 * | `entries`  | `[qid, seq]`                      | entry layout below (binary)                   |
 * | `delivery` | `[qid, seq]`                      | `[deliveryCount, tag]` (msgpack)              |
 * | `retained` | `defKey([vhost, routingKey])`     | `[vhost, routingKey, message]` (msgpack)      |
 * | `records`  | `defKey([namespace, key])`        | `[namespace, key, value]` (msgpack)           |
 *
 * Entries are keyed by a numeric queue id (`qid`) instead of the queue's name: keys stay ~10
 * bytes, a queue's entries are one contiguous range, and deleting a queue is one write (its
 * `qids` row) however many entries it holds; the range itself is then deleted in the background
 * and, after a crash, at the next open (an entry whose qid has no `qids` row is garbage).
 * A qid is never reused within a store.
 *
 * Every value carries its full identity (names are repeated in the value), so a key may be a
 * hash: LMDB keys are limited to 1978 bytes and an MQTT topic or client id can be 65535.
 */

import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { type MessageRecord, type QueueEntry, type StoredValue, StoreError } from '../store.js';

export const FORMAT_VERSION = 2;
/** Format versions this build opens; older ones are upgraded in place at open (see above). */
export const READABLE_FORMATS: readonly number[] = [1, 2];
export const MAGIC = 'braid-store';
export const DATA_FILE = 'braid.mdb';

/** The msgpack codec shared by every db (lmdb's msgpackr instance, see lmdb.ts). */
export interface Codec {
  encode(value: unknown): Buffer;
  decode(bytes: Uint8Array, range?: { start: number; end: number }): unknown;
}

/**
 * msgpackr options: plain maps for objects (no record extension, so the bytes do not depend on
 * a structure table kept elsewhere), bigint of any size kept as bigint, and embedded buffers
 * copied out of LMDB's reused read buffer. Dates use msgpack's timestamp extension.
 * Known loss: -0 is written as the integer 0 (msgpack has no negative zero integer).
 */
export const CODEC_OPTIONS = {
  useRecords: false,
  mapsAsObjects: true,
  useBigIntExtension: true,
  largeBigIntToFloat: false,
  copyBuffers: true,
} as const;

// ---------------------------------------------------------------------------------------------
// Keys

/** Longest JSON key kept readable (in UTF-16 units: at most 3 bytes each, well under 1978). */
const MAX_PLAIN_KEY = 400;

/** A string key for a tuple of names; a SHA-256 when the names are long. JSON escapes NUL. */
export function defKey(parts: readonly string[]): string {
  const json = JSON.stringify(parts);
  if (json.length <= MAX_PLAIN_KEY) return json;
  return `H${createHash('sha256').update(json).digest('hex')}`;
}

/** A canonical text for binding arguments: object keys sorted, every value type distinct. */
export function canonical(v: StoredValue | undefined): string {
  if (v === undefined) return 'u';
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return `n${Object.is(v, -0) ? '-0' : String(v)}`;
    case 'bigint':
      return `b${v}`;
    case 'boolean':
      return v ? 'true' : 'false';
  }
  if (Buffer.isBuffer(v)) return `x${v.toString('hex')}`;
  if (v instanceof Date) return `d${v.getTime()}`;
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const o = v as { readonly [key: string]: StoredValue };
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
    .join(',')}}`;
}

// ---------------------------------------------------------------------------------------------
// Messages

type MessageTuple = [
  string, // vhost
  string, // exchange
  string, // routingKey
  MessageRecord['properties'],
  MessageRecord['annotations'],
  string | undefined, // publisherId
  number | undefined, // expiresAt
  number, // createdAt
];

function messageTuple(m: MessageRecord): MessageTuple {
  return [m.vhost, m.exchange, m.routingKey, m.properties, m.annotations, m.publisherId, m.expiresAt, m.createdAt];
}

function messageFromTuple(t: MessageTuple, body: Buffer): MessageRecord {
  if (!Array.isArray(t) || t.length < 8 || typeof t[0] !== 'string' || typeof t[7] !== 'number') {
    throw new Error('not a message tuple');
  }
  return {
    vhost: t[0],
    exchange: t[1],
    routingKey: t[2],
    body,
    properties: t[3],
    annotations: t[4],
    publisherId: t[5],
    expiresAt: t[6],
    createdAt: t[7],
  };
}

/** A whole message as one msgpack value (retained messages). */
export function encodeMessage(m: MessageRecord): [MessageTuple, Buffer] {
  return [messageTuple(m), m.body];
}

export function decodeMessage(v: unknown): MessageRecord {
  if (!Array.isArray(v) || v.length !== 2 || !Buffer.isBuffer(v[1])) throw new Error('not a message');
  return messageFromTuple(v[0] as MessageTuple, v[1]);
}

/*
 * Entry value layout (all integers big-endian):
 *   0  u8   layout (2; layout 1, written before checksums, has no crc field and is still read)
 *   1  u8   flags: 1 = transient, 2 = delivered
 *   2  u32  body length
 *   6  u32  meta length
 *  10  u32  CRC-32 of bytes 0-9 and 14-end (layout 2 only)
 *  14  meta msgpack [...MessageTuple, deliveryCount, tag, routes]
 *   .  body bytes, written raw (no msgpack copy, and recovery reads its length from the header)
 */
const ENTRY_LAYOUT_V1 = 1;
const ENTRY_LAYOUT = 2;
const ENTRY_HEADER_V1 = 10;
const ENTRY_HEADER = 14;
const F_TRANSIENT = 1;
const F_DELIVERED = 2;

export function encodeEntry(codec: Codec, e: QueueEntry): Buffer {
  const m = e.message;
  const meta = codec.encode([
    m.vhost,
    m.exchange,
    m.routingKey,
    m.properties,
    m.annotations,
    m.publisherId,
    m.expiresAt,
    m.createdAt,
    e.deliveryCount,
    e.tag,
    e.routes,
  ]);
  const body = m.body;
  const out = Buffer.allocUnsafe(ENTRY_HEADER + meta.length + body.length);
  out[0] = ENTRY_LAYOUT;
  out[1] = (e.transient ? F_TRANSIENT : 0) | (e.delivered ? F_DELIVERED : 0);
  out.writeUInt32BE(body.length, 2);
  out.writeUInt32BE(meta.length, 6);
  meta.copy(out, ENTRY_HEADER);
  body.copy(out, ENTRY_HEADER + meta.length);
  out.writeUInt32BE(entryCrc(out, out.length), 10);
  return out;
}

function entryCrc(bytes: Uint8Array, size: number): number {
  return crc32(bytes.subarray(ENTRY_HEADER, size), crc32(bytes.subarray(0, 10)));
}

function u32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

/** What a decoder returns for bytes it cannot read: the caller throws a StoreError naming the key. */
export class Undecodable {
  constructor(readonly reason: string) {}
}

export interface EntryHeader {
  readonly transient: boolean;
  readonly bodyLength: number;
  /** Where the meta starts: after the header of the entry's layout. */
  readonly metaStart: number;
}

/**
 * Reads only the fixed header (recovery and removeEntry need the body length, not the message);
 * the checksum is verified by `verifyEntry` (full reads, and the probe at every open).
 */
export function entryHeader(bytes: Uint8Array, size = bytes.length): EntryHeader | Undecodable {
  const layout = bytes[0];
  const head = layout === ENTRY_LAYOUT ? ENTRY_HEADER : layout === ENTRY_LAYOUT_V1 ? ENTRY_HEADER_V1 : -1;
  if (head < 0 || size < head) return new Undecodable('bad entry header');
  const bodyLength = u32(bytes, 2);
  if (head + u32(bytes, 6) + bodyLength !== size) return new Undecodable('entry length mismatch');
  return { transient: (bytes[1]! & F_TRANSIENT) !== 0, bodyLength, metaStart: head };
}

/** undefined when the entry's checksum holds (or it has none: layout 1), else why not. */
export function verifyEntry(bytes: Uint8Array, size = bytes.length): Undecodable | undefined {
  const h = entryHeader(bytes, size);
  if (h instanceof Undecodable) return h;
  if (h.metaStart === ENTRY_HEADER && entryCrc(bytes, size) !== u32(bytes, 10)) {
    return new Undecodable('entry checksum mismatch');
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Sealed values: every other db's msgpack value behind a CRC-32

/**
 * 0xc1 is the one byte msgpack never uses, so a sealed value (`0xc1`, CRC-32 u32, msgpack) is
 * told apart from a value written before checksums (plain msgpack), which is still read.
 */
const SEALED = 0xc1;
const SEAL_HEADER = 5;

/** The codec for the msgpack dbs: encode seals, decode verifies (and throws on a mismatch). */
export function sealedCodec(codec: Codec): Codec {
  return {
    encode(value: unknown): Buffer {
      const payload = codec.encode(value);
      const out = Buffer.allocUnsafe(SEAL_HEADER + payload.length);
      out[0] = SEALED;
      out.writeUInt32BE(crc32(payload), 1);
      payload.copy(out, SEAL_HEADER);
      return out;
    },
    decode(bytes: Uint8Array, range?: { start: number; end: number }): unknown {
      const start = range?.start ?? 0;
      const end = range?.end ?? bytes.length;
      if (bytes[start] !== SEALED) return codec.decode(bytes, { start, end });
      const why = verifySealed(bytes.subarray(start, end));
      if (why) throw new Error(why.reason);
      return codec.decode(bytes, { start: start + SEAL_HEADER, end });
    },
  };
}

/** undefined when a sealed value's checksum holds (or the value predates sealing), else why not. */
export function verifySealed(bytes: Uint8Array): Undecodable | undefined {
  if (bytes[0] !== SEALED) return undefined;
  if (bytes.length < SEAL_HEADER) return new Undecodable('sealed value too short');
  if (crc32(bytes.subarray(SEAL_HEADER)) !== u32(bytes, 1)) return new Undecodable('value checksum mismatch');
  return undefined;
}

/** A decoded entry value; the seq comes from the key. */
export interface DecodedEntry {
  seq: number;
  readonly message: MessageRecord;
  readonly delivered: boolean;
  readonly deliveryCount: number;
  readonly tag: StoredValue | undefined;
  readonly transient: boolean;
  readonly routes?: StoredValue;
}

export function decodeEntry(codec: Codec, bytes: Uint8Array, size = bytes.length): DecodedEntry | Undecodable {
  const h = entryHeader(bytes, size);
  if (h instanceof Undecodable) return h;
  if (h.metaStart === ENTRY_HEADER && entryCrc(bytes, size) !== u32(bytes, 10)) {
    return new Undecodable('entry checksum mismatch');
  }
  const metaEnd = h.metaStart + u32(bytes, 6);
  try {
    const meta = codec.decode(bytes, { start: h.metaStart, end: metaEnd }) as unknown[];
    if (!Array.isArray(meta) || meta.length !== 11) return new Undecodable('bad entry meta');
    // Copied out: `bytes` may be lmdb-js's reused read buffer. Small bodies come from Node's pool.
    const body = Buffer.allocUnsafe(h.bodyLength);
    body.set(bytes.subarray(metaEnd, size));
    return {
      seq: 0,
      message: messageFromTuple(meta.slice(0, 8) as MessageTuple, body),
      delivered: (bytes[1]! & F_DELIVERED) !== 0,
      deliveryCount: meta[8] as number,
      tag: meta[9] as StoredValue | undefined,
      transient: h.transient,
      ...(meta[10] !== undefined && meta[10] !== null && { routes: meta[10] as StoredValue }),
    };
  } catch (err) {
    return new Undecodable((err as Error).message);
  }
}

/**
 * lmdb-js value encoders for the entries db, decoding straight from its read buffer (no copy of
 * the whole value per row: measured ~1 us per row for `encoding: 'binary'`). Values are encoded
 * by `encodeEntry` before `put`, so `encode` passes the buffer through.
 * lmdb-js calls `decode(bytes, size)` from range reads and `decode(bytes, options)` from `get`.
 */
export function entryEncoders(codec: Codec): { full: object; header: object } {
  const encode = (v: Buffer): Buffer => v;
  const len = (bytes: Uint8Array, size: unknown) => (typeof size === 'number' ? size : bytes.length);
  return {
    full: { encode, decode: (bytes: Uint8Array, size: unknown) => decodeEntry(codec, bytes, len(bytes, size)) },
    header: { encode, decode: (bytes: Uint8Array, size: unknown) => entryHeader(bytes, len(bytes, size)) },
  };
}

// ---------------------------------------------------------------------------------------------
// The data file, checked before LMDB maps it

/*
 * LMDB (the lmdb-js build, data version 2) starts the file with two meta pages. Page header
 * (24 bytes: pgno u64, txnid u64, pad u16, flags u16, lower u16, upper u16), then MDB_meta:
 * magic u32 at 24, version u32 at 28, address u64, mapsize u64, dbs[2] (48 bytes each; dbs[0]
 * .md_pad holds the page size, at 48), last_pg u64 at 144, txnid u64 at 152. Offsets measured
 * on files this build wrote; the magic is 0xBEEFC0DE.
 *
 * Why check at all: LMDB maps the file, and a page past the end of a truncated file is a SIGBUS
 * the moment it is touched, so a truncated store would crash the broker at every start.
 */
const LMDB_MAGIC = 0xbeefc0de;
const LMDB_DATA_VERSION = 2;
const P_META = 0x08;

interface LmdbMeta {
  readonly pageSize: number;
  readonly lastPage: number;
  readonly txnid: bigint;
}

function readMeta(buf: Buffer, off: number): LmdbMeta | string {
  if (buf.length < off + 160) return 'too short for an LMDB meta page';
  if ((buf.readUInt16LE(off + 18) & P_META) === 0) return 'no LMDB meta page';
  if (buf.readUInt32LE(off + 24) !== LMDB_MAGIC) return 'not an LMDB file (bad magic)';
  const version = buf.readUInt32LE(off + 28) & 0xffff;
  if (version !== LMDB_DATA_VERSION) return `LMDB data version ${version}, this build reads ${LMDB_DATA_VERSION}`;
  const pageSize = buf.readUInt32LE(off + 48);
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return `bad page size ${pageSize}`;
  return { pageSize, lastPage: Number(buf.readBigUInt64LE(off + 144)), txnid: buf.readBigUInt64LE(off + 152) };
}

export type DataFileCheck =
  | { readonly ok: true }
  /** The file is shorter than its newest meta page says; only a full read can tell (see lmdb.ts). */
  | { readonly ok: 'short'; readonly size: number; readonly expected: number };

/** Throws StoreError for a file LMDB must not map. */
export function checkDataFile(file: string): DataFileCheck {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new StoreError(`cannot open store data file ${file}: ${(err as Error).message}`);
  }
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(size, 65536 + 160));
    readSync(fd, head, 0, head.length, 0);
    const damaged = (why: string) =>
      new StoreError(
        `store data file ${file} is damaged or not a Braid store (${why}); ` +
          'move it away to start empty, or restore it from a backup',
      );
    if (size === 0) throw damaged('the file is empty');
    const m0 = readMeta(head, 0);
    if (typeof m0 === 'string') throw damaged(m0);
    const m1 = readMeta(head, m0.pageSize);
    if (typeof m1 === 'string') throw damaged(`second meta page: ${m1}`);
    // LMDB uses the meta page with the higher txnid.
    const m = m1.txnid > m0.txnid ? m1 : m0;
    const expected = (m.lastPage + 1) * m.pageSize;
    if (size < 2 * m.pageSize) throw damaged(`truncated: ${size} bytes`);
    if (size % m.pageSize !== 0) throw damaged(`truncated: ${size} bytes is not a whole number of pages`);
    if (size < expected) return { ok: 'short', size, expected };
    return { ok: true };
  } finally {
    closeSync(fd);
  }
}

const P_OVERFLOW = 0x04;
const SCAN_BLOCK = 1 << 20;

/**
 * Walks every page up to the newest meta page's last page and checks that each page header
 * names its own page number (LMDB writes it into every page it writes; an overflow run has one
 * header for all its pages). A page overwritten with garbage fails this even when LMDB would read
 * it without complaint and silently return fewer rows. Returns why not, or undefined.
 */
export function scanPages(file: string): string | undefined {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(size, 65536 + 160));
    readSync(fd, head, 0, head.length, 0);
    const m0 = readMeta(head, 0);
    if (typeof m0 === 'string') return m0;
    const m1 = readMeta(head, m0.pageSize);
    if (typeof m1 === 'string') return `second meta page: ${m1}`;
    const { pageSize, lastPage } = m1.txnid > m0.txnid ? m1 : m0;
    const block = Buffer.allocUnsafe(Math.max(SCAN_BLOCK, pageSize));
    let blockStart = -1;
    let blockEnd = -1;
    for (let p = 0; p <= lastPage; ) {
      const at = p * pageSize;
      if (at + 24 > size) return `page ${p} lies past the end of the file`;
      if (at < blockStart || at + 24 > blockEnd) {
        blockStart = at;
        blockEnd = at + readSync(fd, block, 0, block.length, at);
      }
      const off = at - blockStart;
      const pgno = block.readBigUInt64LE(off);
      if (pgno !== BigInt(p)) return `page ${p} is garbled (its header names page ${pgno})`;
      const flags = block.readUInt16LE(off + 18);
      if ((flags & P_OVERFLOW) !== 0) {
        const pages = block.readUInt32LE(off + 20);
        if (pages < 1 || p + pages > lastPage + 1) return `page ${p} is garbled (overflow of ${pages} pages)`;
        p += pages;
      } else p++;
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}
