/**
 * Word tries for AMQP topic matching, in both directions:
 *
 * - `TopicTrie` stores binding keys (patterns) and matches a routing key against all of them:
 *   the topic exchange (RabbitMQ `rabbit_db_topic_exchange`).
 * - `KeyTrie` stores literal routing keys and matches one pattern against all of them: the
 *   retained-message store, where a new MQTT subscription asks which retained topics it covers.
 *
 * Words are split on '.'; `*` is exactly one word, `#` is zero or more words; wildcards are whole
 * words only (`a#` is a literal). Empty words count: `a..b` has three words, `a.` has two. The
 * empty key has zero words (as RabbitMQ's `split_topic_key/1`), so `#` matches it and `*` does not.
 *
 * MQTT [MQTT-4.7.2-1]: a filter whose first level is a wildcard must not match a topic name that
 * starts with '$'. Entries flagged `noDollarWildcard` get that rule; AMQP bindings do not.
 *
 * Both walks use an explicit stack, not recursion: an MQTT topic may have thousands of levels
 * (65535 bytes of '/'), which would overflow the call stack.
 */

/** What a `TopicTrie` stores: a core `Binding`, or anything else with a pattern. */
export interface TrieEntry {
  readonly bindingKey: string;
  readonly noDollarWildcard: boolean;
}

const DOLLAR = 36; // '$'
const NO_WORDS: readonly string[] = Object.freeze([]);

/** Splits a routing or binding key into words; the empty key has none. */
export function splitKey(key: string): readonly string[] {
  return key === '' ? NO_WORDS : key.split('.');
}

/**
 * Pattern words with runs of `#` collapsed: `a.#.#.b` matches exactly what `a.#.b` matches, and
 * collapsing bounds the fan-out of a match (each `#` forks once per remaining word).
 */
export function patternWords(pattern: string): readonly string[] {
  const words = splitKey(pattern);
  let run = false;
  for (let i = 0; i < words.length; i++) {
    if (words[i] === '#') {
      if (run) return words.filter((w, j) => w !== '#' || j === 0 || words[j - 1] !== '#');
      run = true;
    } else run = false;
  }
  return words;
}

function startsWithDollar(word: string): boolean {
  return word.charCodeAt(0) === DOLLAR;
}

class PatternNode<T> {
  /** Literal words only; `*` and `#` are always wildcards in a pattern and live below. */
  children: Map<string, PatternNode<T>> | undefined = undefined;
  star: PatternNode<T> | undefined = undefined;
  hash: PatternNode<T> | undefined = undefined;
  entries: T[] | undefined = undefined;
  /** Match epoch in which this node's entries were last visited (dedupe across `#` paths). */
  epoch = 0;
  constructor(
    readonly parent: PatternNode<T> | undefined,
    readonly word: string,
  ) {}

  isEmpty(): boolean {
    return (
      this.entries === undefined && this.children === undefined && this.star === undefined && this.hash === undefined
    );
  }
}

export class TopicTrie<T extends TrieEntry = TrieEntry> implements Iterable<T> {
  private readonly root = new PatternNode<T>(undefined, '');
  private readonly all = new Set<T>();
  private epoch = 0;
  private nodes = 1;
  // Reused DFS stack (parallel arrays), so a match allocates nothing but the key's words.
  private readonly stackNode: (PatternNode<T> | undefined)[] = [];
  private readonly stackIdx: number[] = [];
  private readonly stackBlocked: boolean[] = [];

  get size(): number {
    return this.all.size;
  }

  /** Nodes in the trie including the root; for tests of pruning. */
  get nodeCount(): number {
    return this.nodes;
  }

  has(entry: T): boolean {
    return this.all.has(entry);
  }

  [Symbol.iterator](): Iterator<T> {
    return this.all.values();
  }

  /** Adds by identity; returns false if this very entry is already present. */
  add(entry: T): boolean {
    if (this.all.has(entry)) return false;
    const words = patternWords(entry.bindingKey);
    let node = this.root;
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      let next: PatternNode<T> | undefined;
      if (w === '*') next = node.star ??= this.newNode(node, w);
      else if (w === '#') next = node.hash ??= this.newNode(node, w);
      else {
        node.children ??= new Map();
        next = node.children.get(w);
        if (next === undefined) {
          next = this.newNode(node, w);
          node.children.set(w, next);
        }
      }
      node = next;
    }
    (node.entries ??= []).push(entry);
    this.all.add(entry);
    return true;
  }

  /** Removes by identity and prunes nodes left empty; returns false if it was not present. */
  remove(entry: T): boolean {
    if (!this.all.delete(entry)) return false;
    const words = patternWords(entry.bindingKey);
    let node: PatternNode<T> | undefined = this.root;
    for (let i = 0; i < words.length && node !== undefined; i++) {
      const w = words[i]!;
      node = w === '*' ? node.star : w === '#' ? node.hash : node.children?.get(w);
    }
    if (node?.entries === undefined) return true; // unreachable while `all` and the nodes agree
    const list = node.entries;
    const at = list.indexOf(entry);
    if (at >= 0) {
      list[at] = list[list.length - 1]!;
      list.pop();
    }
    if (list.length === 0) node.entries = undefined;
    this.prune(node);
    return true;
  }

  clear(): void {
    const r = this.root;
    r.children = r.star = r.hash = r.entries = undefined;
    this.all.clear();
    this.nodes = 1;
  }

  /**
   * Calls `visit` once for each entry whose pattern matches `routingKey`, even when it matches by
   * several paths (`#.#`, `#.a.#`). `visit` must not modify this trie or match on it again.
   */
  match(routingKey: string, visit: (entry: T) => void): void {
    if (this.all.size === 0) return;
    const words = splitKey(routingKey);
    const n = words.length;
    const epoch = ++this.epoch;
    // [MQTT-4.7.2-1]: only the root's `*` and `#` subtrees can be wildcard-first patterns.
    const dollar = n > 0 && startsWithDollar(words[0]!);
    const sn = this.stackNode;
    const si = this.stackIdx;
    const sb = this.stackBlocked;
    let sp = 0;
    sn[0] = this.root;
    si[0] = 0;
    sb[0] = false;
    sp = 1;
    while (sp > 0) {
      sp--;
      const node = sn[sp]!;
      sn[sp] = undefined;
      const i = si[sp]!;
      const blocked = sb[sp]!;
      if (i === n) {
        if (node.entries !== undefined) this.emit(node, epoch, blocked, visit);
        // A trailing `#` also matches zero words; runs of `#` are collapsed, so one level is enough.
        const h = node.hash;
        if (h?.entries !== undefined) this.emit(h, epoch, blocked, visit);
        continue;
      }
      const lit = node.children?.get(words[i]!);
      if (lit !== undefined) {
        sn[sp] = lit;
        si[sp] = i + 1;
        sb[sp] = blocked;
        sp++;
      }
      const wildBlocked = blocked || (dollar && i === 0);
      if (node.star !== undefined) {
        sn[sp] = node.star;
        si[sp] = i + 1;
        sb[sp] = wildBlocked;
        sp++;
      }
      const h = node.hash;
      if (h !== undefined) {
        // `#` swallows words i..j-1 for every j in i..n, then matching continues below it.
        for (let j = i; j <= n; j++) {
          sn[sp] = h;
          si[sp] = j;
          sb[sp] = wildBlocked;
          sp++;
        }
      }
    }
  }

  private emit(node: PatternNode<T>, epoch: number, blocked: boolean, visit: (entry: T) => void): void {
    if (node.epoch === epoch) return;
    node.epoch = epoch;
    const list = node.entries!;
    for (let k = 0; k < list.length; k++) {
      const e = list[k]!;
      if (blocked && e.noDollarWildcard) continue;
      visit(e);
    }
  }

  private newNode(parent: PatternNode<T>, word: string): PatternNode<T> {
    this.nodes++;
    return new PatternNode<T>(parent, word);
  }

  private prune(node: PatternNode<T>): void {
    let cur: PatternNode<T> = node;
    while (cur.parent !== undefined && cur.isEmpty()) {
      const p: PatternNode<T> = cur.parent;
      if (cur.word === '*') p.star = undefined;
      else if (cur.word === '#') p.hash = undefined;
      else {
        p.children!.delete(cur.word);
        if (p.children!.size === 0) p.children = undefined;
      }
      this.nodes--;
      cur = p;
    }
  }
}

class KeyNode<V> {
  children: Map<string, KeyNode<V>> | undefined = undefined;
  value: V | undefined = undefined;
  present = false;
  epoch = 0;
  /** The full key, set once the node holds a value ('' for inner nodes never set). */
  key = '';
  constructor(
    readonly parent: KeyNode<V> | undefined,
    readonly word: string,
  ) {}
}

/**
 * Literal keys with values, matched by a pattern: literal pattern words follow one child,
 * `*` fans out over the children, `#` over the whole subtree. A literal filter costs one path,
 * never a scan of all keys.
 */
export class KeyTrie<V> {
  private readonly root = new KeyNode<V>(undefined, '');
  private readonly index = new Map<string, KeyNode<V>>();
  private epoch = 0;
  private nodes = 1;

  get size(): number {
    return this.index.size;
  }

  get nodeCount(): number {
    return this.nodes;
  }

  get(key: string): V | undefined {
    return this.index.get(key)?.value;
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  set(key: string, value: V): void {
    let node = this.index.get(key);
    if (node === undefined) {
      const words = splitKey(key);
      node = this.root;
      for (let i = 0; i < words.length; i++) {
        const w = words[i]!;
        node.children ??= new Map();
        let next = node.children.get(w);
        if (next === undefined) {
          next = new KeyNode<V>(node, w);
          this.nodes++;
          node.children.set(w, next);
        }
        node = next;
      }
      this.index.set(key, node);
    }
    node.key = key;
    node.value = value;
    node.present = true;
  }

  delete(key: string): boolean {
    const node = this.index.get(key);
    if (node === undefined) return false;
    this.index.delete(key);
    node.present = false;
    node.value = undefined;
    let cur = node;
    while (cur.parent !== undefined && !cur.present && cur.children === undefined) {
      const p = cur.parent;
      p.children!.delete(cur.word);
      if (p.children!.size === 0) p.children = undefined;
      this.nodes--;
      cur = p;
    }
    return true;
  }

  clear(): void {
    this.root.children = undefined;
    this.root.present = false;
    this.root.value = undefined;
    this.index.clear();
    this.nodes = 1;
  }

  *entries(): IterableIterator<[string, V]> {
    for (const [k, node] of this.index) yield [k, node.value as V];
  }

  /**
   * Calls `visit` once for each stored key that `pattern` matches with topic-exchange semantics.
   * With `noDollarWildcard`, a pattern starting with `*` or `#` skips keys whose first word
   * starts with '$' [MQTT-4.7.2-1]. `visit` must not modify the trie; collect and delete after.
   */
  match(pattern: string, noDollarWildcard: boolean, visit: (key: string, value: V) => void): void {
    if (this.index.size === 0) return;
    const words = patternWords(pattern);
    const n = words.length;
    const epoch = ++this.epoch;
    const stackNode: KeyNode<V>[] = [this.root];
    const stackIdx: number[] = [0];
    const sub: KeyNode<V>[] = [];
    // A wildcard-first pattern must not enter a '$' child of the root, also when a leading `#`
    // has matched zero words and a literal follows (`#.$SYS` does not match `$SYS`).
    const block = noDollarWildcard && n > 0 && (words[0] === '*' || words[0] === '#');
    const root = this.root;
    while (stackNode.length > 0) {
      const node = stackNode.pop()!;
      const i = stackIdx.pop()!;
      if (i === n) {
        if (node.present && node.epoch !== epoch) {
          node.epoch = epoch;
          visit(node.key, node.value as V);
        }
        continue;
      }
      const w = words[i]!;
      const skipDollar = block && node === root;
      if (w === '*') {
        if (node.children === undefined) continue;
        for (const [cw, c] of node.children) {
          if (skipDollar && startsWithDollar(cw)) continue;
          stackNode.push(c);
          stackIdx.push(i + 1);
        }
      } else if (w === '#') {
        // Every node of the subtree (this one included) resumes matching after the `#`.
        sub.push(node);
        while (sub.length > 0) {
          const d = sub.pop()!;
          stackNode.push(d);
          stackIdx.push(i + 1);
          if (d.children === undefined) continue;
          for (const [cw, c] of d.children) {
            if (skipDollar && d === node && startsWithDollar(cw)) continue;
            sub.push(c);
          }
        }
      } else {
        const c = node.children?.get(w);
        if (c !== undefined && !(skipDollar && startsWithDollar(w))) {
          stackNode.push(c);
          stackIdx.push(i + 1);
        }
      }
    }
  }
}
