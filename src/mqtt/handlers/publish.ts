/**
 * Inbound PUBLISH (MQTT 5.0 §3.3, §4.3): topic aliases, limits, authorization, retained
 * messages, routing through the topic exchange, and the QoS 1 / QoS 2 acknowledgements.
 */
import { CoreError } from '../../core/broker-core.js';
import type { Packet, PublishPacket, QoS } from '../codec/packets.js';
import type { MqttConnection } from '../connection.js';
import { MqttError, RC } from '../errors.js';
import { callHook, type PublishInfo } from '../hooks.js';
import { isUtf8Payload, publishToMessage, topicToKey } from '../mapping.js';

export function handlePublish(c: MqttConnection, p: PublishPacket): Promise<void> | undefined {
  const { ctx } = c;
  const s = ctx.settings;
  const v5 = c.version === 5;
  const session = c.session!;

  let topic = p.topic;
  const alias = p.properties?.topicAlias;
  if (v5 && alias !== undefined) {
    // [MQTT-3.3.2-8..12]: alias 0 or above our Topic Alias Maximum is a Topic Alias invalid.
    if (alias === 0 || alias > s.topicAliasMaximum) {
      throw new MqttError(RC.TOPIC_ALIAS_INVALID, `topic alias ${alias} out of range`, 'MQTT-3.3.2-9');
    }
    if (topic.length > 0) c.inboundAliases.set(alias, topic);
    else {
      const known = c.inboundAliases.get(alias);
      if (known === undefined) throw new MqttError(RC.PROTOCOL_ERROR, `unknown topic alias ${alias} (§3.3.2.3.4)`);
      topic = known;
    }
  }
  if (topic.length === 0) throw new MqttError(RC.PROTOCOL_ERROR, 'empty topic name', 'MQTT-4.7.3-1');
  if (p.qos > s.maxQos) throw new MqttError(RC.QOS_NOT_SUPPORTED, `QoS ${p.qos} above ${s.maxQos}`, 'MQTT-3.2.2-11');
  if (p.retain && !s.retainAvailable)
    throw new MqttError(RC.RETAIN_NOT_SUPPORTED, 'retain not available', 'MQTT-3.2.2-14');

  const pendingQos2 = p.qos === 2 && session.inboundQos2.has(p.packetId!);
  // [MQTT-3.3.4-7]: more unacknowledged QoS 1/2 PUBLISH than our Receive Maximum → 0x93. A
  // retransmission (DUP) of a QoS 2 message awaiting PUBREL is not a new one; the same id
  // without DUP is a new PUBLISH reusing an id in use, and counts (as Mosquitto counts it).
  if (p.qos > 0 && !(pendingQos2 && p.dup) && inFlightIn(c) >= s.receiveMaximum) {
    throw new MqttError(RC.RECEIVE_MAXIMUM_EXCEEDED, 'client exceeded Receive Maximum', 'MQTT-3.3.4-7');
  }
  if (pendingQos2) {
    // [MQTT-4.3.3-9]: a QoS 2 PUBLISH whose id awaits PUBREL is acknowledged, not delivered again.
    sendAck(c, { type: 5, packetId: p.packetId!, reasonCode: 0 });
    return;
  }
  if (v5 && p.properties?.payloadFormatIndicator === 1 && !isUtf8Payload(p.payload)) {
    // [MQTT-3.3.2-4] payload is not UTF-8 as announced: 0x99.
    if (p.qos === 0) throw new MqttError(RC.PAYLOAD_FORMAT_INVALID, 'payload is not valid UTF-8');
    ack(c, p, RC.PAYLOAD_FORMAT_INVALID);
    return;
  }

  const key = topicToKey(topic);
  const access = ctx.core.access;
  if (access && !access.canPublish(c.subject(), s.topicExchange, key)) {
    deny(c, p, topic);
    return;
  }
  const hook = ctx.hooks.authorizePublish;
  if (hook) {
    const info: PublishInfo = { topic, payload: p.payload, qos: p.qos, retain: p.retain };
    if (p.qos > 0) c.inboundUnacked++;
    const payload = Buffer.from(p.payload);
    return callHook<boolean | undefined>(hook, 2, [c.client, info]).then(
      (ok) => {
        if (p.qos > 0) c.inboundUnacked--;
        if (ok === false) deny(c, p, topic);
        else route(c, p, topic, key, payload);
      },
      () => {
        if (p.qos > 0) c.inboundUnacked--;
        deny(c, p, topic);
      },
    );
  }
  // Copy once at the point of retention (STYLE habit 6): the decoded payload is a view.
  route(c, p, topic, key, Buffer.from(p.payload));
  return undefined;
}

/** QoS 2 ids awaiting PUBREL count against our Receive Maximum too [MQTT-3.3.4-8]. */
function inFlightIn(c: MqttConnection): number {
  return c.inboundUnacked + (c.session?.inboundQos2.size ?? 0);
}

function deny(c: MqttConnection, p: PublishPacket, topic: string): void {
  c.ctx.log.info('publish denied', { client: c.clientId, topic });
  // 5.0 says so in the acknowledgement (§3.4.2.1, 0x87 Not authorized); 3.1.1 has no way to and acks as usual
  // (Mosquitto does the same), the message is dropped.
  ack(c, p, c.version === 5 ? RC.NOT_AUTHORIZED : RC.SUCCESS);
}

function ack(c: MqttConnection, p: PublishPacket, reasonCode: number): void {
  if (p.qos === 1) sendAck(c, { type: 4, packetId: p.packetId!, reasonCode });
  else if (p.qos === 2) {
    // A PUBREC with a failure ends the exchange; success records the id until PUBREL.
    if (reasonCode < 0x80) c.session!.addInboundQos2(p.packetId!);
    sendAck(c, { type: 5, packetId: p.packetId!, reasonCode });
  }
}

/**
 * PUBACK and PUBREC go out once what the PUBLISH wrote (a persistent message in a durable queue)
 * is on disk; the core calls back in order, so they also keep the order of the PUBLISHes
 * [MQTT-4.6.0-2, MQTT-4.6.0-3]. Without a store, at once.
 */
function sendAck(c: MqttConnection, ackPacket: Packet): void {
  c.ctx.core.whenDurable((err) => {
    if (err !== undefined) {
      c.ctx.log.error('store commit failed; publish not acknowledged', { client: c.clientId, error: String(err) });
      c.close(RC.UNSPECIFIED_ERROR);
      return;
    }
    c.sendPacket(ackPacket);
  });
}

function route(c: MqttConnection, p: PublishPacket, topic: string, key: string, payload: Buffer): void {
  if (c.state !== 'connected') return;
  const { ctx } = c;
  const vhost = c.session!.vhost;
  const exchange = ctx.settings.topicExchange;
  const msg = publishToMessage(p, key, payload, { vhost, exchange, publisherId: c.clientId, now: Date.now() });
  ctx.stats.messagesIn++;
  let queues = 0;
  try {
    if (p.retain) {
      // [MQTT-3.3.1-5..7]: store or replace; an empty payload removes the retained message.
      ctx.core.retained(vhost).set(key, payload.length === 0 ? null : msg);
    }
    queues = ctx.core.publish(msg).queues;
  } catch (err) {
    if (!(err instanceof CoreError)) throw err;
    ctx.log.warn('publish not routed', { client: c.clientId, topic, exchange, error: (err as Error).message });
    ack(c, p, RC.UNSPECIFIED_ERROR);
    return;
  }
  if (ctx.events.listenerCount('publish') > 0) {
    ctx.events.emit('publish', { topic, payload, qos: p.qos as QoS, retain: p.retain }, c.client);
  }
  // 5.0 may tell the publisher that nobody got it (0x10); a retained message was still kept.
  ack(c, p, c.version === 5 && queues === 0 && !p.retain ? RC.NO_MATCHING_SUBSCRIBERS : RC.SUCCESS);
}
