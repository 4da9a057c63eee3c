/**
 * The exchange entity: its declared properties plus the binding index of its kind. Routing
 * itself lives in `broker-core.ts`, which follows exchange-to-exchange bindings and alternate
 * exchanges across entities.
 */
import type { Binding, BindingArgs, ExchangeKind } from '../types.js';
import { createExchangeType, type ExchangeType } from './registry.js';

export interface ExchangeInit {
  readonly vhost: string;
  readonly name: string;
  readonly kind: ExchangeKind;
  readonly durable?: boolean;
  readonly autoDelete?: boolean;
  readonly internal?: boolean;
  readonly args?: Readonly<Record<string, unknown>>;
}

const NO_ARGS: Readonly<Record<string, unknown>> = Object.freeze({});

export class Exchange {
  readonly vhost: string;
  readonly name: string;
  readonly kind: ExchangeKind;
  readonly durable: boolean;
  /** Deleted when its last binding (as source) is removed, as RabbitMQ. */
  readonly autoDelete: boolean;
  /** Clients cannot publish to it directly; only exchange-to-exchange bindings feed it. */
  readonly internal: boolean;
  readonly args: Readonly<Record<string, unknown>>;
  /** RabbitMQ's `alternate-exchange` argument: where unroutable messages go instead. */
  readonly alternateExchange: string | undefined;
  readonly type: ExchangeType;
  /** @internal Routing epoch of the publish that last reached this exchange (loop guard). */
  routeEpoch = 0;

  constructor(init: ExchangeInit) {
    this.vhost = init.vhost;
    this.name = init.name;
    this.kind = init.kind;
    this.durable = init.durable ?? false;
    this.autoDelete = init.autoDelete ?? false;
    this.internal = init.internal ?? false;
    this.args = init.args ?? NO_ARGS;
    const ae = this.args['alternate-exchange'];
    this.alternateExchange = typeof ae === 'string' ? ae : Buffer.isBuffer(ae) ? ae.toString('utf8') : undefined;
    this.type = createExchangeType(init.kind);
  }

  /** The nameless default exchange, to which every queue is implicitly bound by its name. */
  get isDefault(): boolean {
    return this.name === '';
  }

  /** Bindings with this exchange as their source. */
  get bindingCount(): number {
    return this.type.size;
  }
}

export interface BindingInit {
  readonly vhost: string;
  readonly source: string;
  readonly destination: string;
  readonly destinationKind: 'queue' | 'exchange';
  readonly bindingKey: string;
  readonly args?: BindingArgs;
  readonly noDollarWildcard?: boolean;
}

type WithAlone = Binding & { readonly alone?: readonly Binding[] };

/**
 * Builds a frozen binding. It carries, as a hidden (non-enumerable) property, the one-element
 * list `[binding]`, which routing hands to a queue reached through this binding alone: the
 * common case then allocates no `matched` array per message.
 */
export function createBinding(init: BindingInit): Binding {
  const b: Binding = {
    vhost: init.vhost,
    source: init.source,
    destination: init.destination,
    destinationKind: init.destinationKind,
    bindingKey: init.bindingKey,
    args: init.args ?? NO_ARGS,
    noDollarWildcard: init.noDollarWildcard ?? false,
  };
  Object.defineProperty(b, 'alone', { value: Object.freeze([b]), enumerable: false });
  return Object.freeze(b);
}

/** `[b]`, shared when `b` came from `createBinding`. */
export function matchedAlone(b: Binding): readonly Binding[] {
  return (b as WithAlone).alone ?? [b];
}
