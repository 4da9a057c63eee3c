/**
 * The one facade protocol adapters import (STYLE.md habit 1, DESIGN.md "Layers"): vhosts,
 * declarations, bindings, publishing and retained messages over RabbitMQ's AMQP 0-9-1 model.
 *
 * Routing a publish (RabbitMQ `rabbit_exchange:route/2`):
 * 1. The exchange's type visits every binding the message matches.
 * 2. Exchange-to-exchange bindings add their destination to a work list, each exchange at most
 *    once per publish (so cycles end); an exchange whose type matched nothing adds its
 *    `alternate-exchange` instead.
 * 3. Each queue reached gets the message once, with every binding that reached it: an MQTT
 *    client subscribed to `a/+` and `a/#` gets one copy, and the adapter takes the max QoS and
 *    all subscription identifiers from the list [MQTT-3.3.4-2, MQTT-3.3.4-3].
 *
 * The per-publish state lives in scratch arrays held here and reused, one set per nesting level
 * (a consumer's `deliver` may publish again, synchronously); queues and exchanges carry an epoch
 * mark instead of being put in a Set. The visitor is one bound function, not a closure per
 * message. A message reached through a single binding gets that binding's shared `[binding]`.
 * Results come from shared frozen objects; only a publish that several queues rejected beyond
 * the cached range allocates one.
 *
 * Dead-lettered messages (queue/dlx.ts) are routed the same way from the queue's dead-letter
 * exchange, skipping queues that would close a dead-letter cycle. Direct reply-to pseudo-queues
 * (`amq.rabbitmq.reply-to.*`) are looked up only when the default exchange finds no queue.
 */
import { randomBytes } from 'node:crypto';
import type { RecoveredDefinitions, Store, StoredValue } from '../store/store.js';
import { createLogger, type Logger } from '../util/log.js';
import type { AccessControl } from './access.js';
import { CoreError, describe, notFound } from './errors.js';
import type { Exchange } from './exchange/exchange.js';
import { matchedAlone } from './exchange/exchange.js';
import type { HeaderValue, Message } from './message.js';
import { fromRecord } from './persist.js';
import { ccKeys, type DeadLetterReason, deadLetterMessage, isDeathCycle, xDeath } from './queue/dlx.js';
import { OfferResults, type Queue } from './queue/queue.js';
import type { RetainedStore } from './retained.js';
import type { Binding, BindingArgs, ExchangeKind, ExchangeOptions, QueueOptions, RouteResult } from './types.js';
import { VHost } from './vhost.js';

export type { StoredValue } from '../store/store.js';
export type { AccessControl, AccessSubject } from './access.js';
export { CoreError, isHardError, type ReplyCode, ReplyCodes, type ReplyName } from './errors.js';
export type { Exchange } from './exchange/exchange.js';
export {
  type Annotations,
  createMessage,
  deriveMessage,
  type Headers,
  type HeaderValue,
  isExpired,
  type Message,
  type MessageInit,
  type MessageProperties,
  RAW_PROPERTIES,
} from './message.js';
export type { ConsumeOptions, DeadLetterReason, OverflowMode, Queue, QueueType } from './queue/queue.js';
export type { RetainedStore } from './retained.js';
export {
  type Binding,
  type BindingArgs,
  type ConsumerSink,
  type Delivery,
  type ExchangeKind,
  ExchangeKinds,
  type ExchangeOptions,
  type QueueAdmission,
  type QueueOptions,
  type RouteResult,
} from './types.js';
export type { VHost } from './vhost.js';

export const DEFAULT_VHOST = '/';

export interface RecoveryCounts {
  exchanges: number;
  queues: number;
  bindings: number;
  retained: number;
  messages: number;
}
/** Routing-key prefix of direct reply-to pseudo-queues (https://www.rabbitmq.com/docs/direct-reply-to). */
export const REPLY_TO_PREFIX = 'amq.rabbitmq.reply-to.';

/** A registered direct reply-to consumer. */
export interface ReplyToHandle {
  /** The pseudo-queue name, `amq.rabbitmq.reply-to.<token>`, to put in `reply_to`. */
  readonly name: string;
  /** Unregisters it; later publishes to the name are unroutable. */
  close(): void;
}

/** Reused per-publish state for one nesting level of `publish`. */
class RouteScratch {
  /** Queues hit, in first-hit order; `first[i]` is the first binding, `more[i]` all of them once 2+. */
  readonly queues: (Queue | undefined)[] = [];
  readonly first: (Binding | undefined)[] = [];
  readonly more: (Binding[] | undefined)[] = [];
  count = 0;
  /** Exchanges to route through, in order; grows with e2e bindings and alternate exchanges. */
  readonly work: Exchange[] = [];
}

// Shared results for small counts: a publish allocates no RouteResult in the common case.
const RESULTS: readonly RouteResult[] = Array.from({ length: 64 }, (_, i) => Object.freeze({ queues: i, rejected: 0 }));
const REJECTED_RESULTS: readonly (readonly RouteResult[])[] = Array.from({ length: 8 }, (_, q) =>
  Array.from({ length: 8 }, (_, r) => Object.freeze({ queues: q, rejected: r })),
);
function result(n: number, rejected: number): RouteResult {
  if (rejected === 0) return n < RESULTS.length ? RESULTS[n]! : { queues: n, rejected: 0 };
  return n < 8 && rejected < 8 ? REJECTED_RESULTS[n]![rejected]! : { queues: n, rejected };
}
const { taken: TAKEN, rejected: REJECTED } = OfferResults;
/** Dead-letter cycles already logged (RabbitMQ logs each cycle once); bounded. */
const MAX_LOGGED_CYCLES = 1000;

export class BrokerCore {
  readonly stats = { published: 0, routed: 0, unroutable: 0, dropped: 0 };
  /** Topic authorization consulted by every adapter; undefined allows everything. */
  access: AccessControl | undefined;
  private readonly vhosts = new Map<string, VHost>();
  private readonly log: Logger;
  /** Durable storage; undefined for an in-memory broker. Attached by `recover`. */
  private store: Store | undefined;
  /** Adapter-owned records read back at start-up, by namespace (MQTT sessions). */
  private recoveredRecords: RecoveredDefinitions['records'] = new Map();
  private readonly scratch: RouteScratch[] = [];
  private depth = 0;
  private epoch = 0;
  // Collection state read by `visit`; valid only while one exchange type's `route` runs.
  private cur: RouteScratch | undefined;
  private curVHost: VHost | undefined;
  private curEpoch = 0;
  private curMatched = false;
  /** Set by `resolve`: routing collects (queue, bindings) pairs instead of offering. */
  private collecting: Array<readonly [Queue, readonly Binding[]]> | undefined;
  /** Set while routing with sender-selected keys: a binding may be visited more than once. */
  private curDedup = false;
  private readonly loggedCycles = new Set<string>();
  /** VHost hook: republishes a message that died in `queue` (rabbit_dead_letter:publish/5). */
  private readonly deadLetterHook = (queue: Queue, msg: Message, reason: DeadLetterReason): void => {
    const vh = this.vhosts.get(queue.vhost);
    const xName = queue.deadLetterExchange;
    if (vh === undefined || xName === undefined) return;
    const x = vh.exchanges.get(xName);
    if (x === undefined) {
      this.log.debug('dead-letter exchange missing, message dropped', {
        vhost: vh.name,
        queue: queue.name,
        exchange: xName,
        reason,
      });
      return;
    }
    const dlrk = queue.deadLetterRoutingKey;
    const dl = deadLetterMessage(msg, reason, queue.name, xName, dlrk, Date.now());
    // rabbit_dead_letter:detect_cycles/3: rejections never form a cycle.
    const deaths = reason === 'rejected' ? undefined : xDeath(dl.properties.headers);
    // Without x-dead-letter-routing-key, all the message's routing keys (CC included) are used.
    const cc = dlrk === undefined ? ccKeys(msg) : undefined;
    try {
      if (x.isDefault) this.publishDefault(vh, dl, deaths);
      else this.route(vh, x, dl, deaths, cc);
    } catch (err) {
      this.log.error('dead-lettering failed', { vhost: vh.name, queue: queue.name, error: err });
    }
  };
  private readonly visit = (b: Binding): void => {
    this.curMatched = true;
    const s = this.cur!;
    if (b.destinationKind === 'exchange') {
      const x = this.curVHost!.exchanges.get(b.destination);
      if (x !== undefined && x.routeEpoch !== this.curEpoch) {
        x.routeEpoch = this.curEpoch;
        s.work.push(x);
      }
      return;
    }
    const q = this.curVHost!.queues.get(b.destination);
    if (q === undefined) return;
    if (q.routeEpoch !== this.curEpoch) {
      q.routeEpoch = this.curEpoch;
      const i = s.count++;
      q.routeSlot = i;
      s.queues[i] = q;
      s.first[i] = b;
      s.more[i] = undefined;
      return;
    }
    const i = q.routeSlot;
    const more = s.more[i];
    if (this.curDedup && (s.first[i] === b || more?.includes(b))) return;
    if (more === undefined) s.more[i] = [s.first[i]!, b];
    else more.push(b);
  };

  constructor(opts: { logger?: Logger } = {}) {
    this.log = opts.logger ?? createLogger({ level: 'silent' });
    this.ensureVHost(DEFAULT_VHOST);
  }

  vhost(name: string): VHost | undefined {
    return this.vhosts.get(name);
  }

  /** The vhost, created with its predeclared exchanges if missing. */
  ensureVHost(name: string): VHost {
    let vh = this.vhosts.get(name);
    if (vh === undefined) {
      vh = new VHost(name, this.log, { deadLetter: this.deadLetterHook });
      this.vhosts.set(name, vh);
      if (this.store !== undefined) {
        vh.store = vh.queueStore = this.store;
        this.store.putVhost(name);
      }
      this.log.info('vhost created', { vhost: name });
    }
    return vh;
  }

  /**
   * Start-up: replays what the store holds (vhosts, durable exchanges and queues, bindings,
   * retained messages, then each durable queue's messages), then attaches the store so that
   * every later change is written. Replaying writes nothing. Call before any client connects.
   */
  recover(store: Store, defs: RecoveredDefinitions): RecoveryCounts {
    const counts = { exchanges: 0, queues: 0, bindings: 0, retained: 0, messages: 0 };
    const names = new Set([DEFAULT_VHOST, ...defs.vhosts]);
    for (const x of defs.exchanges) names.add(x.vhost);
    for (const q of defs.queues) names.add(q.vhost);
    for (const name of names) this.ensureVHost(name).queueStore = store;
    for (const x of defs.exchanges) {
      this.vhosts.get(x.vhost)!.declareExchange(x.name, x.kind as ExchangeKind, {
        durable: true,
        autoDelete: x.autoDelete,
        internal: x.internal,
        args: x.args,
      });
      counts.exchanges++;
    }
    for (const q of defs.queues) {
      this.vhosts
        .get(q.vhost)!
        .declareQueue(q.name, { durable: true, autoDelete: q.autoDelete, args: q.args, restoring: true });
      counts.queues++;
    }
    for (const b of defs.bindings) {
      const vh = this.vhosts.get(b.vhost);
      try {
        vh?.bind(b.destinationKind, b.destination, b.source, b.bindingKey, b.args, {
          noDollarWildcard: b.noDollarWildcard,
        });
        counts.bindings++;
      } catch (err) {
        this.log.warn('stored binding not restored', { vhost: b.vhost, source: b.source, error: String(err) });
      }
    }
    for (const r of defs.retained) {
      this.ensureVHost(r.vhost).retained.set(r.routingKey, fromRecord(r.message));
      counts.retained++;
    }
    for (const vh of this.vhosts.values()) {
      for (const q of vh.queues.values()) {
        if (q.durable) counts.messages += this.restoreQueue(vh, q);
      }
    }
    this.store = store;
    this.recoveredRecords = defs.records;
    for (const vh of this.vhosts.values()) vh.store = vh.queueStore = store;
    return counts;
  }

  private restoreQueue(vh: VHost, q: Queue): number {
    const resolve = (routes: unknown): Binding[] => {
      if (!Array.isArray(routes)) return [q.defaultBinding];
      const bindings = vh.bindingsOf(q.name);
      const out: Binding[] = [];
      for (const r of routes) {
        if (!Array.isArray(r)) continue;
        const b = r[0] === '' ? q.defaultBinding : bindings.find((x) => x.source === r[0] && x.bindingKey === r[1]);
        if (b !== undefined) out.push(b);
      }
      return out.length > 0 ? out : [q.defaultBinding];
    };
    const n = q.restoreFromLog(resolve);
    if (n >= 100_000) this.log.info('queue recovered', { vhost: vh.name, queue: q.name, messages: n });
    return n;
  }

  /**
   * Calls `cb` once everything written so far is durable (fsync'd): publisher confirms and MQTT
   * PUBACK/PUBREC wait for it. Without a store, at once. Callbacks run in registration order.
   */
  whenDurable(cb: (err?: Error) => void): void {
    if (this.store === undefined) cb();
    else this.store.whenDurable(cb);
  }

  /** The broker is stopping: later changes are not written (the store is about to close). */
  detachStore(): void {
    this.store = undefined;
    for (const vh of this.vhosts.values()) vh.store = vh.queueStore = undefined;
  }

  get durable(): boolean {
    return this.store !== undefined;
  }

  /** Writes (or with `value` undefined removes) an adapter-owned record; no-op without a store. */
  putRecord(namespace: string, key: string, value: StoredValue | undefined): void {
    this.store?.putRecord(namespace, key, value);
  }

  /** The records of a namespace as read at start-up (later writes are not reflected). */
  recoveredRecordsOf(namespace: string): ReadonlyMap<string, StoredValue> {
    return this.recoveredRecords.get(namespace) ?? new Map();
  }

  vhostNames(): string[] {
    return [...this.vhosts.keys()];
  }

  declareExchange(
    vhost: string,
    name: string,
    kind: ExchangeKind,
    opts?: ExchangeOptions & { passive?: boolean },
  ): Exchange {
    return this.requireVHost(vhost).declareExchange(name, kind, opts);
  }

  deleteExchange(vhost: string, name: string, opts?: { ifUnused?: boolean }): void {
    this.requireVHost(vhost).deleteExchange(name, opts);
  }

  declareQueue(vhost: string, name: string, opts?: QueueOptions & { passive?: boolean }): Queue {
    return this.requireVHost(vhost).declareQueue(name, opts);
  }

  getQueue(vhost: string, name: string): Queue | undefined {
    return this.vhosts.get(vhost)?.queues.get(name);
  }

  /**
   * Returns the number of ready messages dropped; removes the bindings; cancels the consumers.
   * With `owner`, an exclusive queue of another connection is 405.
   */
  deleteQueue(vhost: string, name: string, opts?: { ifUnused?: boolean; ifEmpty?: boolean; owner?: string }): number {
    return this.requireVHost(vhost).deleteQueue(name, opts);
  }

  /** Deletes every exclusive queue whose owner is `owner` (a closed connection), in every vhost. */
  deleteQueuesOwnedBy(owner: string): number {
    let n = 0;
    for (const vh of this.vhosts.values()) n += vh.deleteQueuesOwnedBy(owner);
    return n;
  }

  /**
   * Binding the same (exchange, queue, key, args) again returns the existing binding. With
   * `replaceArgs`, an existing (exchange, queue, key) binding gets the new args in place of a
   * second binding (MQTT re-subscribe, [MQTT-3.8.4-3]); the returned object is the new binding.
   * With `owner`, binding an exclusive queue of another connection is 405.
   */
  bindQueue(
    vhost: string,
    queue: string,
    exchange: string,
    bindingKey: string,
    args?: BindingArgs,
    opts?: { noDollarWildcard?: boolean; replaceArgs?: boolean; owner?: string },
  ): Binding {
    return this.requireVHost(vhost).bind('queue', queue, exchange, bindingKey, args, opts);
  }

  /**
   * With `args` undefined, removes the binding(s) with that key whatever their args (MQTT
   * unsubscribe). False when there was no such binding (AMQP still answers unbind-ok).
   */
  unbindQueue(
    vhost: string,
    queue: string,
    exchange: string,
    bindingKey: string,
    args?: BindingArgs,
    opts?: { owner?: string },
  ): boolean {
    return this.requireVHost(vhost).unbind('queue', queue, exchange, bindingKey, args, opts);
  }

  /** AMQP exchange.bind: messages routed by `source` with a matching key flow on to `destination`. */
  bindExchange(vhost: string, destination: string, source: string, bindingKey: string, args?: BindingArgs): Binding {
    return this.requireVHost(vhost).bind('exchange', destination, source, bindingKey, args);
  }

  unbindExchange(vhost: string, destination: string, source: string, bindingKey: string, args?: BindingArgs): boolean {
    return this.requireVHost(vhost).unbind('exchange', destination, source, bindingKey, args);
  }

  bindingsOf(vhost: string, queue: string): Binding[] {
    return this.vhosts.get(vhost)?.bindingsOf(queue) ?? [];
  }

  retained(vhost: string): RetainedStore {
    return this.requireVHost(vhost).retained;
  }

  /**
   * Direct reply-to: registers `deliver` under a fresh unguessable pseudo-queue name. A publish to
   * the default exchange with that routing key calls `deliver` (false = the consumer cannot take
   * it: dropped, 0 queues); once closed the name is unroutable.
   */
  registerReplyTo(vhost: string, deliver: (msg: Message) => boolean): ReplyToHandle {
    const vh = this.requireVHost(vhost);
    let name: string;
    do name = REPLY_TO_PREFIX + randomBytes(18).toString('base64url');
    while (vh.replyTo.has(name));
    vh.replyTo.set(name, deliver);
    return {
      name,
      close: () => {
        if (vh.replyTo.get(name) === deliver) vh.replyTo.delete(name);
      },
    };
  }

  /** Whether a direct reply-to name is live (queue.declare of it answers 0 messages, 1 consumer). */
  replyToExists(vhost: string, name: string): boolean {
    return this.vhosts.get(vhost)?.replyTo.has(name) ?? false;
  }

  /**
   * Routes `msg` through `msg.exchange` in `msg.vhost`; returns how many queues took it and how
   * many rejected it (x-overflow reject-publish). `ccKeys` are sender-selected extra routing keys
   * (the AMQP `CC` and `BCC` headers, https://www.rabbitmq.com/docs/sender-selected): the message
   * is routed with its own key and each of these, and each queue still gets it once. The adapter
   * removes `BCC` from the message before calling.
   */
  publish(msg: Message, ccKeys?: readonly string[]): RouteResult {
    const vh = this.requireVHost(msg.vhost);
    const x = vh.exchanges.get(msg.exchange);
    if (x === undefined) throw notFound('exchange', msg.exchange, msg.vhost);
    if (x.internal) {
      throw new CoreError('ACCESS_REFUSED', `cannot publish to internal ${describe('exchange', x.name, vh.name)}`);
    }
    this.stats.published++;
    if (ccKeys !== undefined && ccKeys.length > 0) {
      if (x.isDefault) return this.publishDefaultCc(vh, msg, ccKeys);
      return this.route(vh, x, msg, undefined, ccKeys);
    }
    if (x.isDefault) return this.publishDefault(vh, msg, undefined);
    return this.route(vh, x, msg, undefined, undefined);
  }

  /**
   * Routes now and delivers later (an AMQP transaction: RabbitMQ routes a transactional publish
   * when it arrives and delivers to those queues at commit, whatever happens to the exchange in
   * between). Same checks and errors as `publish`; nothing is offered.
   */
  resolve(msg: Message, ccKeys?: readonly string[]): ReadonlyArray<readonly [Queue, readonly Binding[]]> {
    const targets: Array<readonly [Queue, readonly Binding[]]> = [];
    this.collecting = targets;
    try {
      this.publish(msg, ccKeys);
    } finally {
      this.collecting = undefined;
    }
    return targets;
  }

  /** Offers `msg` to queues `resolve` found; a queue deleted since is skipped. */
  deliverResolved(msg: Message, targets: ReadonlyArray<readonly [Queue, readonly Binding[]]>): RouteResult {
    let took = 0;
    let rejected = 0;
    for (const [q, matched] of targets) {
      if (q.isDeleted) continue;
      const r = q.offerRouted(msg, matched);
      if (r === TAKEN) took++;
      else {
        this.stats.dropped++;
        if (r === REJECTED) rejected++;
      }
    }
    return result(took, rejected);
  }

  /**
   * Routes through `x` and offers to each queue reached. `deaths` is set when dead-lettering for
   * a reason other than `rejected`: queues that would close a cycle are skipped.
   */
  private route(
    vh: VHost,
    x: Exchange,
    msg: Message,
    deaths: readonly HeaderValue[] | undefined,
    ccKeys: readonly string[] | undefined,
  ): RouteResult {
    const s = (this.scratch[this.depth] ??= new RouteScratch());
    this.depth++;
    try {
      const epoch = ++this.epoch;
      s.count = 0;
      x.routeEpoch = epoch;
      s.work.push(x);
      this.cur = s;
      this.curVHost = vh;
      this.curEpoch = epoch;
      for (let w = 0; w < s.work.length; w++) {
        const ex = s.work[w]!;
        this.curMatched = false;
        ex.type.route(msg, this.visit, msg.routingKey);
        if (ccKeys !== undefined && ex.type.keyed) {
          this.curDedup = true;
          for (const key of ccKeys) ex.type.route(msg, this.visit, key);
          this.curDedup = false;
        }
        if (!this.curMatched && ex.alternateExchange !== undefined) {
          const ae = vh.exchanges.get(ex.alternateExchange);
          if (ae !== undefined && ae.routeEpoch !== epoch && !ae.isDefault) {
            ae.routeEpoch = epoch;
            s.work.push(ae);
          }
        }
      }
      s.work.length = 0;
      this.cur = undefined;
      this.curVHost = undefined;

      const n = s.count;
      if (n === 0) {
        this.stats.unroutable++;
        return RESULTS[0]!;
      }
      this.stats.routed++;
      let took = 0;
      let rejected = 0;
      for (let i = 0; i < n; i++) {
        const q = s.queues[i]!;
        const matched = s.more[i] ?? matchedAlone(s.first[i]!);
        s.queues[i] = undefined;
        s.first[i] = undefined;
        s.more[i] = undefined;
        if (deaths !== undefined && this.isCycle(q, deaths)) continue;
        if (this.collecting !== undefined) {
          this.collecting.push([q, matched]);
          took++;
          continue;
        }
        const r = q.offerRouted(msg, matched);
        if (r === TAKEN) took++;
        else {
          this.stats.dropped++;
          if (r === REJECTED) rejected++;
        }
      }
      return result(took, rejected);
    } finally {
      s.work.length = 0;
      this.curDedup = false;
      this.depth--;
    }
  }

  /** The default exchange: every queue is bound by its own name (AMQP 0-9-1 §3.1.3.1). */
  private publishDefault(vh: VHost, msg: Message, deaths: readonly HeaderValue[] | undefined): RouteResult {
    const q = vh.queues.get(msg.routingKey);
    if (q === undefined) {
      if (msg.routingKey.startsWith(REPLY_TO_PREFIX)) return this.publishReplyTo(vh, msg);
      this.stats.unroutable++;
      return RESULTS[0]!;
    }
    if (deaths !== undefined && this.isCycle(q, deaths)) return RESULTS[0]!;
    this.stats.routed++;
    if (this.collecting !== undefined) {
      this.collecting.push([q, matchedAlone(q.defaultBinding)]);
      return RESULTS[1]!;
    }
    const r = q.offerRouted(msg, matchedAlone(q.defaultBinding));
    if (r === TAKEN) return RESULTS[1]!;
    this.stats.dropped++;
    return r === REJECTED ? result(0, 1) : RESULTS[0]!;
  }

  /** The default exchange with sender-selected keys: each names a queue, each queue once. */
  private publishDefaultCc(vh: VHost, msg: Message, ccKeys: readonly string[]): RouteResult {
    let took = 0;
    let rejected = 0;
    let hit = 0;
    const epoch = ++this.epoch;
    for (let k = -1; k < ccKeys.length; k++) {
      const key = k < 0 ? msg.routingKey : ccKeys[k]!;
      const q = vh.queues.get(key);
      if (q === undefined || q.routeEpoch === epoch) continue;
      q.routeEpoch = epoch;
      hit++;
      if (this.collecting !== undefined) {
        this.collecting.push([q, matchedAlone(q.defaultBinding)]);
        took++;
        continue;
      }
      const r = q.offerRouted(msg, matchedAlone(q.defaultBinding));
      if (r === TAKEN) took++;
      else {
        this.stats.dropped++;
        if (r === REJECTED) rejected++;
      }
    }
    if (hit === 0) this.stats.unroutable++;
    else this.stats.routed++;
    return result(took, rejected);
  }

  private publishReplyTo(vh: VHost, msg: Message): RouteResult {
    const deliver = vh.replyTo.get(msg.routingKey);
    if (deliver === undefined) {
      this.stats.unroutable++;
      return RESULTS[0]!;
    }
    this.stats.routed++;
    if (deliver(msg)) return RESULTS[1]!;
    this.stats.dropped++;
    return RESULTS[0]!;
  }

  /** A dead-letter cycle without a rejection: the message is not delivered to `q` (logged once). */
  private isCycle(q: Queue, deaths: readonly HeaderValue[]): boolean {
    if (!isDeathCycle(q.name, deaths)) return false;
    const key = `${q.vhost}\0${q.name}`;
    if (!this.loggedCycles.has(key) && this.loggedCycles.size < MAX_LOGGED_CYCLES) {
      this.loggedCycles.add(key);
      this.log.warn('dead-letter cycle without a rejection: message dropped (logged once per queue)', {
        vhost: q.vhost,
        queue: q.name,
      });
    }
    return true;
  }

  private requireVHost(name: string): VHost {
    const vh = this.vhosts.get(name);
    if (vh === undefined) throw new CoreError('NOT_ALLOWED', `vhost ${name} not found`);
    return vh;
  }
}
