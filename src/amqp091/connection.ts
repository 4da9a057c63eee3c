/**
 * One AMQP 0-9-1 connection: protocol header, the connection.* handshake (start, start-ok with
 * SASL PLAIN or AMQPLAIN, tune, tune-ok, open), frame dispatch to channels, heartbeats both ways,
 * and closing in both directions (AMQP 0-9-1 §2.2.4, §4.2, RabbitMQ `rabbit_reader`).
 *
 * States: 'header' (waiting for the 8-byte protocol header) → 'start' (connection.start sent) →
 * 'tune' → 'open' → 'running' → 'closing' (connection.close sent, waiting for close-ok;
 * everything else is dropped, §1.4.2.5) → 'closed'.
 */
import { randomBytes } from 'node:crypto';
import type { Identity } from '../auth/users.js';
import type { BrokerCore } from '../core/broker-core.js';
import type { ByteConnection } from '../util/byte-connection.js';
import { AmqpChannel, methodLabel } from './channel.js';
import {
  decodeMethod,
  encodeMethodFrame,
  encodeMethodWithContent,
  type FieldTable,
  type Frame,
  FrameReader,
  FrameType,
  HEARTBEAT_FRAME,
  type Method,
  MethodId,
  PROTOCOL_HEADER,
  readFieldTable,
} from './codec/index.js';
import { type AmqpContext, type Blockable, OUTPUT_HIGH_WATER, type Sweepable } from './context.js';
import { AmqpError, amqpError, toAmqpError } from './errors.js';

type State = 'header' | 'start' | 'tune' | 'open' | 'running' | 'closing' | 'closed';

/** How long we wait for connection.close-ok before dropping the socket (RabbitMQ waits 30 s). */
const CLOSE_OK_TIMEOUT_MS = 3000;
const MECHANISMS = 'PLAIN AMQPLAIN';

export class AmqpConnection implements Sweepable, Blockable {
  readonly id: string;
  readonly core: BrokerCore;
  state: State = 'header';
  vhost = '/';
  identity: Identity | undefined;
  /** Negotiated frame_max (bytes including frame overhead). */
  frameMax: number;
  channelMax: number;
  heartbeatMs = 0;
  /** A coarse clock, updated by the sweep (1 s): stamps deliveries for the consumer timeout. */
  clock = Date.now();
  private readonly channels = new Map<number, AmqpChannel>();
  private readonly reader: FrameReader;
  private header: Buffer | undefined;
  private clientProperties: FieldTable = {};
  private readonly openedAt = Date.now();
  private lastRead = Date.now();
  private lastWrite = Date.now();
  private readFlag = false;
  private wroteFlag = false;
  private dirty: AmqpChannel[] = [];
  private closeTimer: NodeJS.Timeout | undefined;
  private readPaused = false;
  /** Blocked by a resource alarm: not read, and frames already read wait in `reader`. */
  private alarmBlocked = false;
  private sentBlocked = false;

  constructor(
    readonly ctx: AmqpContext,
    readonly conn: ByteConnection,
  ) {
    this.id = `amqp-${conn.id}`;
    this.core = ctx.core;
    this.frameMax = ctx.settings.frameMax;
    this.channelMax = ctx.settings.channelMax;
    // Before tune-ok, frames may be no larger than the spec's minimum (§4.2.3).
    this.reader = new FrameReader(4096);
    conn.setHandlers({
      data: (chunk) => this.onData(chunk),
      close: () => this.onClose(),
      drain: () => {
        if (this.conn.bufferedBytes >= OUTPUT_HIGH_WATER) return;
        if (this.readPaused) {
          this.readPaused = false;
          if (!this.alarmBlocked) this.conn.resumeReading();
        }
        for (const ch of this.channels.values()) ch.drained();
      },
    });
    ctx.connections.add(this);
    ctx.stats.connections++;
  }

  get username(): string | undefined {
    return this.identity?.username;
  }

  /** True while unsent output is above the high-water mark: consumers wait. */
  get congested(): boolean {
    return this.conn.bufferedBytes >= OUTPUT_HIGH_WATER;
  }

  clientCapability(name: string): boolean {
    const caps = this.clientProperties.capabilities;
    return typeof caps === 'object' && caps !== null && !Array.isArray(caps) && !Buffer.isBuffer(caps)
      ? (caps as FieldTable)[name] === true
      : false;
  }

  randomToken(): string {
    return randomBytes(16).toString('base64url');
  }

  // ---- output ------------------------------------------------------------------------------

  sendMethod(channel: number, m: Method): void {
    this.conn.write(encodeMethodFrame(channel, m));
    this.wroteFlag = true;
  }

  sendFrames(frames: readonly Buffer[]): void {
    for (const f of frames) this.conn.write(f);
    this.wroteFlag = true;
  }

  encodeWithContent(channel: number, m: Method, props: Buffer, body: Buffer): Buffer[] {
    return encodeMethodWithContent(channel, m, props, body, this.frameMax);
  }

  /** A channel has confirms to flush once the current chunk is handled. */
  markDirty(ch: AmqpChannel): void {
    this.dirty.push(ch);
  }

  // ---- input -------------------------------------------------------------------------------

  /** `chunk` undefined: go on with frames read before an alarm blocked the connection. */
  private onData(chunk: Buffer | undefined): void {
    this.readFlag = true;
    if (this.state === 'closed') return;
    try {
      if (chunk !== undefined) {
        if (this.state === 'header') {
          chunk = this.readHeader(chunk);
          if (chunk.length === 0 || (this.state as State) !== 'start') return;
        }
        this.reader.push(chunk);
      }
      while (!this.alarmBlocked) {
        const f = this.reader.next();
        if (f === undefined) break;
        this.onFrame(f);
        if ((this.state as State) === 'closed') return;
        if (this.ctx.blockedReason !== undefined && (f.type === FrameType.Header || f.type === FrameType.Body)) {
          this.maybeBlock(f.channel);
        }
      }
    } catch (err) {
      this.connectionError(toAmqpError(err));
    } finally {
      if (this.dirty.length > 0) {
        const ds = this.dirty;
        this.dirty = [];
        for (const ch of ds) ch.publisher.flush();
      }
      // Input back-pressure: a client whose replies (returns, deliveries) pile up unsent is not
      // read until they drain.
      if (this.congested && !this.readPaused && (this.state as State) !== 'closed') {
        this.readPaused = true;
        this.conn.pauseReading();
      }
    }
  }

  /**
   * A resource alarm is on and this connection published: once the message is whole, stop
   * reading it (RabbitMQ `rabbit_reader` blocks a connection on its next publish; connections
   * that only consume are still read, so their acks flow). Clients that declared the
   * `connection.blocked` capability hear why.
   */
  private maybeBlock(channel: number): void {
    if (this.channels.get(channel)?.assembler.busy === true || this.state !== 'running') return;
    this.alarmBlocked = true;
    this.ctx.blocked.add(this);
    this.conn.pauseReading();
    if (this.clientCapability('connection.blocked')) {
      this.sentBlocked = true;
      this.sendMethod(0, { id: MethodId.ConnectionBlocked, reason: this.ctx.blockedReason ?? '' });
    }
    this.ctx.log.info('AMQP connection blocked by a resource alarm', {
      conn: this.id,
      reason: this.ctx.blockedReason,
    });
  }

  /** The alarm cleared (AmqpContext.setPublishersBlocked): read again, starting with what is buffered. */
  unblockPublishing(): void {
    if (!this.alarmBlocked) return;
    this.alarmBlocked = false;
    if (this.state === 'closed') return;
    if (this.sentBlocked) {
      this.sentBlocked = false;
      if (this.state === 'running') this.sendMethod(0, { id: MethodId.ConnectionUnblocked });
    }
    if (!this.readPaused) this.conn.resumeReading();
    this.onData(undefined);
  }

  /** Returns what follows the 8-byte header; a wrong header gets ours back and a close (§4.2.2). */
  private readHeader(chunk: Buffer): Buffer {
    const have = this.header === undefined ? chunk : Buffer.concat([this.header, chunk]);
    if (have.length < 8) {
      // A wrong first byte needs no more input to be refused.
      if (have.length > 0 && have[0] !== 0x41) return this.refuseHeader(have);
      this.header = have;
      return Buffer.alloc(0);
    }
    this.header = undefined;
    if (!have.subarray(0, 8).equals(PROTOCOL_HEADER)) return this.refuseHeader(have);
    this.state = 'start';
    this.sendMethod(0, {
      id: MethodId.ConnectionStart,
      versionMajor: 0,
      versionMinor: 9,
      serverProperties: this.serverProperties(),
      mechanisms: MECHANISMS,
      locales: 'en_US',
    });
    return have.subarray(8);
  }

  private refuseHeader(got: Buffer): Buffer {
    this.ctx.log.warn('AMQP connection refused: bad protocol header', {
      conn: this.id,
      remote: this.conn.remoteAddress,
      header: got.subarray(0, 8).toString('hex'),
    });
    this.conn.write(PROTOCOL_HEADER);
    this.state = 'closed';
    this.conn.end();
    return Buffer.alloc(0);
  }

  private serverProperties(): FieldTable {
    return {
      capabilities: {
        publisher_confirms: true,
        exchange_exchange_bindings: true,
        'basic.nack': true,
        consumer_cancel_notify: true,
        'connection.blocked': true,
        consumer_priorities: true,
        authentication_failure_close: true,
        per_consumer_qos: true,
        direct_reply_to: true,
      },
      cluster_name: 'braid',
      copyright: 'Copyright (c) the Braid authors',
      information: 'Licensed under the MIT licence. Website: https://github.com/braid-broker/braid',
      platform: `Node.js ${process.version}`,
      product: 'Braid',
      version: this.ctx.version,
    };
  }

  private onFrame(f: Frame): void {
    if (this.state === 'closing') {
      // Only close and close-ok matter now (§4.2.8); everything else is dropped.
      if (f.type === FrameType.Method && f.channel === 0) {
        const m = decodeMethod(f.payload);
        if (m.id === MethodId.ConnectionCloseOk || m.id === MethodId.ConnectionClose) {
          if (m.id === MethodId.ConnectionClose) this.sendMethod(0, { id: MethodId.ConnectionCloseOk });
          this.finish();
        }
      }
      return;
    }
    if (f.type === FrameType.Heartbeat) {
      if (f.channel !== 0) throw amqpError('FRAME_ERROR', `heartbeat frame on non-zero channel ${f.channel}`);
      return;
    }
    if (f.channel === 0) {
      if (f.type !== FrameType.Method) {
        throw amqpError('UNEXPECTED_FRAME', `non-method frame of type ${f.type} on channel 0`);
      }
      const m = decodeMethod(f.payload);
      try {
        this.onConnectionMethod(m);
        return;
      } catch (err) {
        throw toAmqpError(err, m.id >>> 16, m.id & 0xffff);
      }
    }
    if (this.state !== 'running') {
      // RabbitMQ `rabbit_reader`: frames on other channels during the handshake are unexpected.
      throw amqpError('UNEXPECTED_FRAME', `frame on channel ${f.channel} before the connection is open`);
    }
    const ch = this.channels.get(f.channel);
    if (f.type === FrameType.Method) {
      const m = decodeMethod(f.payload);
      if (ch === undefined) {
        try {
          this.openChannel(f.channel, m);
          return;
        } catch (err) {
          throw toAmqpError(err, m.id >>> 16, m.id & 0xffff);
        }
      }
      if (ch.state === 'closing') {
        if (m.id === MethodId.ChannelCloseOk) this.freeChannel(ch);
        else if (m.id === MethodId.ChannelClose) this.sendMethod(ch.id, { id: MethodId.ChannelCloseOk });
        return;
      }
      if (m.id === MethodId.ChannelClose) {
        ch.release();
        ch.state = 'closing';
        this.freeChannel(ch);
        // Confirms decided before the close go out first, then close-ok and nothing after it.
        ch.publisher.flush();
        this.core.whenDurable(() => {
          ch.confirmsOpen = false;
          if (this.state === 'running') this.sendMethod(ch.id, { id: MethodId.ChannelCloseOk });
        });
        return;
      }
      if (m.id === MethodId.ChannelOpen) throw blame(amqpError('CHANNEL_ERROR', "second 'channel.open' seen"), m.id);
      if (m.id === MethodId.ChannelCloseOk) return;
      ch.assembler.checkIdle();
      const c = ch;
      ch.guard(m.id >>> 16, m.id & 0xffff, () => c.handle(m));
      return;
    }
    if (ch === undefined) throw amqpError('CHANNEL_ERROR', `expected 'channel.open' on channel ${f.channel}`);
    if (ch.state === 'closing') return;
    if (f.type === FrameType.Header) ch.assembler.header(f.payload);
    else if (f.type === FrameType.Body) ch.assembler.bodyFrame(f.payload);
    else throw amqpError('FRAME_ERROR', `unknown frame type ${f.type}`);
  }

  private openChannel(id: number, m: Method): void {
    if (m.id !== MethodId.ChannelOpen) {
      throw amqpError('CHANNEL_ERROR', `expected 'channel.open' on channel ${id}, got ${methodLabel(m.id)}`);
    }
    if (id > this.channelMax) {
      throw amqpError(
        'NOT_ALLOWED',
        `number of channels opened (${this.channels.size}) has reached the negotiated channel_max (${this.channelMax})`,
      );
    }
    const ch = new AmqpChannel(this, id);
    this.channels.set(id, ch);
    this.ctx.stats.channels++;
    this.sendMethod(id, { id: MethodId.ChannelOpenOk, channelId: '' });
  }

  private freeChannel(ch: AmqpChannel): void {
    if (this.channels.get(ch.id) !== ch) return;
    this.channels.delete(ch.id);
    this.ctx.stats.channels--;
  }

  // ---- connection methods ------------------------------------------------------------------

  private onConnectionMethod(m: Method): void {
    switch (m.id) {
      case MethodId.ConnectionStartOk:
        this.expect('start', m.id);
        this.onStartOk(m.clientProperties, m.mechanism, bytes(m.response));
        return;
      case MethodId.ConnectionTuneOk:
        this.expect('tune', m.id);
        this.onTuneOk(m.channelMax, m.frameMax, m.heartbeat);
        return;
      case MethodId.ConnectionOpen:
        this.expect('open', m.id);
        this.onOpen(m.virtualHost);
        return;
      case MethodId.ConnectionClose:
        this.ctx.log.debug('AMQP connection closed by client', { conn: this.id, code: m.replyCode });
        for (const ch of this.channels.values()) ch.confirmsOpen = false;
        this.releaseAll();
        this.sendMethod(0, { id: MethodId.ConnectionCloseOk });
        this.finish();
        return;
      case MethodId.ConnectionCloseOk:
        this.finish();
        return;
      case MethodId.ConnectionBlocked:
      case MethodId.ConnectionUnblocked:
        return;
      case MethodId.ConnectionUpdateSecret:
        this.expect('running', m.id);
        // Password users: the new secret is accepted as is, as RabbitMQ does for non-token backends.
        this.sendMethod(0, { id: MethodId.ConnectionUpdateSecretOk });
        return;
      default:
        throw amqpError('CHANNEL_ERROR', `unexpected method ${methodLabel(m.id)} in connection state ${this.state}`);
    }
  }

  private expect(state: State, id: number): void {
    if (this.state !== state) {
      throw amqpError('CHANNEL_ERROR', `unexpected method ${methodLabel(id)} in connection state ${this.state}`);
    }
  }

  private onStartOk(props: FieldTable, mechanism: string, response: Buffer): void {
    this.clientProperties = props;
    let username: string | undefined;
    let password: Buffer | undefined;
    if (mechanism === 'PLAIN') {
      // authzid NUL authcid NUL passwd (RFC 4616)
      const a = response.indexOf(0);
      const b = a < 0 ? -1 : response.indexOf(0, a + 1);
      if (b < 0) throw amqpError('ACCESS_REFUSED', 'Login was refused using authentication mechanism PLAIN');
      username = response.toString('utf8', a + 1, b);
      password = response.subarray(b + 1);
    } else if (mechanism === 'AMQPLAIN') {
      // The response is a field table without its length prefix (RabbitMQ rabbit_auth_mechanism_amqplain).
      const t = readFieldTable(response, 0, response.length);
      const login = t.LOGIN;
      const pass = t.PASSWORD;
      username = typeof login === 'string' ? login : Buffer.isBuffer(login) ? login.toString('utf8') : undefined;
      password = typeof pass === 'string' ? Buffer.from(pass) : Buffer.isBuffer(pass) ? pass : undefined;
    } else {
      throw amqpError('COMMAND_INVALID', `unknown authentication mechanism '${mechanism}'`);
    }
    const r = this.ctx.users.authenticate(username, password, this.conn.isLoopback);
    if (!r.ok) {
      this.ctx.log.warn('AMQP login refused', {
        conn: this.id,
        remote: this.conn.remoteAddress,
        user: username,
        mechanism,
        reason: r.detail,
      });
      const e = amqpError(
        'ACCESS_REFUSED',
        `Login was refused using authentication mechanism ${mechanism}. For details see the broker logfile.`,
      );
      if (this.clientCapability('authentication_failure_close')) {
        this.connectionError(e);
        return;
      }
      // Clients that did not ask for a close see the socket drop (AMQP 0-9-1 §2.2.4).
      this.state = 'closed';
      this.conn.end();
      return;
    }
    this.identity = r.identity;
    this.state = 'tune';
    this.sendMethod(0, {
      id: MethodId.ConnectionTune,
      channelMax: this.ctx.settings.channelMax,
      frameMax: this.ctx.settings.frameMax,
      heartbeat: this.ctx.settings.heartbeat,
    });
  }

  private onTuneOk(channelMax: number, frameMax: number, heartbeat: number): void {
    const s = this.ctx.settings;
    if (frameMax !== 0 && frameMax < 4096) {
      throw amqpError('NOT_ALLOWED', `frame_max=${frameMax} < 4096 min size`);
    }
    if (frameMax > s.frameMax) throw amqpError('NOT_ALLOWED', `frame_max=${frameMax} > ${s.frameMax} max size`);
    if (channelMax > s.channelMax) {
      throw amqpError('NOT_ALLOWED', `channel_max=${channelMax} > ${s.channelMax} max size`);
    }
    this.frameMax = frameMax === 0 ? s.frameMax : frameMax;
    this.channelMax = channelMax === 0 ? s.channelMax : channelMax;
    this.heartbeatMs = heartbeat * 1000;
    this.reader.maxFrameSize = this.frameMax;
    this.state = 'open';
  }

  private onOpen(vhost: string): void {
    if (this.core.vhost(vhost) === undefined) throw amqpError('NOT_ALLOWED', `vhost ${vhost} not found`);
    const id = this.identity!;
    if (id.vhost !== vhost && !id.tags.includes('administrator')) {
      throw amqpError('NOT_ALLOWED', `access to vhost '${vhost}' refused for user '${id.username ?? ''}'`);
    }
    this.vhost = vhost;
    this.state = 'running';
    this.sendMethod(0, { id: MethodId.ConnectionOpenOk, knownHosts: '' });
    this.ctx.log.info('AMQP connection open', {
      conn: this.id,
      remote: this.conn.remoteAddress,
      user: id.username,
      vhost,
    });
  }

  // ---- errors and closing ------------------------------------------------------------------

  /** A soft error: channel.close with the code and the failing method; the channel waits for close-ok. */
  channelError(ch: AmqpChannel, e: AmqpError): void {
    if (ch.state !== 'open' || this.state !== 'running') return;
    this.ctx.log.warn('AMQP channel error', { conn: this.id, channel: ch.id, error: e.message });
    ch.release();
    ch.state = 'closing';
    // Confirms decided before the error go out before channel.close (RabbitMQ sends them as
    // each method completes); after it, none.
    ch.publisher.flush();
    this.core.whenDurable(() => {
      ch.confirmsOpen = false;
      if (this.state !== 'running') return;
      this.sendMethod(ch.id, {
        id: MethodId.ChannelClose,
        replyCode: e.code,
        replyText: truncate(e.message),
        classId: e.classId,
        methodId: e.methodId,
      });
    });
  }

  /** A hard error: connection.close, then wait for close-ok (briefly) and drop the socket. */
  connectionError(e: AmqpError): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.ctx.log.warn('AMQP connection error', { conn: this.id, remote: this.conn.remoteAddress, error: e.message });
    this.closeWith(e.code, e.message, e.classId, e.methodId);
  }

  /** The broker is stopping: 320 CONNECTION_FORCED, as RabbitMQ on shutdown. */
  serverShutdown(): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    if (this.state === 'header' || this.state === 'start') {
      this.finish();
      return;
    }
    // The listener destroys its sockets next: the close goes now, and end() hands it to the kernel.
    for (const ch of this.channels.values()) ch.confirmsOpen = false;
    this.releaseAll();
    const text = "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'";
    this.sendMethod(0, { id: MethodId.ConnectionClose, replyCode: 320, replyText: text, classId: 0, methodId: 0 });
    this.state = 'closing';
    this.conn.end();
  }

  private closeWith(code: number, text: string, classId: number, methodId: number): void {
    // Confirms decided before the error go out first; nothing after connection.close.
    const chs = [...this.channels.values()];
    for (const ch of chs) ch.publisher.flush();
    this.releaseAll();
    this.state = 'closing';
    this.core.whenDurable(() => {
      for (const ch of chs) ch.confirmsOpen = false;
      if (this.state !== 'closing') return;
      this.sendMethod(0, {
        id: MethodId.ConnectionClose,
        replyCode: code,
        replyText: truncate(text),
        classId,
        methodId,
      });
    });
    this.closeTimer = setTimeout(() => this.finish(), CLOSE_OK_TIMEOUT_MS).unref();
  }

  private finish(): void {
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    this.releaseAll();
    this.state = 'closed';
    this.conn.end();
  }

  /** Releases every channel; one that fails to release does not stop the others (or onClose). */
  private releaseAll(): void {
    const chs = [...this.channels.values()];
    this.channels.clear();
    for (const ch of chs) {
      this.ctx.stats.channels--;
      try {
        ch.release();
      } catch (err) {
        this.ctx.log.error('AMQP channel release failed', { conn: this.id, channel: ch.id, error: String(err) });
      }
    }
  }

  private onClose(): void {
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    this.releaseAll();
    let n = 0;
    try {
      n = this.core.deleteQueuesOwnedBy(this.id);
    } catch (err) {
      this.ctx.log.error('AMQP exclusive queue cleanup failed', { conn: this.id, error: String(err) });
    }
    if (this.state === 'running') {
      this.ctx.log.info('AMQP connection closed abruptly', { conn: this.id, exclusiveQueuesDeleted: n });
    }
    this.state = 'closed';
    this.ctx.connections.delete(this);
    this.ctx.blocked.delete(this);
    this.ctx.stats.connections--;
  }

  /** Heartbeats (send when idle for half the interval; give up after two silent intervals), timeouts. */
  sweep(now: number): void {
    this.clock = now;
    if (this.readFlag) {
      this.lastRead = now;
      this.readFlag = false;
    }
    if (this.wroteFlag) {
      this.lastWrite = now;
      this.wroteFlag = false;
    }
    if (this.state === 'closed') return;
    if (this.state !== 'running' && this.state !== 'closing') {
      if (now - this.openedAt > this.ctx.settings.handshakeTimeout) {
        this.ctx.log.warn('AMQP handshake timeout', { conn: this.id, remote: this.conn.remoteAddress });
        this.state = 'closed';
        this.conn.destroy();
      }
      return;
    }
    const hb = this.heartbeatMs;
    // A connection blocked by an alarm is not read: its heartbeats do not count (RabbitMQ
    // pauses the heartbeat monitor of a blocked connection).
    if (this.alarmBlocked) this.lastRead = now;
    if (hb > 0) {
      if (now - this.lastRead > 2 * hb) {
        this.ctx.log.warn('AMQP missed heartbeats from client', { conn: this.id, timeout: hb / 1000 });
        this.state = 'closed';
        this.conn.destroy();
        return;
      }
      if (now - this.lastWrite >= hb / 2) {
        this.conn.write(HEARTBEAT_FRAME);
        this.lastWrite = now;
      }
    }
    for (const ch of this.channels.values()) ch.sweep(now);
  }
}

/** Names the method that caused a connection exception in connection.close (§1.4.2.5). */
function blame(e: AmqpError, id: number): AmqpError {
  e.classId = id >>> 16;
  e.methodId = id & 0xffff;
  return e;
}

function bytes(v: Buffer | string): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

/** reply-text is a shortstr: at most 255 bytes. */
function truncate(s: string): string {
  if (Buffer.byteLength(s) <= 255) return s;
  return Buffer.from(s)
    .subarray(0, 255)
    .toString('utf8')
    .replace(/\uFFFD$/, '');
}

export { AmqpError };
