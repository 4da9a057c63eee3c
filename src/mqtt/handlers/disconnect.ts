/**
 * DISCONNECT from the client (MQTT 5.0 §3.14): 0x00 (and any 3.1.1 DISCONNECT) suppresses the
 * will [MQTT-3.14.4-3]; other reason codes such as
 * 0x04 keep it. A 5.0 client may change the Session Expiry Interval, but not from 0
 * (§3.14.2.2.2).
 */
import type { DisconnectPacket } from '../codec/packets.js';
import type { MqttConnection } from '../connection.js';
import { MqttError, RC } from '../errors.js';

export function handleDisconnect(c: MqttConnection, p: DisconnectPacket): undefined {
  const session = c.session!;
  const expiry = p.properties?.sessionExpiryInterval;
  if (c.version === 5 && expiry !== undefined) {
    if (session.expiryInterval === 0 && expiry !== 0) {
      throw new MqttError(RC.PROTOCOL_ERROR, 'Session Expiry Interval changed from 0 at DISCONNECT (§3.14.2.2.2)');
    }
    session.expiryInterval = Math.min(expiry, c.ctx.settings.maxSessionExpiryInterval);
  }
  c.willSuppressed = c.version !== 5 || p.reasonCode === RC.SUCCESS;
  c.ctx.log.debug('client sent DISCONNECT', { client: c.clientId, reason: p.reasonCode });
  // [MQTT-3.14.4-1]: the server closes the connection; no DISCONNECT is sent back.
  c.close(undefined);
  return undefined;
}
