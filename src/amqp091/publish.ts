/**
 * basic.publish: content assembly (AMQP 0-9-1 §4.2.6: method, content header, body frames,
 * nothing else in between on that channel), then routing, basic.return, publisher confirms and
 * transactional publishes.
 */
import type { Message } from '../core/broker-core.js';
import type { AmqpChannel, TxPublish } from './channel.js';
import { REPLY_TO_QUEUE } from './channel.js';
import { type BasicProperties, type BasicPublish, decodeContentHeader, MethodId } from './codec/index.js';
import { amqpError } from './errors.js';
import { encodedProperties, toCoreMessage } from './mapping.js';

const BASIC_CLASS = 60;
const EMPTY_RAW = Buffer.alloc(0);
/** Bodies up to this size get their buffer when the first frame arrives; larger ones collect frames. */
const PREALLOCATE_BODY_MAX = 1 << 20;

/** Collects one message's frames; a channel has at most one message in assembly. */
export class ContentAssembler {
  private method: BasicPublish | undefined;
  private props: BasicProperties | undefined;
  /** The property bytes as sent (flags and list), copied out of the socket chunk. */
  private raw: Buffer = EMPTY_RAW;
  private body: Buffer | undefined;
  private parts: Buffer[] | undefined;
  private received = 0;
  private size = 0;

  constructor(private readonly ch: AmqpChannel) {}

  get busy(): boolean {
    return this.method !== undefined;
  }

  reset(): void {
    this.method = undefined;
    this.props = undefined;
    this.body = undefined;
    this.parts = undefined;
  }

  start(m: BasicPublish): void {
    // RabbitMQ never implemented immediate (`rabbit_channel`): a connection exception.
    if (m.immediate) throw amqpError('NOT_IMPLEMENTED', 'immediate=true');
    this.method = m;
    this.props = undefined;
  }

  /** A content header frame arrived on this channel. */
  header(payload: Buffer): void {
    if (this.method === undefined || this.props !== undefined) {
      throw amqpError('UNEXPECTED_FRAME', 'expected method frame, got non method frame instead');
    }
    const h = decodeContentHeader(payload);
    if (h.classId !== BASIC_CLASS) {
      throw amqpError('FRAME_ERROR', `content header for class ${h.classId}, expected ${BASIC_CLASS}`);
    }
    const max = this.ch.conn.ctx.settings.maxMessageSize;
    if (h.bodySize > max) {
      this.reset();
      const e = amqpError(
        'PRECONDITION_FAILED',
        `message size ${h.bodySize} is larger than configured max size ${max}`,
      );
      e.classId = 60;
      e.methodId = 40;
      // The rest of this message's frames reach a closing channel and are dropped.
      this.ch.conn.channelError(this.ch, e);
      return;
    }
    this.props = h.properties;
    // class-id (2), weight (2), body size (8), then the property flags and list (§4.2.6.1).
    this.raw = Buffer.from(payload.subarray(12));
    this.size = h.bodySize;
    this.received = 0;
    if (h.bodySize === 0) {
      this.complete(Buffer.alloc(0));
      return;
    }
    this.body = undefined;
  }

  /** A body frame arrived; `payload` is a view into the socket chunk. */
  bodyFrame(payload: Buffer): void {
    if (this.props === undefined) {
      throw amqpError('UNEXPECTED_FRAME', 'expected method frame, got non method frame instead');
    }
    const n = payload.length;
    if (this.received + n > this.size) {
      throw amqpError('FRAME_ERROR', `content body is larger than the ${this.size} bytes its header announced`);
    }
    if (this.received === 0 && n === this.size) {
      // The whole body in one frame: one copy, so the message does not pin the socket chunk.
      const body = Buffer.allocUnsafe(n);
      payload.copy(body);
      this.complete(body);
      return;
    }
    if (this.size <= PREALLOCATE_BODY_MAX) {
      this.body ??= Buffer.allocUnsafe(this.size);
      payload.copy(this.body, this.received);
    } else {
      // A large announced body is not reserved up front: only what arrives takes memory.
      (this.parts ??= []).push(Buffer.from(payload));
    }
    this.received += n;
    if (this.received === this.size) {
      this.complete(this.parts === undefined ? this.body! : Buffer.concat(this.parts, this.size));
    }
  }

  /** A method frame arrived on this channel while content was expected (§4.2.6). */
  checkIdle(): void {
    if (this.method === undefined) return;
    const what = this.props === undefined ? 'content header for class 60' : 'content body';
    throw amqpError(
      'UNEXPECTED_FRAME',
      `expected ${what}, got non content ${this.props === undefined ? 'header' : 'body'} frame instead`,
    );
  }

  private complete(body: Buffer): void {
    const m = this.method!;
    const props = this.props!;
    const raw = this.raw;
    this.reset();
    this.ch.guard(60, 40, () => this.ch.publisher.publish(m, props, body, raw));
  }
}

export class Publisher {
  private seq = 0;
  /** Confirm decisions of this turn, in order: +seq for an ack, -seq for a nack. */
  private decided: number[] = [];

  constructor(private readonly ch: AmqpChannel) {}

  publish(m: BasicPublish, props: BasicProperties, body: Buffer, raw: Buffer): void {
    const ch = this.ch;
    const conn = ch.conn;
    conn.ctx.stats.messagesIn++;
    const seq = ch.confirm ? ++this.seq : 0;
    if (m.exchange !== '') {
      const x = conn.core.vhost(conn.vhost)?.exchanges.get(m.exchange);
      if (x === undefined) throw amqpError('NOT_FOUND', `no exchange '${m.exchange}' in vhost '${conn.vhost}'`);
      // Checked at publish, in a transaction too (rabbit_channel basic.publish).
      if (x.internal) {
        throw amqpError(
          'ACCESS_REFUSED',
          `cannot publish to internal exchange '${m.exchange}' in vhost '${conn.vhost}'`,
        );
      }
    }
    if (props.userId !== undefined && props.userId !== conn.username) {
      throw amqpError(
        'PRECONDITION_FAILED',
        `user_id property set to '${props.userId}' but authenticated user was '${conn.username ?? ''}'`,
      );
    }
    if (props.replyTo === REPLY_TO_QUEUE) {
      if (ch.replyTo === undefined) throw amqpError('PRECONDITION_FAILED', 'fast reply consumer does not exist');
      props = { ...props, replyTo: ch.replyTo.name };
      raw = EMPTY_RAW;
    }
    let cc: string[] | undefined;
    if (props.headers !== undefined) {
      cc = ccKeys(props.headers);
      // BCC routes like CC but never reaches a consumer (RabbitMQ sender-selected distribution).
      if (cc !== undefined && props.headers.some((h) => h[0] === 'BCC')) {
        props = { ...props, headers: props.headers.filter((h) => h[0] !== 'BCC') };
        raw = EMPTY_RAW;
      }
    }
    const msg = toCoreMessage(props, body, {
      vhost: conn.vhost,
      exchange: m.exchange,
      routingKey: m.routingKey,
      publisherId: conn.id,
      now: Date.now(),
      ...(raw !== EMPTY_RAW && { raw }),
    });
    if (ch.tx !== undefined) {
      // Routed now, delivered at commit (rabbit_channel keeps {Message, QNames} in the tx).
      ch.tx.publishes.push({ msg, mandatory: m.mandatory, targets: conn.core.resolve(msg, cc) });
      return;
    }
    const rejected = this.route(msg, m.mandatory, cc);
    if (seq !== 0) {
      if (rejected) this.nack(seq);
      else this.ack(seq);
    }
  }

  /** Routes; sends basic.return for an unroutable mandatory message. True when a queue refused it. */
  route(msg: Message, mandatory: boolean, cc: readonly string[] | undefined): boolean {
    return this.returnIfUnroutable(msg, mandatory, this.ch.conn.core.publish(msg, cc));
  }

  /** tx.commit: delivers a transactional publish to the queues it was routed to when it arrived. */
  deliverResolved(p: TxPublish): boolean {
    return this.returnIfUnroutable(p.msg, p.mandatory, this.ch.conn.core.deliverResolved(p.msg, p.targets));
  }

  private returnIfUnroutable(msg: Message, mandatory: boolean, r: { queues: number; rejected: number }): boolean {
    if (r.queues === 0 && r.rejected === 0 && mandatory) {
      this.ch.conn.sendFrames(encodeReturn(this.ch, msg, 312, 'NO_ROUTE'));
    }
    return r.rejected > 0;
  }

  private ack(seq: number): void {
    if (this.decided.length === 0) this.ch.conn.markDirty(this.ch);
    this.decided.push(seq);
  }

  private nack(seq: number): void {
    if (this.decided.length === 0) this.ch.conn.markDirty(this.ch);
    this.decided.push(-seq);
  }

  /**
   * Called once the turn's frames are handled: the turn's confirms go out when its writes are
   * durable (group commit; at once without a store). Runs of acks become one `multiple` ack.
   */
  flush(): void {
    if (this.decided.length === 0) return;
    const batch = this.decided;
    this.decided = [];
    this.ch.conn.core.whenDurable((err) => this.send(batch, err));
  }

  private send(batch: readonly number[], err: Error | undefined): void {
    const ch = this.ch;
    if (!ch.confirmsOpen) return;
    if (err !== undefined) {
      // The store could not make them durable: every one of them is a nack.
      for (const d of batch)
        ch.send({ id: MethodId.BasicNack, deliveryTag: Math.abs(d), multiple: false, requeue: false });
      return;
    }
    let runFrom = 0;
    let runTo = 0;
    const emitRun = (): void => {
      if (runTo === 0) return;
      ch.send({ id: MethodId.BasicAck, deliveryTag: runTo, multiple: runTo > runFrom });
      runTo = 0;
    };
    for (const d of batch) {
      if (d > 0) {
        if (runTo === 0) runFrom = d;
        runTo = d;
      } else {
        emitRun();
        ch.send({ id: MethodId.BasicNack, deliveryTag: -d, multiple: false, requeue: false });
      }
    }
    emitRun();
  }
}

/** Sender-selected keys: the `CC` and `BCC` headers, each an array of strings. */
function ccKeys(headers: NonNullable<BasicProperties['headers']>): string[] | undefined {
  let out: string[] | undefined;
  for (const [k, v] of headers) {
    if ((k !== 'CC' && k !== 'BCC') || !Array.isArray(v)) continue;
    for (const x of v) {
      const key = typeof x === 'string' ? x : Buffer.isBuffer(x) ? x.toString('utf8') : undefined;
      if (key !== undefined) (out ??= []).push(key);
    }
  }
  return out;
}

function encodeReturn(ch: AmqpChannel, msg: Message, replyCode: number, replyText: string): Buffer[] {
  return ch.conn.encodeWithContent(
    ch.id,
    { id: MethodId.BasicReturn, replyCode, replyText, exchange: msg.exchange, routingKey: msg.routingKey },
    encodedProperties(msg),
    msg.body,
  );
}
