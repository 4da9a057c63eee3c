/**
 * Decoded MQTT control packets, one shape for protocol levels 3 (3.1), 4 (3.1.1) and 5 (5.0).
 * Fields that exist only in 5.0 are optional and ignored when encoding for 3/4.
 */

export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
  AUTH: 15,
} as const;
export type PacketTypeValue = (typeof PacketType)[keyof typeof PacketType];

/** Protocol level byte of CONNECT: 3 = MQTT 3.1 ("MQIsdp"), 4 = 3.1.1, 5 = 5.0. */
export type ProtocolVersion = 3 | 4 | 5;
export type QoS = 0 | 1 | 2;

/** MQTT 5 properties (§2.2.2.2). Only those valid for a packet type are encoded for it. */
export interface Properties {
  payloadFormatIndicator?: number; // 0x01
  messageExpiryInterval?: number; // 0x02
  contentType?: string; // 0x03
  responseTopic?: string; // 0x08
  correlationData?: Buffer; // 0x09
  subscriptionIdentifiers?: number[]; // 0x0B (repeatable in PUBLISH, one in SUBSCRIBE)
  sessionExpiryInterval?: number; // 0x11
  assignedClientIdentifier?: string; // 0x12
  serverKeepAlive?: number; // 0x13
  authenticationMethod?: string; // 0x15
  authenticationData?: Buffer; // 0x16
  requestProblemInformation?: number; // 0x17
  willDelayInterval?: number; // 0x18
  requestResponseInformation?: number; // 0x19
  responseInformation?: string; // 0x1A
  serverReference?: string; // 0x1C
  reasonString?: string; // 0x1F
  receiveMaximum?: number; // 0x21
  topicAliasMaximum?: number; // 0x22
  topicAlias?: number; // 0x23
  maximumQoS?: number; // 0x24
  retainAvailable?: number; // 0x25
  userProperties?: Array<[string, string]>; // 0x26, order kept, repeats allowed
  maximumPacketSize?: number; // 0x27
  wildcardSubscriptionAvailable?: number; // 0x28
  subscriptionIdentifierAvailable?: number; // 0x29
  sharedSubscriptionAvailable?: number; // 0x2A
}

export interface Will {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  /** 5.0 only: Will Properties (willDelayInterval, messageExpiryInterval, contentType, ...). */
  properties?: Properties;
}

export interface ConnectPacket {
  type: 1;
  /** "MQTT" for 4/5, "MQIsdp" for 3. */
  protocolName: string;
  protocolVersion: ProtocolVersion;
  cleanSession: boolean;
  keepAlive: number;
  clientId: string;
  will?: Will;
  username?: string;
  password?: Buffer;
  properties?: Properties;
}

export interface ConnackPacket {
  type: 2;
  sessionPresent: boolean;
  /** 3.1.1 return code (0..5) or 5.0 reason code. */
  reasonCode: number;
  properties?: Properties;
}

export interface PublishPacket {
  type: 3;
  dup: boolean;
  qos: QoS;
  retain: boolean;
  /** May be "" in 5.0 when a Topic Alias property stands for it. */
  topic: string;
  /** Present when qos > 0. */
  packetId?: number;
  properties?: Properties;
  /** A view into the read buffer when decoded; copy before retaining (STYLE.md habit 6). */
  payload: Buffer;
}

/** PUBACK, PUBREC, PUBREL, PUBCOMP share one shape. */
export interface AckPacket {
  type: 4 | 5 | 6 | 7;
  packetId: number;
  /** 5.0 reason code; 0 when absent (the short form). */
  reasonCode: number;
  properties?: Properties;
}

export interface SubscriptionRequest {
  topicFilter: string;
  qos: QoS;
  /** 5.0 subscription options; false/0 for 3/4. */
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
}

export interface SubscribePacket {
  type: 8;
  packetId: number;
  subscriptions: SubscriptionRequest[];
  properties?: Properties;
}

export interface SubackPacket {
  type: 9;
  packetId: number;
  /** Granted QoS or failure (0x80) for 3.1.1; reason codes for 5.0. */
  reasonCodes: number[];
  properties?: Properties;
}

export interface UnsubscribePacket {
  type: 10;
  packetId: number;
  topicFilters: string[];
  properties?: Properties;
}

export interface UnsubackPacket {
  type: 11;
  packetId: number;
  /** 5.0 only; empty for 3/4. */
  reasonCodes: number[];
  properties?: Properties;
}

export interface PingreqPacket {
  type: 12;
}

export interface PingrespPacket {
  type: 13;
}

export interface DisconnectPacket {
  type: 14;
  /** 5.0 reason code; 0 for 3/4. */
  reasonCode: number;
  properties?: Properties;
}

export interface AuthPacket {
  type: 15;
  reasonCode: number;
  properties?: Properties;
}

export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | AckPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | UnsubackPacket
  | PingreqPacket
  | PingrespPacket
  | DisconnectPacket
  | AuthPacket;

/**
 * Raised by the decoder for malformed input. `reasonCode` is the MQTT 5 reason code the
 * server answers with (0x81 Malformed Packet, 0x82 Protocol Error, 0x95 Packet too large,
 * 0x84 Unsupported Protocol Version, 0x99 Payload format invalid); for 3.1.1 the connection
 * is simply closed (or CONNACK 0x01 for an unsupported level).
 */
export class MqttProtocolError extends Error {
  /**
   * CONNECT only: the Protocol Level byte (3, 4, 5, or an unsupported value) of a CONNECT whose
   * Protocol Name was "MQTT" or "MQIsdp", set on every error raised after that byte was read,
   * so that the server can refuse in the client's own version (e.g. CONNACK 0x81 in 5.0,
   * CONNACK 0x01 in 3.1.1 for an unsupported level). Undefined for a wrong Protocol Name: the
   * peer is not speaking MQTT, so the server closes without CONNACK [MQTT-3.1.4-1].
   */
  protocolVersion?: number;

  constructor(
    readonly reasonCode: number,
    message: string,
    /** The statement violated, e.g. "MQTT-2.2.2-1", for the log line. */
    readonly statement?: string,
  ) {
    super(message);
    this.name = 'MqttProtocolError';
  }
}

export const NEED_MORE = Symbol('NEED_MORE');
export type NeedMore = typeof NEED_MORE;

export interface Decoded {
  packet: Packet;
  /** Offset just past the packet. */
  next: number;
}
