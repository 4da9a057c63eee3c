/**
 * The topic exchange (AMQP 0-9-1 §3.1.3.3): binding keys are patterns over '.'-separated words,
 * matched by a trie so the cost follows the routing key's length, not the number of bindings.
 */
import type { Message } from '../message.js';
import { TopicTrie } from '../router/trie.js';
import type { Binding, BindingArgs } from '../types.js';
import type { ExchangeType } from './registry.js';

export class TopicExchange implements ExchangeType {
  readonly kind = 'topic';
  readonly keyed = true;
  private readonly trie = new TopicTrie<Binding>();

  get size(): number {
    return this.trie.size;
  }

  route(_msg: Message, visit: (b: Binding) => void, routingKey: string): void {
    this.trie.match(routingKey, visit);
  }

  /** RabbitMQ accepts any binding key on a topic exchange. */
  validateBinding(_bindingKey: string, _args: BindingArgs): void {}

  addBinding(b: Binding): void {
    this.trie.add(b);
  }

  removeBinding(b: Binding): boolean {
    return this.trie.remove(b);
  }

  bindings(): Iterable<Binding> {
    return this.trie;
  }
}
