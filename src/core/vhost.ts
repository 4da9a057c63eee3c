/**
 * A virtual host: one tenant's exchanges, queues, bindings and retained messages (DESIGN.md
 * "The one model underneath"). Declaration and binding rules, and their error texts, follow
 * RabbitMQ (`rabbit_channel`, `rabbit_exchange`, `rabbit_amqqueue`, `rabbit_binding`), so that
 * AMQP clients see the replies they are used to. Routing lives in `broker-core.ts`.
 */
import { randomBytes } from 'node:crypto';
import type { BindingRecord, Store, StoredValue } from '../store/store.js';
import type { Logger } from '../util/log.js';
import { CoreError, describe, notFound } from './errors.js';
import { createBinding, Exchange } from './exchange/exchange.js';
import { isExchangeKind } from './exchange/registry.js';
import type { Message } from './message.js';
import { QueueLog, toRecord } from './persist.js';
import {
  amqpTypeName,
  argEqual,
  argText,
  checkServerNamed,
  firstInequivalentArg,
  queueTypeOf,
  validateQueueProperties,
} from './queue/args.js';
import type { DeadLetterReason } from './queue/dlx.js';
import { Queue, type QueueType, validateQueueArgs } from './queue/queue.js';
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
  /** The connection binding: an exclusive destination queue must be its own (405 otherwise). */
  owner?: string;
}

/** What a vhost asks of the broker around it. */
export interface VHostHooks {
  /** Republishes a message that died in `queue` to that queue's dead-letter exchange. */
  deadLetter?: (queue: Queue, message: Message, reason: DeadLetterReason) => void;
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

/**
 * `rabbit_exchange_type:assert_args_equivalence/2`: "The only arg we care about is
 * alternate-exchange"; other exchange arguments may differ on redeclare.
 */
function exchangeArgsDiffer(a: Readonly<Record<string, unknown>>, b: Readonly<Record<string, unknown>>): boolean {
  const x = a['alternate-exchange'];
  const y = b['alternate-exchange'];
  if (x === undefined || y === undefined) return x !== y;
  return !argEqual(x, y, sameValue);
}

export class VHost {
  readonly name: string;
  readonly exchanges = new Map<string, Exchange>();
  readonly queues = new Map<string, Queue>();
  readonly retained: RetainedStore;
  /**
   * Where durable definitions, persistent messages and retained messages are written; undefined
   * for an in-memory broker. Set by BrokerCore once recovery has replayed the stored state, so
   * replaying writes nothing.
   */
  store: Store | undefined = undefined;
  /** The store durable queues write their messages to, from creation on (recovery included). */
  queueStore: Store | undefined = undefined;
  /**
   * Direct reply-to consumers by pseudo-queue name (`amq.rabbitmq.reply-to.<token>`), filled by
   * `BrokerCore.registerReplyTo`.
   */
  readonly replyTo = new Map<string, (message: Message) => boolean>();
  /** Explicit bindings by destination; the source side lives in each exchange's type index. */
  private readonly toQueue = new Map<string, Binding[]>();
  private readonly toExchange = new Map<string, Binding[]>();
  private readonly log: Logger | undefined;
  private readonly deadLetter: VHostHooks['deadLetter'];
  private readonly onQueueUnused = (q: Queue): void => {
    this.removeQueue(q);
  };

  constructor(name: string, log?: Logger, hooks: VHostHooks = {}) {
    this.name = name;
    this.log = log;
    this.deadLetter = hooks.deadLetter;
    this.retained = new PersistentRetained(new TrieRetainedStore(), this);
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
      if (exchangeArgsDiffer(args, x.args)) {
        const ae = 'alternate-exchange';
        throw inequivalent('exchange', name, this.name, ae, args[ae], x.args[ae]);
      }
      return x;
    }
    if (name.startsWith('amq.')) {
      throw new CoreError('ACCESS_REFUSED', `exchange name '${name}' contains reserved prefix 'amq.*'`);
    }
    const ae = args['alternate-exchange'];
    if (ae !== undefined && argText(ae) === undefined) {
      // rabbit_channel exchange.declare, `rabbit_misc:r_arg/4`.
      throw new CoreError(
        'PRECONDITION_FAILED',
        `invalid type '${amqpTypeName(ae)}' for arg 'alternate-exchange' in ${describe('exchange', name, this.name)}`,
      );
    }
    const x = new Exchange({ vhost: this.name, name, kind, durable, autoDelete, internal, args });
    this.exchanges.set(name, x);
    if (durable) {
      this.store?.putExchange({
        vhost: this.name,
        name,
        kind,
        autoDelete,
        internal,
        args: args as Record<string, StoredValue>,
      });
    }
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
    if (x.durable) this.store?.removeExchange(this.name, x.name);
    for (const b of [...x.type.bindings()]) {
      x.type.removeBinding(b);
      this.unindex(b);
      this.forgetBinding(b);
    }
    const incoming = this.toExchange.get(x.name);
    if (incoming !== undefined) {
      this.toExchange.delete(x.name);
      for (const b of incoming) this.detachFromSource(b);
    }
    this.log?.debug('exchange deleted', { vhost: this.name, exchange: x.name });
  }

  // ---- queues ------------------------------------------------------------------------------

  /**
   * queue.declare as `rabbit_channel` and `rabbit_amqqueue:declare/7` do it: server-named queues
   * are `amq.gen-*` (classic only), other `amq.*` names are 403, a redeclare must be equivalent
   * (flags, then the arguments the queue's type compares) and counts as use for x-expires, and a
   * new queue's arguments and type constraints are checked with RabbitMQ's 406 texts.
   */
  declareQueue(name: string, opts: QueueOptions & { passive?: boolean; restoring?: boolean } = {}): Queue {
    const existing = this.queues.get(name);
    if (opts.passive) {
      if (existing === undefined) throw notFound('queue', name, this.name);
      this.checkExclusive(existing, opts.owner, existing.exclusive);
      existing.touch();
      return existing;
    }
    const exclusive = opts.exclusive ?? false;
    // rabbit_channel: `Durable = DurableDeclare andalso not ExclusiveDeclare`.
    const durable = (opts.durable ?? false) && !exclusive;
    const autoDelete = opts.autoDelete ?? false;
    const args = opts.args ?? NO_ARGS;
    if (name === '') {
      checkServerNamed(args);
      // RabbitMQ `rabbit_guid:binary(gen_secure(), "amq.gen")`: 16 random bytes, base64url.
      do name = `amq.gen-${randomBytes(16).toString('base64url')}`;
      while (this.queues.has(name));
    } else if (name.startsWith('amq.') && !opts.restoring) {
      // `check_name/2` runs before the lookup, so even an existing amq.gen-* is refused.
      throw new CoreError('ACCESS_REFUSED', `queue name '${name}' contains reserved prefix 'amq.*'`);
    } else if (existing !== undefined) {
      const q = existing;
      this.checkExclusive(q, opts.owner, exclusive);
      if (q.durable !== durable) throw inequivalent('queue', name, this.name, 'durable', durable, q.durable);
      if (q.autoDelete !== autoDelete) {
        throw inequivalent('queue', name, this.name, 'auto_delete', autoDelete, q.autoDelete);
      }
      const diff = firstInequivalentArg(q.type, q.args, args, sameValue);
      if (diff !== undefined) throw inequivalent('queue', name, this.name, diff, args[diff], q.args[diff]);
      q.touch();
      return q;
    }
    validateQueueArgs(args, name, this.name);
    validateQueueProperties(queueTypeOf(args) as QueueType, name, this.name, { durable, exclusive, autoDelete });
    const q = new Queue({
      vhost: this.name,
      name,
      durable,
      exclusive,
      autoDelete,
      owner: opts.owner,
      args,
      onUnused: this.onQueueUnused,
      deadLetter: this.deadLetter,
      ...(durable && this.queueStore !== undefined && { log: new QueueLog(this.queueStore, this.name, name) }),
    });
    this.queues.set(name, q);
    if (durable)
      this.store?.putQueue({ vhost: this.name, name, autoDelete, args: args as Record<string, StoredValue> });
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

  /**
   * Returns the number of ready messages dropped; 0 for a missing queue (idempotent, as RabbitMQ).
   * With `owner`, an exclusive queue of another connection is 405; if-empty is checked before
   * if-unused (`rabbit_amqqueue_process` `{delete, IfUnused, IfEmpty, _}`).
   */
  deleteQueue(name: string, opts: { ifUnused?: boolean; ifEmpty?: boolean; owner?: string } = {}): number {
    const q = this.queues.get(name);
    if (q === undefined) return 0;
    if (opts.owner !== undefined) q.assertExclusiveAccess(opts.owner);
    if (opts.ifEmpty && q.messageCount > 0) {
      throw new CoreError('PRECONDITION_FAILED', `${describe('queue', name, this.name)} not empty`);
    }
    if (opts.ifUnused && q.consumerCount > 0) {
      throw new CoreError('PRECONDITION_FAILED', `${describe('queue', name, this.name)} in use`);
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
    if (q.durable) this.store?.removeQueue(this.name, q.name);
    const bindings = this.toQueue.get(q.name);
    if (bindings !== undefined) {
      this.toQueue.delete(q.name);
      for (const b of bindings) {
        this.detachFromSource(b);
        if (q.durable) this.forgetBinding(b);
      }
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
    const src = this.bindingSource(source, destinationKind, destination, opts.owner);
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
        this.forgetBinding(b);
        this.persistBinding(src, next);
        return next;
      }
    }
    const b = this.newBinding(destinationKind, destination, source, bindingKey, args, opts);
    src.type.addBinding(b);
    if (list === undefined) index.set(destination, (list = []));
    list.push(b);
    this.persistBinding(src, b);
    return b;
  }

  /**
   * Removes the binding(s) with this source, destination and key; with `args` undefined whatever
   * their args (MQTT unsubscribe), else only the one with equal args. False when none existed,
   * which AMQP answers with unbind-ok all the same (`rabbit_binding:remove/3`); a missing queue or
   * exchange is 404.
   */
  unbind(
    destinationKind: 'queue' | 'exchange',
    destination: string,
    source: string,
    bindingKey: string,
    args?: BindingArgs,
    opts: { owner?: string } = {},
  ): boolean {
    this.bindingSource(source, destinationKind, destination, opts.owner);
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
    for (const b of removed) {
      this.detachFromSource(b);
      this.forgetBinding(b);
    }
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

  /**
   * Checks both ends of a (un)binding and returns the source exchange: the default exchange is
   * 403, a missing source then destination 404 (`rabbit_binding`), an exclusive queue of another
   * connection 405 when `owner` is given.
   */
  private bindingSource(
    source: string,
    destinationKind: 'queue' | 'exchange',
    destination: string,
    owner: string | undefined,
  ): Exchange {
    if (source === '' || (destinationKind === 'exchange' && destination === '')) {
      throw new CoreError('ACCESS_REFUSED', DEFAULT_EXCHANGE_REFUSED);
    }
    const src = this.exchanges.get(source);
    if (src === undefined) throw notFound('exchange', source, this.name);
    if (destinationKind === 'queue') {
      const q = this.queues.get(destination);
      if (q === undefined) throw notFound('queue', destination, this.name);
      if (owner !== undefined) q.assertExclusiveAccess(owner);
    } else if (!this.exchanges.has(destination)) {
      throw notFound('exchange', destination, this.name);
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

  /** A binding is durable when both its ends are (RabbitMQ); only those are written. */
  private persistBinding(src: Exchange, b: Binding): void {
    if (this.store === undefined || !src.durable) return;
    const dest = b.destinationKind === 'queue' ? this.queues.get(b.destination) : this.exchanges.get(b.destination);
    if (dest === undefined || !dest.durable) return;
    this.store.putBinding(bindingRecord(b));
  }

  private forgetBinding(b: Binding): void {
    this.store?.removeBinding(bindingRecord(b));
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

function bindingRecord(b: Binding): BindingRecord {
  return {
    vhost: b.vhost,
    source: b.source,
    destination: b.destination,
    destinationKind: b.destinationKind,
    bindingKey: b.bindingKey,
    args: b.args as Record<string, StoredValue>,
    noDollarWildcard: b.noDollarWildcard,
  };
}

/** Retained messages, written through to the vhost's store. */
class PersistentRetained implements RetainedStore {
  constructor(
    private readonly inner: RetainedStore,
    private readonly vh: VHost,
  ) {}

  set(routingKey: string, msg: Message | null): void {
    const had = msg === null ? this.inner.get(routingKey) !== undefined : true;
    this.inner.set(routingKey, msg);
    const store = this.vh.store;
    if (store === undefined || !had) return;
    if (msg === null) store.removeRetained(this.vh.name, routingKey);
    else store.putRetained(this.vh.name, routingKey, toRecord(msg));
  }

  get(routingKey: string): Message | undefined {
    return this.inner.get(routingKey);
  }

  match(bindingKey: string, noDollarWildcard: boolean): Message[] {
    return this.inner.match(bindingKey, noDollarWildcard);
  }

  clear(): void {
    this.inner.clear();
  }

  entries(): IterableIterator<[string, Message]> {
    return this.inner.entries();
  }

  get size(): number {
    return (this.inner as { size?: number }).size ?? 0;
  }
}
