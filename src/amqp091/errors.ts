/**
 * AMQP 0-9-1 exceptions and the one place that turns any failure into a channel.close or a
 * connection.close (STYLE.md habit 13). Reply codes are the spec's constants (amqp0-9-1.xml),
 * texts are RabbitMQ's (`rabbit_channel`, `rabbit_reader`), so that clients written against
 * RabbitMQ see the replies they test for.
 */
import { CoreError, isHardError, ReplyCodes, type ReplyName } from '../core/broker-core.js';
import { AmqpCodecError } from './codec/index.js';

export class AmqpError extends Error {
  override readonly name = 'AmqpError';
  readonly code: number;
  /** Class and method of the failing method; 0 when no method is to blame. */
  classId = 0;
  methodId = 0;

  /** `text` is the detail after the `NAME - ` prefix, as RabbitMQ words its reply texts. */
  constructor(
    readonly kind: ReplyName,
    text: string,
  ) {
    super(`${kind} - ${text}`);
    this.code = ReplyCodes[kind];
  }

  /** True for connection exceptions (AMQP 0-9-1 §1.2 constants marked "hard-error"). */
  get hard(): boolean {
    return isHardError(this.code);
  }
}

/**
 * RabbitMQ reports any method or property list it cannot decode as frame_error "cannot decode"
 * (`rabbit_command_assembler`), so the codec's 502 becomes 501 on the wire.
 */
const CODEC_KIND: Record<number, ReplyName> = {
  501: 'FRAME_ERROR',
  502: 'FRAME_ERROR',
  503: 'COMMAND_INVALID',
  505: 'UNEXPECTED_FRAME',
  540: 'NOT_IMPLEMENTED',
};

/** Normalises anything thrown while handling a frame; unknown errors become 541 INTERNAL_ERROR. */
export function toAmqpError(err: unknown, classId = 0, methodId = 0): AmqpError {
  let e: AmqpError;
  if (err instanceof AmqpError) e = err;
  else if (err instanceof CoreError) {
    e = new AmqpError(err.kind, err.message.slice(err.kind.length + 3));
  } else if (err instanceof AmqpCodecError) {
    e = new AmqpError(CODEC_KIND[err.code] ?? 'FRAME_ERROR', err.message);
  } else {
    e = new AmqpError('INTERNAL_ERROR', err instanceof Error ? err.message : String(err));
  }
  if (e.classId === 0 && e.methodId === 0) {
    e.classId = classId;
    e.methodId = methodId;
  }
  return e;
}

export const amqpError = (kind: ReplyName, text: string): AmqpError => new AmqpError(kind, text);
