import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Acl, AclParseError, keyCovers, keyMatches } from '../../src/auth/acl.js';

const X = 'amq.topic';
const key = (topic: string): string =>
  topic
    .split('/')
    .map((l) => (l === '+' ? '*' : l.replaceAll('.', '/')))
    .join('.');

describe('Mosquitto ACL file', () => {
  const acl = Acl.parse(`
# anonymous clients
topic read public/#
topic deny test/nosubscribe
topic readwrite test/#

user alice
topic readwrite sensors/#
topic deny sensors/secret
topic write logs/+

pattern write devices/%c/#
pattern read users/%u/inbox
`);
  const anon = { username: undefined, clientId: 'c1' };
  const alice = { username: 'alice', clientId: 'a1' };

  test('anonymous rules apply to clients without a username', () => {
    assert.equal(acl.canSubscribe(anon, X, key('public/news')), true);
    assert.equal(acl.canPublish(anon, X, key('public/news')), false, 'read only');
    assert.equal(acl.canSubscribe(anon, X, key('test/nosubscribe')), false, 'deny wins over test/#');
    assert.equal(acl.canSubscribe(anon, X, key('test/other')), true);
    assert.equal(acl.canSubscribe(alice, X, key('public/news')), false, 'not granted to alice');
  });

  test('user rules, deny wins, access kinds', () => {
    assert.equal(acl.canPublish(alice, X, key('sensors/t1')), true);
    assert.equal(acl.canPublish(alice, X, key('sensors/secret')), false);
    assert.equal(acl.canSubscribe(alice, X, key('sensors/+')), true);
    assert.equal(acl.canPublish(alice, X, key('logs/app')), true);
    assert.equal(acl.canSubscribe(alice, X, key('logs/app')), false, 'write only');
  });

  test('patterns substitute %c and %u; %u never matches an anonymous client', () => {
    assert.equal(acl.canPublish(alice, X, key('devices/a1/state')), true);
    assert.equal(acl.canPublish(alice, X, key('devices/other/state')), false);
    assert.equal(acl.canSubscribe(alice, X, key('users/alice/inbox')), true);
    assert.equal(acl.canSubscribe(anon, X, key('users//inbox')), false);
  });

  test('a subscription is granted only when a read rule covers every topic it can match', () => {
    assert.equal(acl.canSubscribe(alice, X, key('sensors/#')), true);
    assert.equal(acl.canSubscribe(anon, X, key('public/+/x')), true);
    assert.equal(acl.canSubscribe(anon, X, key('#')), false);
    assert.equal(acl.canSubscribe(anon, X, key('+/news')), false);
  });

  test('topics with dots are checked in routing-key form, reversibly', () => {
    const a = Acl.parse('topic readwrite a.b/#');
    assert.equal(a.canPublish(anon, X, key('a.b/c')), true);
    assert.equal(a.canPublish(anon, X, key('a/b/c')), false);
  });

  test('exchanges other than the topic exchange are not topic-checked', () => {
    assert.equal(acl.canPublish(anon, 'amq.direct', 'anything'), true);
  });

  test('bad lines are refused with file and line', () => {
    assert.throws(
      () => Acl.parse('topic read a\nfrobnicate x\n', 'my.acl'),
      (e: unknown) => e instanceof AclParseError && e.message === 'my.acl:2: unknown directive "frobnicate"',
    );
    assert.throws(() => Acl.parse('user\n'), AclParseError);
    assert.throws(() => Acl.parse('topic\n'), AclParseError);
    // Like Mosquitto, `topic read` alone is the topic "read" with readwrite access.
    assert.equal(Acl.parse('topic read\n').canPublish({ username: undefined, clientId: 'c' }, X, 'read'), true);
  });

  test('fuzz: any text either parses or throws AclParseError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          Acl.parse(text);
        } catch (e) {
          assert.ok(e instanceof AclParseError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('key matching', () => {
  const w = (s: string) => s.split('.');
  test('keyMatches follows topic-exchange rules', () => {
    assert.equal(keyMatches(w('a.#'), w('a')), true);
    assert.equal(keyMatches(w('a.*'), w('a')), false);
    assert.equal(keyMatches(w('#.c'), w('a.b.c')), true);
    assert.equal(keyMatches(w('a.*.c'), w('a..c')), true);
  });
  test('keyCovers: + needs + or #, # needs #', () => {
    assert.equal(keyCovers(w('a.#'), w('a.*.c')), true);
    assert.equal(keyCovers(w('a.*'), w('a.#')), false);
    assert.equal(keyCovers(w('a.*'), w('a.*')), true);
    assert.equal(keyCovers(w('a.b'), w('a.*')), false);
  });
});
