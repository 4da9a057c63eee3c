/**
 * MQTT reason codes (5.0 §2.4) and the one place that turns a failure into what each protocol
 * version can say (STYLE.md habit 13).
 */
export const RC = {
  SUCCESS: 0x00,
  GRANTED_QOS_1: 0x01,
  GRANTED_QOS_2: 0x02,
  DISCONNECT_WITH_WILL: 0x04,
  NO_MATCHING_SUBSCRIBERS: 0x10,
  NO_SUBSCRIPTION_EXISTED: 0x11,
  CONTINUE_AUTHENTICATION: 0x18,
  UNSPECIFIED_ERROR: 0x80,
  MALFORMED_PACKET: 0x81,
  PROTOCOL_ERROR: 0x82,
  IMPLEMENTATION_SPECIFIC_ERROR: 0x83,
  UNSUPPORTED_PROTOCOL_VERSION: 0x84,
  CLIENT_IDENTIFIER_NOT_VALID: 0x85,
  BAD_USER_NAME_OR_PASSWORD: 0x86,
  NOT_AUTHORIZED: 0x87,
  SERVER_UNAVAILABLE: 0x88,
  SERVER_BUSY: 0x89,
  BANNED: 0x8a,
  SERVER_SHUTTING_DOWN: 0x8b,
  BAD_AUTHENTICATION_METHOD: 0x8c,
  KEEP_ALIVE_TIMEOUT: 0x8d,
  SESSION_TAKEN_OVER: 0x8e,
  TOPIC_FILTER_INVALID: 0x8f,
  TOPIC_NAME_INVALID: 0x90,
  PACKET_IDENTIFIER_IN_USE: 0x91,
  PACKET_IDENTIFIER_NOT_FOUND: 0x92,
  RECEIVE_MAXIMUM_EXCEEDED: 0x93,
  TOPIC_ALIAS_INVALID: 0x94,
  PACKET_TOO_LARGE: 0x95,
  MESSAGE_RATE_TOO_HIGH: 0x96,
  QUOTA_EXCEEDED: 0x97,
  ADMINISTRATIVE_ACTION: 0x98,
  PAYLOAD_FORMAT_INVALID: 0x99,
  RETAIN_NOT_SUPPORTED: 0x9a,
  QOS_NOT_SUPPORTED: 0x9b,
  USE_ANOTHER_SERVER: 0x9c,
  SERVER_MOVED: 0x9d,
  SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: 0x9e,
  CONNECTION_RATE_EXCEEDED: 0x9f,
  MAXIMUM_CONNECT_TIME: 0xa0,
  SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED: 0xa1,
  WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED: 0xa2,
} as const;

/** MQTT 3.1 / 3.1.1 CONNACK return codes (3.1.1 §3.2.2.3). */
export const CONNACK_V3 = {
  ACCEPTED: 0,
  UNACCEPTABLE_PROTOCOL_VERSION: 1,
  IDENTIFIER_REJECTED: 2,
  SERVER_UNAVAILABLE: 3,
  BAD_USER_NAME_OR_PASSWORD: 4,
  NOT_AUTHORIZED: 5,
} as const;

/** 3.1.1 SUBACK failure return code. */
export const SUBACK_FAILURE_V3 = 0x80;

/** Maps a 5.0 CONNACK reason code to the nearest 3.1.1 return code, or undefined to just close. */
export function connackCodeV3(reasonCode: number): number | undefined {
  switch (reasonCode) {
    case RC.SUCCESS:
      return CONNACK_V3.ACCEPTED;
    case RC.UNSUPPORTED_PROTOCOL_VERSION:
      return CONNACK_V3.UNACCEPTABLE_PROTOCOL_VERSION;
    case RC.CLIENT_IDENTIFIER_NOT_VALID:
      return CONNACK_V3.IDENTIFIER_REJECTED;
    case RC.SERVER_UNAVAILABLE:
    case RC.SERVER_BUSY:
    case RC.SERVER_SHUTTING_DOWN:
      return CONNACK_V3.SERVER_UNAVAILABLE;
    case RC.BAD_USER_NAME_OR_PASSWORD:
      return CONNACK_V3.BAD_USER_NAME_OR_PASSWORD;
    case RC.NOT_AUTHORIZED:
    case RC.BANNED:
    case RC.BAD_AUTHENTICATION_METHOD:
      return CONNACK_V3.NOT_AUTHORIZED;
    default:
      return undefined;
  }
}

/** A failure raised by a handler: the connection answers with `reasonCode` (5.0) and closes. */
export class MqttError extends Error {
  constructor(
    readonly reasonCode: number,
    message: string,
    readonly statement?: string,
    /** false: close without a DISCONNECT even in 5.0 (an error in a CONNECT, 5.0 §4.13.1). */
    readonly sendDisconnect = true,
  ) {
    super(message);
    this.name = 'MqttError';
  }
}
