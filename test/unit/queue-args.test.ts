import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BrokerCore, CoreError } from '../../src/core/broker-core.js';
import { amqpTypeName, validateQueueArgs } from '../../src/core/queue/args.js';

/** Asserts a CoreError with this code and exactly this message. */
function refused(fn: () => unknown, code: number, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CoreError, `CoreError expected, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

const Q = "queue 'q' in vhost '/'";

describe('queue arguments: rabbit_amqqueue:check_declare_arguments texts (406)', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ 'x-expires': 0 }, `invalid arg 'x-expires' for ${Q}: {value_zero,0}`],
    [{ 'x-expires': 'soon' }, `invalid arg 'x-expires' for ${Q}: "expected integer, got longstr"`],
    [{ 'x-expires': -5 }, `invalid arg 'x-expires' for ${Q}: {value_negative,-5}`],
    [{ 'x-message-ttl': -1 }, `invalid arg 'x-message-ttl' for ${Q}: {value_negative,-1}`],
    [{ 'x-message-ttl': 1.5 }, `invalid arg 'x-message-ttl' for ${Q}: "expected integer, got double"`],
    [{ 'x-message-ttl': 4294967296 }, `invalid arg 'x-message-ttl' for ${Q}: {value_too_large,4294967296,4294967295}`],
    [{ 'x-max-length': -1 }, `invalid arg 'x-max-length' for ${Q}: {value_negative,-1}`],
    [{ 'x-max-length-bytes': true }, `invalid arg 'x-max-length-bytes' for ${Q}: "expected integer, got bool"`],
    [{ 'x-max-priority': 256 }, `invalid arg 'x-max-priority' for ${Q}: {max_value_exceeded,256}`],
    [
      { 'x-single-active-consumer': 'yes' },
      `invalid arg 'x-single-active-consumer' for ${Q}: {unacceptable_type,longstr}`,
    ],
    [
      { 'x-dead-letter-routing-key': 'k' },
      `invalid arg 'x-dead-letter-routing-key' for ${Q}: routing_key_but_no_dlx_defined`,
    ],
    [{ 'x-dead-letter-exchange': 5 }, `invalid type 'signedint' for arg 'x-dead-letter-exchange' in ${Q}`],
    [
      { 'x-dead-letter-exchange': 'd', 'x-dead-letter-routing-key': 7 },
      `invalid arg 'x-dead-letter-routing-key' for ${Q}: {unacceptable_type,signedint}`,
    ],
    [{ 'x-overflow': 'explode' }, `invalid arg 'x-overflow' for ${Q}: invalid_overflow`],
    [{ 'x-queue-mode': 'fast' }, `invalid arg 'x-queue-mode' for ${Q}: "unsupported queue mode 'fast'"`],
    [{ 'x-queue-version': 3 }, `invalid arg 'x-queue-version' for ${Q}: "unsupported queue version '3'"`],
    [{ 'x-queue-type': 'foo' }, `invalid arg 'x-queue-type' for ${Q}: "unsupported queue type 'foo'"`],
    [{ 'x-queue-type': 'stream' }, `invalid arg 'x-queue-type' for ${Q}: "stream queues are not supported by Braid"`],
    [{ 'x-queue-type': 1 }, `invalid arg 'x-queue-type' for ${Q}: {unacceptable_type,signedint}`],
    [{ 'x-delivery-limit': 5 }, `invalid arg 'x-delivery-limit' for ${Q} of queue type rabbit_classic_queue`],
    [{ 'x-max-age': '1D' }, `invalid arg 'x-max-age' for ${Q} of queue type rabbit_classic_queue`],
    [
      { 'x-queue-type': 'quorum', 'x-max-priority': 5 },
      `invalid arg 'x-max-priority' for ${Q} of queue type rabbit_quorum_queue`,
    ],
    [
      { 'x-queue-type': 'quorum', 'x-queue-mode': 'lazy' },
      `invalid arg 'x-queue-mode' for ${Q} of queue type rabbit_quorum_queue`,
    ],
    [
      { 'x-queue-type': 'quorum', 'x-delivery-limit': -1 },
      `invalid arg 'x-delivery-limit' for ${Q}: {value_negative,-1}`,
    ],
  ];
  for (const [args, text] of cases) {
    test(`${JSON.stringify(args)} → ${text}`, () => {
      refused(() => validateQueueArgs(args, 'q', '/'), 406, `PRECONDITION_FAILED - ${text}`);
    });
  }

  test('valid arguments pass; unknown ones are kept, as RabbitMQ', () => {
    validateQueueArgs(
      {
        'x-expires': 1,
        'x-message-ttl': 0,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': Buffer.from('k'),
        'x-max-length': 0n,
        'x-max-length-bytes': 10,
        'x-max-priority': 255,
        'x-overflow': 'reject-publish-dlx',
        'x-queue-mode': 'lazy',
        'x-queue-version': 2,
        'x-single-active-consumer': false,
        'x-queue-type': 'classic',
        'x-custom': { a: 1 },
      },
      'q',
      '/',
    );
    validateQueueArgs(
      { 'x-queue-type': 'quorum', 'x-delivery-limit': 3, 'x-quorum-initial-group-size': 3, 'x-message-ttl': 10 },
      'q',
      '/',
    );
  });

  test('AMQP field type names as RabbitMQ prints them', () => {
    assert.deepEqual(['s', Buffer.alloc(0), true, 1, 2 ** 40, 1.5, 1n, null, new Date(), [], {}].map(amqpTypeName), [
      'longstr',
      'longstr',
      'bool',
      'signedint',
      'long',
      'double',
      'long',
      'void',
      'timestamp',
      'array',
      'table',
    ]);
  });
});

describe('queue types at declare (https://www.rabbitmq.com/docs/quorum-queues)', () => {
  test('quorum queues must be durable, non-exclusive, non-auto-delete (rabbit_queue_type_util texts)', () => {
    const core = new BrokerCore();
    const quorum = { 'x-queue-type': 'quorum' };
    refused(
      () => core.declareQueue('/', 'q', { args: quorum }),
      406,
      `PRECONDITION_FAILED - invalid property 'non-durable' for ${Q}`,
    );
    refused(
      () => core.declareQueue('/', 'q', { durable: true, exclusive: true, owner: 'c', args: quorum }),
      406,
      `PRECONDITION_FAILED - invalid property 'exclusive-owner' for ${Q}`,
    );
    refused(
      () => core.declareQueue('/', 'q', { durable: true, autoDelete: true, exclusive: true, args: quorum }),
      406,
      `PRECONDITION_FAILED - invalid property 'auto-delete' for ${Q}`,
    );
    refused(
      () => core.declareQueue('/', '', { durable: true, args: quorum }),
      406,
      'PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_quorum_queue',
    );
    const q = core.declareQueue('/', 'q', { durable: true, args: quorum });
    assert.equal(q.type, 'quorum');
    assert.equal(core.declareQueue('/', 'c').type, 'classic');
  });

  test('an exclusive queue is never durable (rabbit_channel)', () => {
    const core = new BrokerCore();
    const q = core.declareQueue('/', 'ex', { durable: true, exclusive: true, owner: 'c1' });
    assert.equal(q.durable, false);
    assert.equal(core.declareQueue('/', 'ex', { durable: true, exclusive: true, owner: 'c1' }), q);
  });
});

describe('redeclare equivalence (rabbit_amqqueue:assert_args_equivalence)', () => {
  test('compares only the arguments of the queue type, by value', () => {
    const core = new BrokerCore();
    const args = { 'x-message-ttl': 1000, 'x-dead-letter-exchange': 'dlx', 'x-custom': 1 };
    const q = core.declareQueue('/', 'q', { args });
    assert.equal(core.declareQueue('/', 'q', { args: { ...args, 'x-custom': 2 } }), q, 'unknown args are ignored');
    assert.equal(
      core.declareQueue('/', 'q', {
        args: { 'x-message-ttl': 1000n, 'x-dead-letter-exchange': Buffer.from('dlx'), 'x-queue-type': 'classic' },
      }),
      q,
      'long vs int, longstr as bytes, explicit default type',
    );
    refused(
      () => core.declareQueue('/', 'q', { args: { ...args, 'x-dead-letter-exchange': 'other' } }),
      406,
      "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for queue 'q' in vhost '/': received 'other' but current is 'dlx'",
    );
    refused(
      () => core.declareQueue('/', 'q', { args: { ...args, 'x-expires': 10 } }),
      406,
      "PRECONDITION_FAILED - inequivalent arg 'x-expires' for queue 'q' in vhost '/': received '10' but current is none",
    );
    refused(
      () => core.declareQueue('/', 'q', { args: { ...args, 'x-queue-type': 'quorum' } }),
      406,
      /^PRECONDITION_FAILED - inequivalent arg 'x-queue-type'/,
    );
  });

  test('quorum queues compare x-delivery-limit', () => {
    const core = new BrokerCore();
    const args = { 'x-queue-type': 'quorum', 'x-delivery-limit': 3 };
    core.declareQueue('/', 'qq', { durable: true, args });
    refused(
      () => core.declareQueue('/', 'qq', { durable: true, args: { ...args, 'x-delivery-limit': 4 } }),
      406,
      /inequivalent arg 'x-delivery-limit'/,
    );
  });

  test('a server-named queue cannot be redeclared by name: amq.* is reserved (check_name before lookup)', () => {
    const core = new BrokerCore();
    const q = core.declareQueue('/', '', { exclusive: true, owner: 'c' });
    refused(
      () => core.declareQueue('/', q.name, { exclusive: true, owner: 'c' }),
      403,
      `ACCESS_REFUSED - queue name '${q.name}' contains reserved prefix 'amq.*'`,
    );
    assert.equal(core.declareQueue('/', q.name, { passive: true, owner: 'c' }), q);
  });
});
