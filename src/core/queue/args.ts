/**
 * Queue arguments: validation at declare, the parsed settings a queue runs with, and the
 * redeclare equivalence check, all after RabbitMQ 3.13 (`rabbit_amqqueue:check_declare_arguments`,
 * `declare_args/0`, `assert_args_equivalence/2`; each queue type's `capabilities/0` lists the
 * arguments it accepts). Reply texts are RabbitMQ's: `invalid arg '<key>' for queue '<name>' in
 * vhost '<vhost>': <Erlang term>`, the term printed as `~p` prints it.
 */
import { CoreError, describe } from '../errors.js';

export type Args = Readonly<Record<string, unknown>>;

/** Braid implements classic and quorum queues; streams are refused at declare. */
export const QueueTypes = ['classic', 'quorum'] as const;
export type QueueType = (typeof QueueTypes)[number];

/** RabbitMQ `x-overflow` values. */
export const OverflowModes = ['drop-head', 'reject-publish', 'reject-publish-dlx'] as const;
export type OverflowMode = (typeof OverflowModes)[number];

/** `?MAX_SUPPORTED_PRIORITY` in rabbit.hrl. */
export const MAX_PRIORITY = 255;
/** `?MAX_EXPIRY_TIMER` in rabbit_misc: the largest x-message-ttl / x-expires (ms). */
export const MAX_EXPIRY = 4294967295;

// `rabbit_classic_queue:capabilities/0` and `rabbit_quorum_queue:capabilities/0` (queue_arguments),
// in their order, which is also the order redeclares are compared in. `x-queue-leader-locator` is
// accepted for classic queues as RabbitMQ 4 does.
const CLASSIC_ARGS = [
  'x-expires',
  'x-message-ttl',
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-max-length',
  'x-max-length-bytes',
  'x-max-priority',
  'x-overflow',
  'x-queue-mode',
  'x-queue-version',
  'x-single-active-consumer',
  'x-queue-type',
  'x-queue-master-locator',
  'x-queue-leader-locator',
] as const;
const QUORUM_ARGS = [
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-dead-letter-strategy',
  'x-expires',
  'x-max-length',
  'x-max-length-bytes',
  'x-max-in-memory-length',
  'x-max-in-memory-bytes',
  'x-overflow',
  'x-single-active-consumer',
  'x-queue-type',
  'x-quorum-initial-group-size',
  'x-delivery-limit',
  'x-message-ttl',
  'x-queue-leader-locator',
] as const;
/** `rabbit_stream_queue:capabilities/0`: refused on the other types as "of queue type". */
const STREAM_ARGS = [
  'x-queue-type',
  'x-max-length-bytes',
  'x-max-age',
  'x-stream-max-segment-size-bytes',
  'x-stream-filter-size-bytes',
  'x-initial-cluster-size',
  'x-queue-leader-locator',
] as const;

const TYPE_ARGS: Readonly<Record<QueueType, readonly string[]>> = { classic: CLASSIC_ARGS, quorum: QUORUM_ARGS };
const ALL_TYPE_ARGS: ReadonlySet<string> = new Set<string>([...CLASSIC_ARGS, ...QUORUM_ARGS, ...STREAM_ARGS]);
/** Erlang module names, as RabbitMQ prints a queue type in its reply texts. */
const TYPE_MODULE: Readonly<Record<string, string>> = {
  classic: 'rabbit_classic_queue',
  quorum: 'rabbit_quorum_queue',
  stream: 'rabbit_stream_queue',
};

/** The AMQP 0-9-1 field type RabbitMQ would name for a decoded value (`rabbit_framing` atoms). */
export function amqpTypeName(v: unknown): string {
  if (typeof v === 'string' || Buffer.isBuffer(v)) return 'longstr';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'bigint') return 'long';
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) return 'double';
    return v >= -0x80000000 && v <= 0x7fffffff ? 'signedint' : 'long';
  }
  if (v === null || v === undefined) return 'void';
  if (v instanceof Date) return 'timestamp';
  if (Array.isArray(v)) return 'array';
  return 'table';
}

/** A string argument as text (AMQP longstr may arrive as a Buffer), else undefined. */
export function argText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return undefined;
}

function argInt(v: unknown): number | undefined {
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  return undefined;
}

/** The effective queue type named by `x-queue-type` (absent → classic); the raw text otherwise. */
export function queueTypeOf(args: Args): string {
  const v = args['x-queue-type'];
  if (v === undefined) return 'classic';
  return argText(v) ?? '';
}

type Check = (v: unknown, args: Args) => string | undefined;

// Each returns the Erlang error term as RabbitMQ prints it, or undefined when valid.
const intCheck = (v: unknown): string | undefined =>
  argInt(v) === undefined ? `"expected integer, got ${amqpTypeName(v)}"` : undefined;
const nonNegInt: Check = (v) => {
  const bad = intCheck(v);
  if (bad !== undefined) return bad;
  const n = argInt(v)!;
  return n < 0 ? `{value_negative,${n}}` : undefined;
};
const expiry = (n: number): string | undefined => {
  if (n < 0) return `{value_negative,${n}}`;
  if (n > MAX_EXPIRY) return `{value_too_large,${n},${MAX_EXPIRY}}`;
  return undefined;
};
const positiveExpiry: Check = (v) => {
  const bad = intCheck(v);
  if (bad !== undefined) return bad;
  const n = argInt(v)!;
  return n === 0 ? '{value_zero,0}' : expiry(n);
};
const messageTtl: Check = (v) => intCheck(v) ?? expiry(argInt(v)!);
const maxPriority: Check = (v) => {
  const bad = nonNegInt(v, {});
  if (bad !== undefined) return bad;
  const n = argInt(v)!;
  return n > MAX_PRIORITY ? `{max_value_exceeded,${n}}` : undefined;
};
const bool: Check = (v) => (typeof v === 'boolean' ? undefined : `{unacceptable_type,${amqpTypeName(v)}}`);
const positiveInt: Check = (v) => {
  const bad = nonNegInt(v, {});
  if (bad !== undefined) return bad;
  return argInt(v) === 0 ? '{value_zero,0}' : undefined;
};
function oneOf(values: readonly string[], invalid: (s: string) => string): Check {
  return (v) => {
    const s = argText(v);
    if (s === undefined) return `{unacceptable_type,${amqpTypeName(v)}}`;
    return values.includes(s) ? undefined : invalid(s);
  };
}
const dlrk: Check = (v, args) => {
  if (argText(v) === undefined) return `{unacceptable_type,${amqpTypeName(v)}}`;
  return args['x-dead-letter-exchange'] === undefined ? 'routing_key_but_no_dlx_defined' : undefined;
};
const queueVersion: Check = (v) => {
  const bad = nonNegInt(v, {});
  if (bad !== undefined) return bad;
  const n = argInt(v)!;
  return n === 1 || n === 2 ? undefined : `"unsupported queue version '${n}'"`;
};

/** `rabbit_amqqueue:declare_args/0`, in its order (the order RabbitMQ reports the first error in). */
const VALIDATORS: ReadonlyArray<readonly [string, Check]> = [
  ['x-expires', positiveExpiry],
  ['x-message-ttl', messageTtl],
  // x-dead-letter-exchange is checked earlier, with the channel's text (see validateQueueArgs).
  ['x-dead-letter-routing-key', dlrk],
  ['x-dead-letter-strategy', oneOf(['at-most-once', 'at-least-once'], () => 'invalid_dlx_strategy')],
  ['x-max-length', nonNegInt],
  ['x-max-length-bytes', nonNegInt],
  ['x-max-in-memory-length', nonNegInt],
  ['x-max-in-memory-bytes', nonNegInt],
  ['x-max-priority', maxPriority],
  ['x-overflow', oneOf(OverflowModes, () => 'invalid_overflow')],
  ['x-queue-mode', oneOf(['default', 'lazy'], (s) => `"unsupported queue mode '${s}'"`)],
  ['x-queue-version', queueVersion],
  ['x-single-active-consumer', bool],
  ['x-quorum-initial-group-size', positiveInt],
  // Not validated by RabbitMQ 3.13; Braid refuses what it could not honour.
  ['x-delivery-limit', nonNegInt],
  [
    'x-queue-leader-locator',
    oneOf(['client-local', 'balanced', 'random', 'least-leaders'], () => 'invalid_queue_locator_arg'),
  ],
];

/**
 * Checks declare arguments with RabbitMQ's 406 texts (`rabbit_amqqueue:check_declare_arguments/2`):
 * first `x-queue-type`, then the values of the arguments the type supports, then arguments known
 * to RabbitMQ but belonging to another type (`... of queue type rabbit_quorum_queue`). Unknown
 * arguments are accepted and kept, as RabbitMQ does.
 */
export function validateQueueArgs(args: Args, name: string, vhost: string): void {
  const queue = describe('queue', name, vhost);
  const fail = (key: string, term: string): never => {
    throw new CoreError('PRECONDITION_FAILED', `invalid arg '${key}' for ${queue}: ${term}`);
  };
  const qt = args['x-queue-type'];
  if (qt !== undefined) {
    const s = argText(qt);
    if (s === undefined) fail('x-queue-type', `{unacceptable_type,${amqpTypeName(qt)}}`);
    // Streams are a RabbitMQ queue type that Braid does not implement.
    if (s === 'stream') fail('x-queue-type', `"stream queues are not supported by Braid"`);
    if (!(QueueTypes as readonly string[]).includes(s!)) fail('x-queue-type', `"unsupported queue type '${s}'"`);
  }
  const type = queueTypeOf(args) as QueueType;
  const supported = TYPE_ARGS[type];
  // rabbit_channel checks the DLX name's type before declaring (`rabbit_misc:r_arg/4`).
  const dlx = args['x-dead-letter-exchange'];
  if (dlx !== undefined && argText(dlx) === undefined) {
    throw new CoreError(
      'PRECONDITION_FAILED',
      `invalid type '${amqpTypeName(dlx)}' for arg 'x-dead-letter-exchange' in ${queue}`,
    );
  }
  for (const [key, check] of VALIDATORS) {
    const v = args[key];
    if (v === undefined || !supported.includes(key)) continue;
    const term = check(v, args);
    if (term !== undefined) fail(key, term);
  }
  for (const key of Object.keys(args)) {
    if (args[key] === undefined || supported.includes(key) || !ALL_TYPE_ARGS.has(key)) continue;
    throw new CoreError('PRECONDITION_FAILED', `invalid arg '${key}' for ${queue} of queue type ${TYPE_MODULE[type]}`);
  }
}

/**
 * What only some queue types allow, checked after the arguments (`rabbit_quorum_queue:declare/2`
 * through `rabbit_queue_type_util`: auto-delete, then exclusive, then non-durable).
 */
export function validateQueueProperties(
  type: QueueType,
  name: string,
  vhost: string,
  props: { durable: boolean; exclusive: boolean; autoDelete: boolean },
): void {
  if (type !== 'quorum') return;
  const queue = describe('queue', name, vhost);
  let bad: string | undefined;
  if (props.autoDelete) bad = 'auto-delete';
  else if (props.exclusive) bad = 'exclusive-owner';
  else if (!props.durable) bad = 'non-durable';
  if (bad !== undefined) throw new CoreError('PRECONDITION_FAILED', `invalid property '${bad}' for ${queue}`);
}

/** `rabbit_queue_type:is_server_named_allowed/1`: only classic queues may be server-named. */
export function checkServerNamed(args: Args): void {
  const type = queueTypeOf(args);
  // Unknown types are left to validateQueueArgs.
  if (type !== 'quorum' && type !== 'stream') return;
  throw new CoreError(
    'PRECONDITION_FAILED',
    `Cannot declare a server-named queue for type ${TYPE_MODULE[type] ?? type}`,
  );
}

/** Numbers and bigints compare by value, strings and buffers by text (`rabbit_misc:type_class/1`). */
export function argEqual(a: unknown, b: unknown, deep: (x: unknown, y: unknown) => boolean): boolean {
  if ((typeof a === 'number' || typeof a === 'bigint') && (typeof b === 'number' || typeof b === 'bigint')) {
    return Number(a) === Number(b);
  }
  const ta = argText(a);
  const tb = argText(b);
  if (ta !== undefined || tb !== undefined) return ta === tb;
  return deep(a, b);
}

/**
 * The first argument whose redeclared value differs, among those the queue's type compares
 * (`rabbit_amqqueue:assert_args_equivalence/2`: its `queue_arguments`); other arguments are
 * ignored, as RabbitMQ does. An absent `x-queue-type` means the default type, classic.
 */
export function firstInequivalentArg(
  type: QueueType,
  current: Args,
  requested: Args,
  deep: (x: unknown, y: unknown) => boolean,
): string | undefined {
  for (const key of TYPE_ARGS[type]) {
    if (key === 'x-queue-type') {
      if (queueTypeOf(requested) !== type) return key;
      continue;
    }
    const a = current[key];
    const b = requested[key];
    if (a === undefined && b === undefined) continue;
    if (a === undefined || b === undefined || !argEqual(a, b, deep)) return key;
  }
  return undefined;
}

/** The settings a queue runs with, parsed once from validated arguments. */
export interface QueueSettings {
  readonly type: QueueType;
  /** x-message-ttl in ms. */
  readonly messageTtl: number | undefined;
  /** x-expires in ms: delete after being unused that long. */
  readonly expires: number | undefined;
  readonly maxLength: number | undefined;
  readonly maxLengthBytes: number | undefined;
  readonly overflow: OverflowMode;
  readonly deadLetterExchange: string | undefined;
  readonly deadLetterRoutingKey: string | undefined;
  /** x-max-priority (classic), 0..255. */
  readonly maxPriority: number | undefined;
  readonly singleActiveConsumer: boolean;
  /** x-delivery-limit (quorum). */
  readonly deliveryLimit: number | undefined;
}

function nonNegative(v: unknown): number | undefined {
  const n = argInt(v);
  return n !== undefined && n >= 0 ? n : undefined;
}

/** Parses arguments (already validated, or from a queue built directly in a test). */
export function parseQueueSettings(args: Args): QueueSettings {
  const t = queueTypeOf(args);
  const type: QueueType = t === 'quorum' ? 'quorum' : 'classic';
  let overflow = (argText(args['x-overflow']) ?? 'drop-head') as OverflowMode;
  if (!(OverflowModes as readonly string[]).includes(overflow)) overflow = 'drop-head';
  // rabbit_quorum_queue:overflow/3 logs a warning and falls back to drop-head.
  if (type === 'quorum' && overflow === 'reject-publish-dlx') overflow = 'drop-head';
  const expires = nonNegative(args['x-expires']);
  const prio = nonNegative(args['x-max-priority']);
  return {
    type,
    messageTtl: nonNegative(args['x-message-ttl']),
    expires: expires === 0 ? undefined : expires,
    maxLength: nonNegative(args['x-max-length']),
    maxLengthBytes: nonNegative(args['x-max-length-bytes']),
    overflow,
    deadLetterExchange: argText(args['x-dead-letter-exchange']),
    deadLetterRoutingKey: argText(args['x-dead-letter-routing-key']),
    maxPriority: type === 'classic' && prio !== undefined ? Math.min(prio, MAX_PRIORITY) : undefined,
    singleActiveConsumer: args['x-single-active-consumer'] === true,
    deliveryLimit: type === 'quorum' ? nonNegative(args['x-delivery-limit']) : undefined,
  };
}
