/**
 * AMQP 0-9-1 test helpers: a broker with the AMQP listener on an ephemeral port, amqplib
 * connections and channels that are watched for errors and closed after the test, helpers that
 * await channel and connection errors by reply code, and a raw frame-level client (built on
 * amqplib's own codec) for the handshake details amqplib does not expose.
 */
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Options } from 'amqplib';
import { type BrokerOverrides, startBroker, type TestBroker } from './broker.js';

// ---------------------------------------------------------------------------------------------
// The broker

/** The `amqp` config section the adapter has (typed here until the schema has the keys). */
export interface AmqpSettings {
  heartbeat?: number;
  frameMax?: number;
  channelMax?: number;
  consumerTimeout?: number;
  maxMessageSize?: number;
}
export type AmqpOverrides = Omit<BrokerOverrides, 'amqp'> & { amqp?: AmqpSettings };

export interface AmqpBroker extends TestBroker {
  /** amqp://guest:guest@127.0.0.1:PORT */
  amqpUrl: string;
  amqpPort: number;
}

/** A broker with the AMQP 0-9-1 listener on 127.0.0.1 (or `overrides.listeners.amqp`). */
export async function startAmqpBroker(overrides: AmqpOverrides = {}): Promise<AmqpBroker> {
  const listeners = { amqp: { port: 0, host: '127.0.0.1' }, ...(overrides.listeners ?? {}) };
  const b = await startBroker({ ...overrides, listeners } as BrokerOverrides);
  const port = b.broker.address('amqp')?.port ?? 0;
  assert.ok(port > 0, 'the AMQP listener is open');
  return { ...b, amqpPort: port, amqpUrl: `amqp://guest:guest@127.0.0.1:${port}` };
}

// ---------------------------------------------------------------------------------------------
// Waiting

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** `p`, or a rejection naming `what` after `ms`. */
export function within<T>(p: Promise<T>, ms = 5000, what = 'promise'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// Watching connections and channels for errors

/** What amqplib rejects with and emits: an Error with the AMQP reply code. */
export type Coded = Error & { code?: number; classId?: number; methodId?: number };

/** The errors an amqplib connection or channel emitted, and when it closed. */
export interface Watch {
  errors: Coded[];
  isClosed: boolean;
  /** Resolves on 'close': with the connection's close error, or a channel's first 'error'. */
  closed: Promise<Coded | undefined>;
}

const watches = new WeakMap<EventEmitter, Watch>();

/** Starts (once) recording 'error' and 'close' of an amqplib connection or channel. */
export function watch(e: EventEmitter): Watch {
  const known = watches.get(e);
  if (known) return known;
  const w: Watch = { errors: [], isClosed: false, closed: Promise.resolve(undefined) };
  e.on('error', (err: Coded) => w.errors.push(err));
  w.closed = new Promise((resolve) => {
    e.once('close', (err?: Coded) => {
      w.isClosed = true;
      resolve(err ?? w.errors[0]);
    });
  });
  watches.set(e, w);
  return w;
}

/** The error `e` closed with (a connection's close reason, a channel's error), within `ms`. */
export async function closedWith(e: EventEmitter, ms = 5000): Promise<Coded | undefined> {
  return within(watch(e).closed, ms, 'the close');
}

/** The error `p` rejects with; fails the test if it resolves. */
export async function rejection(p: Promise<unknown>, ms = 5000): Promise<Coded> {
  try {
    await within(p, ms, 'the operation to fail');
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('timed out after')) throw err;
    return err as Coded;
  }
  assert.fail('the operation succeeded');
}

/**
 * Asserts that `op` fails with a channel error `code` (amqplib rejects the pending operation
 * with the code) and that the channel is closed by it; `text` is matched against the reply text.
 */
export async function channelError(
  ch: Channel,
  op: () => Promise<unknown>,
  code: number,
  text?: RegExp,
): Promise<Coded> {
  watch(ch);
  const err = await rejection(op());
  assert.equal(err.code, code, `reply code (${err.message})`);
  if (text) assert.match(err.message, text);
  const closeErr = await closedWith(ch);
  assert.equal(closeErr?.code, code, 'the channel closed with the same code');
  return err;
}

/**
 * Asserts that something done on `conn` (by `op`, which may reject or resolve) makes the server
 * close the connection with `code`; `text` is matched against the close reason.
 */
export async function connectionError(
  conn: ChannelModel,
  op: () => unknown,
  code: number,
  text?: RegExp,
): Promise<Coded> {
  watch(conn);
  try {
    await Promise.resolve(op()).catch(() => {});
  } catch {
    // a synchronous throw (the connection already closing) counts as the op having been sent
  }
  const err = await closedWith(conn);
  assert.ok(err, 'the connection closed with an error');
  assert.equal(err.code, code, `reply code (${err.message})`);
  if (text) assert.match(err.message, text);
  return err;
}

/** Asserts that a channel closed by the server (asynchronously, e.g. after a publish) with `code`. */
export async function asyncChannelError(ch: Channel, code: number, text?: RegExp): Promise<Coded> {
  const err = await closedWith(ch);
  assert.ok(err, 'the channel closed with an error');
  assert.equal(err.code, code, `reply code (${err.message})`);
  if (text) assert.match(err.message, text);
  return err;
}

// ---------------------------------------------------------------------------------------------
// Harness: a broker per test and the connections it opens, all closed after the test

export interface AmqpHarness {
  b: AmqpBroker;
  url: string;
  /** An amqplib connection (promise API), watched and closed after the test. */
  connect(url?: string | Options.Connect, socketOptions?: Record<string, unknown>): Promise<ChannelModel>;
  /** A new channel on `conn` (a fresh connection if none is given), watched. */
  channel(conn?: ChannelModel): Promise<Channel>;
  /** A new confirm-mode channel, watched. */
  confirmChannel(conn?: ChannelModel): Promise<ConfirmChannel>;
  /** A raw frame-level client on the AMQP port, closed after the test. */
  raw(host?: string): Promise<RawAmqp>;
}

export async function amqpHarness(t: TestContext, overrides: AmqpOverrides = {}): Promise<AmqpHarness> {
  const b = await startAmqpBroker(overrides);
  const conns: ChannelModel[] = [];
  const raws: RawAmqp[] = [];
  let first: ChannelModel | undefined;
  t.after(async () => {
    for (const r of raws) r.destroy();
    await Promise.all(conns.map((c) => closeQuietly(c)));
    await b.stop();
  });
  const connect = async (url: string | Options.Connect = b.amqpUrl, socketOptions: Record<string, unknown> = {}) => {
    const c = await amqp.connect(url, socketOptions);
    watch(c);
    conns.push(c);
    return c;
  };
  const conn = async (c?: ChannelModel) => {
    if (c) return c;
    first ??= await connect();
    return first;
  };
  return {
    b,
    url: b.amqpUrl,
    connect,
    channel: async (c) => {
      const ch = await (await conn(c)).createChannel();
      watch(ch);
      return ch;
    },
    confirmChannel: async (c) => {
      const ch = await (await conn(c)).createConfirmChannel();
      watch(ch);
      return ch;
    },
    raw: async (host = '127.0.0.1') => {
      const r = await RawAmqp.open(b.amqpPort, host);
      raws.push(r);
      return r;
    },
  };
}

/** Closes a connection if it is still open, ignoring every error; never hangs. */
export async function closeQuietly(c: ChannelModel): Promise<void> {
  const w = watch(c);
  if (w.isClosed) return;
  await within(c.close(), 3000, 'connection close').catch(() => {});
}

// ---------------------------------------------------------------------------------------------
// Consuming

/** A consumer's deliveries, and whether the server cancelled it (amqplib's `null` message). */
export interface Consumer {
  tag: string;
  msgs: ConsumeMessage[];
  cancelled: boolean;
  /** Payloads as strings. */
  bodies(): string[];
  /** Waits until `n` messages have arrived. */
  waitCount(n: number, ms?: number): Promise<void>;
}

/** `ch.consume` collecting the messages; `onMessage` runs on each after it is recorded. */
export async function consume(
  ch: Channel,
  queue: string,
  options: Options.Consume = {},
  onMessage?: (m: ConsumeMessage) => void,
): Promise<Consumer> {
  const c: Consumer = {
    tag: '',
    msgs: [],
    cancelled: false,
    bodies: () => c.msgs.map((m) => m.content.toString()),
    waitCount: (n, ms = 5000) => waitFor(() => c.msgs.length >= n, ms, `${n} messages on ${queue}`),
  };
  const ok = await ch.consume(
    queue,
    (m) => {
      if (m === null) c.cancelled = true;
      else {
        c.msgs.push(m);
        onMessage?.(m);
      }
    },
    options,
  );
  c.tag = ok.consumerTag;
  return c;
}

/** Waits for one 'return' (basic.return) on `ch`. */
export function nextReturn(ch: Channel, ms = 5000): Promise<ReturnedMessage> {
  return within(
    new Promise<ReturnedMessage>((resolve) => ch.once('return', (m) => resolve(m as ReturnedMessage))),
    ms,
    'basic.return',
  );
}
export interface ReturnedMessage {
  content: Buffer;
  fields: { replyCode: number; replyText: string; exchange: string; routingKey: string };
  properties: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// What amqplib does not expose: tx.*, immediate publishes, negotiated tuning

const require = createRequire(import.meta.url);
const amqplibDir = path.dirname(require.resolve('amqplib'));

interface Defs {
  constants: Record<string, number>;
  encodeMethod(id: number, channel: number, fields: object): Buffer;
  info(id: number): { name: string };
  [method: string]: unknown;
}
interface FrameCodec {
  parseFrame(buf: Buffer, max: number): false | { type: number; channel: number; payload: Buffer; rest: Buffer };
  decodeFrame(f: object): { channel: number; id?: number; fields?: Record<string, unknown>; content?: Buffer };
  HEARTBEAT_BUF: Buffer;
}
/** amqplib's generated method codec (lib/defs.js), reached by path: its package exports hide it. */
export const defs = require(path.join(amqplibDir, 'lib', 'defs.js')) as Defs;
const frameCodec = require(path.join(amqplibDir, 'lib', 'frame.js')) as FrameCodec;

/** The numeric id of a method, by amqplib's name for it (e.g. `TxSelect`). */
export function methodId(name: string): number {
  const id = defs[name];
  assert.equal(typeof id, 'number', `amqplib has no method ${name}`);
  return id as number;
}

interface InternalChannel {
  rpc(method: number, fields: object, expect: number): Promise<Record<string, unknown>>;
  sendMessage(fields: object, props: object, content: Buffer): boolean;
}
const internal = (ch: Channel): InternalChannel => ch as unknown as InternalChannel;

/** Any method with a synchronous reply, by amqplib's names (`BasicQos`, `BasicQosOk`). */
export const rpc = (ch: Channel, method: string, fields: object, reply: string) =>
  internal(ch).rpc(methodId(method), fields, methodId(reply));

export const txSelect = (ch: Channel) => internal(ch).rpc(methodId('TxSelect'), {}, methodId('TxSelectOk'));
export const txCommit = (ch: Channel) => internal(ch).rpc(methodId('TxCommit'), {}, methodId('TxCommitOk'));
export const txRollback = (ch: Channel) => internal(ch).rpc(methodId('TxRollback'), {}, methodId('TxRollbackOk'));
export const confirmSelect = (ch: Channel) =>
  internal(ch).rpc(methodId('ConfirmSelect'), { nowait: false }, methodId('ConfirmSelectOk'));

/** basic.publish with fields amqplib fixes (immediate is always false there). */
export function rawPublish(
  ch: Channel,
  fields: { exchange: string; routingKey: string; mandatory?: boolean; immediate?: boolean },
  content: Buffer,
  props: Record<string, unknown> = {},
): boolean {
  const f = { mandatory: false, immediate: false, ticket: 0, ...fields };
  return internal(ch).sendMessage(f, { headers: {}, ...props }, content);
}

/** What the connection negotiated in connection.tune / tune-ok (amqplib's own fields). */
export function tuning(conn: ChannelModel): { heartbeat: number; frameMax: number; channelMax: number } {
  const c = conn.connection as unknown as { heartbeat: number; frameMax: number; channelMax: number };
  return { heartbeat: c.heartbeat, frameMax: c.frameMax, channelMax: c.channelMax };
}

/** Raises amqplib's own channel limit, so that the server's enforcement can be tested. */
export function raiseClientChannelMax(conn: ChannelModel, max: number): void {
  (conn.connection as unknown as { channelMax: number }).channelMax = max;
}

// ---------------------------------------------------------------------------------------------
// A raw AMQP 0-9-1 client, frame by frame

export interface RawFrame {
  channel: number;
  /** Method or header class id; absent for body and heartbeat frames. */
  id?: number;
  /** amqplib's method name (`ConnectionTune`), or 'heartbeat' / 'body'. */
  name: string;
  fields: Record<string, unknown>;
  content?: Buffer;
}

export interface HandshakeOptions {
  user?: string;
  password?: string;
  vhost?: string;
  /** tune-ok values; default: what the server proposed. */
  heartbeat?: number;
  frameMax?: number;
  channelMax?: number;
  capabilities?: Record<string, boolean>;
}

export interface Handshake {
  start: RawFrame;
  /** connection.tune, or undefined when the server closed before it. */
  tune?: RawFrame;
  /** connection.open-ok, or the connection.close the server answered with. */
  result: RawFrame;
}

export class RawAmqp {
  private buf: Buffer = Buffer.alloc(0);
  private readonly frames: RawFrame[] = [];
  private waiter: (() => void) | undefined;
  closed = false;
  /** Resolves when the socket has closed. */
  readonly whenClosed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (;;) {
        const f = frameCodec.parseFrame(this.buf, 0);
        if (!f) break;
        this.buf = f.rest;
        const d2 = frameCodec.decodeFrame(f);
        const name = d2.id !== undefined ? defs.info(d2.id).name : d2.content ? 'body' : 'heartbeat';
        this.frames.push({
          channel: d2.channel,
          id: d2.id,
          name,
          fields: d2.fields ?? {},
          content: d2.content,
        });
      }
      this.wake();
    });
    socket.on('error', () => {});
    this.whenClosed = new Promise((resolve) => {
      socket.once('close', () => {
        this.closed = true;
        this.wake();
        resolve();
      });
    });
  }

  static open(port: number, host = '127.0.0.1'): Promise<RawAmqp> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new RawAmqp(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  send(b: Buffer | string): void {
    this.socket.write(b);
  }

  method(channel: number, name: string, fields: object = {}): void {
    this.send(defs.encodeMethod(methodId(name), channel, fields));
  }

  heartbeat(): void {
    this.send(frameCodec.HEARTBEAT_BUF);
  }

  /** The next frame (heartbeats skipped unless `heartbeats`), or an error on close / timeout. */
  async next(ms = 5000, heartbeats = false): Promise<RawFrame> {
    const deadline = Date.now() + ms;
    for (;;) {
      while (this.frames.length > 0) {
        const f = this.frames.shift() as RawFrame;
        if (heartbeats || f.name !== 'heartbeat') return f;
      }
      if (this.closed) throw new Error('the server closed the socket');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** The next frame, asserted to be method `name`. */
  async expect(name: string, ms = 5000): Promise<RawFrame> {
    const f = await this.next(ms);
    assert.equal(f.name, name, `expected ${name}, got ${f.name} ${JSON.stringify(f.fields)}`);
    return f;
  }

  /** Sends the protocol header and runs start / tune / open with SASL PLAIN. */
  async handshake(o: HandshakeOptions = {}): Promise<Handshake> {
    this.send(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1'));
    const start = await this.expect('ConnectionStart');
    const user = o.user ?? 'guest';
    const password = o.password ?? 'guest';
    this.method(0, 'ConnectionStartOk', {
      clientProperties: {
        product: 'braid-test',
        capabilities: o.capabilities ?? { authentication_failure_close: true, 'connection.blocked': true },
      },
      mechanism: 'PLAIN',
      response: Buffer.from(`\0${user}\0${password}`),
      locale: 'en_US',
    });
    const tuneOrClose = await this.next();
    if (tuneOrClose.name !== 'ConnectionTune') return { start, result: tuneOrClose };
    const tune = tuneOrClose;
    this.method(0, 'ConnectionTuneOk', {
      channelMax: o.channelMax ?? tune.fields.channelMax,
      frameMax: o.frameMax ?? tune.fields.frameMax,
      heartbeat: o.heartbeat ?? tune.fields.heartbeat,
    });
    this.method(0, 'ConnectionOpen', { virtualHost: o.vhost ?? '/', capabilities: '', insist: false });
    const result = await this.next();
    return { start, tune, result };
  }

  /** Waits until the server closes the socket. */
  async waitClosed(ms = 5000): Promise<void> {
    await within(this.whenClosed, ms, 'the server to close the socket');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Asserts a raw frame is connection.close with `code` (and reply text matching `text`). */
export function assertClose(f: RawFrame, code: number, text?: RegExp): void {
  assert.equal(f.name, 'ConnectionClose', `expected connection.close, got ${f.name} ${JSON.stringify(f.fields)}`);
  assert.equal(f.fields.replyCode, code, `reply code (${String(f.fields.replyText)})`);
  if (text) assert.match(String(f.fields.replyText), text);
}

/** A unique name for a queue or exchange in a test. */
let counter = 0;
export function uniq(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

/** Polls an asynchronous check until it is true. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
