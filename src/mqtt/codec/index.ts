/**
 * The MQTT codec's public entry: one-packet decode, the per-connection incremental decoder,
 * and exact-size encoders (STYLE.md habits 4 and 5).
 *
 * Error reporting: every decode failure is an MqttProtocolError whose `reasonCode` is the 5.0
 * code to answer with (0x81 Malformed, 0x82 Protocol Error, 0x84 Unsupported Protocol Version,
 * 0x90 Topic Name invalid, 0x95 Packet too large) and whose `statement` names the rule broken.
 * A Packet Identifier of 0 is reported as 0x82 (it parses, but is not allowed). Errors from a
 * CONNECT carry `protocolVersion` once its level byte is read, so the refusal can be in the
 * client's version; a wrong Protocol Name is 0x81 without it (close without CONNACK).
 */
import { ackSize, decodeAck, encodeAck } from './ack.js';
import { authSize, decodeAuth, encodeAuth } from './auth.js';
import { connackSize, decodeConnack, encodeConnack } from './connack.js';
import { connectSize, decodeConnect, encodeConnect } from './connect.js';
import { decodeDisconnect, disconnectSize, encodeDisconnect } from './disconnect.js';
import {
  type Decoded,
  MqttProtocolError,
  NEED_MORE,
  type NeedMore,
  type Packet,
  type ProtocolVersion,
  type PublishPacket,
} from './packets.js';
import { decodePingreq, decodePingresp } from './ping.js';
import {
  checkPublishFlags,
  decodePublish,
  encodePublish,
  encodePublishVariableHeader,
  publishFlags,
  publishSize,
  publishVariableHeaderSize,
} from './publish.js';
import { malformed, protocolError, Reader } from './reader.js';
import { decodeSuback, encodeSuback, subackSize } from './suback.js';
import { decodeSubscribe, encodeSubscribe, subscribeSize } from './subscribe.js';
import { decodeUnsuback, encodeUnsuback, unsubackSize } from './unsuback.js';
import { decodeUnsubscribe, encodeUnsubscribe, unsubscribeSize } from './unsubscribe.js';
import { readVBI, vbiSize } from './vbi.js';
import { Writer } from './writer.js';

export * from './packets.js';
export { PINGREQ_BYTES, PINGRESP_BYTES } from './ping.js';
export { validTopicFilter, validTopicName } from './topic.js';
export { Writer } from './writer.js';

/** Fixed-header flag nibble required per packet type (Table 2-2); -1 for PUBLISH, which has its own rules. */
const REQUIRED_FLAGS = [0, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0] as const;

const EMPTY = Buffer.alloc(0);

/**
 * Checks the first byte of a packet. Runs as soon as that byte arrives, before the Remaining
 * Length or the body, so a peer out of step is refused at once.
 */
function checkFirstByte(type: number, flags: number, ver: ProtocolVersion | undefined): void {
  // Type 0 is reserved in every version; §2.1.2 gives no statement id.
  if (type === 0) throw malformed('packet type 0 is reserved');
  if (ver === undefined && type !== 1) {
    throw protocolError(`packet type ${type} before CONNECT`, 'MQTT-3.1.0-1');
  }
  if (type === 15 && ver !== 5) throw malformed('packet type 15 (AUTH) is reserved before MQTT 5.0');
  if (type === 3) {
    checkPublishFlags(flags);
  } else if (flags !== REQUIRED_FLAGS[type]) {
    throw malformed(
      `packet type ${type} with fixed header flags 0x${flags.toString(16)}`,
      ver === 5 ? 'MQTT-2.1.3-1' : 'MQTT-2.2.2-1',
    );
  }
}

/** The fields of a parsed fixed header; one per accumulator, one shared by decodePacket. */
class FixedHeader {
  type = 0;
  flags = 0;
  remainingLength = 0;
  headerLength = 0;
}

/**
 * Parses the fixed header at buf[off..end). Returns false when it is not all there yet. Throws
 * for a bad first byte, a bad Remaining Length, or a packet above `maxPacketSize` — the last
 * before any of the body has arrived (STYLE.md habit 5).
 */
function parseFixedHeader(
  buf: Buffer,
  off: number,
  end: number,
  ver: ProtocolVersion | undefined,
  maxPacketSize: number,
  h: FixedHeader,
): boolean {
  if (off >= end) return false;
  const b0 = buf[off]!;
  const type = b0 >>> 4;
  const flags = b0 & 0x0f;
  checkFirstByte(type, flags, ver);
  const remainingLength = readVBI(buf, off + 1, end);
  if (remainingLength < 0) return false;
  const headerLength = 1 + vbiSize(remainingLength);
  if (headerLength + remainingLength > maxPacketSize) throw new MqttProtocolError(0x95, 'packet too large');
  h.type = type;
  h.flags = flags;
  h.remainingLength = remainingLength;
  h.headerLength = headerLength;
  return true;
}

/** Decodes the body r.buf[r.off..r.end) of a packet whose first byte passed checkFirstByte. */
function decodeBody(r: Reader, type: number, flags: number, version: ProtocolVersion | undefined): Packet {
  // checkFirstByte let only CONNECT through without a version.
  const ver = version as ProtocolVersion;
  let p: Packet;
  switch (type) {
    case 3:
      // The payload is the rest of the packet, so nothing can trail it.
      return decodePublish(r, flags, ver);
    case 1:
      p = decodeConnect(r);
      break;
    case 2:
      p = decodeConnack(r, ver);
      break;
    case 4:
    case 5:
    case 6:
    case 7:
      p = decodeAck(r, type, ver);
      break;
    case 8:
      p = decodeSubscribe(r, ver);
      break;
    case 9:
      p = decodeSuback(r, ver);
      break;
    case 10:
      p = decodeUnsubscribe(r, ver);
      break;
    case 11:
      p = decodeUnsuback(r, ver);
      break;
    case 12:
      p = decodePingreq();
      break;
    case 13:
      p = decodePingresp();
      break;
    case 14:
      p = decodeDisconnect(r, ver);
      break;
    default:
      p = decodeAuth(r);
  }
  if (r.off !== r.end) {
    throw malformed(`${r.end - r.off} unexpected bytes at the end of packet type ${type}`);
  }
  return p;
}

const sharedHeader = new FixedHeader();

/**
 * Decodes exactly one packet starting at `off`. `ver` undefined means no CONNECT has been seen:
 * only CONNECT is accepted then [MQTT-3.1.0-1]. Returns NEED_MORE when the packet is not all in
 * `buf`; throws MqttProtocolError for a malformed packet or one above `maxPacketSize`.
 * Payloads, passwords and binary properties are views into `buf`.
 */
export function decodePacket(
  buf: Buffer,
  off: number,
  ver: ProtocolVersion | undefined,
  maxPacketSize: number,
): Decoded | NeedMore {
  const h = sharedHeader;
  if (!parseFixedHeader(buf, off, buf.length, ver, maxPacketSize, h)) return NEED_MORE;
  const start = off + h.headerLength;
  const end = start + h.remainingLength;
  if (end > buf.length) return NEED_MORE;
  return { packet: decodeBody(new Reader(buf, start, end), h.type, h.flags, ver), next: end };
}

/**
 * The per-connection incremental decoder. It holds at most one partial packet: up to four bytes
 * of a split fixed header, or a buffer sized to the declared Remaining Length into which the
 * rest of the body is copied once as it arrives — never a Buffer.concat per chunk. Packets that
 * lie whole in a chunk are decoded in place, with payloads as views into the chunk (copy one
 * before retaining it, STYLE.md habit 6).
 */
export class PacketAccumulator {
  /**
   * Version used to decode the next packets. Undefined until a CONNECT is decoded, which sets
   * it before `onPacket` runs (so the packets after it in the same chunk use it); the callback
   * may override it.
   */
  version: ProtocolVersion | undefined;
  private maxPacketSize: number;
  private readonly header = new FixedHeader();
  private readonly reader = new Reader(EMPTY, 0, 0);
  /** A fixed header split across chunks: at most 1 type byte + 3 Remaining Length bytes. */
  private readonly head = Buffer.alloc(5);
  private headLength = 0;
  /** The body of a packet split across chunks, sized to its Remaining Length. */
  private body: Buffer | undefined;
  private bodyFilled = 0;
  private dead = false;
  private failure: unknown;
  private closed = false;

  constructor(maxPacketSize: number, version?: ProtocolVersion) {
    this.maxPacketSize = maxPacketSize;
    this.version = version;
  }

  /** Applies from the next fixed header on (e.g. raise the limit once authenticated). */
  setMaxPacketSize(n: number): void {
    this.maxPacketSize = n;
  }

  /**
   * Stops decoding: the rest of the current chunk and every later one are dropped. Call it from
   * `onPacket` when the connection is going away (e.g. after DISCONNECT), so that no packet
   * behind it is processed.
   */
  close(): void {
    this.closed = true;
    this.body = undefined;
  }

  /**
   * Decodes every complete packet in `chunk`, calling `onPacket` for each in order. Throws the
   * first MqttProtocolError (or an error thrown by `onPacket`); after that, every push throws
   * the same error again.
   */
  push(chunk: Buffer, onPacket: (p: Packet) => void): void {
    if (this.dead) throw this.failure;
    if (this.closed) return;
    try {
      this.consume(chunk, onPacket);
    } catch (e) {
      this.dead = true;
      this.failure = e;
      this.body = undefined;
      throw e;
    }
  }

  private consume(chunk: Buffer, onPacket: (p: Packet) => void): void {
    const len = chunk.length;
    const h = this.header;
    let off = 0;
    if (this.body !== undefined) {
      const body = this.body;
      const need = body.length - this.bodyFilled;
      if (len < need) {
        chunk.copy(body, this.bodyFilled);
        this.bodyFilled += len;
        return;
      }
      chunk.copy(body, this.bodyFilled, 0, need);
      off = need;
      this.body = undefined;
      this.emit(body, 0, body.length, onPacket);
      if (this.closed) return;
    } else if (this.headLength > 0) {
      // Feed the split header one byte at a time: at most 4 tries, and no byte is over-read.
      const head = this.head;
      do {
        if (off >= len) return;
        head[this.headLength++] = chunk[off++]!;
      } while (!parseFixedHeader(head, 0, this.headLength, this.version, this.maxPacketSize, h));
      this.headLength = 0;
      off = this.startBody(chunk, off, onPacket);
      if (off < 0 || this.closed) return;
    }
    while (off < len) {
      if (!parseFixedHeader(chunk, off, len, this.version, this.maxPacketSize, h)) {
        chunk.copy(this.head, 0, off, len);
        this.headLength = len - off;
        return;
      }
      off = this.startBody(chunk, off + h.headerLength, onPacket);
      if (off < 0 || this.closed) return;
    }
  }

  /**
   * The header is parsed and the body starts at chunk[start]. Decodes it in place when it is
   * all there and returns the offset after it; otherwise keeps the tail and returns -1.
   */
  private startBody(chunk: Buffer, start: number, onPacket: (p: Packet) => void): number {
    const end = start + this.header.remainingLength;
    if (end <= chunk.length) {
      this.emit(chunk, start, end, onPacket);
      return end;
    }
    const body = Buffer.allocUnsafe(this.header.remainingLength);
    this.bodyFilled = chunk.copy(body, 0, start);
    this.body = body;
    return -1;
  }

  private emit(buf: Buffer, start: number, end: number, onPacket: (p: Packet) => void): void {
    const r = this.reader;
    r.reset(buf, start, end);
    const p = decodeBody(r, this.header.type, this.header.flags, this.version);
    // Do not keep the chunk alive through the reader.
    r.reset(EMPTY, 0, 0);
    if (p.type === 1 && this.version === undefined) this.version = p.protocolVersion;
    onPacket(p);
  }
}

/** Remaining Length of `p` encoded for `ver` (CONNECT uses its own protocolVersion). */
export function remainingLength(p: Packet, ver: ProtocolVersion): number {
  switch (p.type) {
    case 3:
      return publishSize(p, ver);
    case 1:
      return connectSize(p);
    case 2:
      return connackSize(p, ver);
    case 4:
    case 5:
    case 6:
    case 7:
      return ackSize(p, ver);
    case 8:
      return subscribeSize(p, ver);
    case 9:
      return subackSize(p, ver);
    case 10:
      return unsubscribeSize(p, ver);
    case 11:
      return unsubackSize(p, ver);
    case 12:
    case 13:
      return 0;
    case 14:
      return disconnectSize(p, ver);
    default:
      if (ver !== 5) throw new RangeError('AUTH exists only in MQTT 5.0');
      return authSize(p);
  }
}

function firstByte(p: Packet): number {
  if (p.type === 3) return 0x30 | publishFlags(p);
  return (p.type << 4) | REQUIRED_FLAGS[p.type];
}

/** Total bytes of `p` on the wire, for Maximum Packet Size checks. */
export function packetSize(p: Packet, ver: ProtocolVersion): number {
  const rem = remainingLength(p, ver);
  return 1 + vbiSize(rem) + rem;
}

function writeBody(w: Writer, p: Packet, ver: ProtocolVersion): void {
  switch (p.type) {
    case 3:
      encodePublish(w, p, ver);
      break;
    case 1:
      encodeConnect(w, p);
      break;
    case 2:
      encodeConnack(w, p, ver);
      break;
    case 4:
    case 5:
    case 6:
    case 7:
      encodeAck(w, p, ver);
      break;
    case 8:
      encodeSubscribe(w, p, ver);
      break;
    case 9:
      encodeSuback(w, p, ver);
      break;
    case 10:
      encodeUnsubscribe(w, p, ver);
      break;
    case 11:
      encodeUnsuback(w, p, ver);
      break;
    case 12:
    case 13:
      break;
    case 14:
      encodeDisconnect(w, p, ver);
      break;
    default:
      encodeAuth(w, p);
      break;
  }
}

/**
 * Writes `p` at the writer's offset, into a buffer the caller sized with packetSize (e.g. a
 * slice of a per-connection output buffer).
 */
export function writePacket(w: Writer, p: Packet, ver: ProtocolVersion): void {
  const rem = remainingLength(p, ver);
  w.writeU8(firstByte(p));
  w.writeVBI(rem);
  writeBody(w, p, ver);
}

/** Encodes `p` into a new buffer of exactly its size. */
export function encodePacket(p: Packet, ver: ProtocolVersion): Buffer {
  const rem = remainingLength(p, ver);
  const buf = Buffer.allocUnsafe(1 + vbiSize(rem) + rem);
  const w = new Writer(buf, 0);
  w.writeU8(firstByte(p));
  w.writeVBI(rem);
  writeBody(w, p, ver);
  if (w.off !== buf.length) throw new Error(`codec bug: packet type ${p.type} sized ${buf.length}, wrote ${w.off}`);
  return buf;
}

/**
 * The fixed header and variable header (topic, packet id, properties) of a PUBLISH, without the
 * payload, so the connection can write [header, payload] without copying the payload. The
 * Remaining Length written includes the payload.
 */
export function encodePublishHeader(p: PublishPacket, ver: ProtocolVersion): Buffer {
  const variable = publishVariableHeaderSize(p, ver);
  const rem = variable + p.payload.length;
  const buf = Buffer.allocUnsafe(1 + vbiSize(rem) + variable);
  const w = new Writer(buf, 0);
  w.writeU8(0x30 | publishFlags(p));
  w.writeVBI(rem);
  encodePublishVariableHeader(w, p, ver);
  return buf;
}
