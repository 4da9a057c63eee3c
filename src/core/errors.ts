/**
 * The core's one error type and the registry of its codes (STYLE.md habit 13). The codes are the
 * AMQP 0-9-1 reply codes (amqp0-9-1.xml "constants"), because the model is RabbitMQ's; each
 * adapter maps a `CoreError` to its own wire form in one place (AMQP channel.close /
 * connection.close, MQTT reason codes). The message is the reply text RabbitMQ would send, e.g.
 * `NOT_FOUND - no queue 'x' in vhost '/'`, so AMQP clients see what they are used to.
 */

export const ReplyCodes = {
  /** basic.return: message too large for the server. */
  CONTENT_TOO_LARGE: 311,
  /** basic.return: mandatory message with no route. */
  NO_ROUTE: 312,
  /** basic.return: immediate message with no consumer. */
  NO_CONSUMERS: 313,
  CONNECTION_FORCED: 320,
  INVALID_PATH: 402,
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  RESOURCE_LOCKED: 405,
  PRECONDITION_FAILED: 406,
  FRAME_ERROR: 501,
  SYNTAX_ERROR: 502,
  COMMAND_INVALID: 503,
  CHANNEL_ERROR: 504,
  UNEXPECTED_FRAME: 505,
  RESOURCE_ERROR: 506,
  NOT_ALLOWED: 530,
  NOT_IMPLEMENTED: 540,
  INTERNAL_ERROR: 541,
} as const;

export type ReplyName = keyof typeof ReplyCodes;
export type ReplyCode = (typeof ReplyCodes)[ReplyName];

/**
 * Codes the 0-9-1 spec classes as connection ("hard") errors; the rest close only the channel.
 * 311-313 are basic.return codes and never close anything.
 */
const HARD: ReadonlySet<number> = new Set<number>([320, 402, 501, 502, 503, 504, 505, 506, 530, 540, 541]);

export function isHardError(code: number): boolean {
  return HARD.has(code);
}

export class CoreError extends Error {
  override readonly name = 'CoreError';
  /** Symbolic name, e.g. `NOT_FOUND`. */
  readonly kind: ReplyName;
  /** Numeric AMQP 0-9-1 reply code, e.g. 404. */
  readonly code: ReplyCode;

  /** `detail` is the text after the `NAME - ` prefix; `message` is the full reply text. */
  constructor(kind: ReplyName, detail: string) {
    super(`${kind} - ${detail}`);
    this.kind = kind;
    this.code = ReplyCodes[kind];
  }

  /** True when AMQP would close the connection rather than the channel. */
  get hard(): boolean {
    return HARD.has(this.code);
  }
}

/** RabbitMQ's resource naming in reply texts (`rabbit_misc:rs/1`). */
export function describe(kind: 'queue' | 'exchange', name: string, vhost: string): string {
  return `${kind} '${name}' in vhost '${vhost}'`;
}

export function notFound(kind: 'queue' | 'exchange', name: string, vhost: string): CoreError {
  return new CoreError('NOT_FOUND', `no ${describe(kind, name, vhost)}`);
}
