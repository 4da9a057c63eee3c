/**
 * AMQP 0-9-1 frames (§2.3.5, §4.2.3): type octet, channel short, payload size long, payload,
 * frame-end octet 0xCE.
 *
 *   decodeFrame(buf, off, max) → { frame, next } | NEED_MORE     (habit 5's contract)
 *   FrameReader                  per-connection accumulator built on the same checks
 *
 * Both throw AmqpCodecError(501) — RabbitMQ's frame_error — for an unknown frame type, a declared
 * payload size above the negotiated frame_max, a heartbeat with a payload, and a bad frame-end
 * octet. Type and size are checked from the 7-byte header, before any payload is buffered.
 */
import { AmqpCodecError } from './errors.js';

export const FrameType = { Method: 1, Header: 2, Body: 3, Heartbeat: 8 } as const;
export const FRAME_END = 0xce;
/** The smallest frame_max a peer may negotiate (the spec's FRAME-MIN-SIZE), overhead included. */
export const FRAME_MIN_SIZE = 4096;
/** Header (7) + frame-end (1): frame_max counts them, payload sizes do not. */
export const FRAME_OVERHEAD = 8;
export const FRAME_HEADER_SIZE = 7;
/** 'AMQP' 0 0 9 1 (§4.2.2). */
export const PROTOCOL_HEADER: Buffer = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);
/** A heartbeat is always on channel 0 with an empty payload (§4.2.7). */
export const HEARTBEAT_FRAME: Buffer = Buffer.from([FrameType.Heartbeat, 0, 0, 0, 0, 0, 0, FRAME_END]);

export interface Frame {
  type: number;
  channel: number;
  /** May be a view into a pushed chunk; see FrameReader. */
  payload: Buffer;
}

export const NEED_MORE: unique symbol = Symbol('NEED_MORE');
export type NeedMore = typeof NEED_MORE;

export interface DecodedFrame {
  frame: Frame;
  /** Offset of the byte after this frame's frame-end octet. */
  next: number;
}

/**
 * Checks a frame header. RabbitMQ's test is `PayloadSize > FrameMax - 8 + FRAME_SIZE_FUDGE` with a
 * fudge of 8 "since quite a few [clients] get it wrong — off-by 1 or 8 are typical"
 * (rabbit_reader.erl `handle_input(frame_header, …)`), i.e. payload size > frame_max; we use the
 * same test so that those clients keep working. frame_max 0 means no limit (§4.2.3 tune).
 */
function checkHeader(type: number, size: number, maxFrameSize: number): void {
  if (type !== FrameType.Method && type !== FrameType.Header && type !== FrameType.Body) {
    if (type !== FrameType.Heartbeat) throw new AmqpCodecError(501, `unknown frame type ${type}`);
    // rabbit_command_assembler.erl analyze_frame/2 accepts only <<>> as a heartbeat payload.
    if (size !== 0) throw new AmqpCodecError(501, `heartbeat frame with a ${size}-byte payload`);
  }
  if (maxFrameSize !== 0 && size > maxFrameSize) {
    throw new AmqpCodecError(501, `frame payload of ${size} bytes exceeds frame_max ${maxFrameSize}`);
  }
}

function badEnd(octet: number): AmqpCodecError {
  return new AmqpCodecError(501, `frame end octet 0x${octet.toString(16).padStart(2, '0')}, expected 0xce`);
}

/**
 * Decodes the frame at buf[off..]. Returns NEED_MORE if the frame is not all there (after checking
 * its header when those 7 bytes are). The payload is a view into `buf`.
 */
export function decodeFrame(buf: Buffer, off: number, maxFrameSize: number): DecodedFrame | NeedMore {
  if (buf.length - off < FRAME_HEADER_SIZE) return NEED_MORE;
  const type = buf[off]!;
  const size = buf.readUInt32BE(off + 3);
  checkHeader(type, size, maxFrameSize);
  const end = off + FRAME_HEADER_SIZE + size;
  if (end >= buf.length) return NEED_MORE;
  if (buf[end] !== FRAME_END) throw badEnd(buf[end]!);
  const channel = (buf[off + 1]! << 8) | buf[off + 2]!;
  return { frame: { type, channel, payload: buf.subarray(off + FRAME_HEADER_SIZE, end) }, next: end + 1 };
}

/** One complete frame (header, payload copy, frame-end) in a new buffer. */
export function encodeFrame(type: number, channel: number, payload: Buffer): Buffer {
  const b = Buffer.allocUnsafe(payload.length + FRAME_OVERHEAD);
  b[0] = type;
  b.writeUInt16BE(channel, 1);
  b.writeUInt32BE(payload.length, 3);
  b.set(payload, FRAME_HEADER_SIZE);
  b[payload.length + FRAME_HEADER_SIZE] = FRAME_END;
  return b;
}

const EMPTY = Buffer.alloc(0);

/**
 * Per-connection frame accumulator (habit 5). Holds at most one partial frame: a frame that lies
 * whole in a pushed chunk is returned as a view into it; a frame split across chunks is copied
 * once into a buffer of its declared size (and a split 7-byte header into a 7-byte scratch).
 * No Buffer.concat per chunk.
 *
 * Use: `reader.push(chunk); for (let f; (f = reader.next()); ) handle(f);` — drain next() until it
 * returns undefined before the next push (pushing earlier is allowed but copies the unread rest).
 *
 * Payload lifetime: a payload may be a view into the chunk given to push(). It is valid until the
 * next push() — a transport that reuses its read buffer overwrites it then — so copy whatever must
 * outlive that (a message body that will be queued: habit 6).
 *
 * After next() throws, the reader is unusable: the adapter closes the connection.
 */
export class FrameReader {
  /** Negotiated frame_max (overhead included); 0 = no limit. Settable after connection.tune-ok. */
  maxFrameSize: number;

  private chunk: Buffer = EMPTY;
  private pos = 0;
  /** The frame being assembled across chunks (sized header + payload + end), or null. */
  private partial: Buffer | null = null;
  private partialFill = 0;
  /** A frame header split across chunks. */
  private readonly head = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  private headFill = 0;

  constructor(maxFrameSize: number) {
    this.maxFrameSize = maxFrameSize;
  }

  /** Bytes held for a frame that is not complete yet (plus unread bytes of the current chunk). */
  get buffered(): number {
    return this.headFill + this.partialFill + (this.chunk.length - this.pos);
  }

  push(chunk: Buffer): void {
    if (this.pos < this.chunk.length) {
      // The caller pushed before draining: keep the unread rest (one copy, off the normal path).
      this.chunk = Buffer.concat([this.chunk.subarray(this.pos), chunk]);
    } else {
      this.chunk = chunk;
    }
    this.pos = 0;
  }

  next(): Frame | undefined {
    const chunk = this.chunk;
    let pos = this.pos;
    let avail = chunk.length - pos;

    if (this.headFill > 0) {
      // Complete a split header, then continue into the partial frame.
      const take = Math.min(FRAME_HEADER_SIZE - this.headFill, avail);
      chunk.copy(this.head, this.headFill, pos, pos + take);
      this.headFill += take;
      pos += take;
      avail -= take;
      this.pos = pos;
      if (this.headFill < FRAME_HEADER_SIZE) return this.drained();
      this.headFill = 0;
      const size = this.head.readUInt32BE(3);
      checkHeader(this.head[0]!, size, this.maxFrameSize);
      this.partial = Buffer.allocUnsafe(size + FRAME_OVERHEAD);
      this.head.copy(this.partial, 0);
      this.partialFill = FRAME_HEADER_SIZE;
    }

    const partial = this.partial;
    if (partial !== null) {
      const take = Math.min(partial.length - this.partialFill, avail);
      chunk.copy(partial, this.partialFill, pos, pos + take);
      this.partialFill += take;
      this.pos = pos + take;
      if (this.partialFill < partial.length) return this.drained();
      this.partial = null;
      this.partialFill = 0;
      const end = partial.length - 1;
      if (partial[end] !== FRAME_END) throw badEnd(partial[end]!);
      return {
        type: partial[0]!,
        channel: (partial[1]! << 8) | partial[2]!,
        payload: partial.subarray(FRAME_HEADER_SIZE, end),
      };
    }

    if (avail < FRAME_HEADER_SIZE) {
      if (avail > 0) {
        chunk.copy(this.head, 0, pos, pos + avail);
        this.headFill = avail;
      }
      return this.drained();
    }
    const type = chunk[pos]!;
    const size = chunk.readUInt32BE(pos + 3);
    checkHeader(type, size, this.maxFrameSize);
    const end = pos + FRAME_HEADER_SIZE + size;
    if (end < chunk.length) {
      if (chunk[end] !== FRAME_END) throw badEnd(chunk[end]!);
      this.pos = end + 1;
      return {
        type,
        channel: (chunk[pos + 1]! << 8) | chunk[pos + 2]!,
        payload: chunk.subarray(pos + FRAME_HEADER_SIZE, end),
      };
    }
    // The frame runs past this chunk: one buffer of its declared size, filled by later pushes.
    const p = Buffer.allocUnsafe(size + FRAME_OVERHEAD);
    chunk.copy(p, 0, pos);
    this.partial = p;
    this.partialFill = avail;
    return this.drained();
  }

  /** The chunk is used up: drop it so that an idle connection does not pin it. */
  private drained(): undefined {
    this.chunk = EMPTY;
    this.pos = 0;
    return undefined;
  }
}
