import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { KeyTrie, patternWords, splitKey, TopicTrie, type TrieEntry } from '../../src/core/router/trie.js';

/** Reference topic matcher: plain recursion over words, no trie. */
function refWords(pattern: readonly string[], key: readonly string[]): boolean {
  if (pattern.length === 0) return key.length === 0;
  const [p, ...rest] = pattern;
  if (p === '#') {
    for (let i = 0; i <= key.length; i++) if (refWords(rest, key.slice(i))) return true;
    return false;
  }
  if (key.length === 0) return false;
  return (p === '*' || p === key[0]) && refWords(rest, key.slice(1));
}

function refMatch(bindingKey: string, routingKey: string, noDollarWildcard = false): boolean {
  const pw = bindingKey === '' ? [] : bindingKey.split('.');
  const kw = routingKey === '' ? [] : routingKey.split('.');
  if (noDollarWildcard && kw.length > 0 && kw[0]!.startsWith('$') && (pw[0] === '*' || pw[0] === '#')) return false;
  return refWords(pw, kw);
}

function entry(bindingKey: string, noDollarWildcard = false): TrieEntry {
  return { bindingKey, noDollarWildcard };
}

function matchAll(trie: TopicTrie, key: string): TrieEntry[] {
  const out: TrieEntry[] = [];
  trie.match(key, (e) => out.push(e));
  return out;
}

// [binding key, routing key, matches] — RabbitMQ topic semantics, including the edge cases.
const TABLE: [string, string, boolean][] = [
  ['a.b.c', 'a.b.c', true],
  ['a.b.c', 'a.b', false],
  ['a.*.c', 'a.b.c', true],
  ['a.*.c', 'a..c', true],
  ['a.*.c', 'a.c', false],
  ['*', '', false],
  ['*', 'a', true],
  ['*', 'a.b', false],
  ['#', '', true],
  ['#', 'a.b.c', true],
  ['#', '.', true],
  ['a.#', 'a', true],
  ['a.#', 'a.b.c', true],
  ['a.#', 'b.a', false],
  ['#.a', 'a', true],
  ['#.a', 'x.y.a', true],
  ['#.a', 'a.x', false],
  ['a.#.b', 'a.b', true],
  ['a.#.b', 'a.x.y.b', true],
  ['a.#.b', 'a.x.y', false],
  ['#.#', '', true],
  ['#.#', 'a.b', true],
  ['#.*', '', false],
  ['#.*', 'a', true],
  ['*.#', 'a', true],
  ['#.*.#', 'a.b.c', true],
  ['a.#.#.b', 'a.b', true],
  ['#.b.#', 'a.b.c', true],
  ['#.b.#', 'a.c', false],
  ['', '', true],
  ['', 'a', false],
  ['a', '', false],
  ['a.', 'a.', true],
  ['a.', 'a', false],
  ['.a', '.a', true],
  ['..', '..', true],
  ['*.*.*', '..', true],
  ['a#', 'a#', true],
  ['a#', 'ab', false],
  ['*b', 'ab', false],
  ['a.*', 'a.*', true],
  ['a.*', 'a.#', true],
];

describe('splitKey / patternWords', () => {
  it('splits on dots, the empty key has no words, empty words count', () => {
    assert.deepEqual(splitKey(''), []);
    assert.deepEqual(splitKey('a..b'), ['a', '', 'b']);
    assert.deepEqual(splitKey('.'), ['', '']);
  });
  it('collapses runs of #', () => {
    assert.deepEqual(patternWords('#.#.a.#.#.#'), ['#', 'a', '#']);
    assert.deepEqual(patternWords('a.#'), ['a', '#']);
  });
});

describe('TopicTrie', () => {
  for (const [pattern, key, want] of TABLE) {
    it(`'${pattern}' ${want ? 'matches' : 'does not match'} '${key}'`, () => {
      assert.equal(refMatch(pattern, key), want, 'reference agrees with the table');
      const trie = new TopicTrie();
      const e = entry(pattern);
      trie.add(e);
      assert.deepEqual(matchAll(trie, key), want ? [e] : []);
    });
  }

  it('visits a binding matching by several paths once', () => {
    const trie = new TopicTrie();
    const es = ['#.#', '#.a.#', 'a.#.#.a', '#.*.#', '#'].map((k) => entry(k));
    for (const e of es) trie.add(e);
    const got = matchAll(trie, 'a.a.a.a');
    assert.equal(got.length, es.length);
    assert.equal(new Set(got).size, es.length);
  });

  it('stores by identity: equal bindings are distinct, the same one is added once', () => {
    const trie = new TopicTrie();
    const a = entry('x.*');
    const b = entry('x.*');
    assert.equal(trie.add(a), true);
    assert.equal(trie.add(a), false);
    assert.equal(trie.add(b), true);
    assert.equal(trie.size, 2);
    assert.equal(matchAll(trie, 'x.y').length, 2);
    assert.equal(trie.remove(a), true);
    assert.equal(trie.remove(a), false);
    assert.deepEqual(matchAll(trie, 'x.y'), [b]);
  });

  it('prunes empty nodes on removal', () => {
    const trie = new TopicTrie();
    const es = ['a.b.c', 'a.*.c', 'a.#', '#.x', '*', '', 'a.b'].map((k) => entry(k));
    for (const e of es) trie.add(e);
    assert.ok(trie.nodeCount > 1);
    for (const e of es) trie.remove(e);
    assert.equal(trie.nodeCount, 1);
    assert.equal(trie.size, 0);
    assert.deepEqual(matchAll(trie, 'a.b.c'), []);
  });

  it('a routing key word "*" or "#" is literal and matched once', () => {
    const trie = new TopicTrie();
    const star = entry('*');
    trie.add(star);
    assert.deepEqual(matchAll(trie, '*'), [star]);
  });

  describe('[MQTT-4.7.2-1] topics starting with $', () => {
    const cases: [string, string, boolean][] = [
      ['#', '$SYS.broker', false],
      ['*.broker', '$SYS.broker', false],
      ['*.#', '$SYS', false],
      ['$SYS.#', '$SYS.broker', true],
      ['$SYS.*', '$SYS.broker', true],
      ['#', 'a.$b', true],
      ['a.*', 'a.$b', true],
      ['#', '.$SYS', true],
    ];
    for (const [pattern, key, want] of cases) {
      it(`noDollarWildcard '${pattern}' ${want ? 'matches' : 'does not match'} '${key}'`, () => {
        const trie = new TopicTrie();
        const mqtt = entry(pattern, true);
        const amqp = entry(pattern, false);
        trie.add(mqtt);
        trie.add(amqp);
        const got = matchAll(trie, key);
        assert.deepEqual(new Set(got), new Set(want ? [mqtt, amqp] : [amqp]), 'AMQP bindings keep matching');
      });
    }
  });

  it('handles thousands of levels without overflowing the stack', () => {
    const deep = Array.from({ length: 30000 }, () => 'a').join('.');
    const trie = new TopicTrie();
    const e = entry(deep);
    const h = entry('#.a');
    trie.add(e);
    trie.add(h);
    assert.deepEqual(new Set(matchAll(trie, deep)), new Set([e, h]));
    trie.remove(e);
    trie.remove(h);
    assert.equal(trie.nodeCount, 1);
  });

  const keyWord = fc.constantFrom('a', 'b', 'c', '', '$s', '*', '#');
  const routingWord = fc.constantFrom('a', 'b', 'c', '', '$s');
  const pattern = fc.array(keyWord, { maxLength: 6 }).map((ws) => ws.join('.'));
  const routingKey = fc.array(routingWord, { maxLength: 7 }).map((ws) => ws.join('.'));

  it('property: matches the reference matcher and visits each binding at most once', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ bindingKey: pattern, noDollarWildcard: fc.boolean() }), { maxLength: 40 }),
        fc.array(routingKey, { minLength: 1, maxLength: 10 }),
        (entries, keys) => {
          const trie = new TopicTrie();
          for (const e of entries) trie.add(e);
          for (const key of keys) {
            const counts = new Map<TrieEntry, number>();
            trie.match(key, (e) => counts.set(e, (counts.get(e) ?? 0) + 1));
            for (const n of counts.values()) assert.equal(n, 1);
            const want = entries.filter((e) => refMatch(e.bindingKey, key, e.noDollarWildcard));
            assert.deepEqual(new Set(counts.keys()), new Set(want), `key '${key}'`);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('property: removal leaves the same matches as never adding, and prunes to the root', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ bindingKey: pattern, noDollarWildcard: fc.boolean(), drop: fc.boolean() }), {
          maxLength: 30,
        }),
        routingKey,
        (entries, key) => {
          const trie = new TopicTrie();
          for (const e of entries) trie.add(e);
          for (const e of entries) if (e.drop) trie.remove(e);
          const kept = entries.filter((e) => !e.drop);
          assert.equal(trie.size, kept.length);
          const want = kept.filter((e) => refMatch(e.bindingKey, key, e.noDollarWildcard));
          assert.deepEqual(new Set(matchAll(trie, key)), new Set(want));
          for (const e of kept) trie.remove(e);
          assert.equal(trie.nodeCount, 1);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('KeyTrie (reverse: stored keys, one pattern)', () => {
  function keysMatching(trie: KeyTrie<number>, pattern: string, noDollar = false): string[] {
    const out: string[] = [];
    trie.match(pattern, noDollar, (k) => out.push(k));
    return out.sort();
  }

  it('set/get/delete/size and pruning', () => {
    const t = new KeyTrie<number>();
    t.set('a.b', 1);
    t.set('a', 2);
    t.set('', 3);
    t.set('a.b', 4);
    assert.equal(t.size, 3);
    assert.equal(t.get('a.b'), 4);
    assert.equal(t.get('a'), 2);
    assert.equal(t.get(''), 3);
    assert.equal(t.get('a.c'), undefined);
    assert.deepEqual([...t.entries()].sort(), [
      ['', 3],
      ['a', 2],
      ['a.b', 4],
    ]);
    assert.equal(t.delete('a'), true);
    assert.equal(t.delete('a'), false);
    assert.deepEqual(keysMatching(t, 'a.*'), ['a.b']);
    assert.deepEqual(keysMatching(t, 'a'), []);
    t.delete('a.b');
    t.delete('');
    assert.equal(t.nodeCount, 1);
  });

  it('literal, * and # filters', () => {
    const t = new KeyTrie<number>();
    for (const k of ['a', 'a.b', 'a.b.c', 'a.x.c', 'b', '.a', 'a.', '$SYS.x']) t.set(k, 0);
    assert.deepEqual(keysMatching(t, 'a.b'), ['a.b']);
    assert.deepEqual(keysMatching(t, 'a.*'), ['a.', 'a.b']);
    assert.deepEqual(keysMatching(t, 'a.*.c'), ['a.b.c', 'a.x.c']);
    assert.deepEqual(keysMatching(t, 'a.#'), ['a', 'a.', 'a.b', 'a.b.c', 'a.x.c']);
    assert.deepEqual(keysMatching(t, '#.c'), ['a.b.c', 'a.x.c']);
    assert.deepEqual(keysMatching(t, '*'), ['a', 'b']);
    assert.deepEqual(keysMatching(t, '#').length, 8);
    assert.deepEqual(keysMatching(t, '#', true).length, 7);
    assert.deepEqual(keysMatching(t, '*.x', true), []);
    assert.deepEqual(keysMatching(t, '*.x', false), ['$SYS.x']);
    assert.deepEqual(keysMatching(t, '$SYS.#', true), ['$SYS.x']);
    assert.deepEqual(keysMatching(t, '#.a.#'), ['.a', 'a', 'a.', 'a.b', 'a.b.c', 'a.x.c']);
  });

  it('property: matches the reference matcher, each key once', () => {
    const word = fc.constantFrom('a', 'b', '', '$s');
    const key = fc.array(word, { maxLength: 5 }).map((ws) => ws.join('.'));
    const pat = fc.array(fc.constantFrom('a', 'b', '', '$s', '*', '#'), { maxLength: 5 }).map((ws) => ws.join('.'));
    fc.assert(
      fc.property(fc.uniqueArray(key, { maxLength: 40 }), pat, fc.boolean(), (keys, pattern, noDollar) => {
        const t = new KeyTrie<number>();
        for (const k of keys) t.set(k, 1);
        const got: string[] = [];
        t.match(pattern, noDollar, (k) => got.push(k));
        assert.equal(new Set(got).size, got.length, 'each key visited once');
        const want = keys.filter((k) => refMatch(pattern, k, noDollar));
        assert.deepEqual(got.sort(), want.sort());
      }),
      { numRuns: 500 },
    );
  });
});
