/**
 * The codec's one error type. `code` is the AMQP 0-9-1 reply code the adapter puts in the
 * connection.close it sends before dropping the socket (all of these are hard errors, §1.4.2.1 /
 * the spec's "constants" table).
 *
 * - 501 FRAME_ERROR: a frame that does not frame — bad frame-end octet, a declared size above
 *   frame_max, an unknown frame type, a heartbeat with a payload (RabbitMQ `rabbit_reader.erl`
 *   `handle_input(frame_header, …)`, `rabbit_command_assembler.erl` `analyze_frame/2`) — and a
 *   method or content-header payload that does not decode: arguments or properties truncated or
 *   followed by extra bytes. RabbitMQ's `rabbit_framing_amqp_0_9_1.erl` `decode_method_fields/2`
 *   matches the exact layout and falls through to `rabbit_misc:frame_error/2` ("cannot decode").
 * - 502 SYNTAX_ERROR: an illegal value inside a field table — an unknown type letter, an inner
 *   length that runs past the table, nesting deeper than 100 (the spec's "illegal values for one
 *   or more fields"; RabbitMQ's parse_table/1 just crashes, 541).
 * - 540 NOT_IMPLEMENTED: a class/method id pair we do not know (see `decodeMethod`).
 * - 503 COMMAND_INVALID / 505 UNEXPECTED_FRAME are for the adapter (frame sequencing); they are in
 *   the type so that it can reuse this class.
 */
export type AmqpCodecErrorCode = 501 | 502 | 503 | 505 | 540;

export const AmqpCodecErrorCode = {
  FrameError: 501,
  SyntaxError: 502,
  CommandInvalid: 503,
  UnexpectedFrame: 505,
  NotImplemented: 540,
} as const;

export class AmqpCodecError extends Error {
  override readonly name = 'AmqpCodecError';

  /**
   * @param method `(classId << 16) | methodId` of the method whose arguments failed to decode (or
   *   that is unknown), 0 when the error is not about a method. connection.close carries it as
   *   class-id and method-id: see the getters.
   */
  constructor(
    readonly code: AmqpCodecErrorCode,
    message: string,
    readonly method = 0,
  ) {
    super(message);
  }

  /** connection.close class-id: the failing method's class, or 0. */
  get classId(): number {
    return this.method >>> 16;
  }

  /** connection.close method-id: the failing method's id within its class, or 0. */
  get methodId(): number {
    return this.method & 0xffff;
  }
}
