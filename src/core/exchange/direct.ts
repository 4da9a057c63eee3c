/** The direct exchange: a binding matches when its key equals the routing key (AMQP 0-9-1 §3.1.3.1). */
import type { Message } from '../message.js';
import type { Binding, BindingArgs } from '../types.js';
import type { ExchangeType } from './registry.js';

export class DirectExchange implements ExchangeType {
  readonly kind = 'direct';
  readonly keyed = true;
  private readonly byKey = new Map<string, Binding[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  route(_msg: Message, visit: (b: Binding) => void, routingKey: string): void {
    const list = this.byKey.get(routingKey);
    if (list === undefined) return;
    for (let i = 0; i < list.length; i++) visit(list[i]!);
  }

  validateBinding(_bindingKey: string, _args: BindingArgs): void {}

  addBinding(b: Binding): void {
    const list = this.byKey.get(b.bindingKey);
    if (list === undefined) this.byKey.set(b.bindingKey, [b]);
    else if (list.includes(b)) return;
    else list.push(b);
    this.count++;
  }

  removeBinding(b: Binding): boolean {
    const list = this.byKey.get(b.bindingKey);
    const at = list?.indexOf(b) ?? -1;
    if (list === undefined || at < 0) return false;
    list.splice(at, 1);
    if (list.length === 0) this.byKey.delete(b.bindingKey);
    this.count--;
    return true;
  }

  *bindings(): IterableIterator<Binding> {
    for (const list of this.byKey.values()) yield* list;
  }
}
