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
 */
import { createLogger, type Logger } from '../util/log.js';
import type { AccessControl } from './access.js';
import { CoreError, describe, notFound } from './errors.js';
import type { Exchange } from './exchange/exchange.js';
import { matchedAlone } from './exchange/exchange.js';
import type { Message } from './message.js';
import type { Queue } from './queue/queue.js';
import type { RetainedStore } from './retained.js';
import type { Binding, BindingArgs, ExchangeKind, ExchangeOptions, QueueOptions, RouteResult } from './types.js';
import { VHost } from './vhost.js';

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
} from './message.js';
export type { Queue } from './queue/queue.js';
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
const RESULTS: readonly RouteResult[] = Array.from({ length: 64 }, (_, i) => Object.freeze({ queues: i }));
function result(n: number): RouteResult {
  return n < RESULTS.length ? RESULTS[n]! : { queues: n };
}

export class BrokerCore {
  readonly stats = { published: 0, routed: 0, unroutable: 0, dropped: 0 };
  /** Topic authorization consulted by every adapter; undefined allows everything. */
  access: AccessControl | undefined;
  private readonly vhosts = new Map<string, VHost>();
  private readonly log: Logger;
  private readonly scratch: RouteScratch[] = [];
  private depth = 0;
  private epoch = 0;
  // Collection state read by `visit`; valid only while one exchange type's `route` runs.
  private cur: RouteScratch | undefined;
  private curVHost: VHost | undefined;
  private curEpoch = 0;
  private curMatched = false;
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
      vh = new VHost(name, this.log);
      this.vhosts.set(name, vh);
      this.log.info('vhost created', { vhost: name });
    }
    return vh;
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

  /** Returns the number of ready messages dropped; removes the bindings; cancels the consumers. */
  deleteQueue(vhost: string, name: string, opts?: { ifUnused?: boolean; ifEmpty?: boolean }): number {
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
   */
  bindQueue(
    vhost: string,
    queue: string,
    exchange: string,
    bindingKey: string,
    args?: BindingArgs,
    opts?: { noDollarWildcard?: boolean; replaceArgs?: boolean },
  ): Binding {
    return this.requireVHost(vhost).bind('queue', queue, exchange, bindingKey, args, opts);
  }

  /** With `args` undefined, removes the binding(s) with that key whatever their args (MQTT unsubscribe). */
  unbindQueue(vhost: string, queue: string, exchange: string, bindingKey: string, args?: BindingArgs): boolean {
    return this.requireVHost(vhost).unbind('queue', queue, exchange, bindingKey, args);
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

  /** Routes `msg` through `msg.exchange` in `msg.vhost`; returns how many queues took it. */
  publish(msg: Message): RouteResult {
    const vh = this.requireVHost(msg.vhost);
    const x = vh.exchanges.get(msg.exchange);
    if (x === undefined) throw notFound('exchange', msg.exchange, msg.vhost);
    if (x.internal) {
      throw new CoreError('ACCESS_REFUSED', `cannot publish to internal ${describe('exchange', x.name, vh.name)}`);
    }
    this.stats.published++;
    if (x.isDefault) return this.publishDefault(vh, msg);

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
        ex.type.route(msg, this.visit);
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
        return result(0);
      }
      this.stats.routed++;
      let took = 0;
      for (let i = 0; i < n; i++) {
        const q = s.queues[i]!;
        const matched = s.more[i] ?? matchedAlone(s.first[i]!);
        s.queues[i] = undefined;
        s.first[i] = undefined;
        s.more[i] = undefined;
        if (q.offer(msg, matched)) took++;
        else this.stats.dropped++;
      }
      return result(took);
    } finally {
      s.work.length = 0;
      this.depth--;
    }
  }

  /** The default exchange: every queue is bound by its own name (AMQP 0-9-1 §3.1.3.1). */
  private publishDefault(vh: VHost, msg: Message): RouteResult {
    const q = vh.queues.get(msg.routingKey);
    if (q === undefined) {
      this.stats.unroutable++;
      return result(0);
    }
    this.stats.routed++;
    if (q.offer(msg, matchedAlone(q.defaultBinding))) return result(1);
    this.stats.dropped++;
    return result(0);
  }

  private requireVHost(name: string): VHost {
    const vh = this.vhosts.get(name);
    if (vh === undefined) throw new CoreError('NOT_ALLOWED', `vhost ${name} not found`);
    return vh;
  }
}
