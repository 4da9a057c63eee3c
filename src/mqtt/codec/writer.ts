/**
 * Writes into a Buffer the caller has already sized (STYLE.md habit 4: size, allocate once,
 * write in place). There is no growth and no bounds check beyond what typed arrays give:
 * `encodePacket` asserts that the writer ends exactly at the computed size.
 */
import { writeUtf8 } from './utf8.js';
import { writeVBI } from './vbi.js';

export class Writer {
  constructor(
    public buf: Buffer,
    public off = 0,
  ) {}

  writeU8(v: number): void {
    this.buf[this.off++] = v;
  }

  writeU16(v: number): void {
    const o = this.off;
    this.buf[o] = v >>> 8;
    this.buf[o + 1] = v;
    this.off = o + 2;
  }

  writeU32(v: number): void {
    const o = this.off;
    this.buf[o] = v >>> 24;
    this.buf[o + 1] = v >>> 16;
    this.buf[o + 2] = v >>> 8;
    this.buf[o + 3] = v;
    this.off = o + 4;
  }

  writeVBI(v: number): void {
    this.off = writeVBI(this.buf, this.off, v);
  }

  /** A UTF-8 Encoded String: two-byte length, then the bytes. The length is back-filled. */
  writeUtf8(s: string): void {
    const o = this.off;
    const n = writeUtf8(this.buf, o + 2, s);
    this.buf[o] = n >>> 8;
    this.buf[o + 1] = n;
    this.off = o + 2 + n;
  }

  /** Binary Data: two-byte length, then the bytes. */
  writeBinary(b: Uint8Array): void {
    this.writeU16(b.length);
    this.writeBuffer(b);
  }

  /** Raw bytes, no length prefix. */
  writeBuffer(b: Uint8Array): void {
    this.buf.set(b, this.off);
    this.off += b.length;
  }
}
