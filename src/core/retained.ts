/**
 * Retained messages, per vhost, keyed by routing key (DESIGN.md "MQTT on the model": the MQTT
 * adapter has already turned `a/b` into `a.b`). A new subscription asks for every retained
 * message its binding key covers [MQTT-3.3.1-9]; the store answers by walking a word trie of the
 * retained keys, following literal words and fanning out only on `*` and `#`, so a literal
 * filter costs one path however many topics are retained (RabbitMQ's ETS/DETS retained store
 * scans; Mosquitto walks a topic tree, as here).
 *
 * The store is protocol-neutral: clearing on an empty MQTT payload [MQTT-3.3.1-10] is the
 * adapter's decision, expressed as `set(key, null)`. Behind an interface (STYLE.md habit 8) so
 * that a persistent or clustered store can replace the in-memory one.
 */
import { isExpired, type Message } from './message.js';
import { KeyTrie } from './router/trie.js';

export interface RetainedStore {
  /** Stores `msg` as the retained message for `routingKey`; `null` clears it. */
  set(routingKey: string, msg: Message | null): void;
  /** The retained message for exactly this key, unless expired (an expired one is removed). */
  get(routingKey: string): Message | undefined;
  /**
   * Every retained message whose key `bindingKey` matches with topic-exchange semantics (`*`,
   * `#`, and with `noDollarWildcard` the [MQTT-4.7.2-1] '$' rule). Expired ones are skipped and
   * removed [MQTT-3.3.2-5].
   */
  match(bindingKey: string, noDollarWildcard: boolean): Message[];
  readonly size: number;
  clear(): void;
  entries(): IterableIterator<[string, Message]>;
}

export class TrieRetainedStore implements RetainedStore {
  private readonly trie = new KeyTrie<Message>();

  get size(): number {
    return this.trie.size;
  }

  set(routingKey: string, msg: Message | null): void {
    if (msg === null) this.trie.delete(routingKey);
    else this.trie.set(routingKey, msg);
  }

  get(routingKey: string): Message | undefined {
    const msg = this.trie.get(routingKey);
    if (msg !== undefined && isExpired(msg, Date.now())) {
      this.trie.delete(routingKey);
      return undefined;
    }
    return msg;
  }

  match(bindingKey: string, noDollarWildcard: boolean): Message[] {
    const out: Message[] = [];
    let expired: string[] | undefined;
    const now = Date.now();
    this.trie.match(bindingKey, noDollarWildcard, (key, msg) => {
      if (isExpired(msg, now)) (expired ??= []).push(key);
      else out.push(msg);
    });
    if (expired !== undefined) for (const key of expired) this.trie.delete(key);
    return out;
  }

  clear(): void {
    this.trie.clear();
  }

  entries(): IterableIterator<[string, Message]> {
    return this.trie.entries();
  }
}
