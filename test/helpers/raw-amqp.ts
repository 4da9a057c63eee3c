/**
 * A raw AMQP 0-9-1 client over TCP, for what amqplib will not send: frames are built byte by
 * byte here, independently of the broker's own codec (src/amqp091/codec is deliberately not
 * imported, so that these tests do not trust the code under test), and every frame the server
 * sends is kept for the test to inspect. Also a few amqplib conveniences shared by the AMQP tests.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { waitFor } from './mqtt.js';

/** The protocol header of AMQP 0-9-1. */
export const PROTOCOL_HEADER = Buffer.from('AMQP\x00\x00\x09\x01', 'latin1');
/** The header RabbitMQ 4 answers to non-AMQP input: AMQP 1.0 with SASL (protocol id 3). */
export const AMQP10_SASL_HEADER = Buffer.from('AMQP\x03\x01\x00\x00', 'latin1');

export const FRAME_METHOD = 1;
export const FRAME_HEADER = 2;
export const FRAME_BODY = 3;
export const FRAME_HEARTBEAT = 8;
export const FRAME_END = 0xce;

/** Reply codes of the AMQP 0-9-1 spec (amqp0-9-1.xml, §1.2 constants). */
export const CODE = {
  CONNECTION_FORCED: 320,
  INVALID_PATH: 402,
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  RESOURCE_LOCKED: 405,
  PRECONDITION_FAILED: 406,
  FRAME_ERROR: 501,
  SYNTAX_ERROR: 502,
  COMMAND_INVALID: 503,
  CHANNEL_ERROR: 504,
  UNEXPECTED_FRAME: 505,
  RESOURCE_ERROR: 506,
  NOT_ALLOWED: 530,
  NOT_IMPLEMENTED: 540,
  INTERNAL_ERROR: 541,
} as const;
/** The codes the spec marks "hard-error" (they close the connection). */
export const HARD_ERRORS: ReadonlySet<number> = new Set([320, 402, 501, 502, 503, 504, 505, 506, 530, 540, 541]);
/** The name of a reply code, for messages. */
export const codeName = (code: number): string =>
  Object.entries(CODE).find(([, c]) => c === code)?.[0] ?? `code ${code}`;

// ---------------------------------------------------------------------------------------------
// Encoding primitives (AMQP 0-9-1 §4.2.5: big-endian integers, short and long strings, tables).

export const u8 = (n: number): Buffer => Buffer.from([n & 0xff]);
export const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
export const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
export const u64 = (n: number | bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
export const shortstr = (s: string): Buffer => {
  const b = Buffer.from(s);
  assert.ok(b.length < 256, 'shortstr too long');
  return Buffer.concat([u8(b.length), b]);
};
export const longstr = (s: string | Buffer): Buffer => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([u32(b.length), b]);
};
/** A field table of strings ('S'), booleans ('t') and 32-bit integers ('I'). */
export function table(fields: Record<string, string | boolean | number> = {}): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) {
    parts.push(shortstr(k));
    if (typeof v === 'string') parts.push(Buffer.from('S'), longstr(v));
    else if (typeof v === 'boolean') parts.push(Buffer.from('t'), u8(v ? 1 : 0));
    else {
      const b = Buffer.alloc(4);
      b.writeInt32BE(v);
      parts.push(Buffer.from('I'), b);
    }
  }
  return longstr(Buffer.concat(parts));
}

// ---------------------------------------------------------------------------------------------
// Frames (§4.2.3: type octet, channel short, size long, payload, frame-end octet 0xCE).

/** A frame; `end` may be given wrong, `size` may be given to lie about the payload length. */
export function frame(type: number, channel: number, payload: Buffer, end = FRAME_END, size = payload.length): Buffer {
  return Buffer.concat([u8(type), u16(channel), u32(size), payload, u8(end)]);
}
export const methodPayload = (classId: number, methodId: number, ...args: Buffer[]): Buffer =>
  Buffer.concat([u16(classId), u16(methodId), ...args]);
export const methodFrame = (channel: number, classId: number, methodId: number, ...args: Buffer[]): Buffer =>
  frame(FRAME_METHOD, channel, methodPayload(classId, methodId, ...args));
/** A content header (§4.2.6.1) with no properties (flags 0) unless `props` says otherwise. */
export const contentHeader = (channel: number, bodySize: number, classId = 60, flagsAndProps = u16(0)): Buffer =>
  frame(FRAME_HEADER, channel, Buffer.concat([u16(classId), u16(0), u64(bodySize), flagsAndProps]));
export const bodyFrame = (channel: number, data: Buffer | string): Buffer =>
  frame(FRAME_BODY, channel, typeof data === 'string' ? Buffer.from(data) : data);
export const heartbeatFrame = (channel = 0): Buffer => frame(FRAME_HEARTBEAT, channel, Buffer.alloc(0));

// Methods a client sends (class, method ids from amqp0-9-1.xml).
export const startOk = (user = 'guest', pass = 'guest'): Buffer =>
  methodFrame(
    0,
    10,
    11,
    table({ product: 'braid-test-raw-amqp' }),
    shortstr('PLAIN'),
    longstr(`\0${user}\0${pass}`),
    shortstr('en_US'),
  );
export const tuneOk = (channelMax: number, frameMax: number, heartbeat: number): Buffer =>
  methodFrame(0, 10, 31, u16(channelMax), u32(frameMax), u16(heartbeat));
export const connectionOpen = (vhost = '/'): Buffer => methodFrame(0, 10, 40, shortstr(vhost), shortstr(''), u8(0));
export const connectionClose = (code = 200, text = 'bye', classId = 0, methodId = 0): Buffer =>
  methodFrame(0, 10, 50, u16(code), shortstr(text), u16(classId), u16(methodId));
export const connectionCloseOk = (): Buffer => methodFrame(0, 10, 51);
export const channelOpen = (channel: number): Buffer => methodFrame(channel, 20, 10, shortstr(''));
export const channelCloseOk = (channel: number): Buffer => methodFrame(channel, 20, 41);
export const basicQos = (channel: number, prefetch: number): Buffer =>
  methodFrame(channel, 60, 10, u32(0), u16(prefetch), u8(0));
export const basicPublish = (channel: number, exchange: string, routingKey: string, flags = 0): Buffer =>
  methodFrame(channel, 60, 40, u16(0), shortstr(exchange), shortstr(routingKey), u8(flags));
/** A whole publish: method, content header and one body frame. */
export const publish = (channel: number, exchange: string, routingKey: string, body: string): Buffer =>
  Buffer.concat([
    basicPublish(channel, exchange, routingKey),
    contentHeader(channel, Buffer.byteLength(body)),
    bodyFrame(channel, body),
  ]);

// ---------------------------------------------------------------------------------------------
// What the server sends.

export interface Frame {
  type: number;
  channel: number;
  size: number;
  payload: Buffer;
  /** The frame-end octet as received (0xCE when well formed). */
  end: number;
}

export interface CloseArgs {
  replyCode: number;
  replyText: string;
  classId: number;
  methodId: number;
}

export const isMethod = (f: Frame, classId: number, methodId: number): boolean =>
  f.type === FRAME_METHOD &&
  f.payload.length >= 4 &&
  f.payload.readUInt16BE(0) === classId &&
  f.payload.readUInt16BE(2) === methodId;

/** The arguments of connection.close or channel.close: reply-code, reply-text, class-id, method-id. */
export function parseClose(f: Frame): CloseArgs {
  const p = f.payload;
  const replyCode = p.readUInt16BE(4);
  const tl = p[6]!;
  const replyText = p.toString('utf8', 7, 7 + tl);
  return { replyCode, replyText, classId: p.readUInt16BE(7 + tl), methodId: p.readUInt16BE(9 + tl) };
}

export interface Tune {
  channelMax: number;
  frameMax: number;
  heartbeat: number;
}
export const parseTune = (f: Frame): Tune => ({
  channelMax: f.payload.readUInt16BE(4),
  frameMax: f.payload.readUInt32BE(6),
  heartbeat: f.payload.readUInt16BE(10),
});

const describeFrame = (f: Frame): string =>
  f.type === FRAME_METHOD && f.payload.length >= 4
    ? `method ${f.payload.readUInt16BE(0)}.${f.payload.readUInt16BE(2)} on channel ${f.channel}`
    : `frame type ${f.type} on channel ${f.channel} (${f.size} octets)`;

export interface HandshakeOptions {
  /** frame-max to ask for in tune-ok; default: what the server offers (0 → 131072). */
  frameMax?: number;
  /** heartbeat to ask for in tune-ok; default 0 (off), so that no heartbeat interferes. */
  heartbeat?: number;
  /** Where to stop: after connection.tune arrives (tune-ok not sent), or after tune-ok. */
  stopAfter?: 'tune' | 'tune-ok';
}

export class RawAmqp {
  /** Frames received and not yet taken by `next`, in order. */
  readonly frames: Frame[] = [];
  /** Every frame received, taken or not. */
  readonly history: Frame[] = [];
  /** A protocol header the server sent instead of frames (a refused protocol version). */
  protocolHeader: Buffer | undefined;
  /** Every byte received. */
  received = Buffer.alloc(0);
  closed = false;
  /** The tuning the server offered, after `handshake`. */
  tune: Tune | undefined;
  private buf = Buffer.alloc(0);

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
    });
    sock.on('close', () => {
      this.closed = true;
    });
    sock.on('error', () => {});
  }

  static open(port: number): Promise<RawAmqp> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawAmqp(s)));
      s.once('error', reject);
    });
  }

  private parse(): void {
    for (;;) {
      if (
        this.history.length === 0 &&
        this.protocolHeader === undefined &&
        this.buf.subarray(0, 4).equals(Buffer.from('AMQP'))
      ) {
        if (this.buf.length < 8) return;
        this.protocolHeader = Buffer.from(this.buf.subarray(0, 8));
        this.buf = this.buf.subarray(8);
        continue;
      }
      if (this.buf.length < 7) return;
      const size = this.buf.readUInt32BE(3);
      if (this.buf.length < 8 + size) return;
      const f: Frame = {
        type: this.buf[0]!,
        channel: this.buf.readUInt16BE(1),
        size,
        payload: Buffer.from(this.buf.subarray(7, 7 + size)),
        end: this.buf[7 + size]!,
      };
      this.frames.push(f);
      this.history.push(f);
      this.buf = this.buf.subarray(8 + size);
    }
  }

  send(b: Buffer | string): void {
    if (!this.sock.destroyed) this.sock.write(typeof b === 'string' ? Buffer.from(b, 'latin1') : b);
  }

  /** Takes the first frame that satisfies `pred`, waiting for it. */
  async next(pred: (f: Frame) => boolean, what: string, timeoutMs = 5000): Promise<Frame> {
    try {
      await waitFor(() => this.frames.some(pred) || this.closed, timeoutMs, what);
    } catch {
      assert.fail(`no ${what} within ${timeoutMs} ms; received: ${this.history.map(describeFrame).join(', ')}`);
    }
    const i = this.frames.findIndex(pred);
    if (i < 0) assert.fail(`the server closed the socket before ${what}; received: ${this.describe()}`);
    return this.frames.splice(i, 1)[0]!;
  }

  nextMethod(classId: number, methodId: number, channel?: number, timeoutMs = 5000): Promise<Frame> {
    return this.next(
      (f) => isMethod(f, classId, methodId) && (channel === undefined || f.channel === channel),
      `method ${classId}.${methodId}${channel === undefined ? '' : ` on channel ${channel}`}`,
      timeoutMs,
    );
  }

  /** What the server sent, for messages. */
  describe(): string {
    const parts = this.history.map(describeFrame);
    if (this.protocolHeader) parts.unshift(`protocol header ${JSON.stringify(this.protocolHeader.toString('latin1'))}`);
    return parts.length ? parts.join(', ') : 'nothing';
  }

  /**
   * Protocol header, connection.start → start-ok (PLAIN guest/guest), tune → tune-ok, open '/'
   * → open-ok; or stops early (`stopAfter`).
   */
  async handshake(opts: HandshakeOptions = {}): Promise<Tune> {
    this.send(PROTOCOL_HEADER);
    await this.nextMethod(10, 10, 0);
    this.send(startOk());
    const tune = parseTune(await this.nextMethod(10, 30, 0));
    this.tune = tune;
    if (opts.stopAfter === 'tune') return tune;
    const frameMax = opts.frameMax ?? (tune.frameMax === 0 ? 131072 : tune.frameMax);
    this.send(tuneOk(tune.channelMax, frameMax, opts.heartbeat ?? 0));
    if (opts.stopAfter === 'tune-ok') return tune;
    this.send(connectionOpen('/'));
    await this.nextMethod(10, 41, 0);
    return tune;
  }

  async openChannel(channel: number): Promise<void> {
    this.send(channelOpen(channel));
    await this.nextMethod(20, 11, channel);
  }

  /**
   * Waits for the server's connection.close; `undefined` if the socket closed without one. Any
   * channel.close before it is left in `frames`.
   */
  async connectionClose(timeoutMs = 10_000): Promise<CloseArgs | undefined> {
    try {
      await waitFor(() => this.frames.some((f) => isMethod(f, 10, 50)) || this.closed, timeoutMs, 'connection.close');
    } catch {
      assert.fail(`no connection.close and no socket close within ${timeoutMs} ms; received: ${this.describe()}`);
    }
    const i = this.frames.findIndex((f) => isMethod(f, 10, 50));
    if (i < 0) return undefined;
    const f = this.frames.splice(i, 1)[0]!;
    assert.equal(f.channel, 0, 'connection.close is sent on channel 0');
    return parseClose(f);
  }

  /**
   * The whole close handshake a hard error must produce: connection.close with `code` on
   * channel 0, then, once the client answers close-ok, the server closes the socket.
   */
  async expectHardClose(code: number | number[], what: string): Promise<CloseArgs> {
    const codes = Array.isArray(code) ? code : [code];
    const close = await this.connectionClose();
    if (!close)
      assert.fail(`${what}: the server closed the socket without connection.close; received: ${this.describe()}`);
    assert.ok(
      codes.includes(close.replyCode),
      `${what}: connection.close ${close.replyCode} ${JSON.stringify(close.replyText)}, expected ${codes
        .map((c) => `${c} ${codeName(c)}`)
        .join(' or ')}`,
    );
    assert.ok(
      close.replyText.startsWith(codeName(close.replyCode)),
      `${what}: reply-text ${JSON.stringify(close.replyText)} should start with ${codeName(close.replyCode)} (as RabbitMQ's do)`,
    );
    this.send(connectionCloseOk());
    await this.waitClosed(10_000, `${what}: the server to close the socket after close-ok`);
    return close;
  }

  async waitClosed(timeoutMs = 10_000, what = 'the server to close the socket'): Promise<void> {
    try {
      await waitFor(() => this.closed, timeoutMs, what);
    } catch {
      assert.fail(`${what}: still open after ${timeoutMs} ms; received: ${this.describe()}`);
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// amqplib conveniences.

/** The AMQP URL of a test broker's `amqp` listener, as guest. */
export function amqpUrl(port: number): string {
  return `amqp://guest:guest@127.0.0.1:${port}/`;
}

/** An amqplib connection that never throws unhandled 'error' events (tests watch 'close'). */
export async function amqpConnect(port: number): Promise<ChannelModel> {
  const conn = await amqp.connect(amqpUrl(port));
  conn.on('error', () => {});
  return conn;
}

export async function closeQuietly(...conns: Array<ChannelModel | undefined>): Promise<void> {
  await Promise.all(conns.map((c) => c?.close().catch(() => {})));
}

/** Consumes `queue` (no-ack), collecting each delivery. */
export async function consumeAll(ch: Channel, queue: string, noAck = true): Promise<ConsumeMessage[]> {
  const out: ConsumeMessage[] = [];
  await ch.consume(
    queue,
    (m) => {
      if (m) out.push(m);
    },
    { noAck },
  );
  return out;
}

let healthSeq = 0;
/**
 * A fresh amqplib connection publishes to a server-named exclusive queue and consumes it back:
 * the broker still serves AMQP. The connection is closed afterwards.
 */
export async function assertAmqpServes(port: number, timeoutMs = 5000): Promise<void> {
  const conn = await amqpConnect(port);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    const q = await ch.assertQueue('', { exclusive: true });
    const got = await consumeAll(ch, q.queue);
    const marker = `healthy-${process.pid}-${++healthSeq}`;
    ch.publish('', q.queue, Buffer.from(marker));
    await waitFor(() => got.some((m) => m.content.toString() === marker), timeoutMs, 'the health-check message');
  } finally {
    await closeQuietly(conn);
  }
}
