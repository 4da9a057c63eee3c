/**
 * Content: the header frame (class-id, weight, body-size, property flags and list; §4.2.6.1) and
 * body frames (§4.2.6.2), and the writer for a method with content — the delivery hot path.
 *
 * Writers size first and allocate once (habit 4). Bodies up to INLINE_BODY_MAX are copied into that
 * one buffer; larger bodies go out as subarrays of the caller's body between small frame
 * prefix/suffix buffers, never copied.
 */
import { AmqpCodecError } from './errors.js';
import { FRAME_END, FRAME_HEADER_SIZE, FRAME_OVERHEAD, FrameType } from './frame.js';
import { type Method, methodPayloadSize, writeMethodPayload } from './methods.gen.js';
import { writeLonglong } from './primitives.js';
import { BASIC_CLASS_ID, type BasicProperties, decodeBasicProperties } from './properties.gen.js';

export interface ContentHeader {
  classId: number;
  /** Always 0 in 0-9-1; RabbitMQ answers a non-zero weight with 505 (rabbit_command_assembler.erl). */
  weight: number;
  bodySize: number;
  properties: BasicProperties;
}

/**
 * Bodies up to this size are copied into the frame buffer; above it they are sent as views.
 * 16 KiB: a memcpy of that size costs less than an extra writev entry and its allocations.
 */
export const INLINE_BODY_MAX = 16 * 1024;

/** Fixed part of a content header payload: class-id, weight, body-size. */
const HEADER_FIXED = 12;

/**
 * Decodes a content header frame payload. Properties are decoded for class 60 (basic, the only
 * class with content); for any other class they are left empty and not read — the adapter rejects
 * a header whose class differs from its method's (505, as rabbit_command_assembler.erl does).
 * Throws AmqpCodecError 501 when the payload is truncated or has extra bytes, 502 for an illegal
 * value in the headers table.
 */
export function decodeContentHeader(payload: Buffer): ContentHeader {
  if (payload.length < HEADER_FIXED + 2) {
    // Shorter than class-id, weight, body-size: rabbit_command_assembler.erl analyze_frame/2 → 501.
    throw new AmqpCodecError(501, `content header of ${payload.length} bytes, expected at least 14`);
  }
  const classId = (payload[0]! << 8) | payload[1]!;
  const weight = (payload[2]! << 8) | payload[3]!;
  // Exact to 2^53; RabbitMQ caps message size far below that (max_message_size, 512 MiB at most).
  const bodySize = payload.readUInt32BE(4) * 4294967296 + payload.readUInt32BE(8);
  const properties =
    classId === BASIC_CLASS_ID ? decodeBasicProperties(payload, HEADER_FIXED, payload.length) : ({} as BasicProperties);
  return { classId, weight, bodySize, properties };
}

function maxBodyPerFrame(frameMax: number): number {
  if (frameMax === 0) return Number.POSITIVE_INFINITY;
  if (!(frameMax > FRAME_OVERHEAD)) throw new RangeError(`frameMax ${frameMax} leaves no room for a body`);
  return frameMax - FRAME_OVERHEAD;
}

function writeFrameHead(b: Buffer, o: number, type: number, channel: number, size: number): number {
  b[o] = type;
  b[o + 1] = channel >>> 8;
  b[o + 2] = channel & 0xff;
  b.writeUInt32BE(size, o + 3);
  return o + FRAME_HEADER_SIZE;
}

/** Writes the content header frame; returns the offset after its frame-end. */
function writeHeaderFrame(b: Buffer, o: number, channel: number, props: Buffer, bodySize: number): number {
  o = writeFrameHead(b, o, FrameType.Header, channel, HEADER_FIXED + props.length);
  b[o] = BASIC_CLASS_ID >>> 8;
  b[o + 1] = BASIC_CLASS_ID & 0xff;
  b[o + 2] = 0; // weight
  b[o + 3] = 0;
  o = writeLonglong(b, o + 4, bodySize);
  b.set(props, o);
  o += props.length;
  b[o] = FRAME_END;
  return o + 1;
}

/**
 * Method frame (if any) + header frame + body frames. `encodedProps` is flags + property list
 * (encodeBasicProperties), so one encoding can serve every delivery of a message.
 */
function encodeFrames(
  channel: number,
  m: Method | null,
  encodedProps: Buffer,
  body: Buffer,
  frameMax: number,
): Buffer[] {
  const perFrame = maxBodyPerFrame(frameMax);
  const methodSize = m === null ? 0 : methodPayloadSize(m);
  const lead = (m === null ? 0 : methodSize + FRAME_OVERHEAD) + FRAME_OVERHEAD + HEADER_FIXED + encodedProps.length;
  const bodyLen = body.length;
  const frames = bodyLen === 0 ? 0 : Math.ceil(bodyLen / Math.min(perFrame, bodyLen));

  let o = 0;
  if (bodyLen <= INLINE_BODY_MAX) {
    const b = Buffer.allocUnsafe(lead + bodyLen + frames * FRAME_OVERHEAD);
    if (m !== null) {
      o = writeFrameHead(b, o, FrameType.Method, channel, methodSize);
      o = writeMethodPayload(b, o, m);
      b[o++] = FRAME_END;
    }
    o = writeHeaderFrame(b, o, channel, encodedProps, bodyLen);
    for (let start = 0; start < bodyLen; start += perFrame) {
      const n = Math.min(perFrame, bodyLen - start);
      o = writeFrameHead(b, o, FrameType.Body, channel, n);
      body.copy(b, o, start, start + n);
      o += n;
      b[o++] = FRAME_END;
    }
    return [b];
  }

  // Large body: [method + header + first body head] body₀ [end + next head] body₁ … [end].
  const out: Buffer[] = [];
  const first = Buffer.allocUnsafe(lead + FRAME_HEADER_SIZE);
  if (m !== null) {
    o = writeFrameHead(first, o, FrameType.Method, channel, methodSize);
    o = writeMethodPayload(first, o, m);
    first[o++] = FRAME_END;
  }
  o = writeHeaderFrame(first, o, channel, encodedProps, bodyLen);
  writeFrameHead(first, o, FrameType.Body, channel, Math.min(perFrame, bodyLen));
  out.push(first);
  // All the glue between body frames in one allocation: (frames - 1) × (end + head) + final end.
  const glue = Buffer.allocUnsafe((frames - 1) * FRAME_OVERHEAD + 1);
  let g = 0;
  for (let start = 0; start < bodyLen; start += perFrame) {
    const n = Math.min(perFrame, bodyLen - start);
    out.push(body.subarray(start, start + n));
    const next = start + n;
    const gStart = g;
    glue[g++] = FRAME_END;
    if (next < bodyLen) g = writeFrameHead(glue, g, FrameType.Body, channel, Math.min(perFrame, bodyLen - next));
    out.push(glue.subarray(gStart, g));
  }
  return out;
}

/**
 * Header frame + body frames, each frame ≤ frameMax (overhead included; 0 = unlimited). No body
 * frame for an empty body (§4.2.6.2). One buffer for bodies up to INLINE_BODY_MAX; above that the
 * body is not copied: the result interleaves small frame-boundary buffers with body subarrays.
 */
export function encodeContent(channel: number, encodedProps: Buffer, body: Buffer, frameMax: number): Buffer[] {
  return encodeFrames(channel, null, encodedProps, body, frameMax);
}

/**
 * Method frame + content (basic.deliver, basic.get-ok, basic.return): one buffer holding all frames
 * for bodies up to INLINE_BODY_MAX. `m` must be a method with content (hasContent(m.id)).
 */
export function encodeMethodWithContent(
  channel: number,
  m: Method,
  encodedProps: Buffer,
  body: Buffer,
  frameMax: number,
): Buffer[] {
  return encodeFrames(channel, m, encodedProps, body, frameMax);
}
