import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BrokerCore,
  type ConsumerSink,
  CoreError,
  createMessage,
  type Delivery,
  type Headers,
  type MessageInit,
} from '../../src/core/broker-core.js';

function publish(core: BrokerCore, exchange: string, routingKey: string, more: Partial<MessageInit> = {}) {
  return core.publish(createMessage({ vhost: '/', exchange, routingKey, body: Buffer.from(routingKey), ...more }))
    .queues;
}

/** Records what a queue hands to one consumer. */
class Sink {
  readonly got: Delivery[] = [];
  cancelCount = 0;
  onDeliver: ((d: Delivery) => void) | undefined;
}

function consume(core: BrokerCore, queue: string, vhost = '/'): Sink {
  const s = new Sink();
  const sink: ConsumerSink = {
    tag: 'c',
    prefetch: 0,
    deliver: (d) => {
      s.got.push(d);
      s.onDeliver?.(d);
    },
    cancelled: () => {
      s.cancelCount++;
    },
  };
  core.getQueue(vhost, queue)!.addConsumer(sink);
  return s;
}

/** Asserts a CoreError with this code and, when given, exactly this message. */
function rejects(fn: () => unknown, code: number, message?: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CoreError, `CoreError expected, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (typeof message === 'string') assert.equal(e.message, message);
    else if (message) assert.match(e.message, message);
    return true;
  });
}

describe('BrokerCore: vhosts and predeclared exchanges', () => {
  it("has '/' with the predeclared durable exchanges", () => {
    const core = new BrokerCore();
    const vh = core.vhost('/')!;
    assert.ok(vh);
    const want: [string, string][] = [
      ['', 'direct'],
      ['amq.direct', 'direct'],
      ['amq.fanout', 'fanout'],
      ['amq.topic', 'topic'],
      ['amq.headers', 'headers'],
      ['amq.match', 'headers'],
    ];
    for (const [name, kind] of want) {
      const x = vh.exchanges.get(name)!;
      assert.equal(x.kind, kind);
      assert.equal(x.durable, true);
    }
    assert.equal(core.vhost('tenant'), undefined);
    const t = core.ensureVHost('tenant');
    assert.equal(core.ensureVHost('tenant'), t);
    assert.equal(t.exchanges.size, 6);
    rejects(() => core.declareQueue('nope', 'q'), 530, 'NOT_ALLOWED - vhost nope not found');
  });
});

describe('BrokerCore: exchanges', () => {
  it('declares, redeclares equivalently, refuses inequivalent redeclares with 406', () => {
    const core = new BrokerCore();
    const x = core.declareExchange('/', 'x', 'direct');
    assert.equal(core.declareExchange('/', 'x', 'direct'), x);
    rejects(
      () => core.declareExchange('/', 'x', 'fanout'),
      406,
      "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'x' in vhost '/': received 'fanout' but current is 'direct'",
    );
    rejects(
      () => core.declareExchange('/', 'x', 'direct', { durable: true }),
      406,
      "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'x' in vhost '/': received 'true' but current is 'false'",
    );
    rejects(
      () => core.declareExchange('/', 'x', 'direct', { args: { 'alternate-exchange': 'ae' } }),
      406,
      /'alternate-exchange'/,
    );
    assert.equal(core.declareExchange('/', 'x', 'fanout', { passive: true }), x, 'passive checks existence only');
  });

  it('passive on a missing exchange is 404; amq.* and the default exchange are 403', () => {
    const core = new BrokerCore();
    rejects(
      () => core.declareExchange('/', 'nope', 'topic', { passive: true }),
      404,
      "NOT_FOUND - no exchange 'nope' in vhost '/'",
    );
    rejects(
      () => core.declareExchange('/', 'amq.mine', 'topic'),
      403,
      "ACCESS_REFUSED - exchange name 'amq.mine' contains reserved prefix 'amq.*'",
    );
    assert.ok(core.declareExchange('/', 'amq.topic', 'topic', { durable: true }), 'equivalent redeclare of amq.topic');
    rejects(() => core.declareExchange('/', '', 'direct'), 403);
    rejects(() => core.declareExchange('/', 'bad', 'x-custom' as 'direct'), 503);
    rejects(() => core.deleteExchange('/', 'amq.direct'), 403, /deletion of system exchange 'amq.direct'/);
    rejects(() => core.deleteExchange('/', ''), 403);
  });

  it('deletes exchanges (idempotently), if-unused, and removes their bindings', () => {
    const core = new BrokerCore();
    core.declareExchange('/', 'x', 'topic');
    core.declareQueue('/', 'q');
    core.bindQueue('/', 'q', 'x', 'a.#');
    rejects(
      () => core.deleteExchange('/', 'x', { ifUnused: true }),
      406,
      "PRECONDITION_FAILED - exchange 'x' in vhost '/' in use",
    );
    core.deleteExchange('/', 'x');
    assert.deepEqual(core.bindingsOf('/', 'q'), []);
    core.deleteExchange('/', 'x');
    rejects(() => publish(core, 'x', 'a'), 404, "NOT_FOUND - no exchange 'x' in vhost '/'");
  });

  it('an auto-delete exchange goes with its last binding', () => {
    const core = new BrokerCore();
    core.declareExchange('/', 'ad', 'fanout', { autoDelete: true });
    core.declareQueue('/', 'q1');
    core.declareQueue('/', 'q2');
    core.bindQueue('/', 'q1', 'ad', '');
    core.bindQueue('/', 'q2', 'ad', '');
    core.unbindQueue('/', 'q1', 'ad', '');
    assert.ok(core.vhost('/')!.exchanges.has('ad'));
    core.deleteQueue('/', 'q2');
    assert.equal(core.vhost('/')!.exchanges.has('ad'), false);
  });
});

describe('BrokerCore: queues', () => {
  it('server-names queues amq.gen-*', () => {
    const core = new BrokerCore();
    const q = core.declareQueue('/', '', { exclusive: true, owner: 'conn1' });
    assert.match(q.name, /^amq\.gen-[A-Za-z0-9_-]{22}$/);
    assert.equal(core.getQueue('/', q.name), q);
  });

  it('redeclare: equivalent returns the queue; different flags or args are 406', () => {
    const core = new BrokerCore();
    const q = core.declareQueue('/', 'q', { durable: true, args: { 'x-message-ttl': 1000 } });
    assert.equal(core.declareQueue('/', 'q', { durable: true, args: { 'x-message-ttl': 1000 } }), q);
    rejects(
      () => core.declareQueue('/', 'q', { args: { 'x-message-ttl': 1000 } }),
      406,
      "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/': received 'false' but current is 'true'",
    );
    rejects(
      () => core.declareQueue('/', 'q', { durable: true, autoDelete: true, args: { 'x-message-ttl': 1000 } }),
      406,
      /inequivalent arg 'auto_delete'/,
    );
    rejects(
      () => core.declareQueue('/', 'q', { durable: true }),
      406,
      /inequivalent arg 'x-message-ttl'.*current is '1000'/,
    );
    rejects(
      () => core.declareQueue('/', 'q', { durable: true, exclusive: true, args: { 'x-message-ttl': 1000 } }),
      405,
    );
    assert.equal(core.declareQueue('/', 'q', { passive: true }), q);
  });

  it('exclusive queues belong to their owner (405); missing passive is 404; amq.* names are 403', () => {
    const core = new BrokerCore();
    core.declareQueue('/', 'ex', { exclusive: true, owner: 'c1' });
    assert.ok(core.declareQueue('/', 'ex', { exclusive: true, owner: 'c1' }));
    rejects(
      () => core.declareQueue('/', 'ex', { exclusive: true, owner: 'c2' }),
      405,
      /^RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'ex' in vhost '\/'/,
    );
    rejects(() => core.declareQueue('/', 'ex', { passive: true, owner: 'c2' }), 405);
    rejects(() => core.declareQueue('/', 'none', { passive: true }), 404, "NOT_FOUND - no queue 'none' in vhost '/'");
    rejects(
      () => core.declareQueue('/', 'amq.q'),
      403,
      "ACCESS_REFUSED - queue name 'amq.q' contains reserved prefix 'amq.*'",
    );
    rejects(() => core.declareQueue('/', 'bad', { args: { 'x-max-length': -1 } }), 406, /invalid arg 'x-max-length'/);
    core.declareQueue('/', 'ex2', { exclusive: true, owner: 'c1' });
    assert.equal(core.deleteQueuesOwnedBy('c1'), 2);
    assert.equal(core.getQueue('/', 'ex'), undefined);
  });

  it('deleteQueue drops messages, removes bindings, cancels consumers; if-unused / if-empty are 406', () => {
    const core = new BrokerCore();
    core.declareQueue('/', 'q');
    core.bindQueue('/', 'q', 'amq.topic', 'a.*');
    publish(core, 'amq.topic', 'a.b');
    publish(core, 'amq.topic', 'a.c');
    rejects(
      () => core.deleteQueue('/', 'q', { ifEmpty: true }),
      406,
      "PRECONDITION_FAILED - queue 'q' in vhost '/' not empty",
    );
    assert.equal(core.deleteQueue('/', 'q'), 2);
    assert.equal(core.getQueue('/', 'q'), undefined);
    assert.equal(core.vhost('/')!.exchanges.get('amq.topic')!.bindingCount, 0);
    assert.equal(core.deleteQueue('/', 'q'), 0, 'idempotent');

    core.declareQueue('/', 'q2');
    const s = consume(core, 'q2');
    rejects(
      () => core.deleteQueue('/', 'q2', { ifUnused: true }),
      406,
      "PRECONDITION_FAILED - queue 'q2' in vhost '/' in use",
    );
    core.deleteQueue('/', 'q2');
    assert.equal(s.cancelCount, 1);
  });

  it('an auto-delete queue goes with its last consumer, bindings included', () => {
    const core = new BrokerCore();
    const q = core.declareQueue('/', 'ad', { autoDelete: true });
    core.bindQueue('/', 'ad', 'amq.fanout', '');
    const sink: ConsumerSink = { tag: 't', prefetch: 0, deliver() {} };
    q.addConsumer(sink);
    q.removeConsumer(sink, { requeue: true });
    assert.equal(core.getQueue('/', 'ad'), undefined);
    assert.equal(publish(core, 'amq.fanout', ''), 0);
  });
});

describe('BrokerCore: bindings', () => {
  it('checks both ends: 404 for a missing queue or exchange, 403 for the default exchange', () => {
    const core = new BrokerCore();
    core.declareQueue('/', 'q');
    rejects(() => core.bindQueue('/', 'nope', 'amq.topic', '#'), 404, "NOT_FOUND - no queue 'nope' in vhost '/'");
    rejects(() => core.bindQueue('/', 'q', 'nope', '#'), 404, "NOT_FOUND - no exchange 'nope' in vhost '/'");
    rejects(
      () => core.bindQueue('/', 'q', '', 'q'),
      403,
      'ACCESS_REFUSED - operation not permitted on the default exchange',
    );
    rejects(() => core.unbindQueue('/', 'q', '', 'q'), 403);
    rejects(() => core.bindQueue('/', 'q', 'amq.headers', '', { 'x-match': 'some' }), 406, /Invalid x-match/);
  });

  it('rebinding the same (exchange, queue, key, args) is a no-op; other args make another binding', () => {
    const core = new BrokerCore();
    core.declareQueue('/', 'q');
    const a = core.bindQueue('/', 'q', 'amq.topic', 'k', { qos: 1 });
    assert.equal(core.bindQueue('/', 'q', 'amq.topic', 'k', { qos: 1 }), a);
    const b = core.bindQueue('/', 'q', 'amq.topic', 'k', { qos: 2 });
    assert.notEqual(a, b);
    assert.equal(core.bindingsOf('/', 'q').length, 2);
    assert.equal(core.unbindQueue('/', 'q', 'amq.topic', 'k', { qos: 1 }), true);
    assert.deepEqual(core.bindingsOf('/', 'q'), [b]);
    assert.equal(core.unbindQueue('/', 'q', 'amq.topic', 'k', { qos: 1 }), false);
  });

  it('replaceArgs replaces the (exchange, queue, key) binding in place (MQTT re-subscribe)', () => {
    const core = new BrokerCore();
    core.declareQueue('/', 's');
    const a = core.bindQueue('/', 's', 'amq.topic', 'a.*', { qos: 0 }, { noDollarWildcard: true, replaceArgs: true });
    const b = core.bindQueue('/', 's', 'amq.topic', 'a.*', { qos: 2 }, { noDollarWildcard: true, replaceArgs: true });
    assert.notEqual(a, b);
    assert.deepEqual(core.bindingsOf('/', 's'), [b]);
    assert.deepEqual(b.args, { qos: 2 });
    assert.equal(b.noDollarWildcard, true);
    publish(core, 'amq.topic', 'a.x');
    const s = consume(core, 's');
    assert.deepEqual(s.got[0]!.matched, [b]);
    assert.equal(
      core.bindQueue('/', 's', 'amq.topic', 'a.*', { qos: 2 }, { noDollarWildcard: true, replaceArgs: true }),
      b,
    );
  });

  it('unbind without args removes the key whatever the args (MQTT unsubscribe)', () => {
    const core = new BrokerCore();
    core.declareQueue('/', 'q');
    core.bindQueue('/', 'q', 'amq.topic', 'k', { qos: 1 });
    core.bindQueue('/', 'q', 'amq.topic', 'k', { qos: 2 });
    const other = core.bindQueue('/', 'q', 'amq.topic', 'other');
    assert.equal(core.unbindQueue('/', 'q', 'amq.topic', 'k'), true);
    assert.deepEqual(core.bindingsOf('/', 'q'), [other]);
    assert.equal(core.unbindQueue('/', 'q', 'amq.topic', 'k'), false);
  });
});

describe('BrokerCore: publish', () => {
  it('the default exchange routes by queue name', () => {
    const core = new BrokerCore();
    const q = core.declareQueue('/', 'orders');
    assert.equal(publish(core, '', 'orders'), 1);
    assert.equal(publish(core, '', 'nobody'), 0);
    const s = consume(core, 'orders');
    assert.equal(s.got[0]!.matched[0], q.defaultBinding);
    assert.deepEqual(core.stats, { published: 2, routed: 1, unroutable: 1, dropped: 0 });
  });

  it('each queue gets one copy with every binding that matched (overlapping MQTT subscriptions)', () => {
    const core = new BrokerCore();
    core.declareQueue('/', 'mqtt-session.c1');
    core.declareQueue('/', 'mqtt-session.c2');
    const plus = core.bindQueue(
      '/',
      'mqtt-session.c1',
      'amq.topic',
      'a.*',
      { qos: 0, id: 1 },
      { noDollarWildcard: true },
    );
    const hash = core.bindQueue(
      '/',
      'mqtt-session.c1',
      'amq.topic',
      'a.#',
      { qos: 1, id: 2 },
      { noDollarWildcard: true },
    );
    const c2 = core.bindQueue('/', 'mqtt-session.c2', 'amq.topic', '#', {}, { noDollarWildcard: true });
    assert.equal(publish(core, 'amq.topic', 'a.b'), 2);
    const s1 = consume(core, 'mqtt-session.c1');
    const s2 = consume(core, 'mqtt-session.c2');
    assert.equal(s1.got.length, 1);
    assert.deepEqual(new Set(s1.got[0]!.matched), new Set([plus, hash]));
    assert.deepEqual(s2.got[0]!.matched, [c2]);
    assert.equal(publish(core, 'amq.topic', '$SYS.x'), 0, '[MQTT-4.7.2-1]');
  });

  it('fanout and headers exchanges', () => {
    const core = new BrokerCore();
    for (const q of ['q1', 'q2', 'q3']) core.declareQueue('/', q);
    core.bindQueue('/', 'q1', 'amq.fanout', '');
    core.bindQueue('/', 'q2', 'amq.fanout', 'ignored');
    core.bindQueue('/', 'q3', 'amq.headers', '', { 'x-match': 'any', region: 'eu', kind: 'meter' });
    assert.equal(publish(core, 'amq.fanout', 'x'), 2);
    const headers: Headers = [['region', 'eu']];
    assert.equal(publish(core, 'amq.headers', '', { properties: { headers } }), 1);
    assert.equal(publish(core, 'amq.headers', '', { properties: { headers: [['region', 'us']] } }), 0);
  });

  it('follows exchange-to-exchange bindings, once per exchange even around a cycle', () => {
    const core = new BrokerCore();
    core.declareExchange('/', 'x1', 'topic');
    core.declareExchange('/', 'x2', 'fanout');
    core.declareQueue('/', 'q');
    core.bindExchange('/', 'x2', 'x1', 'a.#');
    core.bindExchange('/', 'x1', 'x2', '');
    core.bindQueue('/', 'q', 'x2', '');
    core.bindQueue('/', 'q', 'x1', 'a.b');
    assert.equal(publish(core, 'x1', 'a.b'), 1);
    const s = consume(core, 'q');
    assert.equal(s.got.length, 1);
    assert.equal(s.got[0]!.matched.length, 2);
    assert.equal(core.unbindExchange('/', 'x2', 'x1', 'a.#'), true);
    assert.equal(publish(core, 'x1', 'a.c'), 0);
    rejects(() => core.bindExchange('/', '', 'x1', 'k'), 403);
    core.deleteExchange('/', 'x2');
    assert.equal(core.vhost('/')!.exchanges.get('x1')!.bindingCount, 1, 'only x1 → q remains');
  });

  it('uses the alternate exchange only when the exchange matched nothing', () => {
    const core = new BrokerCore();
    core.declareExchange('/', 'ae', 'fanout');
    core.declareExchange('/', 'main', 'direct', { args: { 'alternate-exchange': 'ae' } });
    core.declareQueue('/', 'unrouted');
    core.declareQueue('/', 'routed');
    core.bindQueue('/', 'unrouted', 'ae', '');
    core.bindQueue('/', 'routed', 'main', 'k');
    assert.equal(publish(core, 'main', 'k'), 1);
    assert.equal(publish(core, 'main', 'other'), 1);
    assert.equal(core.getQueue('/', 'routed')!.messageCount, 1);
    assert.equal(core.getQueue('/', 'unrouted')!.messageCount, 1);
    core.declareExchange('/', 'lost', 'direct', { args: { 'alternate-exchange': 'missing' } });
    assert.equal(publish(core, 'lost', 'k'), 0);
  });

  it('refuses direct publishes to an internal exchange (403), which still routes via e2e', () => {
    const core = new BrokerCore();
    core.declareExchange('/', 'int', 'fanout', { internal: true });
    core.declareQueue('/', 'q');
    core.bindQueue('/', 'q', 'int', '');
    core.bindExchange('/', 'int', 'amq.direct', 'k');
    rejects(
      () => publish(core, 'int', 'k'),
      403,
      "ACCESS_REFUSED - cannot publish to internal exchange 'int' in vhost '/'",
    );
    assert.equal(publish(core, 'amq.direct', 'k'), 1);
  });

  it('counts drops from admission; a consumer may publish from deliver (nested routing)', () => {
    const core = new BrokerCore();
    const a = core.declareQueue('/', 'a');
    core.declareQueue('/', 'b');
    core.declareQueue('/', 'c');
    for (const q of ['a', 'b', 'c']) core.bindQueue('/', q, 'amq.topic', 'in');
    core.bindQueue('/', 'b', 'amq.topic', 'echo');
    core.bindQueue('/', 'c', 'amq.topic', 'echo');
    a.admission = { admit: () => false };
    const sb = consume(core, 'b');
    sb.onDeliver = (d) => {
      if (d.message.routingKey === 'in') assert.equal(publish(core, 'amq.topic', 'echo'), 2);
    };
    const sc = consume(core, 'c');
    assert.equal(publish(core, 'amq.topic', 'in'), 2);
    assert.deepEqual(
      sb.got.map((d) => d.message.routingKey),
      ['in', 'echo'],
    );
    assert.deepEqual(sc.got.map((d) => d.message.routingKey).sort(), ['echo', 'in']);
    assert.equal(core.stats.dropped, 1);
    assert.equal(core.stats.published, 2);
  });

  it('routes to a tenant vhost only within that vhost; retained stores are per vhost', () => {
    const core = new BrokerCore();
    core.ensureVHost('t1');
    core.declareQueue('t1', 'q');
    core.declareQueue('/', 'q');
    core.bindQueue('t1', 'q', 'amq.topic', '#');
    const r = core.publish(
      createMessage({ vhost: 't1', exchange: 'amq.topic', routingKey: 'x', body: Buffer.alloc(0) }),
    );
    assert.equal(r.queues, 1);
    assert.equal(core.getQueue('/', 'q')!.messageCount, 0);
    core
      .retained('t1')
      .set('x', createMessage({ vhost: 't1', exchange: 'amq.topic', routingKey: 'x', body: Buffer.alloc(0) }));
    assert.equal(core.retained('t1').size, 1);
    assert.equal(core.retained('/').size, 0);
  });
});
