/**
 * exchange.* and queue.* methods (AMQP 0-9-1 §1.6, §1.7) on the core, with RabbitMQ's
 * conventions: an empty queue name means the channel's last declared queue, deleting what does
 * not exist succeeds, and an exclusive queue belongs to the connection that declared it.
 */
import { CoreError, type ExchangeKind, type Queue, REPLY_TO_PREFIX } from '../core/broker-core.js';
import { type AmqpChannel, REPLY_TO_QUEUE } from './channel.js';
import {
  type ExchangeBind,
  type ExchangeDeclare,
  type ExchangeDelete,
  type ExchangeUnbind,
  MethodId,
  type QueueBind,
  type QueueDeclare,
  type QueueDelete,
  type QueuePurge,
  type QueueUnbind,
} from './codec/index.js';
import { amqpError } from './errors.js';

export function exchangeDeclare(ch: AmqpChannel, m: ExchangeDeclare): void {
  const { core, vhost } = ch.conn;
  if (m.passive) {
    // RabbitMQ answers a passive declare of the default exchange too.
    if (m.exchange !== '') core.declareExchange(vhost, m.exchange, 'direct', { passive: true });
  } else {
    core.declareExchange(vhost, m.exchange, m.type as ExchangeKind, {
      durable: m.durable,
      autoDelete: m.autoDelete,
      internal: m.internal,
      args: m.arguments,
    });
  }
  if (!m.nowait) ch.send({ id: MethodId.ExchangeDeclareOk });
}

function refuseDefault(name: string): void {
  if (name === '') throw amqpError('ACCESS_REFUSED', 'operation not permitted on the default exchange');
}

export function exchangeDelete(ch: AmqpChannel, m: ExchangeDelete): void {
  refuseDefault(m.exchange);
  if (m.exchange.startsWith('amq.')) {
    throw amqpError('ACCESS_REFUSED', `deletion of system exchange '${m.exchange}' is not allowed`);
  }
  try {
    ch.conn.core.deleteExchange(ch.conn.vhost, m.exchange, { ifUnused: m.ifUnused });
  } catch (err) {
    // Deleting an exchange that does not exist is not an error (RabbitMQ 3.x `rabbit_channel`).
    if (!(err instanceof CoreError && err.kind === 'NOT_FOUND')) throw err;
  }
  if (!m.nowait) ch.send({ id: MethodId.ExchangeDeleteOk });
}

export function exchangeBind(ch: AmqpChannel, m: ExchangeBind | ExchangeUnbind): void {
  refuseDefault(m.source);
  refuseDefault(m.destination);
  const { core, vhost } = ch.conn;
  if (m.id === MethodId.ExchangeBind) {
    core.bindExchange(vhost, m.destination, m.source, m.routingKey, m.arguments);
    if (!m.nowait) ch.send({ id: MethodId.ExchangeBindOk });
  } else {
    requireExchange(ch, m.source);
    requireExchange(ch, m.destination);
    core.unbindExchange(vhost, m.destination, m.source, m.routingKey, m.arguments);
    if (!m.nowait) ch.send({ id: MethodId.ExchangeUnbindOk });
  }
}

function requireExchange(ch: AmqpChannel, name: string): void {
  if (name !== '') ch.conn.core.declareExchange(ch.conn.vhost, name, 'direct', { passive: true });
}

export function queueDeclare(ch: AmqpChannel, m: QueueDeclare): void {
  const { core, vhost } = ch.conn;
  let q: Queue;
  if (m.passive) {
    const name = m.queue === '' ? ch.lastQueue : m.queue;
    if (name === undefined) throw amqpError('NOT_FOUND', 'no previously declared queue');
    if (name === REPLY_TO_QUEUE || (name.startsWith(REPLY_TO_PREFIX) && core.replyToExists(vhost, name))) {
      // RabbitMQ answers a passive declare of a live direct reply-to name: no messages, one consumer.
      if (!m.nowait) ch.send({ id: MethodId.QueueDeclareOk, queue: name, messageCount: 0, consumerCount: 1 });
      return;
    }
    q = core.declareQueue(vhost, name, { passive: true, owner: ch.conn.id });
    ch.checkExclusive(q);
  } else {
    q = core.declareQueue(vhost, m.queue, {
      durable: m.durable,
      exclusive: m.exclusive,
      autoDelete: m.autoDelete,
      owner: ch.conn.id,
      args: m.arguments,
    });
  }
  ch.lastQueue = q.name;
  if (!m.nowait) {
    ch.send({
      id: MethodId.QueueDeclareOk,
      queue: q.name,
      messageCount: q.messageCount,
      consumerCount: q.consumerCount,
    });
  }
}

export function queueBind(ch: AmqpChannel, m: QueueBind | QueueUnbind): void {
  const q = ch.resolveQueue(m.queue);
  refuseDefault(m.exchange);
  // An empty routing key with an empty queue name binds by the queue's name (0-9-1 §1.7.2.3).
  const key = m.queue === '' && m.routingKey === '' ? q.name : m.routingKey;
  const { core, vhost } = ch.conn;
  if (m.id === MethodId.QueueBind) {
    core.bindQueue(vhost, q.name, m.exchange, key, m.arguments);
    if (!m.nowait) ch.send({ id: MethodId.QueueBindOk });
  } else {
    requireExchange(ch, m.exchange);
    core.unbindQueue(vhost, q.name, m.exchange, key, m.arguments);
    ch.send({ id: MethodId.QueueUnbindOk });
  }
}

export function queuePurge(ch: AmqpChannel, m: QueuePurge): void {
  const q = ch.resolveQueue(m.queue);
  const n = q.purge();
  if (!m.nowait) ch.send({ id: MethodId.QueuePurgeOk, messageCount: n });
}

export function queueDelete(ch: AmqpChannel, m: QueueDelete): void {
  const { core, vhost } = ch.conn;
  const name = m.queue === '' ? ch.lastQueue : m.queue;
  let n = 0;
  const q = name === undefined ? undefined : core.getQueue(vhost, name);
  if (q !== undefined) {
    ch.checkExclusive(q);
    n = core.deleteQueue(vhost, q.name, { ifUnused: m.ifUnused, ifEmpty: m.ifEmpty });
  } else if (name === undefined) {
    throw amqpError('NOT_FOUND', 'no previously declared queue');
  }
  // A queue that does not exist is deleted already (RabbitMQ 3.x): delete-ok with 0 messages.
  if (!m.nowait) ch.send({ id: MethodId.QueueDeleteOk, messageCount: n });
}
