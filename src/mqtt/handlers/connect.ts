/**
 * CONNECT → CONNACK (MQTT 3.1.1 §3.1–3.2, 5.0 §3.1–3.2): client identifier rules,
 * authentication, keep-alive cap, session takeover / resume / clean start, will, limits.
 */

import type { ConnectPacket, Properties } from '../codec/packets.js';
import { validTopicName } from '../codec/topic.js';
import type { MqttConnection } from '../connection.js';
import { SESSION_QUEUE_PREFIX, SESSION_RECORDS } from '../context.js';
import { MqttError, RC } from '../errors.js';
import { callHook, type MqttClientInfo } from '../hooks.js';
import { isUtf8Payload } from '../mapping.js';
import { Session } from '../session.js';

export function handleConnect(c: MqttConnection, p: ConnectPacket): Promise<void> | undefined {
  const { ctx } = c;
  const s = ctx.settings;
  const v5 = p.protocolVersion === 5;
  const props = p.properties;

  if (v5 && props?.authenticationMethod !== undefined) {
    // No enhanced authentication method is configured [MQTT-4.12.0-1].
    throw new MqttError(
      RC.BAD_AUTHENTICATION_METHOD,
      `authentication method ${props.authenticationMethod} not supported`,
    );
  }
  if (v5) {
    if (props?.receiveMaximum === 0) throw new MqttError(RC.PROTOCOL_ERROR, 'Receive Maximum 0 (§3.1.2.11.3)');
    if (props?.maximumPacketSize === 0) throw new MqttError(RC.PROTOCOL_ERROR, 'Maximum Packet Size 0');
  }

  let clientId = p.clientId;
  let assigned = false;
  if (clientId.length === 0) {
    if (p.protocolVersion === 3) {
      throw new MqttError(RC.CLIENT_IDENTIFIER_NOT_VALID, 'MQTT 3.1 requires a client identifier');
    }
    if (p.protocolVersion === 4 && !p.cleanSession) {
      // [MQTT-3.1.3-8]: zero-length id with CleanSession 0 → CONNACK 0x02, close.
      throw new MqttError(RC.CLIENT_IDENTIFIER_NOT_VALID, 'empty client id requires clean session', 'MQTT-3.1.3-8');
    }
    clientId = ctx.assignClientId();
    assigned = true;
  } else if (clientId.length > s.maxClientIdLength) {
    throw new MqttError(RC.CLIENT_IDENTIFIER_NOT_VALID, `client id longer than ${s.maxClientIdLength}`);
  }

  if (p.will) {
    const w = p.will;
    if (!validTopicName(w.topic)) throw new MqttError(RC.TOPIC_NAME_INVALID, 'invalid will topic', 'MQTT-3.1.3-11');
    if (w.qos > s.maxQos)
      throw new MqttError(RC.QOS_NOT_SUPPORTED, `will QoS ${w.qos} above ${s.maxQos}`, 'MQTT-3.2.2-12');
    if (w.retain && !s.retainAvailable) throw new MqttError(RC.RETAIN_NOT_SUPPORTED, 'retained will', 'MQTT-3.2.2-13');
    if (w.properties?.payloadFormatIndicator === 1 && !isUtf8Payload(w.payload)) {
      throw new MqttError(RC.PAYLOAD_FORMAT_INVALID, 'will payload is not UTF-8');
    }
  }

  const client: MqttClientInfo = {
    id: clientId,
    username: p.username,
    protocol: 'mqtt',
    protocolVersion: p.protocolVersion,
    transport: c.conn.transport,
    remoteAddress: c.conn.remoteAddress,
    remotePort: c.conn.remotePort,
    connectionId: c.conn.id,
  };
  c.client = client;

  const hook = ctx.hooks.authenticate;
  if (hook) {
    return callHook<boolean | { reasonCode: number } | undefined>(hook, 3, [client, p.username, p.password]).then(
      (ok) => {
        if (ok === false || ok === undefined) {
          throw new MqttError(RC.BAD_USER_NAME_OR_PASSWORD, 'refused by the authenticate hook');
        }
        if (typeof ok === 'object' && ok.reasonCode !== 0) {
          throw new MqttError(ok.reasonCode, 'refused by the authenticate hook');
        }
        accept(c, p, clientId, assigned, { username: p.username, vhost: s.vhost, tags: [] });
      },
      (err: Error) => {
        throw new MqttError(
          (err as { returnCode?: number }).returnCode === 5 ? RC.NOT_AUTHORIZED : RC.BAD_USER_NAME_OR_PASSWORD,
          `refused by the authenticate hook: ${err.message}`,
        );
      },
    );
  }
  const auth = ctx.users.authenticate(p.username, p.password, c.conn.isLoopback);
  if (!auth.ok) {
    throw new MqttError(
      auth.reason === 'bad_credentials' ? RC.BAD_USER_NAME_OR_PASSWORD : RC.NOT_AUTHORIZED,
      `authentication failed for ${p.username === undefined ? 'anonymous client' : `user ${p.username}`}: ${auth.detail}`,
    );
  }
  accept(c, p, clientId, assigned, auth.identity);
  return undefined;
}

function accept(
  c: MqttConnection,
  p: ConnectPacket,
  clientId: string,
  assigned: boolean,
  identity: { username: string | undefined; vhost: string; tags: readonly string[] },
): void {
  if (c.state !== 'connecting') return; // closed while the hook ran
  const { ctx } = c;
  const s = ctx.settings;
  const v5 = p.protocolVersion === 5;
  const props = p.properties;
  const vhost = identity.vhost;
  c.identity = identity;

  // Keep-alive: 5.0 clients asking for more than mqtt.maxKeepAlive (or for none) are told the
  // Server Keep Alive [MQTT-3.2.2-21]; 3.1/3.1.1 clients cannot be told and keep their own.
  let keepAlive = p.keepAlive;
  let serverKeepAlive: number | undefined;
  if (v5 && s.maxKeepAlive < 65535 && (keepAlive === 0 || keepAlive > s.maxKeepAlive)) {
    keepAlive = s.maxKeepAlive;
    serverKeepAlive = keepAlive;
  }
  c.keepAliveMs = keepAlive * 1000;

  // Session Expiry: 3.1.1 CleanSession 0 never expires (Mosquitto's default); 5.0 as asked, capped.
  let expiry = v5 ? (props?.sessionExpiryInterval ?? 0) : p.cleanSession ? 0 : 0xffffffff;
  let expiryCapped = false;
  if (expiry > s.maxSessionExpiryInterval) {
    expiry = s.maxSessionExpiryInterval;
    expiryCapped = true;
  }

  if (v5) {
    c.clientMaxInflight = Math.min(props?.receiveMaximum ?? 65535, s.maxInflightMessages);
    c.clientMaxPacketSize = props?.maximumPacketSize ?? 0;
    c.clientTopicAliasMax = props?.topicAliasMaximum ?? 0;
  } else {
    c.clientMaxInflight = s.maxInflightMessages;
  }

  // Takeover [MQTT-3.1.4-3]: the existing connection gets DISCONNECT 0x8E and is closed.
  const key = ctx.sessionKey(vhost, clientId);
  let session = ctx.sessions.get(key);
  if (session?.output) {
    const old = session.output as MqttConnection;
    old.takenOver = true;
    ctx.log.info('session taken over', { client: clientId, old: old.conn.id, new: c.conn.id });
    old.close(RC.SESSION_TAKEN_OVER);
  }
  let sessionPresent = false;
  if (session && p.cleanSession) {
    // [MQTT-3.1.2-4] / 5.0 Clean Start: discard the existing session.
    ctx.sessions.delete(key);
    session.end();
    session = undefined;
  }
  if (session) {
    sessionPresent = true;
  } else {
    const queueName = `${SESSION_QUEUE_PREFIX}${clientId}`;
    // A leftover queue of an ended session must not leak messages into the new one.
    if (ctx.core.getQueue(vhost, queueName)) ctx.core.deleteQueue(vhost, queueName);
    const queue = ctx.core.declareQueue(vhost, queueName, { durable: expiry > 0, autoDelete: false });
    session = new Session(ctx, vhost, clientId, queue);
    ctx.sessions.set(key, session);
  }
  session.expiryInterval = expiry;
  // A session that outlives its connection is remembered across restarts, with its expiry.
  if (expiry > 0) ctx.core.putRecord(SESSION_RECORDS, key, { expiry });
  else if (sessionPresent) ctx.core.putRecord(SESSION_RECORDS, key, undefined);
  c.session = session;
  c.pendingWill = p.will;
  c.state = 'connected';
  c.authenticated(s.maxPacketSize);

  const connack: Properties = {};
  if (v5) {
    connack.receiveMaximum = s.receiveMaximum;
    if (s.maxQos < 2) connack.maximumQoS = s.maxQos;
    connack.retainAvailable = s.retainAvailable ? 1 : 0;
    connack.maximumPacketSize = s.maxPacketSize;
    connack.topicAliasMaximum = s.topicAliasMaximum;
    connack.wildcardSubscriptionAvailable = s.wildcardSubscriptionAvailable ? 1 : 0;
    connack.subscriptionIdentifierAvailable = s.subscriptionIdentifierAvailable ? 1 : 0;
    connack.sharedSubscriptionAvailable = s.sharedSubscriptionAvailable ? 1 : 0;
    if (assigned) connack.assignedClientIdentifier = clientId;
    if (serverKeepAlive !== undefined) connack.serverKeepAlive = serverKeepAlive;
    if (expiryCapped) connack.sessionExpiryInterval = expiry;
  }
  c.sendPacket({ type: 2, sessionPresent, reasonCode: 0, ...(v5 && { properties: connack }) });
  session.attach(c, sessionPresent);
  ctx.log.debug('client connected', {
    client: clientId,
    version: p.protocolVersion,
    username: identity.username,
    sessionPresent,
  });
  ctx.events.emit('client', c.client);
  ctx.events.emit('clientReady', c.client);
}
