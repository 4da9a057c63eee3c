/**
 * The headers exchange (AMQP 0-9-1 §3.1.3.4), with RabbitMQ's semantics
 * (`rabbit_exchange_type_headers.erl`):
 *
 * - `x-match` is `all` (the default when absent), `any`, `all-with-x` or `any-with-x`; any
 *   other value is refused at bind time with 406.
 * - Binding arguments whose key starts with `x-` take no part in `all`/`any` matching; with the
 *   `-with-x` modes they do (only `x-match` itself is always skipped).
 * - An argument without a value (AMQP field type `V`, here `null` or `undefined`) matches on the
 *   presence of the header, whatever its value.
 * - Values compare like Erlang's `==` over decoded field values: `1` equals `1.0` and `1n`,
 *   a string equals a buffer with the same bytes; the AMQP field type is not compared.
 * - With no arguments left to compare, `all` matches every message and `any` none.
 *
 * One deliberate extension: message headers are an ordered list and may repeat a key (MQTT 5
 * user properties); an argument is satisfied when any header with its key satisfies it. AMQP
 * field tables have unique keys, so for them this is RabbitMQ's behaviour exactly.
 */
import { CoreError } from '../errors.js';
import type { HeaderValue, Message } from '../message.js';
import type { Binding, BindingArgs } from '../types.js';
import type { ExchangeType } from './registry.js';

export const XMatchModes = ['all', 'any', 'all-with-x', 'any-with-x'] as const;
export type XMatchMode = (typeof XMatchModes)[number];

interface Spec {
  readonly any: boolean;
  readonly keys: readonly string[];
  readonly values: readonly unknown[];
  /** True where the argument has no value: match on presence only. */
  readonly presence: readonly boolean[];
}

function xMatchText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return undefined;
}

/** Reads `x-match`; anything unrecognised is `all`, as RabbitMQ's legacy `parse_x_match/1`. */
export function parseXMatch(args: BindingArgs): XMatchMode {
  const text = xMatchText(args['x-match']);
  return text !== undefined && (XMatchModes as readonly string[]).includes(text) ? (text as XMatchMode) : 'all';
}

export function compileSpec(args: BindingArgs): Spec {
  const mode = parseXMatch(args);
  const withX = mode === 'all-with-x' || mode === 'any-with-x';
  const keys: string[] = [];
  const values: unknown[] = [];
  const presence: boolean[] = [];
  for (const k of Object.keys(args)) {
    if (k === 'x-match') continue;
    if (!withX && k.startsWith('x-')) continue;
    const v = args[k];
    keys.push(k);
    values.push(v);
    presence.push(v === undefined || v === null);
  }
  return { any: mode === 'any' || mode === 'any-with-x', keys, values, presence };
}

const NO_HEADERS: readonly (readonly [string, HeaderValue])[] = [];

export function headersMatch(spec: Spec, headers: readonly (readonly [string, HeaderValue])[]): boolean {
  const { keys, values, presence } = spec;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    let ok = false;
    for (let h = 0; h < headers.length; h++) {
      const pair = headers[h]!;
      if (pair[0] !== key) continue;
      if (presence[i] || headerValueEquals(values[i], pair[1])) {
        ok = true;
        break;
      }
    }
    if (spec.any) {
      if (ok) return true;
    } else if (!ok) return false;
  }
  return !spec.any;
}

function asBytes(v: unknown): Buffer | undefined {
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  return undefined;
}

/** Erlang `==` over decoded AMQP field values (see the file comment). */
export function headerValueEquals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const ta = typeof a;
  const tb = typeof b;
  if ((ta === 'number' || ta === 'bigint') && (tb === 'number' || tb === 'bigint')) {
    if (ta === 'number' && tb === 'number') return false; // `===` above already compared them
    const n = (ta === 'number' ? a : b) as number;
    const big = (ta === 'bigint' ? a : b) as bigint;
    return Number.isInteger(n) && BigInt(n) === big;
  }
  if ((ta === 'string' || Buffer.isBuffer(a)) && (tb === 'string' || Buffer.isBuffer(b))) {
    if (ta === 'string' && tb === 'string') return false;
    return asBytes(a)!.equals(asBytes(b)!);
  }
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!headerValueEquals(a[i], b[i])) return false;
    return true;
  }
  if (a !== null && b !== null && ta === 'object' && tb === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    if (Buffer.isBuffer(a) || Buffer.isBuffer(b) || a instanceof Date || b instanceof Date) return false;
    const ka = Object.keys(a as object);
    const kb = Object.keys(b as object);
    if (ka.length !== kb.length) return false;
    for (const k of ka) {
      if (!Object.hasOwn(b as object, k)) return false;
      if (!headerValueEquals((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
    }
    return true;
  }
  return false;
}

function describeValue(v: unknown): string {
  if (typeof v === 'bigint') return `${v}`;
  if (Buffer.isBuffer(v)) return `<<"${v.toString('utf8')}">>`;
  return JSON.stringify(v) ?? String(v);
}

export class HeadersExchange implements ExchangeType {
  readonly kind = 'headers';
  readonly keyed = false;
  private readonly specs = new Map<Binding, Spec>();

  get size(): number {
    return this.specs.size;
  }

  route(msg: Message, visit: (b: Binding) => void): void {
    const headers = msg.properties.headers ?? NO_HEADERS;
    for (const [b, spec] of this.specs) if (headersMatch(spec, headers)) visit(b);
  }

  /** The texts are RabbitMQ's `validate_binding/2` ones. */
  validateBinding(_bindingKey: string, args: BindingArgs): void {
    if (!Object.hasOwn(args, 'x-match')) return;
    const v = args['x-match'];
    const text = xMatchText(v);
    if (text === undefined) {
      const type = v === null || v === undefined ? 'void' : Array.isArray(v) ? 'array' : typeof v;
      throw new CoreError(
        'PRECONDITION_FAILED',
        `Invalid x-match field type ${type} (value ${describeValue(v)}); expected longstr`,
      );
    }
    if (!(XMatchModes as readonly string[]).includes(text)) {
      throw new CoreError(
        'PRECONDITION_FAILED',
        `Invalid x-match field value <<"${text}">>; expected all, any, all-with-x, or any-with-x`,
      );
    }
  }

  addBinding(b: Binding): void {
    if (!this.specs.has(b)) this.specs.set(b, compileSpec(b.args));
  }

  removeBinding(b: Binding): boolean {
    return this.specs.delete(b);
  }

  bindings(): Iterable<Binding> {
    return this.specs.keys();
  }
}
