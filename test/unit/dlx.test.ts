import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BrokerCore,
  type ConsumerSink,
  createMessage,
  type Delivery,
  type Headers,
  type HeaderValue,
  type MessageInit,
} from '../../src/core/broker-core.js';
import { isDeathCycle, recordDeath, xDeath } from '../../src/core/queue/dlx.js';

function publish(core: BrokerCore, exchange: string, routingKey: string, more: Partial<MessageInit> = {}) {
  return core.publish(createMessage({ vhost: '/', exchange, routingKey, body: Buffer.from('payload'), ...more }));
}

class Sink implements ConsumerSink {
  readonly got: Delivery[] = [];
  onDeliver: ((d: Delivery) => void) | undefined;
  constructor(
    readonly tag = 'c',
    readonly prefetch = 0,
  ) {}
  deliver(d: Delivery): void {
    this.got.push(d);
    this.onDeliver?.(d);
  }
}

function header(h: Headers | undefined, key: string): HeaderValue | undefined {
  return h?.find(([k]) => k === key)?.[1];
}

type Death = Record<string, HeaderValue>;
function deaths(d: Delivery): Death[] {
  return xDeath(d.message.properties.headers) as Death[];
}

/** work → (dlx fanout) → dead. */
function setup(workArgs: Record<string, unknown> = {}) {
  const core = new BrokerCore();
  core.declareExchange('/', 'dlx', 'fanout');
  core.declareQueue('/', 'dead');
  core.bindQueue('/', 'dead', 'dlx', '');
  const work = core.declareQueue('/', 'work', { args: { 'x-dead-letter-exchange': 'dlx', ...workArgs } });
  const dead = new Sink('dead');
  core.getQueue('/', 'dead')!.addConsumer(dead);
  return { core, work, dead };
}

describe('dead-lettering (https://www.rabbitmq.com/docs/dlx)', () => {
  test('reject without requeue republishes to the DLX with x-death and first/last death headers', () => {
    const { core, work, dead } = setup();
    publish(core, 'amq.direct', 'ignored');
    core.bindQueue('/', 'work', 'amq.direct', 'orders');
    publish(core, 'amq.direct', 'orders', {
      properties: { headers: [['app', 'x']], expiration: '60000', correlationId: 'c1' },
    });
    const c = new Sink();
    work.addConsumer(c);
    work.nack(c.got[0]!, false);
    assert.equal(dead.got.length, 1);
    const m = dead.got[0]!.message;
    assert.equal(m.body, c.got[0]!.message.body, 'body shared by reference');
    assert.equal(m.exchange, 'dlx');
    assert.equal(m.routingKey, 'orders', 'no x-dead-letter-routing-key: the original key');
    assert.equal(m.properties.expiration, undefined, 'expiration removed');
    assert.equal(m.expiresAt, undefined);
    assert.equal(m.properties.correlationId, 'c1');
    const h = m.properties.headers!;
    assert.deepEqual(
      h.map(([k]) => k),
      [
        'app',
        'x-death',
        'x-first-death-reason',
        'x-first-death-queue',
        'x-first-death-exchange',
        'x-last-death-reason',
        'x-last-death-queue',
        'x-last-death-exchange',
      ],
      'headers stay ordered pairs, the publisher’s first',
    );
    const [entry] = deaths(dead.got[0]!);
    assert.ok(entry!.time instanceof Date);
    assert.deepEqual(
      { ...entry, time: undefined },
      {
        count: 1,
        reason: 'rejected',
        queue: 'work',
        time: undefined,
        exchange: 'amq.direct',
        'routing-keys': ['orders'],
        'original-expiration': '60000',
      },
    );
    assert.equal(header(h, 'x-first-death-reason'), 'rejected');
    assert.equal(header(h, 'x-first-death-queue'), 'work');
    assert.equal(header(h, 'x-first-death-exchange'), 'amq.direct');
    assert.equal(header(h, 'x-last-death-queue'), 'work');
    assert.equal(work.stats.deadLettered, 1);
  });

  test('x-dead-letter-routing-key replaces the key; the default exchange as DLX routes by queue name', () => {
    const core = new BrokerCore();
    core.declareQueue('/', 'parking');
    const work = core.declareQueue('/', 'work', {
      args: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'parking' },
    });
    publish(core, '', 'work');
    const d = work.get({ noAck: false })!;
    work.nack(d, false);
    const parked = core.getQueue('/', 'parking')!.get({ noAck: true })!;
    assert.equal(parked.message.routingKey, 'parking');
    assert.equal(parked.message.exchange, '');
    assert.deepEqual(deaths(parked)[0]!['routing-keys'], ['work']);
  });

  test('expired (per-queue TTL, by timer with no consumer) and maxlen (drop-head) reasons', async () => {
    const { core, dead } = setup({ 'x-message-ttl': 10 });
    publish(core, '', 'work');
    for (let waited = 0; dead.got.length === 0 && waited < 5000; waited += 10) await sleep(10);
    assert.equal(dead.got.length, 1);
    assert.equal(deaths(dead.got[0]!)[0]!.reason, 'expired');
    const s = setup({ 'x-max-length': 1 });
    publish(s.core, '', 'work', { body: Buffer.from('first') });
    publish(s.core, '', 'work', { body: Buffer.from('second') });
    assert.deepEqual(
      s.dead.got.map((d) => [d.message.body.toString(), deaths(d)[0]!.reason]),
      [['first', 'maxlen']],
    );
  });

  test('reject-publish-dlx: the publish is rejected (RouteResult.rejected) and dead-lettered as maxlen', () => {
    const { core, dead } = setup({ 'x-max-length': 0, 'x-overflow': 'reject-publish-dlx' });
    const r = publish(core, '', 'work');
    assert.deepEqual({ ...r }, { queues: 0, rejected: 1 });
    assert.equal(deaths(dead.got[0]!)[0]!.reason, 'maxlen');
  });

  test('quorum x-delivery-limit: delivery_limit reason', () => {
    const core = new BrokerCore();
    core.declareQueue('/', 'dead');
    const qq = core.declareQueue('/', 'qq', {
      durable: true,
      args: {
        'x-queue-type': 'quorum',
        'x-delivery-limit': 0,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': 'dead',
      },
    });
    publish(core, '', 'qq');
    qq.nack(qq.get({ noAck: false })!, true);
    const d = core.getQueue('/', 'dead')!.get({ noAck: true })!;
    assert.equal(deaths(d)[0]!.reason, 'delivery_limit');
  });

  test('a missing DLX drops the message silently', () => {
    const core = new BrokerCore();
    const q = core.declareQueue('/', 'q', { args: { 'x-dead-letter-exchange': 'nowhere' } });
    publish(core, '', 'q');
    q.nack(q.get({ noAck: false })!, false);
    assert.equal(q.messageCount + q.unackedCount, 0);
  });

  test('a retry loop (reject → TTL queue → back) counts each (queue, reason) and moves it to the front', async () => {
    const core = new BrokerCore();
    const work = core.declareQueue('/', 'work', {
      args: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'retry' },
    });
    core.declareQueue('/', 'retry', {
      args: { 'x-message-ttl': 5, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'work' },
    });
    const c = new Sink();
    work.addConsumer(c);
    publish(core, '', 'work');
    for (let round = 1; round <= 3; round++) {
      while (c.got.length < round) await sleep(2);
      work.nack(c.got[round - 1]!, false);
    }
    while (c.got.length < 4) await sleep(2);
    const last = deaths(c.got[3]!);
    assert.deepEqual(
      last.map((e) => [e.queue, e.reason, e.count]),
      [
        ['retry', 'expired', 3],
        ['work', 'rejected', 3],
      ],
    );
    const h = c.got[3]!.message.properties.headers;
    assert.equal(header(h, 'x-first-death-reason'), 'rejected');
    assert.equal(header(h, 'x-first-death-queue'), 'work');
    assert.equal(header(h, 'x-last-death-reason'), 'expired');
    assert.equal(header(h, 'x-last-death-queue'), 'retry');
    assert.equal(header(h, 'x-last-death-exchange'), '');
  });

  test('a TTL cycle without rejection is dropped (rabbit_dead_letter:detect_cycles)', async () => {
    const core = new BrokerCore();
    const a = core.declareQueue('/', 'a', {
      args: { 'x-message-ttl': 5, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'b' },
    });
    const b = core.declareQueue('/', 'b', {
      args: { 'x-message-ttl': 5, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'a' },
    });
    const self = core.declareQueue('/', 'self', {
      args: { 'x-message-ttl': 5, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'self' },
    });
    publish(core, '', 'a');
    publish(core, '', 'self');
    for (let waited = 0; a.stats.expired + b.stats.expired < 2 && waited < 5000; waited += 10) await sleep(10);
    await sleep(50); // a cycle, if it were not cut, would bring a message back by now
    assert.equal(a.messageCount + b.messageCount + self.messageCount, 0);
    assert.equal(a.stats.expired, 1);
    assert.equal(b.stats.expired, 1);
    assert.equal(a.stats.enqueued, 1, 'never came back to a');
    assert.equal(self.stats.enqueued, 1);
  });

  test('isDeathCycle: a rejection anywhere up to the earlier death breaks the cycle', () => {
    const e = (queue: string, reason: string) => ({ queue, reason, count: 1 });
    assert.equal(isDeathCycle('a', [e('b', 'expired'), e('a', 'expired')]), true);
    assert.equal(isDeathCycle('a', [e('b', 'expired'), e('a', 'rejected')]), false);
    assert.equal(isDeathCycle('a', [e('b', 'rejected'), e('a', 'expired')]), false);
    assert.equal(isDeathCycle('a', [e('b', 'expired')]), false);
    assert.equal(isDeathCycle('a', ['junk', e('a', 'expired')]), false);
  });

  test('recordDeath keeps the entry time of the first death and reads Buffer texts', () => {
    const msg = createMessage({
      vhost: '/',
      exchange: 'x',
      routingKey: 'k',
      body: Buffer.alloc(0),
      properties: {
        headers: [
          ['x-death', [{ count: 4n, reason: Buffer.from('expired'), queue: Buffer.from('q'), time: new Date(1000) }]],
        ],
      },
    });
    const h = recordDeath(msg, 'expired', 'q', 5_000_000);
    const [entry] = xDeath(h) as Death[];
    assert.equal(entry!.count, 5);
    assert.deepEqual(entry!.time, new Date(1000));
    assert.equal(header(h, 'x-first-death-reason'), 'expired');
  });
});

describe('dead-lettering with sender-selected keys', () => {
  test('routing-keys lists the CC keys and, without a dead-letter routing key, they route too', () => {
    const core = new BrokerCore();
    core.declareExchange('/', 'dlx', 'direct');
    core.declareQueue('/', 'by-key');
    core.declareQueue('/', 'by-cc');
    core.bindQueue('/', 'by-key', 'dlx', 'main');
    core.bindQueue('/', 'by-cc', 'dlx', 'copy');
    const work = core.declareQueue('/', 'work', { args: { 'x-dead-letter-exchange': 'dlx' } });
    core.bindQueue('/', 'work', 'amq.direct', 'main');
    publish(core, 'amq.direct', 'main', { properties: { headers: [['CC', ['copy']]] } });
    work.nack(work.get({ noAck: false })!, false);
    const d = core.getQueue('/', 'by-cc')!.get({ noAck: true })!;
    assert.deepEqual(deaths(d)[0]!['routing-keys'], ['main', 'copy']);
    assert.equal(core.getQueue('/', 'by-key')!.messageCount, 1);
  });
});
