/**
 * Dead-lettering as RabbitMQ does it (`rabbit_dead_letter.erl`, `mc:record_death/4`, the
 * `x-death` header of `mc_amqpl`; https://www.rabbitmq.com/docs/dlx): the message is republished,
 * body shared, to the queue's dead-letter exchange with the dead-letter routing key (or its own),
 * its `expiration` removed and its death history recorded in the headers:
 *
 * - `x-death`: an array of tables, most recent first, one per (queue, reason):
 *   `{count, reason, queue, time, exchange, routing-keys, original-expiration?}`. A second death
 *   for the same (queue, reason) increments `count` and moves the entry to the front.
 * - `x-first-death-reason/queue/exchange`, set once; `x-last-death-reason/queue/exchange`,
 *   updated on every death (RabbitMQ 3.13).
 *
 * Cycle rule (`rabbit_dead_letter:detect_cycles/3`): a message dead-lettered for a reason other
 * than `rejected` is not delivered to a queue it already died in unless some death since then was
 * a rejection, so that a TTL loop without consumers ends.
 */
import { deriveMessage, type Headers, type HeaderValue, type Message, type MessageProperties } from '../message.js';

/** `rabbit_dead_letter:reason()`. */
export const DeadLetterReasons = ['rejected', 'expired', 'maxlen', 'delivery_limit'] as const;
export type DeadLetterReason = (typeof DeadLetterReasons)[number];

type Table = { readonly [key: string]: HeaderValue };

function text(v: HeaderValue | undefined): string | undefined {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return undefined;
}

function isTable(v: HeaderValue | undefined): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v) && !(v instanceof Date);
}

function header(headers: Headers | undefined, key: string): HeaderValue | undefined {
  if (headers === undefined) return undefined;
  for (const [k, v] of headers) if (k === key) return v;
  return undefined;
}

/** The `x-death` entries of a message's headers, most recent first; [] when none. */
export function xDeath(headers: Headers | undefined): readonly HeaderValue[] {
  const v = header(headers, 'x-death');
  return Array.isArray(v) ? v : [];
}

/**
 * The sender-selected `CC` keys a message carries (`BCC` never reaches a queue): RabbitMQ's
 * `mc:routing_keys/1` is the routing key followed by these.
 */
export function ccKeys(msg: Message): readonly string[] | undefined {
  const cc = header(msg.properties.headers, 'CC');
  if (cc === undefined) return undefined;
  const list = Array.isArray(cc) ? cc : [cc];
  const out: string[] = [];
  for (const v of list) {
    const s = text(v);
    if (s !== undefined) out.push(s);
  }
  return out.length > 0 ? out : undefined;
}

/** Replaces the first `key` in place, or appends it: headers stay ordered pairs. */
function setHeader(out: [string, HeaderValue][], key: string, value: HeaderValue): void {
  for (const pair of out) {
    if (pair[0] === key) {
      pair[1] = value;
      return;
    }
  }
  out.push([key, value]);
}

/** The headers after one more death of the message in `queue` for `reason`. */
export function recordDeath(msg: Message, reason: DeadLetterReason, queue: string, now: number): Headers {
  const old = msg.properties.headers;
  const deaths = xDeath(old);
  let entry: Table | undefined;
  const rest: HeaderValue[] = [];
  for (const d of deaths) {
    if (entry === undefined && isTable(d) && text(d.queue) === queue && text(d.reason) === reason) entry = d;
    else rest.push(d);
  }
  if (entry !== undefined) {
    const c = entry.count;
    const count = typeof c === 'bigint' ? Number(c) + 1 : typeof c === 'number' ? c + 1 : 1;
    entry = { ...entry, count };
  } else {
    const fresh: Record<string, HeaderValue> = {
      count: 1,
      reason,
      queue,
      // AMQP timestamps have one-second resolution.
      time: new Date(Math.floor(now / 1000) * 1000),
      exchange: msg.exchange,
      'routing-keys': [msg.routingKey, ...(ccKeys(msg) ?? [])],
    };
    if (msg.properties.expiration !== undefined) fresh['original-expiration'] = msg.properties.expiration;
    entry = fresh;
  }
  const out: [string, HeaderValue][] = old === undefined ? [] : old.map(([k, v]) => [k, v]);
  setHeader(out, 'x-death', [entry, ...rest]);
  if (header(old, 'x-first-death-reason') === undefined) {
    setHeader(out, 'x-first-death-reason', reason);
    setHeader(out, 'x-first-death-queue', queue);
    setHeader(out, 'x-first-death-exchange', msg.exchange);
  }
  setHeader(out, 'x-last-death-reason', reason);
  setHeader(out, 'x-last-death-queue', queue);
  setHeader(out, 'x-last-death-exchange', msg.exchange);
  return out;
}

/**
 * The message to republish: routed through `exchange` with `routingKey` (the queue's
 * x-dead-letter-routing-key, else the message's own), no expiration, the death recorded.
 */
export function deadLetterMessage(
  msg: Message,
  reason: DeadLetterReason,
  queue: string,
  exchange: string,
  routingKey: string | undefined,
  now: number,
): Message {
  const headers = recordDeath(msg, reason, queue, now);
  const { expiration: _dropped, ...kept } = msg.properties;
  const properties: MessageProperties = { ...kept, headers };
  return deriveMessage(msg, {
    exchange,
    routingKey: routingKey ?? msg.routingKey,
    properties,
    expiresAt: undefined,
    createdAt: now,
  });
}

/**
 * `rabbit_dead_letter` cycle detection: true when `target` appears in `deaths` (most recent
 * first) and no death up to and including that one was a rejection.
 */
export function isDeathCycle(target: string, deaths: readonly HeaderValue[]): boolean {
  for (const d of deaths) {
    // Something a client put there: the cycle is not fully automatic.
    if (!isTable(d)) return false;
    if (text(d.reason) === 'rejected') return false;
    if (text(d.queue) === target) return true;
  }
  return false;
}
