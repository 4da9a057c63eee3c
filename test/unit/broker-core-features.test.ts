import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BrokerCore,
  type ConsumerSink,
  CoreError,
  createMessage,
  type Message,
  type MessageInit,
  REPLY_TO_PREFIX,
} from '../../src/core/broker-core.js';

function publish(core: BrokerCore, exchange: string, routingKey: string, more: Partial<MessageInit> = {}) {
  return core.publish(createMessage({ vhost: '/', exchange, routingKey, body: Buffer.from('x'), ...more }));
}

function refused(fn: () => unknown, code: number, message?: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CoreError, `CoreError expected, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (typeof message === 'string') assert.equal(e.message, message);
    else if (message) assert.match(e.message, message);
    return true;
  });
}

describe('publish results', () => {
  test('shared result objects; rejected counts queues that refused by x-overflow reject-publish', () => {
    const core = new BrokerCore();
    core.declareQueue('/', 'full', { args: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
    core.declareQueue('/', 'open');
    core.bindQueue('/', 'full', 'amq.fanout', '');
    core.bindQueue('/', 'open', 'amq.fanout', '');
    const r1 = publish(core, 'amq.fanout', '');
    const r2 = publish(core, 'amq.fanout', '');
    assert.deepEqual({ ...r1 }, { queues: 1, rejected: 1 });
    assert.equal(r1, r2, 'no allocation per publish');
    assert.deepEqual({ ...publish(core, '', 'full') }, { queues: 0, rejected: 1 });
    assert.deepEqual({ ...publish(core, '', 'open') }, { queues: 1, rejected: 0 });
    assert.equal(publish(core, '', 'open'), publish(core, '', 'open'));
  });

  test('expired and admission-refused messages are neither taken nor rejected', () => {
    const core = new BrokerCore();
    const q = core.declareQueue('/', 'q');
    q.admission = { admit: () => false };
    assert.deepEqual({ ...publish(core, '', 'q') }, { queues: 0, rejected: 0 });
    q.admission = undefined;
    assert.deepEqual({ ...publish(core, '', 'q', { expiresAt: Date.now() - 10 }) }, { queues: 0, rejected: 0 });
  });
});

describe('direct reply-to (https://www.rabbitmq.com/docs/direct-reply-to)', () => {
  test('publishing to the pseudo-queue name on the default exchange calls the consumer', () => {
    const core = new BrokerCore();
    const got: Message[] = [];
    let accept = true;
    const reg = core.registerReplyTo('/', (m) => {
      if (accept) got.push(m);
      return accept;
    });
    assert.match(reg.name, /^amq\.rabbitmq\.reply-to\.[A-Za-z0-9_-]{24}$/);
    assert.ok(reg.name.startsWith(REPLY_TO_PREFIX));
    assert.equal(core.replyToExists('/', reg.name), true);
    assert.equal(publish(core, '', reg.name).queues, 1);
    assert.equal(got.length, 1);
    accept = false;
    assert.equal(publish(core, '', reg.name).queues, 0, 'consumer could not take it');
    assert.equal(core.stats.dropped, 1);
    assert.equal(publish(core, '', `${REPLY_TO_PREFIX}forged`).queues, 0);
    const other = core.registerReplyTo('/', () => true);
    assert.notEqual(other.name, reg.name);
    reg.close();
    accept = true;
    assert.equal(publish(core, '', reg.name).queues, 0, 'closed: unroutable');
    assert.equal(core.replyToExists('/', reg.name), false);
    core.ensureVHost('t');
    assert.equal(
      core.publish(createMessage({ vhost: 't', exchange: '', routingKey: other.name, body: Buffer.alloc(0) })).queues,
      0,
      'per vhost',
    );
  });
});

describe('exchanges', () => {
  test('redeclare compares only alternate-exchange among the arguments (rabbit_exchange_type)', () => {
    const core = new BrokerCore();
    const x = core.declareExchange('/', 'x', 'topic', { args: { 'alternate-exchange': 'ae', other: 1 } });
    assert.equal(
      core.declareExchange('/', 'x', 'topic', { args: { 'alternate-exchange': Buffer.from('ae'), other: 2 } }),
      x,
    );
    refused(
      () => core.declareExchange('/', 'x', 'topic'),
      406,
      "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'x' in vhost '/': received none but current is 'ae'",
    );
    refused(
      () => core.declareExchange('/', 'y', 'topic', { args: { 'alternate-exchange': 1 } }),
      406,
      "PRECONDITION_FAILED - invalid type 'signedint' for arg 'alternate-exchange' in exchange 'y' in vhost '/'",
    );
  });

  test('auto-delete: deleted when its last binding as source goes (unbind, e2e destination deleted)', () => {
    const core = new BrokerCore();
    core.declareExchange('/', 'ad', 'direct', { autoDelete: true });
    core.declareExchange('/', 'dest', 'fanout');
    core.declareQueue('/', 'q');
    core.bindQueue('/', 'q', 'ad', 'k');
    core.bindExchange('/', 'dest', 'ad', 'k');
    assert.equal(core.unbindQueue('/', 'q', 'ad', 'k'), true);
    assert.ok(core.vhost('/')!.exchanges.has('ad'));
    core.deleteExchange('/', 'dest');
    assert.equal(core.vhost('/')!.exchanges.has('ad'), false);
    core.declareExchange('/', 'ad2', 'direct', { autoDelete: true });
    assert.ok(core.vhost('/')!.exchanges.has('ad2'), 'never bound: stays');
  });

  test('unbinding a binding that does not exist is not an error; missing ends are 404', () => {
    const core = new BrokerCore();
    core.declareQueue('/', 'q');
    assert.equal(core.unbindQueue('/', 'q', 'amq.direct', 'nothing'), false);
    assert.equal(core.unbindExchange('/', 'amq.fanout', 'amq.direct', 'nothing'), false);
    refused(() => core.unbindQueue('/', 'none', 'amq.direct', 'k'), 404, "NOT_FOUND - no queue 'none' in vhost '/'");
    refused(() => core.unbindQueue('/', 'q', 'none', 'k'), 404, "NOT_FOUND - no exchange 'none' in vhost '/'");
    refused(
      () => core.bindExchange('/', 'none', 'amq.direct', 'k'),
      404,
      "NOT_FOUND - no exchange 'none' in vhost '/'",
    );
  });
});

describe('exclusive queues and their owner (check_exclusive_access, 405)', () => {
  test('bind, unbind and delete by another connection are refused when the owner is given', () => {
    const core = new BrokerCore();
    const q = core.declareQueue('/', 'ex', { exclusive: true, owner: 'c1' });
    const locked = /^RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'ex' in vhost '\/'/;
    refused(() => core.bindQueue('/', 'ex', 'amq.direct', 'k', {}, { owner: 'c2' }), 405, locked);
    core.bindQueue('/', 'ex', 'amq.direct', 'k', {}, { owner: 'c1' });
    refused(() => core.unbindQueue('/', 'ex', 'amq.direct', 'k', undefined, { owner: 'c2' }), 405, locked);
    refused(() => core.deleteQueue('/', 'ex', { owner: 'c2' }), 405, locked);
    refused(() => q.assertExclusiveAccess('c2'), 405, locked);
    q.assertExclusiveAccess('c1');
    core.declareQueue('/', 'shared').assertExclusiveAccess('anyone');
    assert.equal(core.deleteQueue('/', 'ex', { owner: 'c1' }), 0);
  });

  test('if-empty is checked before if-unused', () => {
    const core = new BrokerCore();
    const q = core.declareQueue('/', 'q');
    publish(core, '', 'q');
    const sink: ConsumerSink = { tag: 't', prefetch: 1, canDeliver: () => false, deliver() {} };
    q.addConsumer(sink);
    refused(
      () => core.deleteQueue('/', 'q', { ifUnused: true, ifEmpty: true }),
      406,
      "PRECONDITION_FAILED - queue 'q' in vhost '/' not empty",
    );
  });
});

describe('x-expires through the core', () => {
  test('an expired queue is deleted with its bindings', async () => {
    const core = new BrokerCore();
    core.declareQueue('/', 'tmp', { args: { 'x-expires': 30 } });
    core.bindQueue('/', 'tmp', 'amq.topic', '#');
    for (let waited = 0; core.getQueue('/', 'tmp') !== undefined && waited < 5000; waited += 10) await sleep(10);
    assert.equal(core.getQueue('/', 'tmp'), undefined);
    assert.equal(core.vhost('/')!.exchanges.get('amq.topic')!.bindingCount, 0);
  });

  test('a passive declare counts as use', async () => {
    const core = new BrokerCore();
    // Wide margins: the "still there" check is at 2/3 of the period after the passive declare.
    core.declareQueue('/', 'tmp', { args: { 'x-expires': 900 } });
    await sleep(600);
    core.declareQueue('/', 'tmp', { passive: true });
    await sleep(600);
    assert.ok(core.getQueue('/', 'tmp'));
    for (let waited = 0; core.getQueue('/', 'tmp') !== undefined && waited < 5000; waited += 10) await sleep(10);
    assert.equal(core.getQueue('/', 'tmp'), undefined);
  });
});

describe('sender-selected distribution (https://www.rabbitmq.com/docs/sender-selected)', () => {
  test('extra CC/BCC keys route the message too; each queue gets it once', () => {
    const core = new BrokerCore();
    for (const q of ['to', 'cc', 'both', 'all']) core.declareQueue('/', q);
    core.bindQueue('/', 'to', 'amq.direct', 'to');
    core.bindQueue('/', 'cc', 'amq.direct', 'cc');
    core.bindQueue('/', 'both', 'amq.direct', 'to');
    core.bindQueue('/', 'both', 'amq.direct', 'cc');
    core.bindQueue('/', 'all', 'amq.topic', '#');
    const m = createMessage({ vhost: '/', exchange: 'amq.direct', routingKey: 'to', body: Buffer.from('x') });
    assert.equal(core.publish(m, ['cc', 'cc', 'nobody']).queues, 3);
    const both = core.getQueue('/', 'both')!;
    assert.equal(both.messageCount, 1);
    assert.equal(both.get({ noAck: true })!.matched.length, 2, 'both bindings, once each');
    const t = createMessage({ vhost: '/', exchange: 'amq.topic', routingKey: 'a', body: Buffer.from('x') });
    assert.equal(core.publish(t, ['b', 'c']).queues, 1);
    assert.equal(core.getQueue('/', 'all')!.get({ noAck: true })!.matched.length, 1);
    const d = createMessage({ vhost: '/', exchange: '', routingKey: 'to', body: Buffer.from('x') });
    assert.equal(core.publish(d, ['cc', 'to', 'none']).queues, 2, 'default exchange: each key names a queue');
    const f = createMessage({ vhost: '/', exchange: 'amq.fanout', routingKey: '', body: Buffer.from('x') });
    core.bindQueue('/', 'to', 'amq.fanout', '');
    assert.equal(core.publish(f, ['x', 'y']).queues, 1);
  });
});

describe('consume checks', () => {
  test('assertCanConsume refuses like addConsumer without attaching', () => {
    const core = new BrokerCore();
    const q = core.declareQueue('/', 'q');
    q.assertCanConsume({ exclusive: true });
    q.addConsumer({ tag: 'a', prefetch: 0, deliver() {} });
    refused(
      () => q.assertCanConsume({ exclusive: true }),
      403,
      "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use",
    );
    q.assertCanConsume();
    core.deleteQueue('/', 'q');
    refused(() => q.assertCanConsume(), 404, "NOT_FOUND - no queue 'q' in vhost '/'");
  });
});

describe('resolve now, deliver later (AMQP transactions, rabbit_channel tx)', () => {
  test('the queues are found at resolve; delivery at commit survives the exchange going away', () => {
    const core = new BrokerCore();
    core.declareExchange('/', 'x', 'fanout');
    core.declareQueue('/', 'a');
    core.declareQueue('/', 'b');
    core.bindQueue('/', 'a', 'x', '');
    core.bindQueue('/', 'b', 'x', '');
    const m = createMessage({ vhost: '/', exchange: 'x', routingKey: '', body: Buffer.from('t') });
    const targets = core.resolve(m);
    assert.deepEqual(
      targets.map(([q]) => q.name),
      ['a', 'b'],
    );
    assert.equal(core.getQueue('/', 'a')!.messageCount, 0, 'resolve offers nothing');
    core.deleteExchange('/', 'x');
    core.deleteQueue('/', 'b');
    assert.deepEqual(core.deliverResolved(m, targets), { queues: 1, rejected: 0 });
    assert.equal(core.getQueue('/', 'a')!.messageCount, 1);
  });

  test('resolve checks what publish checks', () => {
    const core = new BrokerCore();
    const m = createMessage({ vhost: '/', exchange: 'missing', routingKey: '', body: Buffer.from('t') });
    assert.throws(() => core.resolve(m), /NOT_FOUND/);
  });
});
