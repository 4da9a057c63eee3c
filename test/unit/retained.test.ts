import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createMessage, type Message } from '../../src/core/message.js';
import { TrieRetainedStore } from '../../src/core/retained.js';

function retained(routingKey: string, expiresAt?: number): Message {
  return createMessage({ vhost: '/', exchange: 'amq.topic', routingKey, body: Buffer.from(routingKey), expiresAt });
}

function keys(msgs: Message[]): string[] {
  return msgs.map((m) => m.routingKey).sort();
}

describe('TrieRetainedStore', () => {
  it('set, get, replace, clear with null', () => {
    const s = new TrieRetainedStore();
    const a = retained('a.b');
    s.set('a.b', a);
    assert.equal(s.get('a.b'), a);
    assert.equal(s.size, 1);
    const a2 = retained('a.b');
    s.set('a.b', a2);
    assert.equal(s.get('a.b'), a2);
    assert.equal(s.size, 1);
    s.set('a.b', null);
    assert.equal(s.get('a.b'), undefined);
    assert.equal(s.size, 0);
    s.set('nothing', null);
    assert.equal(s.size, 0);
  });

  it('matches literal, * and # binding keys (MQTT filters already translated)', () => {
    const s = new TrieRetainedStore();
    for (const k of ['meters.eu.d1.readings', 'meters.eu.d2.readings', 'meters.us.d3.readings', 'meters.eu', 'other'])
      s.set(k, retained(k));
    assert.deepEqual(keys(s.match('meters.eu.d1.readings', true)), ['meters.eu.d1.readings']);
    assert.deepEqual(keys(s.match('meters.*.*.readings', true)), [
      'meters.eu.d1.readings',
      'meters.eu.d2.readings',
      'meters.us.d3.readings',
    ]);
    assert.deepEqual(keys(s.match('meters.eu.#', true)), [
      'meters.eu',
      'meters.eu.d1.readings',
      'meters.eu.d2.readings',
    ]);
    assert.equal(s.match('#', true).length, 5);
    assert.deepEqual(s.match('meters.eu.d9.readings', true), []);
  });

  it('[MQTT-4.7.2-1] wildcard-first filters skip $ topics; AMQP-style bindings do not', () => {
    const s = new TrieRetainedStore();
    for (const k of ['$SYS.broker.uptime', 'a.b']) s.set(k, retained(k));
    assert.deepEqual(keys(s.match('#', true)), ['a.b']);
    assert.deepEqual(keys(s.match('*.broker.uptime', true)), []);
    assert.deepEqual(keys(s.match('$SYS.#', true)), ['$SYS.broker.uptime']);
    assert.deepEqual(keys(s.match('#', false)), ['$SYS.broker.uptime', 'a.b']);
  });

  it('skips and removes expired messages [MQTT-3.3.2-5]', () => {
    const s = new TrieRetainedStore();
    s.set('a.old', retained('a.old', Date.now() - 1));
    s.set('a.new', retained('a.new', Date.now() + 60_000));
    s.set('b.old', retained('b.old', Date.now() - 1));
    assert.deepEqual(keys(s.match('a.*', true)), ['a.new']);
    assert.equal(s.size, 2);
    assert.equal(s.get('b.old'), undefined);
    assert.equal(s.size, 1);
  });

  it('entries and clear', () => {
    const s = new TrieRetainedStore();
    s.set('x', retained('x'));
    s.set('y.z', retained('y.z'));
    assert.deepEqual([...s.entries()].map(([k]) => k).sort(), ['x', 'y.z']);
    s.clear();
    assert.equal(s.size, 0);
    assert.deepEqual(s.match('#', false), []);
  });

  it('a literal filter does not scan: many retained topics, one path', () => {
    const s = new TrieRetainedStore();
    for (let i = 0; i < 50_000; i++) s.set(`meters.r${i % 100}.d${i}.readings`, retained(`meters.r${i % 100}.d${i}`));
    assert.equal(s.size, 50_000);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 1000; i++) assert.equal(s.match('meters.r7.d7.readings', true).length, 1);
    // 1000 literal lookups over 50k topics: a scan would be 5e7 key comparisons.
    assert.ok(process.hrtime.bigint() - t0 < 2_000_000_000n);
    assert.equal(s.match('meters.r7.*.readings', true).length, 500);
  });

  it('property: match equals a filter over all keys with topic semantics', () => {
    const word = fc.constantFrom('a', 'b', '', '$x');
    const key = fc.array(word, { minLength: 1, maxLength: 4 }).map((ws) => ws.join('.'));
    const pattern = fc
      .array(fc.constantFrom('a', 'b', '', '$x', '*', '#'), { minLength: 1, maxLength: 4 })
      .map((ws) => ws.join('.'));
    const ref = (p: string[], k: string[]): boolean => {
      if (p.length === 0) return k.length === 0;
      if (p[0] === '#') return k.some((_, i) => ref(p.slice(1), k.slice(i))) || ref(p.slice(1), []);
      return k.length > 0 && (p[0] === '*' || p[0] === k[0]) && ref(p.slice(1), k.slice(1));
    };
    fc.assert(
      fc.property(fc.uniqueArray(key, { maxLength: 30 }), pattern, (ks, p) => {
        const s = new TrieRetainedStore();
        for (const k of ks) s.set(k, retained(k));
        // The empty key has zero words (RabbitMQ `split_topic_key`).
        const split = (x: string) => (x === '' ? [] : x.split('.'));
        const pw = split(p);
        const want = ks.filter((k) => {
          const kw = split(k);
          if (kw.length > 0 && kw[0]!.startsWith('$') && (pw[0] === '*' || pw[0] === '#')) return false;
          return ref(pw, kw);
        });
        assert.deepEqual(keys(s.match(p, true)), want.sort());
      }),
      { numRuns: 300 },
    );
  });
});
