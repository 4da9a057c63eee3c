/**
 * Exchange types as small pluggable kinds kept in a registry keyed by kind (STYLE.md habit 8;
 * RabbitMQ `rabbit_exchange_type.erl` and `rabbit_registry`). Each exchange owns one instance,
 * which indexes that exchange's bindings the way its matching needs.
 */
import { CoreError } from '../errors.js';
import type { Message } from '../message.js';
import type { Binding, BindingArgs, ExchangeKind } from '../types.js';
import { DirectExchange } from './direct.js';
import { FanoutExchange } from './fanout.js';
import { HeadersExchange } from './headers.js';
import { TopicExchange } from './topic.js';

export interface ExchangeType {
  readonly kind: ExchangeKind;
  /** Whether matching depends on the routing key (direct, topic); fanout and headers ignore it. */
  readonly keyed: boolean;
  /** Bindings with this exchange as their source. */
  readonly size: number;
  /**
   * Calls `visit` once per binding the message matches with `routingKey` (the message's own, or
   * one of its sender-selected CC/BCC keys). No allocation per call is expected of
   * implementations beyond what matching needs; `visit` only collects and never re-enters.
   */
  route(msg: Message, visit: (b: Binding) => void, routingKey: string): void;
  /** Throws `CoreError` PRECONDITION_FAILED (406) for arguments this kind rejects. */
  validateBinding(bindingKey: string, args: BindingArgs): void;
  /** By identity; adding the same object twice is a no-op. */
  addBinding(b: Binding): void;
  /** By identity; returns false when the binding was not there. */
  removeBinding(b: Binding): boolean;
  bindings(): Iterable<Binding>;
}

export const exchangeTypes: Readonly<Record<ExchangeKind, () => ExchangeType>> = {
  direct: () => new DirectExchange(),
  fanout: () => new FanoutExchange(),
  topic: () => new TopicExchange(),
  headers: () => new HeadersExchange(),
};

export function isExchangeKind(kind: string): kind is ExchangeKind {
  return Object.hasOwn(exchangeTypes, kind);
}

/** A fresh binding index for `kind`; COMMAND_INVALID (503) for an unknown kind, as RabbitMQ. */
export function createExchangeType(kind: string): ExchangeType {
  if (!isExchangeKind(kind)) throw new CoreError('COMMAND_INVALID', `unknown exchange type '${kind}'`);
  return exchangeTypes[kind]();
}
