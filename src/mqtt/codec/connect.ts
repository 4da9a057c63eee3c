/**
 * CONNECT (5.0 §3.1, 3.1.1 §3.1, 3.1 "MQIsdp"). The packet carries its own version in the
 * Protocol Level byte, so these functions take no `ver`: decoding reads it, encoding uses
 * `p.protocolVersion`.
 *
 * Statement ids differ between the documents for the Will flag rules: 3.1.1 numbers them
 * 3.1.2-13/-14/-15 and 5.0 numbers them 3.1.2-11/-12/-13; the error carries the id of the
 * version being decoded.
 */
import { type ConnectPacket, MqttProtocolError, type ProtocolVersion, type QoS, type Will } from './packets.js';
import {
  binaryFieldSize,
  decodeProperties,
  encodeProperties,
  propertiesSize,
  utf8FieldSize,
  WILL_PROPERTIES,
} from './properties.js';
import { malformed, type Reader } from './reader.js';
import type { Writer } from './writer.js';

const CONNECT = 1;

const Flag = {
  RESERVED: 0x01,
  CLEAN_SESSION: 0x02,
  WILL: 0x04,
  WILL_RETAIN: 0x20,
  PASSWORD: 0x40,
  USERNAME: 0x80,
} as const;

/**
 * A wrong Protocol Name means the peer is not speaking MQTT: 3.1.1 closes without a CONNACK
 * [MQTT-3.1.2-1, MQTT-3.1.4-1] and 5.0 may do the same, so it is reported as Malformed (0x81)
 * with no protocolVersion, rather than 0x84, which would draw a CONNACK.
 */
export function decodeConnect(r: Reader): ConnectPacket {
  const protocolName = r.readUtf8();
  if (protocolName !== 'MQTT' && protocolName !== 'MQIsdp') {
    throw malformed(`protocol name ${JSON.stringify(protocolName.slice(0, 16))}`, 'MQTT-3.1.2-1');
  }
  const level = r.readU8();
  try {
    return decodeConnectAfterLevel(r, protocolName, level);
  } catch (e) {
    if (e instanceof MqttProtocolError) e.protocolVersion = level;
    throw e;
  }
}

function decodeConnectAfterLevel(r: Reader, protocolName: string, level: number): ConnectPacket {
  // "MQTT" is 3.1.1 (4) or 5.0 (5); "MQIsdp" is only ever 3.1 (3).
  if (protocolName === 'MQTT' ? level !== 4 && level !== 5 : level !== 3) {
    throw new MqttProtocolError(0x84, `protocol level ${level} with name ${protocolName}`, 'MQTT-3.1.2-2');
  }
  const ver = level as ProtocolVersion;
  const v5 = ver === 5;

  const flags = r.readU8();
  if ((flags & Flag.RESERVED) !== 0) throw malformed('reserved connect flag is set', 'MQTT-3.1.2-3');
  const willFlag = (flags & Flag.WILL) !== 0;
  const willQos = (flags >>> 3) & 3;
  const willRetain = (flags & Flag.WILL_RETAIN) !== 0;
  const hasPassword = (flags & Flag.PASSWORD) !== 0;
  const hasUsername = (flags & Flag.USERNAME) !== 0;
  if (!willFlag) {
    if (willQos !== 0) throw malformed('will QoS without will flag', v5 ? 'MQTT-3.1.2-11' : 'MQTT-3.1.2-13');
    if (willRetain) throw malformed('will retain without will flag', v5 ? 'MQTT-3.1.2-13' : 'MQTT-3.1.2-15');
  } else if (willQos === 3) {
    throw malformed('will QoS 3', v5 ? 'MQTT-3.1.2-12' : 'MQTT-3.1.2-14');
  }
  // 5.0 allows a password without a user name; 3.1 and 3.1.1 do not.
  if (!v5 && hasPassword && !hasUsername) {
    throw malformed('password flag without user name flag', 'MQTT-3.1.2-22');
  }
  const keepAlive = r.readU16();
  const properties = v5 ? decodeProperties(r, CONNECT) : undefined;
  const clientId = r.readUtf8();

  const p: ConnectPacket = {
    type: CONNECT,
    protocolName,
    protocolVersion: ver,
    cleanSession: (flags & Flag.CLEAN_SESSION) !== 0,
    keepAlive,
    clientId,
  };
  if (willFlag) {
    const willProperties = v5 ? decodeProperties(r, WILL_PROPERTIES) : undefined;
    const will: Will = { topic: r.readUtf8(), payload: r.readBinary(), qos: willQos as QoS, retain: willRetain };
    if (willProperties !== undefined) will.properties = willProperties;
    p.will = will;
  }
  if (hasUsername) p.username = r.readUtf8();
  if (hasPassword) p.password = r.readBinary();
  if (properties !== undefined) p.properties = properties;
  return p;
}

export function connectSize(p: ConnectPacket): number {
  const v5 = p.protocolVersion === 5;
  // Protocol Name, Protocol Level, Connect Flags, Keep Alive.
  let n = utf8FieldSize(p.protocolName) + 4;
  if (v5) n += propertiesSize(p.properties, CONNECT);
  n += utf8FieldSize(p.clientId);
  const will = p.will;
  if (will !== undefined) {
    if (v5) n += propertiesSize(will.properties, WILL_PROPERTIES);
    n += utf8FieldSize(will.topic) + binaryFieldSize(will.payload);
  }
  if (p.username !== undefined) n += utf8FieldSize(p.username);
  if (p.password !== undefined) n += binaryFieldSize(p.password);
  return n;
}

export function encodeConnect(w: Writer, p: ConnectPacket): void {
  const v5 = p.protocolVersion === 5;
  const will = p.will;
  let flags = p.cleanSession ? Flag.CLEAN_SESSION : 0;
  if (will !== undefined) flags |= Flag.WILL | (will.qos << 3) | (will.retain ? Flag.WILL_RETAIN : 0);
  if (p.password !== undefined) flags |= Flag.PASSWORD;
  if (p.username !== undefined) flags |= Flag.USERNAME;
  w.writeUtf8(p.protocolName);
  w.writeU8(p.protocolVersion);
  w.writeU8(flags);
  w.writeU16(p.keepAlive);
  if (v5) encodeProperties(w, p.properties, CONNECT);
  w.writeUtf8(p.clientId);
  if (will !== undefined) {
    if (v5) encodeProperties(w, will.properties, WILL_PROPERTIES);
    w.writeUtf8(will.topic);
    w.writeBinary(will.payload);
  }
  if (p.username !== undefined) w.writeUtf8(p.username);
  if (p.password !== undefined) w.writeBinary(p.password);
}
