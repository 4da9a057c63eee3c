/**
 * AMQP 0-9-1 frames and content: FrameReader at every split point and one byte at a time with the
 * next frame glued on (habit 10, after nats.js byByteTest and RabbitMQ packet_fragment_SUITE),
 * frame errors, content split at frame_max and reassembled.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  AmqpCodecError,
  type BasicProperties,
  decodeContentHeader,
  decodeFrame,
  decodeMethod,
  encodeBasicProperties,
  encodeContent,
  encodeFrame,
  encodeMethodFrame,
  encodeMethodWithContent,
  FRAME_END,
  FRAME_MIN_SIZE,
  FRAME_OVERHEAD,
  type Frame,
  FrameReader,
  FrameType,
  HEARTBEAT_FRAME,
  INLINE_BODY_MAX,
  type Method,
  MethodId,
  NEED_MORE,
  PROTOCOL_HEADER,
} from '../../src/amqp091/codec/index.js';

interface Plain {
  type: number;
  channel: number;
  payload: Buffer;
}

/** Feeds chunks, copying each payload before the next push (a payload may be a view, valid until then). */
function readAll(chunks: Buffer[], max = 131072): Plain[] {
  const r = new FrameReader(max);
  const out: Plain[] = [];
  for (const c of chunks) {
    r.push(c);
    for (let f: Frame | undefined; (f = r.next()); ) {
      out.push({ type: f.type, channel: f.channel, payload: Buffer.from(f.payload) });
    }
  }
  assert.equal(r.buffered, 0, 'nothing left over');
  return out;
}

function parseFrames(wire: Buffer): Plain[] {
  const out: Plain[] = [];
  let off = 0;
  while (off < wire.length) {
    const d = decodeFrame(wire, off, 0);
    assert.notEqual(d, NEED_MORE);
    if (d === NEED_MORE) break;
    out.push({ type: d.frame.type, channel: d.frame.channel, payload: Buffer.from(d.frame.payload) });
    off = d.next;
  }
  return out;
}

/** True when `a` lies inside `b`'s bytes (a view, not a copy). */
function isViewOf(a: Buffer, b: Buffer): boolean {
  return a.buffer === b.buffer && a.byteOffset >= b.byteOffset && a.byteOffset + a.length <= b.byteOffset + b.length;
}

function codecError(code: number): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof AmqpCodecError, `expected AmqpCodecError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

const props = encodeBasicProperties({ contentType: 'text/plain', headers: [['h', 1]] });
const deliver: Method = {
  id: MethodId.BasicDeliver,
  consumerTag: 'ctag-1',
  deliveryTag: 42,
  redelivered: false,
  exchange: 'amq.topic',
  routingKey: 'a.b',
};

/** Every kind of frame: method, header, body (empty-body content has none), heartbeat. */
const fixtures: Buffer[] = [
  HEARTBEAT_FRAME,
  encodeMethodFrame(0, { id: MethodId.ConnectionTuneOk, channelMax: 2047, frameMax: 131072, heartbeat: 60 }),
  encodeMethodFrame(1, { id: MethodId.ChannelOpen, outOfBand: '' }),
  ...encodeMethodWithContent(1, deliver, props, Buffer.from('hello'), 4096),
  encodeFrame(FrameType.Body, 65535, Buffer.alloc(300, 7)),
  encodeMethodFrame(2, {
    id: MethodId.QueueDeclare,
    ticket: 0,
    queue: 'q',
    passive: false,
    durable: true,
    exclusive: false,
    autoDelete: false,
    nowait: false,
    arguments: { 'x-max-length': 10, 'x-queue-type': 'classic' },
  }),
  encodeFrame(FrameType.Body, 3, Buffer.alloc(0)),
];
const expected = fixtures.flatMap(parseFrames);

describe('AMQP 0-9-1 frame constants', () => {
  test('protocol header, heartbeat frame, sizes', () => {
    assert.deepEqual(PROTOCOL_HEADER, Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'));
    assert.deepEqual(HEARTBEAT_FRAME, Buffer.from([8, 0, 0, 0, 0, 0, 0, 0xce]));
    assert.deepEqual(FrameType, { Method: 1, Header: 2, Body: 3, Heartbeat: 8 });
    assert.equal(FRAME_END, 0xce);
    assert.equal(FRAME_MIN_SIZE, 4096);
    assert.equal(FRAME_OVERHEAD, 8);
  });
});

describe('AMQP 0-9-1 FrameReader (habit 10)', () => {
  test('the fixtures decode as expected in one chunk', () => {
    const all = readAll([Buffer.concat(fixtures)]);
    assert.deepEqual(all, expected);
    assert.equal(all[0]!.type, FrameType.Heartbeat);
    assert.deepEqual(decodeMethod(all[3]!.payload), deliver);
    assert.equal(decodeContentHeader(all[4]!.payload).properties.contentType, 'text/plain');
    assert.deepEqual(all[5]!.payload, Buffer.from('hello'));
  });

  test('one byte at a time', () => {
    const wire = Buffer.concat(fixtures);
    const chunks: Buffer[] = [];
    for (let i = 0; i < wire.length; i++) chunks.push(wire.subarray(i, i + 1));
    assert.deepEqual(readAll(chunks), expected);
  });

  test('each fixture split at every point, with the next frame glued on', () => {
    for (let i = 0; i < fixtures.length; i++) {
      const pair = Buffer.concat([fixtures[i]!, fixtures[(i + 1) % fixtures.length]!]);
      const want = parseFrames(pair);
      for (let k = 1; k < pair.length; k++) {
        assert.deepEqual(readAll([pair.subarray(0, k), pair.subarray(k)]), want, `fixture ${i} split at ${k}`);
      }
    }
  });

  test('every fragment size over the whole stream', () => {
    const wire = Buffer.concat(fixtures);
    for (let size = 1; size <= wire.length; size++) {
      const chunks: Buffer[] = [];
      for (let o = 0; o < wire.length; o += size) chunks.push(wire.subarray(o, o + size));
      assert.deepEqual(readAll(chunks), expected, `fragment size ${size}`);
    }
  });

  test('random chunkings, and chunks reused by the transport after each push', () => {
    const wire = Buffer.concat(fixtures);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 200 }), (sizes) => {
        const chunks: Buffer[] = [];
        let o = 0;
        for (const s of sizes) {
          if (o >= wire.length) break;
          chunks.push(Buffer.from(wire.subarray(o, o + s)));
          o += s;
        }
        if (o < wire.length) chunks.push(Buffer.from(wire.subarray(o)));
        // Overwrite each chunk after its frames are read, as a transport reusing its read buffer would.
        const r = new FrameReader(131072);
        const out: Plain[] = [];
        for (const c of chunks) {
          r.push(c);
          for (let f: Frame | undefined; (f = r.next()); ) out.push({ ...f, payload: Buffer.from(f.payload) });
          c.fill(0xee);
        }
        assert.deepEqual(out, expected);
      }),
      { numRuns: 300 },
    );
  });

  test('a frame whole in a chunk is a view into it; a split frame is copied once', () => {
    const wire = Buffer.concat([fixtures[1]!, fixtures[2]!]);
    const r = new FrameReader(4096);
    r.push(wire);
    const f = r.next()!;
    assert.ok(isViewOf(f.payload, wire), 'view');
    const r2 = new FrameReader(4096);
    r2.push(wire.subarray(0, 10));
    assert.equal(r2.next(), undefined);
    r2.push(wire.subarray(10));
    const g = r2.next()!;
    assert.ok(!isViewOf(g.payload, wire), 'assembled copy');
    assert.deepEqual(g.payload, f.payload);
  });

  test('pushing before draining keeps the unread frames', () => {
    const r = new FrameReader(4096);
    r.push(Buffer.concat([fixtures[1]!, fixtures[2]!]));
    r.push(fixtures[0]!);
    const types: number[] = [];
    for (let f: Frame | undefined; (f = r.next()); ) types.push(f.type);
    assert.deepEqual(types, [1, 1, 8]);
  });

  test('a wrong frame-end octet is 501, whole or split', () => {
    const bad = Buffer.from(fixtures[1]!);
    bad[bad.length - 1] = 0xcd;
    assert.throws(() => readAll([bad]), codecError(501));
    for (let k = 1; k < bad.length; k++) {
      assert.throws(() => readAll([bad.subarray(0, k), bad.subarray(k)]), codecError(501), `split at ${k}`);
    }
    assert.throws(() => decodeFrame(bad, 0, 0), codecError(501));
  });

  test('a declared size above frame_max is 501 from the 7-byte header, before buffering', () => {
    const r = new FrameReader(4096);
    const head = Buffer.from([1, 0, 1, 0, 0, 0x10, 0x01]); // payload 4097
    r.push(head);
    assert.throws(() => r.next(), codecError(501));
    // Split header: still rejected as soon as the 7th byte arrives.
    const r2 = new FrameReader(4096);
    r2.push(head.subarray(0, 3));
    assert.equal(r2.next(), undefined);
    r2.push(head.subarray(3));
    assert.throws(() => r2.next(), codecError(501));
    assert.throws(() => decodeFrame(head, 0, 4096), codecError(501));
    // A 4 GiB declaration is not allocated.
    const r3 = new FrameReader(131072);
    r3.push(Buffer.from([3, 0, 1, 0xff, 0xff, 0xff, 0xff]));
    assert.throws(() => r3.next(), codecError(501));
  });

  test('frame_max tolerance as RabbitMQ: payload up to frame_max passes (FRAME_SIZE_FUDGE)', () => {
    const at = encodeFrame(FrameType.Body, 1, Buffer.alloc(4096));
    assert.equal(readAll([at], 4096).length, 1);
    assert.throws(() => readAll([encodeFrame(FrameType.Body, 1, Buffer.alloc(4097))], 4096), codecError(501));
  });

  test('maxFrameSize can be raised after tune-ok; 0 means no limit', () => {
    const big = encodeFrame(FrameType.Body, 1, Buffer.alloc(10000));
    const r = new FrameReader(4096);
    r.maxFrameSize = 131072;
    r.push(big);
    assert.equal(r.next()!.payload.length, 10000);
    assert.equal(readAll([big], 0).length, 1);
  });

  test('an unknown frame type is 501 (rabbit_reader frame_error unknown_frame)', () => {
    for (const type of [0, 4, 7, 9, 65, 255]) {
      assert.throws(() => readAll([encodeFrame(type, 0, Buffer.alloc(1))]), codecError(501));
    }
    // 'AMQP' sent again mid-connection is type 0x41.
    assert.throws(() => readAll([Buffer.concat([PROTOCOL_HEADER, HEARTBEAT_FRAME])]), codecError(501));
  });

  test('a heartbeat with a payload is 501', () => {
    assert.throws(() => readAll([encodeFrame(FrameType.Heartbeat, 0, Buffer.from([1]))]), codecError(501));
  });

  test('decodeFrame returns NEED_MORE for a partial frame and the next offset otherwise', () => {
    const wire = Buffer.concat([fixtures[1]!, HEARTBEAT_FRAME]);
    for (let n = 0; n < fixtures[1]!.length; n++) assert.equal(decodeFrame(wire.subarray(0, n), 0, 0), NEED_MORE);
    const d = decodeFrame(wire, 0, 0);
    assert.ok(d !== NEED_MORE);
    assert.equal(d.next, fixtures[1]!.length);
    const h = decodeFrame(wire, d.next, 0);
    assert.ok(h !== NEED_MORE);
    assert.equal(h.frame.type, FrameType.Heartbeat);
    assert.equal(h.next, wire.length);
  });

  test('fuzz: random bytes never throw anything but AmqpCodecError', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 10 }),
        fc.integer({ min: 0, max: 200 }),
        (chunks, max) => {
          const r = new FrameReader(max);
          try {
            for (const c of chunks) {
              r.push(Buffer.from(c));
              while (r.next()) {}
            }
          } catch (e) {
            if (!(e instanceof AmqpCodecError)) throw e;
          }
        },
      ),
      { numRuns: 5000 },
    );
  });
});

/** Reads frames and reassembles: [method?], header, body. */
function reassemble(parts: Buffer[], frameMax: number) {
  const frames = readAll([Buffer.concat(parts)], frameMax);
  for (const f of frames)
    assert.ok(frameMax === 0 || f.payload.length + FRAME_OVERHEAD <= frameMax, 'frame ≤ frameMax');
  let i = 0;
  const method = frames[0]!.type === FrameType.Method ? decodeMethod(frames[i++]!.payload) : undefined;
  assert.equal(frames[i]!.type, FrameType.Header);
  const header = decodeContentHeader(frames[i++]!.payload);
  const bodies = frames.slice(i);
  for (const b of bodies) assert.equal(b.type, FrameType.Body);
  return {
    method,
    header,
    bodies,
    body: Buffer.concat(bodies.map((b) => b.payload)),
    channels: frames.map((f) => f.channel),
  };
}

describe('AMQP 0-9-1 content', () => {
  const p: BasicProperties = { contentType: 'application/json', deliveryMode: 2, headers: [['x', 'y']] };
  const encoded = encodeBasicProperties(p);

  test('frameMax 4096, 10,000-byte body: 3 body frames of at most 4088 bytes, reassembled', () => {
    const body = Buffer.from(Array.from({ length: 10000 }, (_, i) => i % 251));
    const parts = encodeContent(5, encoded, body, 4096);
    assert.equal(parts.length, 1, 'one buffer for a body up to INLINE_BODY_MAX');
    const r = reassemble(parts, 4096);
    assert.deepEqual(
      r.bodies.map((b) => b.payload.length),
      [4088, 4088, 1824],
    );
    assert.deepEqual(r.body, body);
    assert.deepEqual(r.header, { classId: 60, weight: 0, bodySize: 10000, properties: p });
    assert.ok(r.channels.every((c) => c === 5));
  });

  test('an empty body has no body frame', () => {
    const r = reassemble(encodeContent(1, encoded, Buffer.alloc(0), 4096), 4096);
    assert.equal(r.bodies.length, 0);
    assert.equal(r.header.bodySize, 0);
  });

  test('a body above INLINE_BODY_MAX is not copied: the parts are views of it', () => {
    const body = Buffer.alloc(100_000, 0x61);
    for (const frameMax of [4096, 131072, 0]) {
      const parts = encodeContent(1, encoded, body, frameMax);
      const views = parts.filter((b) => isViewOf(b, body));
      assert.equal(
        views.reduce((n, b) => n + b.length, 0),
        body.length,
        `frameMax ${frameMax}`,
      );
      const r = reassemble(parts, frameMax);
      assert.deepEqual(r.body, body);
      assert.equal(r.bodies.length, frameMax === 0 ? 1 : Math.ceil(body.length / (frameMax - 8)));
      assert.ok(parts.length <= 2 * r.bodies.length + 1, 'a frame-boundary buffer between body views, no more');
    }
  });

  test('encodeMethodWithContent: one buffer for small bodies holding every frame', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: INLINE_BODY_MAX }),
        fc.constantFrom(4096, 8192, 131072, 0),
        fc.integer({ min: 1, max: 0xffff }),
        (bytes, frameMax, channel) => {
          const body = Buffer.from(bytes);
          const parts = encodeMethodWithContent(channel, deliver, encoded, body, frameMax);
          assert.equal(parts.length, 1);
          const r = reassemble(parts, frameMax);
          assert.deepEqual(r.method, deliver);
          assert.deepEqual(r.body, body);
          assert.equal(r.header.bodySize, body.length);
          assert.ok(r.channels.every((c) => c === channel));
        },
      ),
      { numRuns: 200 },
    );
  });

  test('encodeMethodWithContent with a large body, split at every frame_max', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: INLINE_BODY_MAX + 1, max: 200_000 }),
        fc.integer({ min: 4096, max: 70_000 }),
        (size, frameMax) => {
          const body = Buffer.alloc(size);
          body.writeUInt32BE(size, 0);
          body.writeUInt32BE(frameMax, size - 4);
          const r = reassemble(encodeMethodWithContent(9, deliver, encoded, body, frameMax), frameMax);
          assert.deepEqual(r.method, deliver);
          assert.deepEqual(r.body, body);
          assert.equal(r.bodies.length, Math.ceil(size / (frameMax - 8)));
        },
      ),
      { numRuns: 50 },
    );
  });

  test('decodeContentHeader: a body size above 2^32, weight, other classes, malformed', () => {
    const h = Buffer.from('003c0000 0000000100000002 0000'.replace(/ /g, ''), 'hex');
    assert.deepEqual(decodeContentHeader(h), { classId: 60, weight: 0, bodySize: 2 ** 32 + 2, properties: {} });
    const other = Buffer.from('000a0001 0000000000000000 ffff'.replace(/ /g, ''), 'hex');
    assert.deepEqual(decodeContentHeader(other), { classId: 10, weight: 1, bodySize: 0, properties: {} });
    for (let n = 0; n < 14; n++) assert.throws(() => decodeContentHeader(h.subarray(0, n)), codecError(501));
    assert.throws(() => decodeContentHeader(Buffer.concat([h, Buffer.from([0])])), codecError(501));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (a) => {
        try {
          decodeContentHeader(Buffer.from(a));
        } catch (e) {
          if (!(e instanceof AmqpCodecError)) throw e;
        }
      }),
      { numRuns: 3000 },
    );
  });

  test('a frameMax that leaves no room for a body is a RangeError', () => {
    assert.throws(() => encodeContent(1, encoded, Buffer.alloc(1), 8), RangeError);
  });
});
