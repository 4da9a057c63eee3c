/**
 * Acknowledgements of QoS 1/2 flows (MQTT 5.0 §4.3.2, §4.3.3): PUBACK / PUBREC / PUBCOMP for
 * messages the broker sent, PUBREL for QoS 2 messages it received.
 */
import type { AckPacket } from '../codec/packets.js';
import type { MqttConnection } from '../connection.js';
import { RC } from '../errors.js';

export function handlePuback(c: MqttConnection, p: AckPacket): undefined {
  // An unknown id is ignored: it may be a late ack of a message already settled.
  c.session!.handlePuback(p.packetId);
  return undefined;
}

export function handlePubrec(c: MqttConnection, p: AckPacket): undefined {
  const r = c.session!.handlePubrec(p.packetId, p.reasonCode);
  if (r === 'pubrel') c.sendPacket({ type: 6, packetId: p.packetId, reasonCode: 0 });
  else if (r === 'unknown') {
    // 5.0 §3.6.2.1: PUBREL 0x92 Packet Identifier not found; 3.1.1 always releases.
    c.sendPacket({ type: 6, packetId: p.packetId, reasonCode: c.version === 5 ? RC.PACKET_IDENTIFIER_NOT_FOUND : 0 });
  }
  return undefined;
}

export function handlePubrel(c: MqttConnection, p: AckPacket): undefined {
  const known = c.session!.releaseInboundQos2(p.packetId);
  // [MQTT-4.3.3-11]: PUBCOMP with the same id, also for an id we do not know (0x92 in 5.0).
  c.sendPacket({
    type: 7,
    packetId: p.packetId,
    reasonCode: known || c.version !== 5 ? 0 : RC.PACKET_IDENTIFIER_NOT_FOUND,
  });
  return undefined;
}

export function handlePubcomp(c: MqttConnection, p: AckPacket): undefined {
  c.session!.handlePubcomp(p.packetId);
  return undefined;
}
