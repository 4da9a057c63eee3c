/** The fanout exchange: every binding matches, whatever its key (AMQP 0-9-1 §3.1.3.2). */
import type { Message } from '../message.js';
import type { Binding, BindingArgs } from '../types.js';
import type { ExchangeType } from './registry.js';

export class FanoutExchange implements ExchangeType {
  readonly kind = 'fanout';
  readonly keyed = false;
  private readonly all = new Set<Binding>();

  get size(): number {
    return this.all.size;
  }

  route(_msg: Message, visit: (b: Binding) => void): void {
    for (const b of this.all) visit(b);
  }

  validateBinding(_bindingKey: string, _args: BindingArgs): void {}

  addBinding(b: Binding): void {
    this.all.add(b);
  }

  removeBinding(b: Binding): boolean {
    return this.all.delete(b);
  }

  bindings(): Iterable<Binding> {
    return this.all.values();
  }
}
