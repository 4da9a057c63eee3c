/**
 * One MQTT network connection: decode → dispatch to handlers → encode. It owns the per-
 * connection state (protocol version, keep-alive, topic aliases, limits the client announced)
 * and is the SessionOutput of the session it carries.
 */

import type { Identity } from '../auth/users.js';
import type { AccessSubject, Message } from '../core/broker-core.js';
import type { ByteConnection } from '../util/byte-connection.js';
import { encodePacket, encodePublishHeader, PacketAccumulator, packetSize } from './codec/index.js';
import {
  MqttProtocolError,
  type Packet,
  type Properties,
  type ProtocolVersion,
  type PublishPacket,
  type QoS,
  type Will,
} from './codec/packets.js';
import { type AlarmParty, type FlowParty, type MqttContext, OUTPUT_HIGH_WATER, type Sweepable } from './context.js';
import { connackCodeV3, MqttError, RC } from './errors.js';
import { handlePuback, handlePubcomp, handlePubrec, handlePubrel } from './handlers/acks.js';
import { handleConnect } from './handlers/connect.js';
import { handleDisconnect } from './handlers/disconnect.js';
import { handlePublish } from './handlers/publish.js';
import { handleSubscribe, handleUnsubscribe } from './handlers/subscribe.js';
import type { MqttClientInfo } from './hooks.js';
import { keyToTopic, messageProperties } from './mapping.js';
import type { Session, SessionOutput } from './session.js';

type State = 'awaiting-connect' | 'connecting' | 'connected' | 'closed';

/** Payloads at least this big go out as their own chunk instead of being copied (STYLE habit 4). */
const COPY_PAYLOAD_BELOW = 2048;

export class MqttConnection implements SessionOutput, Sweepable, FlowParty, AlarmParty {
  state: State = 'awaiting-connect';
  version: ProtocolVersion = 4;
  session: Session | undefined;
  identity: Identity | undefined;
  client: MqttClientInfo | undefined;
  /** Keep-alive in ms actually enforced (after the server cap); 0 = none. */
  keepAliveMs = 0;
  lastReceived = Date.now();
  readonly openedAt = Date.now();
  /** Client's Receive Maximum, capped by mqtt.maxInflightMessages. */
  clientMaxInflight = 65535;
  /** Client's Maximum Packet Size; 0 = no limit beyond the protocol's. */
  clientMaxPacketSize = 0;
  clientTopicAliasMax = 0;
  readonly inboundAliases = new Map<number, string>();
  private readonly outboundAliases = new Map<string, number>();
  /** QoS 1/2 PUBLISH received and not yet acknowledged (flow control, [MQTT-3.3.4-7]). */
  inboundUnacked = 0;
  /** The will of this connection, kept until the connection ends. */
  pendingWill: Will | undefined;
  /** Set by a clean DISCONNECT 0x00: no will [MQTT-3.1.2-10]. */
  willSuppressed = false;
  /** A session takeover is closing this connection: the session stays. */
  takenOver = false;
  private readonly acc: PacketAccumulator;
  private backlog: Packet[] | undefined;
  private busy = false;

  constructor(
    readonly ctx: MqttContext,
    readonly conn: ByteConnection,
  ) {
    this.acc = new PacketAccumulator(ctx.settings.maxPacketSizeUnauthenticated);
    conn.setHandlers({
      data: (chunk) => this.onData(chunk),
      close: (hadError) => this.onClose(hadError),
      drain: () => {
        this.ctx.relieve(this);
        this.session?.wake();
      },
    });
    ctx.connections.add(this);
    ctx.stats.connections++;
  }

  get bufferedBytes(): number {
    return this.conn.bufferedBytes;
  }

  /** Who this connection is, for the core's access checks. */
  subject(): AccessSubject {
    return { username: this.identity?.username, clientId: this.clientId, vhost: this.session?.vhost ?? '/' };
  }

  get clientId(): string {
    return this.client?.id ?? '';
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.lastReceived = Date.now();
    try {
      this.acc.push(chunk, (p) => this.onPacket(p));
    } catch (err) {
      this.onError(err);
      return;
    }
    if (this.ctx.congestion && this.state === 'connected') this.ctx.hold(this);
  }

  private readingHeld = false;
  /** Held by a resource alarm: not read, and packets already read wait in `backlog`. */
  private alarmHeld = false;

  holdReading(): void {
    this.readingHeld = true;
    this.conn.pauseReading();
  }

  releaseReading(): void {
    this.readingHeld = false;
    if (!this.busy && !this.alarmHeld && this.state !== 'closed') this.conn.resumeReading();
  }

  /** The alarm cleared (MqttContext.setPublishersBlocked): the waiting packets, then read again. */
  unblockPublishing(): void {
    if (!this.alarmHeld) return;
    this.alarmHeld = false;
    if (!this.busy) this.resume();
  }

  private onPacket(p: Packet): void {
    if (this.state === 'closed') return;
    if (this.busy || this.alarmHeld) {
      (this.backlog ??= []).push(p);
      return;
    }
    this.run(p);
  }

  /** Dispatches one packet; returns false when the connection must stop processing for now. */
  private run(p: Packet): boolean {
    let r: undefined | Promise<void>;
    try {
      r = this.dispatch(p);
    } catch (err) {
      this.onError(err);
      return false;
    }
    if (p.type === 3 && this.ctx.publishersBlocked && this.state === 'connected' && !this.alarmHeld) {
      // A resource alarm is on and this client publishes: no more reading until it clears.
      this.alarmHeld = true;
      this.ctx.alarmHold(this);
      this.conn.pauseReading();
    }
    if (!r) return !this.alarmHeld;
    // A handler went async (hooks): hold later packets, in order, until it is done.
    this.busy = true;
    this.conn.pauseReading();
    r.then(
      () => this.resume(),
      (err) => this.onError(err),
    );
    return false;
  }

  private resume(): void {
    this.busy = false;
    while (this.state !== 'closed' && !this.alarmHeld && this.backlog && this.backlog.length > 0) {
      if (!this.run(this.backlog.shift()!)) return;
    }
    if (this.state !== 'closed' && !this.readingHeld && !this.alarmHeld) this.conn.resumeReading();
  }

  private dispatch(p: Packet): undefined | Promise<void> {
    if (this.state === 'awaiting-connect') {
      if (p.type !== 1) throw new MqttError(RC.PROTOCOL_ERROR, 'first packet must be CONNECT', 'MQTT-3.1.0-1');
      this.version = p.protocolVersion;
      this.state = 'connecting';
      return handleConnect(this, p);
    }
    switch (p.type) {
      case 3:
        return handlePublish(this, p);
      case 4:
        return handlePuback(this, p);
      case 5:
        return handlePubrec(this, p);
      case 6:
        return handlePubrel(this, p);
      case 7:
        return handlePubcomp(this, p);
      case 8:
        return handleSubscribe(this, p);
      case 10:
        return handleUnsubscribe(this, p);
      case 12:
        this.sendPacket({ type: 13 });
        return;
      case 14:
        return handleDisconnect(this, p);
      case 1:
        // [MQTT-3.1.0-2]: close. 5.0 §4.13.1 allows only a CONNACK for an error in a CONNECT, and
        // after CONNACK a DISCONNECT racing the close can hang clients that read the socket from
        // two threads (the Paho interoperability client does), so the close is silent.
        throw new MqttError(RC.PROTOCOL_ERROR, 'second CONNECT', 'MQTT-3.1.0-2', false);
      case 15:
        // No enhanced authentication method was agreed at CONNECT [MQTT-4.12.0-1].
        throw new MqttError(RC.PROTOCOL_ERROR, 'AUTH without an authentication method', 'MQTT-4.12.0-1');
      default:
        throw new MqttError(RC.PROTOCOL_ERROR, `packet type ${p.type} is not sent by clients`);
    }
  }

  // ---- output ----

  sendPacket(p: Packet): void {
    if (this.state === 'closed') return;
    this.conn.write(encodePacket(p, this.version));
  }

  sendPubrel(packetId: number): void {
    this.sendPacket({ type: 6, packetId, reasonCode: 0 });
  }

  /** Builds and writes an outbound PUBLISH for a core message (SessionOutput). */
  sendPublish(
    msg: Message,
    qos: QoS,
    retain: boolean,
    dup: boolean,
    packetId: number | undefined,
    subscriptionIds: number[] | undefined,
  ): boolean {
    if (this.state === 'closed') return true;
    const topic = keyToTopic(msg.routingKey);
    const p: PublishPacket = { type: 3, dup, qos, retain, topic, payload: msg.body };
    if (packetId !== undefined) p.packetId = packetId;
    if (this.version === 5) {
      const base = messageProperties(msg, this.ctx.settings.topicExchange);
      let props: Properties | undefined;
      if (base || subscriptionIds || msg.expiresAt !== undefined) {
        props = base ? { ...base } : {};
        if (subscriptionIds) props.subscriptionIdentifiers = subscriptionIds;
        if (msg.expiresAt !== undefined) {
          // [MQTT-3.3.2-6]: the interval sent is what is left of it.
          const left = Math.ceil((msg.expiresAt - Date.now()) / 1000);
          if (left <= 0) return true;
          props.messageExpiryInterval = left;
        }
      }
      if (this.clientTopicAliasMax > 0) {
        const alias = this.outboundAliases.get(topic);
        if (alias !== undefined) {
          props ??= {};
          props.topicAlias = alias;
          p.topic = '';
        } else if (this.outboundAliases.size < this.clientTopicAliasMax) {
          const next = this.outboundAliases.size + 1;
          // The alias is assigned only if the packet is really sent (size check below).
          props ??= {};
          props.topicAlias = next;
        }
      }
      if (props) p.properties = props;
      if (this.clientMaxPacketSize > 0 && packetSize(p, 5) > this.clientMaxPacketSize) {
        // [MQTT-3.1.2-24/25]: never send a packet over the client's Maximum Packet Size.
        this.ctx.stats.oversizeDropped++;
        return false;
      }
      if (p.topic !== '' && props?.topicAlias !== undefined) this.outboundAliases.set(topic, props.topicAlias);
    }
    this.ctx.stats.messagesOut++;
    if (msg.body.length < COPY_PAYLOAD_BELOW) {
      this.conn.write(encodePacket(p, this.version));
    } else {
      this.conn.write(encodePublishHeader(p, this.version));
      this.conn.write(msg.body);
    }
    if (this.conn.bufferedBytes > OUTPUT_HIGH_WATER) this.ctx.congest(this);
    return true;
  }

  // ---- errors and close ----

  /** Turns any failure into the right refusal for this version and state (STYLE habit 13). */
  onError(err: unknown): void {
    if (this.state === 'closed') return;
    let code: number = RC.UNSPECIFIED_ERROR;
    let statement: string | undefined;
    if (err instanceof MqttProtocolError || err instanceof MqttError) {
      code = err.reasonCode;
      statement = err.statement;
    } else {
      this.ctx.log.error('unexpected error in MQTT connection', {
        conn: this.conn.id,
        client: this.clientId,
        error: (err as Error)?.stack ?? String(err),
      });
    }
    const message = (err as Error)?.message ?? String(err);
    this.ctx.log.info('closing MQTT connection: protocol violation', {
      conn: this.conn.id,
      remote: this.conn.remoteAddress,
      client: this.clientId || undefined,
      reason: message,
      code: `0x${code.toString(16)}`,
      ...(statement && { statement }),
    });
    this.ctx.events.emit('clientError', this.client, err);
    if (this.state === 'connected') {
      this.close(err instanceof MqttError && !err.sendDisconnect ? undefined : code);
    } else {
      // Failures before CONNACK: 5.0 answers CONNACK with the reason code; 3.1.1 only for the
      // codes it has (unsupported level → 0x01 [MQTT-3.1.2-2]), else just closes.
      const protoVersion = (err as { protocolVersion?: number }).protocolVersion;
      if (protoVersion !== undefined && protoVersion >= 3 && protoVersion <= 5)
        this.version = protoVersion as ProtocolVersion;
      this.refuseConnect(code);
    }
  }

  /** CONNACK with a refusal, then close [MQTT-3.2.2-6/7]. */
  refuseConnect(code: number): void {
    if (this.version === 5) {
      if (code >= 0x80) this.sendPacket({ type: 2, sessionPresent: false, reasonCode: code });
    } else {
      const rc = connackCodeV3(code);
      if (rc !== undefined && rc !== 0) this.sendPacket({ type: 2, sessionPresent: false, reasonCode: rc });
    }
    this.shutdown();
  }

  /** Closes a connected client; 5.0 gets a DISCONNECT with `reasonCode` first (5.0 §4.13). */
  close(reasonCode: number | undefined, properties?: Properties): void {
    if (this.state === 'closed') return;
    if (this.version === 5 && reasonCode !== undefined && this.state === 'connected') {
      this.sendPacket({ type: 14, reasonCode, ...(properties && { properties }) });
    }
    this.shutdown();
  }

  private shutdown(): void {
    if (this.state === 'closed') return;
    this.conn.end();
    this.finish(false);
  }

  private onClose(_hadError: boolean): void {
    this.finish(true);
  }

  /** Runs once per connection: session detach or end, will, events. */
  private finish(_byPeer: boolean): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    this.ctx.connections.delete(this);
    this.ctx.forget(this);
    this.ctx.stats.connections--;
    const session = this.session;
    if (wasConnected && session && session.output === this) {
      session.detach();
      const will = this.willSuppressed ? undefined : this.pendingWill;
      this.pendingWill = undefined;
      if (this.takenOver) {
        // The new connection decides the session's fate; the will follows its own rules.
        if (will) session.scheduleWill(will, will.properties?.willDelayInterval ?? 0);
      } else if (session.expiryInterval === 0) {
        if (will) session.scheduleWill(will, 0);
        this.ctx.sessions.delete(session.key);
        session.end();
      } else {
        if (will) session.scheduleWill(will, will.properties?.willDelayInterval ?? 0);
        session.scheduleExpiry(() => {
          if (this.ctx.sessions.get(session.key) === session) this.ctx.sessions.delete(session.key);
          session.end();
        });
      }
    }
    if (wasConnected) {
      this.ctx.log.debug('client disconnected', { client: this.clientId, conn: this.conn.id });
      this.ctx.events.emit('clientDisconnect', this.client);
    }
  }

  sweep(now: number): void {
    if (this.state === 'awaiting-connect' || this.state === 'connecting') {
      if (now - this.openedAt > this.ctx.settings.connectTimeout) {
        this.ctx.log.info('closing MQTT connection: no CONNECT in time', {
          conn: this.conn.id,
          remote: this.conn.remoteAddress,
          timeoutMs: this.ctx.settings.connectTimeout,
        });
        this.shutdown();
      }
      return;
    }
    // Not read while an alarm holds it, so its silence does not count.
    if (this.alarmHeld) this.lastReceived = now;
    // [MQTT-3.1.2-24]: nothing received for 1.5 × Keep Alive → close (5.0: DISCONNECT 0x8D).
    if (this.state === 'connected' && this.keepAliveMs > 0 && now - this.lastReceived > this.keepAliveMs * 1.5) {
      this.ctx.log.info('closing MQTT connection: keep-alive timeout', {
        client: this.clientId,
        keepAlive: this.keepAliveMs / 1000,
      });
      this.ctx.events.emit('keepaliveTimeout', this.client);
      this.close(RC.KEEP_ALIVE_TIMEOUT);
    }
  }

  /** After a successful CONNECT: the packet limit becomes the authenticated one. */
  authenticated(maxPacketSize: number): void {
    this.acc.setMaxPacketSize(maxPacketSize);
  }

  /** Used by the broker on stop: 5.0 clients hear 0x8B Server shutting down. */
  serverShutdown(): void {
    this.close(RC.SERVER_SHUTTING_DOWN);
  }
}
