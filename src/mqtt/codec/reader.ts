/**
 * A cursor over buf[off..end) — one packet's body. Every read is bounds-checked against `end`,
 * the end of the Remaining Length, so a field that runs past it is a Malformed Packet (0x81)
 * and never a read into the next packet.
 */
import { MqttProtocolError } from './packets.js';
import { decodeUtf8 } from './utf8.js';
import { readVBI, vbiSize } from './vbi.js';

export function malformed(message: string, statement?: string): MqttProtocolError {
  return new MqttProtocolError(0x81, message, statement);
}

export function protocolError(message: string, statement?: string): MqttProtocolError {
  return new MqttProtocolError(0x82, message, statement);
}

export class Reader {
  constructor(
    public buf: Buffer,
    public off: number,
    public end: number,
  ) {}

  /** Points the reader at another packet body (the accumulator reuses one reader). */
  reset(buf: Buffer, off: number, end: number): void {
    this.buf = buf;
    this.off = off;
    this.end = end;
  }

  remaining(): number {
    return this.end - this.off;
  }

  private truncated(what: string): MqttProtocolError {
    // The Remaining Length ends inside a field: §2.1.4 / §4.13 Malformed Packet; no statement id.
    return malformed(`packet ends inside ${what} at body offset ${this.off}`);
  }

  readU8(): number {
    if (this.off >= this.end) throw this.truncated('a byte');
    return this.buf[this.off++]!;
  }

  readU16(): number {
    const o = this.off;
    if (o + 2 > this.end) throw this.truncated('a two byte integer');
    this.off = o + 2;
    return (this.buf[o]! << 8) | this.buf[o + 1]!;
  }

  readU32(): number {
    const o = this.off;
    if (o + 4 > this.end) throw this.truncated('a four byte integer');
    this.off = o + 4;
    const b = this.buf;
    // Multiply the top byte: `<< 24` would make values of 2^31 and above negative.
    return b[o]! * 0x1000000 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
  }

  readVBI(): number {
    const v = readVBI(this.buf, this.off, this.end);
    if (v < 0) throw this.truncated('a variable byte integer');
    this.off += vbiSize(v);
    return v;
  }

  /** A UTF-8 Encoded String: two-byte length, then strictly validated UTF-8 [MQTT-1.5.4-1/-2]. */
  readUtf8(): string {
    const len = this.readU16();
    const o = this.off;
    if (o + len > this.end) throw this.truncated('a UTF-8 string');
    this.off = o + len;
    return decodeUtf8(this.buf, o, o + len);
  }

  /** Binary Data: two-byte length, then bytes, returned as a view (STYLE.md habit 6). */
  readBinary(): Buffer {
    const len = this.readU16();
    const o = this.off;
    if (o + len > this.end) throw this.truncated('binary data');
    this.off = o + len;
    return this.buf.subarray(o, o + len);
  }

  /** The rest of the body as a view; leaves the reader at the end. */
  readRest(): Buffer {
    const o = this.off;
    this.off = this.end;
    return this.buf.subarray(o, this.end);
  }
}

/**
 * A Packet Identifier where one is required. 0 parses but is not allowed, so it is a Protocol
 * Error (0x82) rather than a Malformed Packet: 5.0 [MQTT-2.2.1-3], 3.1.1 [MQTT-2.3.1-1].
 */
export function readPacketId(r: Reader, ver: number): number {
  const id = r.readU16();
  if (id === 0) throw protocolError('packet identifier 0', ver === 5 ? 'MQTT-2.2.1-3' : 'MQTT-2.3.1-1');
  return id;
}
