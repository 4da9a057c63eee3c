import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CoreError, ReplyCodes } from '../../src/core/errors.js';
import { createBinding, Exchange, matchedAlone } from '../../src/core/exchange/exchange.js';
import { HeadersExchange, headerValueEquals } from '../../src/core/exchange/headers.js';
import { createExchangeType, type ExchangeType, exchangeTypes } from '../../src/core/exchange/registry.js';
import { createMessage, type Headers } from '../../src/core/message.js';
import { type Binding, type BindingArgs, ExchangeKinds } from '../../src/core/types.js';

function msg(routingKey: string, headers?: Headers) {
  return createMessage({
    vhost: '/',
    exchange: 'x',
    routingKey,
    body: Buffer.alloc(0),
    properties: headers ? { headers } : {},
  });
}

function bind(bindingKey: string, args: BindingArgs = {}, destination = 'q'): Binding {
  return createBinding({ vhost: '/', source: 'x', destination, destinationKind: 'queue', bindingKey, args });
}

function routed(type: ExchangeType, routingKey: string, headers?: Headers): Binding[] {
  const out: Binding[] = [];
  type.route(msg(routingKey, headers), (b) => out.push(b), routingKey);
  return out;
}

describe('exchange registry', () => {
  it('has one factory per kind, each a fresh index', () => {
    assert.deepEqual(Object.keys(exchangeTypes).sort(), [...ExchangeKinds].sort());
    for (const kind of ExchangeKinds) {
      const a = createExchangeType(kind);
      assert.equal(a.kind, kind);
      assert.notEqual(a, createExchangeType(kind));
    }
  });

  it('refuses an unknown kind with 503 COMMAND_INVALID', () => {
    assert.throws(
      () => createExchangeType('x-delayed'),
      (e: unknown) =>
        e instanceof CoreError &&
        e.code === 503 &&
        e.hard &&
        e.message === "COMMAND_INVALID - unknown exchange type 'x-delayed'",
    );
  });

  it('reply-code registry holds the AMQP 0-9-1 values', () => {
    assert.equal(ReplyCodes.ACCESS_REFUSED, 403);
    assert.equal(ReplyCodes.NOT_FOUND, 404);
    assert.equal(ReplyCodes.RESOURCE_LOCKED, 405);
    assert.equal(ReplyCodes.PRECONDITION_FAILED, 406);
    assert.equal(ReplyCodes.NOT_ALLOWED, 530);
    assert.equal(new CoreError('NOT_FOUND', 'x').hard, false);
    assert.equal(new CoreError('NOT_ALLOWED', 'x').hard, true);
  });
});

describe('Exchange entity and bindings', () => {
  it('reads alternate-exchange and defaults flags', () => {
    const x = new Exchange({ vhost: '/', name: 'x', kind: 'topic', args: { 'alternate-exchange': 'ae' } });
    assert.equal(x.alternateExchange, 'ae');
    assert.equal(x.durable, false);
    assert.equal(x.autoDelete, false);
    assert.equal(x.internal, false);
    assert.equal(x.type.kind, 'topic');
    assert.equal(new Exchange({ vhost: '/', name: '', kind: 'direct' }).isDefault, true);
  });

  it('createBinding freezes and shares a one-element matched list', () => {
    const b = bind('k');
    assert.ok(Object.isFrozen(b));
    assert.equal(matchedAlone(b), matchedAlone(b));
    assert.deepEqual(matchedAlone(b), [b]);
    assert.deepEqual(Object.keys(b).sort(), [
      'args',
      'bindingKey',
      'destination',
      'destinationKind',
      'noDollarWildcard',
      'source',
      'vhost',
    ]);
    const plain: Binding = { ...b };
    assert.deepEqual(matchedAlone(plain), [plain]);
  });
});

describe('direct exchange', () => {
  it('matches equal keys only, by identity', () => {
    const t = createExchangeType('direct');
    const a = bind('a');
    const a2 = bind('a', {}, 'q2');
    const b = bind('b');
    for (const x of [a, a2, b, a]) t.addBinding(x);
    assert.equal(t.size, 3);
    assert.deepEqual(routed(t, 'a'), [a, a2]);
    assert.deepEqual(routed(t, 'a.b'), []);
    assert.equal(t.removeBinding(a), true);
    assert.equal(t.removeBinding(a), false);
    assert.deepEqual(routed(t, 'a'), [a2]);
    assert.deepEqual(new Set(t.bindings()), new Set([a2, b]));
  });
});

describe('fanout exchange', () => {
  it('matches every binding whatever the key', () => {
    const t = createExchangeType('fanout');
    const a = bind('a');
    const b = bind('');
    t.addBinding(a);
    t.addBinding(b);
    assert.deepEqual(routed(t, 'zzz'), [a, b]);
    t.removeBinding(a);
    assert.deepEqual(routed(t, ''), [b]);
    assert.equal(t.size, 1);
  });
});

describe('topic exchange', () => {
  it('matches patterns through the trie', () => {
    const t = createExchangeType('topic');
    const a = bind('a.*');
    const b = bind('#');
    const c = bind('a.b');
    for (const x of [a, b, c]) t.addBinding(x);
    assert.deepEqual(new Set(routed(t, 'a.b')), new Set([a, b, c]));
    assert.deepEqual(new Set(routed(t, 'a')), new Set([b]));
    t.removeBinding(b);
    assert.deepEqual(new Set(t.bindings()), new Set([a, c]));
  });

  it('honours noDollarWildcard', () => {
    const t = createExchangeType('topic');
    const mqtt = createBinding({
      vhost: '/',
      source: 'amq.topic',
      destination: 'q',
      destinationKind: 'queue',
      bindingKey: '#',
      noDollarWildcard: true,
    });
    t.addBinding(mqtt);
    assert.deepEqual(routed(t, '$SYS.x'), []);
    assert.deepEqual(routed(t, 'x.$SYS'), [mqtt]);
  });
});

describe('headers exchange', () => {
  function matches(args: BindingArgs, headers: Headers | undefined): boolean {
    const t = new HeadersExchange();
    t.validateBinding('', args);
    const b = bind('', args);
    t.addBinding(b);
    return routed(t, 'ignored', headers).length === 1;
  }

  const cases: [string, BindingArgs, Headers | undefined, boolean][] = [
    [
      'all: every pair present',
      { 'x-match': 'all', a: 1, b: 'two' },
      [
        ['a', 1],
        ['b', 'two'],
      ],
      true,
    ],
    [
      'all: extra headers are fine',
      { 'x-match': 'all', a: 1 },
      [
        ['z', 0],
        ['a', 1],
      ],
      true,
    ],
    ['all: one missing', { 'x-match': 'all', a: 1, b: 'two' }, [['a', 1]], false],
    [
      'all: one differs',
      { 'x-match': 'all', a: 1, b: 'two' },
      [
        ['a', 1],
        ['b', 'three'],
      ],
      false,
    ],
    ['default x-match is all', { a: 1, b: 2 }, [['a', 1]], false],
    [
      'default x-match is all (match)',
      { a: 1, b: 2 },
      [
        ['b', 2],
        ['a', 1],
      ],
      true,
    ],
    ['any: one pair', { 'x-match': 'any', a: 1, b: 2 }, [['b', 2]], true],
    [
      'any: none',
      { 'x-match': 'any', a: 1, b: 2 },
      [
        ['a', 2],
        ['c', 1],
      ],
      false,
    ],
    ['any: no headers', { 'x-match': 'any', a: 1 }, undefined, false],
    ['all with nothing to compare matches everything', { 'x-match': 'all' }, undefined, true],
    ['any with nothing to compare matches nothing', { 'x-match': 'any' }, [['a', 1]], false],
    ['all ignores x- args', { 'x-match': 'all', 'x-foo': 'bar', a: 1 }, [['a', 1]], true],
    ['any ignores x- args', { 'x-match': 'any', 'x-foo': 'bar' }, [['x-foo', 'bar']], false],
    ['all-with-x compares x- args', { 'x-match': 'all-with-x', 'x-foo': 'bar' }, [['x-foo', 'bar']], true],
    ['all-with-x compares x- args (miss)', { 'x-match': 'all-with-x', 'x-foo': 'bar', a: 1 }, [['a', 1]], false],
    ['any-with-x compares x- args', { 'x-match': 'any-with-x', 'x-foo': 'bar', a: 1 }, [['x-foo', 'bar']], true],
    ['void arg matches on presence', { 'x-match': 'all', a: null }, [['a', 'anything']], true],
    ['void arg needs presence', { 'x-match': 'all', a: null }, [['b', 1]], false],
    ['undefined arg is void too', { 'x-match': 'any', a: undefined }, [['a', false]], true],
    [
      '1 equals 1n and 1.0',
      { a: 1, b: 2n },
      [
        ['a', 1n],
        ['b', 2.0],
      ],
      true,
    ],
    ['string equals buffer bytes', { a: 'xyz' }, [['a', Buffer.from('xyz')]], true],
    ['types do not coerce', { a: 1 }, [['a', '1']], false],
    [
      'repeated header keys (MQTT user properties): any occurrence',
      { a: '2' },
      [
        ['a', '1'],
        ['a', '2'],
      ],
      true,
    ],
    ['x-match as a buffer (longstr)', { 'x-match': Buffer.from('any'), a: 1, b: 1 }, [['b', 1]], true],
    ['nested tables compare deeply', { a: { k: [1, 'v'] } }, [['a', { k: [1, Buffer.from('v')] }]], true],
  ];
  for (const [name, args, headers, want] of cases) {
    it(name, () => assert.equal(matches(args, headers), want));
  }

  it('refuses a bad x-match with 406 and RabbitMQ text', () => {
    const t = new HeadersExchange();
    assert.throws(
      () => t.validateBinding('', { 'x-match': 'some' }),
      (e: unknown) =>
        e instanceof CoreError &&
        e.code === 406 &&
        e.message ===
          'PRECONDITION_FAILED - Invalid x-match field value <<"some">>; expected all, any, all-with-x, or any-with-x',
    );
    assert.throws(
      () => t.validateBinding('', { 'x-match': 5 }),
      (e: unknown) => e instanceof CoreError && e.code === 406 && /Invalid x-match field type/.test(e.message),
    );
    for (const ok of ['all', 'any', 'all-with-x', 'any-with-x']) t.validateBinding('', { 'x-match': ok });
    t.validateBinding('', {});
  });

  it('removes and lists by identity', () => {
    const t = new HeadersExchange();
    const a = bind('', { a: 1 });
    const b = bind('', { a: 1 });
    t.addBinding(a);
    t.addBinding(b);
    assert.equal(routed(t, '', [['a', 1]]).length, 2);
    assert.equal(t.removeBinding(a), true);
    assert.deepEqual([...t.bindings()], [b]);
  });

  it('headerValueEquals is Erlang == over field values', () => {
    assert.equal(headerValueEquals(1, 1), true);
    assert.equal(headerValueEquals(1.5, 1n), false);
    assert.equal(headerValueEquals(3n, 3), true);
    assert.equal(headerValueEquals(true, 1), false);
    assert.equal(headerValueEquals(new Date(5), new Date(5)), true);
    assert.equal(headerValueEquals([1, 2], [1, 2, 3]), false);
    assert.equal(headerValueEquals({ a: 1 }, { a: 1, b: 2 }), false);
    assert.equal(headerValueEquals(Buffer.from('a'), Buffer.from('a')), true);
  });
});
