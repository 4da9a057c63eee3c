/**
 * A virtual host: one tenant's exchanges, queues, bindings and retained messages (DESIGN.md
 * "The one model underneath"). Declaration and binding rules, and their error texts, follow
 * RabbitMQ (`rabbit_channel`, `rabbit_exchange`, `rabbit_amqqueue`, `rabbit_binding`), so that
 * AMQP clients see the replies they are used to. Routing lives in `broker-core.ts`.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../util/log.js';
import { CoreError, describe, notFound } from './errors.js';
import { createBinding, Exchange } from './exchange/exchange.js';
import { isExchangeKind } from './exchange/registry.js';
import { Queue, validateQueueArgs } from './queue/queue.js';
import { type RetainedStore, TrieRetainedStore } from './retained.js';
import type { Binding, BindingArgs, ExchangeKind, ExchangeOptions, QueueOptions } from './types.js';

/** Exchanges every vhost has from its creation, all durable (AMQP 0-9-1 §3.1.3, RabbitMQ). */
export const PredeclaredExchanges: ReadonlyArray<readonly [name: string, kind: ExchangeKind]> = [
  ['', 'direct'],
  ['amq.direct', 'direct'],
  ['amq.fanout', 'fanout'],
  ['amq.topic', 'topic'],
  ['amq.headers', 'headers'],
  ['amq.match', 'headers'],
];

const NO_ARGS: BindingArgs = Object.freeze({});
const DEFAULT_EXCHANGE_REFUSED = 'operation not permitted on the default exchange';

export interface BindOptions {
  /** [MQTT-4.7.2-1] for MQTT subscriptions. */
  noDollarWildcard?: boolean;
  /** MQTT re-subscribe: replace the args of the existing (source, destination, key) binding. */
  replaceArgs?: boolean;
}

/** Strict structural equality of argument values, for binding identity and redeclare checks. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k)) return false;
    if (!sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

function show(v: unknown): string {
  if (v === undefined) return 'none';
  if (Buffer.isBuffer(v)) return `'${v.toString('utf8')}'`;
  if (typeof v === 'object' && v !== null) return `'${JSON.stringify(v)}'`;
  return `'${String(v)}'`;
}

function inequivalent(
  kind: 'queue' | 'exchange',
  name: string,
  vhost: string,
  arg: string,
  got: unknown,
  cur: unknown,
) {
  return new CoreError(
    'PRECONDITION_FAILED',
    `inequivalent arg '${arg}' for ${describe(kind, name, vhost)}: received ${show(got)} but current is ${show(cur)}`,
  );
}

/** First differing key of two argument tables, or undefined when they are equal. */
function firstArgDifference(a: Readonly<Record<string, unknown>>, b: Readonly<Record<string, unknown>>) {
  for (const k of Object.keys(a)) if (!sameValue(a[k], b[k])) return k;
  for (const k of Object.keys(b)) if (!Object.hasOwn(a, k) && b[k] !== undefined) return k;
  return undefined;
}

export class VHost {
  readonly name: string;
  readonly exchanges = new Map<string, Exchange>();
  readonly queues = new Map<string, Queue>();
  readonly retained: RetainedStore = new TrieRetainedStore();
  /** Explicit bindings by destination; the source side lives in each exchange's type index. */
  private readonly toQueue = new Map<string, Binding[]>();
  private readonly toExchange = new Map<string, Binding[]>();
  private readonly log: Logger | undefined;
  private readonly onQueueUnused = (q: Queue): void => {
    this.removeQueue(q);
  };

  constructor(name: string, log?: Logger) {
    this.name = name;
    this.log = log;
    for (const [x, kind] of PredeclaredExchanges) {
      this.exchanges.set(x, new Exchange({ vhost: name, name: x, kind, durable: true }));
    }
  }

  // ---- exchanges ---------------------------------------------------------------------------

  declareExchange(name: string, kind: ExchangeKind, opts: ExchangeOptions & { passive?: boolean } = {}): Exchange {
    if (name === '') throw new CoreError('ACCESS_REFUSED', DEFAULT_EXCHANGE_REFUSED);
    const existing = this.exchanges.get(name);
    if (opts.passive) {
      if (existing === undefined) throw notFound('exchange', name, this.name);
      return existing;
    }
    if (!isExchangeKind(kind)) throw new CoreError('COMMAND_INVALID', `unknown exchange type '${kind}'`);
    const durable = opts.durable ?? false;
    const autoDelete = opts.autoDelete ?? false;
    const internal = opts.internal ?? false;
    const args = opts.args ?? NO_ARGS;
    if (existing !== undefined) {
      const x = existing;
      if (x.kind !== kind) throw inequivalent('exchange', name, this.name, 'type', kind, x.kind);
      if (x.durable !== durable) throw inequivalent('exchange', name, this.name, 'durable', durable, x.durable);
      if (x.autoDelete !== autoDelete) {
        throw inequivalent('exchange', name, this.name, 'auto_delete', autoDelete, x.autoDelete);
      }
      if (x.internal !== internal) throw inequivalent('exchange', name, this.name, 'internal', internal, x.internal);
      const diff = firstArgDifference(args, x.args);
      if (diff !== undefined) throw inequivalent('exchange', name, this.name, diff, args[diff], x.args[diff]);
      return x;
    }
    if (name.startsWith('amq.')) {
      throw new CoreError('ACCESS_REFUSED', `exchange name '${name}' contains reserved prefix 'amq.*'`);
    }
    const x = new Exchange({ vhost: this.name, name, kind, durable, autoDelete, internal, args });
    this.exchanges.set(name, x);
    return x;
  }

  /** Idempotent for a missing exchange, as RabbitMQ since 3.2. */
  deleteExchange(name: string, opts: { ifUnused?: boolean } = {}): void {
    if (name === '') throw new CoreError('ACCESS_REFUSED', DEFAULT_EXCHANGE_REFUSED);
    if (name.startsWith('amq.')) {
      throw new CoreError('ACCESS_REFUSED', `deletion of system ${describe('exchange', name, this.name)} not allowed`);
    }
    const x = this.exchanges.get(name);
    if (x === undefined) return;
    if (opts.ifUnused && x.bindingCount > 0) {
      throw new CoreError('PRECONDITION_FAILED', `${describe('exchange', name, this.name)} in use`);
    }
    this.removeExchange(x);
  }

  private removeExchange(x: Exchange): void {
    if (this.exchanges.get(x.name) !== x) return;
    this.exchanges.delete(x.name);
    for (const b of [...x.type.bindings()]) {
      x.type.removeBinding(b);
      this.unindex(b);
    }
    const incoming = this.toExchange.get(x.name);
    if (incoming !== undefined) {
      this.toExchange.delete(x.name);
      for (const b of incoming) this.detachFromSource(b);
    }
    this.log?.debug('exchange deleted', { vhost: this.name, exchange: x.name });
  }

  // ---- queues ------------------------------------------------------------------------------

  declareQueue(name: string, opts: QueueOptions & { passive?: boolean } = {}): Queue {
    const existing = this.queues.get(name);
    if (opts.passive) {
      if (existing === undefined) throw notFound('queue', name, this.name);
      this.checkExclusive(existing, opts.owner, existing.exclusive);
      return existing;
    }
    const durable = opts.durable ?? false;
    const exclusive = opts.exclusive ?? false;
    const autoDelete = opts.autoDelete ?? false;
    const args = opts.args ?? NO_ARGS;
    if (existing !== undefined) {
      const q = existing;
      this.checkExclusive(q, opts.owner, exclusive);
      if (q.durable !== durable) throw inequivalent('queue', name, this.name, 'durable', durable, q.durable);
      if (q.autoDelete !== autoDelete) {
        throw inequivalent('queue', name, this.name, 'auto_delete', autoDelete, q.autoDelete);
      }
      const diff = firstArgDifference(args, q.args);
      if (diff !== undefined) throw inequivalent('queue', name, this.name, diff, args[diff], q.args[diff]);
      return q;
    }
    if (name === '') {
      // RabbitMQ `rabbit_guid:binary(gen_secure(), "amq.gen")`: 16 random bytes, base64url.
      do name = `amq.gen-${randomBytes(16).toString('base64url')}`;
      while (this.queues.has(name));
    } else if (name.startsWith('amq.')) {
      throw new CoreError('ACCESS_REFUSED', `queue name '${name}' contains reserved prefix 'amq.*'`);
    }
    validateQueueArgs(args, name, this.name);
    const q = new Queue({
      vhost: this.name,
      name,
      durable,
      exclusive,
      autoDelete,
      owner: opts.owner,
      args,
      onUnused: this.onQueueUnused,
    });
    this.queues.set(name, q);
    return q;
  }

  /**
   * RabbitMQ `check_exclusive_access(Q, Owner, strict)`: an exclusive queue belongs to its owner,
   * and redeclaring with a different `exclusive` flag is refused the same way (405).
   */
  private checkExclusive(q: Queue, owner: string | undefined, exclusive: boolean): void {
    if (q.exclusive === exclusive && (!q.exclusive || q.owner === owner)) return;
    throw new CoreError(
      'RESOURCE_LOCKED',
      `cannot obtain exclusive access to locked ${describe('queue', q.name, this.name)}. It could be originally ` +
        'declared on another connection or the exclusive property value does not match that of the original declaration.',
    );
  }

  /** Returns the number of ready messages dropped; 0 for a missing queue (idempotent, as RabbitMQ). */
  deleteQueue(name: string, opts: { ifUnused?: boolean; ifEmpty?: boolean } = {}): number {
    const q = this.queues.get(name);
    if (q === undefined) return 0;
    if (opts.ifUnused && q.consumerCount > 0) {
      throw new CoreError('PRECONDITION_FAILED', `${describe('queue', name, this.name)} in use`);
    }
    if (opts.ifEmpty && q.messageCount > 0) {
      throw new CoreError('PRECONDITION_FAILED', `${describe('queue', name, this.name)} not empty`);
    }
    return this.removeQueue(q);
  }

  /** Deletes the exclusive queues of a connection or session that went away. */
  deleteQueuesOwnedBy(owner: string): number {
    let n = 0;
    for (const q of [...this.queues.values()]) {
      if (q.exclusive && q.owner === owner) {
        this.removeQueue(q);
        n++;
      }
    }
    return n;
  }

  /** Unlinks first, then lets the queue cancel its consumers, whose callbacks may re-enter. */
  private removeQueue(q: Queue): number {
    if (this.queues.get(q.name) !== q) return 0;
    this.queues.delete(q.name);
    const bindings = this.toQueue.get(q.name);
    if (bindings !== undefined) {
      this.toQueue.delete(q.name);
      for (const b of bindings) this.detachFromSource(b);
    }
    this.log?.debug('queue deleted', { vhost: this.name, queue: q.name });
    return q.delete();
  }

  // ---- bindings ----------------------------------------------------------------------------

  bind(
    destinationKind: 'queue' | 'exchange',
    destination: string,
    source: string,
    bindingKey: string,
    args: BindingArgs = NO_ARGS,
    opts: BindOptions = {},
  ): Binding {
    const src = this.bindingSource(source, destinationKind, destination);
    src.type.validateBinding(bindingKey, args);
    const index = destinationKind === 'queue' ? this.toQueue : this.toExchange;
    let list = index.get(destination);
    if (list !== undefined) {
      for (let i = 0; i < list.length; i++) {
        const b = list[i]!;
        if (b.source !== source || b.bindingKey !== bindingKey) continue;
        if (!opts.replaceArgs) {
          if (sameValue(b.args, args)) return b;
          continue;
        }
        if (sameValue(b.args, args) && b.noDollarWildcard === (opts.noDollarWildcard ?? false)) return b;
        const next = this.newBinding(destinationKind, destination, source, bindingKey, args, opts);
        src.type.removeBinding(b);
        src.type.addBinding(next);
        list[i] = next;
        return next;
      }
    }
    const b = this.newBinding(destinationKind, destination, source, bindingKey, args, opts);
    src.type.addBinding(b);
    if (list === undefined) index.set(destination, (list = []));
    list.push(b);
    return b;
  }

  /**
   * Removes the binding(s) with this source, destination and key; with `args` undefined whatever
   * their args (MQTT unsubscribe), else only the one with equal args. False when none existed.
   */
  unbind(
    destinationKind: 'queue' | 'exchange',
    destination: string,
    source: string,
    bindingKey: string,
    args?: BindingArgs,
  ): boolean {
    this.bindingSource(source, destinationKind, destination);
    const index = destinationKind === 'queue' ? this.toQueue : this.toExchange;
    const list = index.get(destination);
    if (list === undefined) return false;
    const removed: Binding[] = [];
    const kept = list.filter((b) => {
      const hit = b.source === source && b.bindingKey === bindingKey && (args === undefined || sameValue(b.args, args));
      if (hit) removed.push(b);
      return !hit;
    });
    if (removed.length === 0) return false;
    if (kept.length === 0) index.delete(destination);
    else index.set(destination, kept);
    for (const b of removed) this.detachFromSource(b);
    return true;
  }

  /** Explicit bindings to a queue (the implicit default-exchange binding is not listed). */
  bindingsOf(queue: string): Binding[] {
    return [...(this.toQueue.get(queue) ?? [])];
  }

  /** Explicit bindings to an exchange (exchange-to-exchange). */
  bindingsToExchange(exchange: string): Binding[] {
    return [...(this.toExchange.get(exchange) ?? [])];
  }

  /** Checks both ends of a (un)binding and returns the source exchange. */
  private bindingSource(source: string, destinationKind: 'queue' | 'exchange', destination: string): Exchange {
    if (source === '' || (destinationKind === 'exchange' && destination === '')) {
      throw new CoreError('ACCESS_REFUSED', DEFAULT_EXCHANGE_REFUSED);
    }
    const src = this.exchanges.get(source);
    if (src === undefined) throw notFound('exchange', source, this.name);
    if (destinationKind === 'queue' ? !this.queues.has(destination) : !this.exchanges.has(destination)) {
      throw notFound(destinationKind, destination, this.name);
    }
    return src;
  }

  private newBinding(
    destinationKind: 'queue' | 'exchange',
    destination: string,
    source: string,
    bindingKey: string,
    args: BindingArgs,
    opts: BindOptions,
  ): Binding {
    return createBinding({
      vhost: this.name,
      source,
      destination,
      destinationKind,
      bindingKey,
      args,
      noDollarWildcard: opts.noDollarWildcard ?? false,
    });
  }

  /** Removes a binding from its source's index; an auto-delete source left unbound goes too. */
  private detachFromSource(b: Binding): void {
    const src = this.exchanges.get(b.source);
    if (src === undefined || !src.type.removeBinding(b)) return;
    if (src.autoDelete && src.bindingCount === 0) this.removeExchange(src);
  }

  /** Removes a binding from its destination's index. */
  private unindex(b: Binding): void {
    const index = b.destinationKind === 'queue' ? this.toQueue : this.toExchange;
    const list = index.get(b.destination);
    if (list === undefined) return;
    const at = list.indexOf(b);
    if (at < 0) return;
    list.splice(at, 1);
    if (list.length === 0) index.delete(b.destination);
  }
}
