/**
 * Cross-check against amqplib's codec (node_modules/amqplib/lib/defs.js, itself generated from the
 * same RabbitMQ spec by its bin/generate-defs.js): what we encode amqplib decodes to the same
 * fields, and what amqplib encodes we decode to the same method. Where neither side has a number
 * inside a table (amqplib picks b/s/I by magnitude, we pick I/l/d) the bytes must be identical.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  type BasicProperties,
  decodeContentHeader,
  decodeMethod,
  encodeBasicProperties,
  encodeContent,
  encodeMethodFrame,
  type Frame,
  FrameReader,
  type Method,
  MethodId,
} from '../../src/amqp091/codec/index.js';
import { projectRoot } from '../helpers/paths.js';

// amqplib's package.json "exports" hides lib/; load the files by path.
const require = createRequire(import.meta.url);
const lib = join(projectRoot(), 'node_modules', 'amqplib', 'lib');
const defs = require(join(lib, 'defs.js')) as {
  encodeMethod(id: number, channel: number, fields: object): Buffer;
  encodeProperties(id: number, channel: number, size: number, fields: object): Buffer;
};
const amqpFrame = require(join(lib, 'frame.js')) as {
  parseFrame(bin: Buffer, max: number): { type: number; channel: number; payload: Buffer; rest: Buffer } | false;
  decodeFrame(f: { type: number; channel: number; payload: Buffer }): {
    id?: number;
    channel: number;
    fields?: Record<string, unknown>;
    size?: number;
  };
};

function amqplibDecode(wire: Buffer) {
  const f = amqpFrame.parseFrame(wire, 0);
  assert.ok(f, 'amqplib parses a complete frame');
  assert.equal(f.rest.length, 0, 'one frame, nothing after it');
  return amqpFrame.decodeFrame(f);
}

function ourFrame(wire: Buffer): Frame {
  const r = new FrameReader(131072);
  r.push(wire);
  const f = r.next();
  assert.ok(f);
  assert.equal(r.next(), undefined);
  return f;
}

const fieldsOf = (m: Method): Record<string, unknown> => {
  const { id: _id, ...fields } = m;
  return fields;
};

const serverProperties = {
  product: 'Braid',
  version: '0.1.0',
  capabilities: {
    publisher_confirms: true,
    exchange_exchange_bindings: true,
    'basic.nack': true,
    consumer_cancel_notify: true,
    'connection.blocked': false,
  },
  cluster_name: 'braid@localhost',
  list: ['a', ['b'], { c: 'd' }],
};

/** Methods with no numbers inside tables: byte-identical with amqplib. */
const samples: Method[] = [
  {
    id: MethodId.ConnectionStart,
    versionMajor: 0,
    versionMinor: 9,
    serverProperties,
    mechanisms: Buffer.from('PLAIN AMQPLAIN'),
    locales: Buffer.from('en_US'),
  },
  {
    id: MethodId.ConnectionStartOk,
    clientProperties: { product: 'amqplib', capabilities: { 'basic.nack': true } },
    mechanism: 'PLAIN',
    response: Buffer.from('\0guest\0guest'),
    locale: 'en_US',
  },
  { id: MethodId.ConnectionTune, channelMax: 2047, frameMax: 131072, heartbeat: 60 },
  { id: MethodId.ConnectionOpen, virtualHost: '/', capabilities: '', insist: false },
  { id: MethodId.ConnectionClose, replyCode: 320, replyText: 'CONNECTION_FORCED - bye', classId: 0, methodId: 0 },
  { id: MethodId.ChannelOpenOk, channelId: Buffer.alloc(0) },
  {
    id: MethodId.BasicPublish,
    ticket: 0,
    exchange: 'amq.topic',
    routingKey: 'a.b.c',
    mandatory: true,
    immediate: false,
  },
  {
    id: MethodId.BasicDeliver,
    consumerTag: 'amq.ctag-xyz',
    deliveryTag: 2 ** 33 + 17,
    redelivered: true,
    exchange: '',
    routingKey: 'queue-1',
  },
  {
    id: MethodId.BasicGetOk,
    deliveryTag: 5,
    redelivered: false,
    exchange: 'x',
    routingKey: 'rk',
    messageCount: 4000000000,
  },
  {
    id: MethodId.BasicConsume,
    ticket: 0,
    queue: 'q',
    consumerTag: '',
    noLocal: false,
    noAck: true,
    exclusive: true,
    nowait: false,
    arguments: { 'x-stream-offset': 'first' },
  },
  {
    id: MethodId.QueueDeclare,
    ticket: 0,
    queue: 'q',
    passive: false,
    durable: true,
    exclusive: false,
    autoDelete: true,
    nowait: true,
    arguments: { 'x-queue-type': 'quorum' },
  },
  { id: MethodId.BasicNack, deliveryTag: 99, multiple: true, requeue: false },
  { id: MethodId.BasicQos, prefetchSize: 0, prefetchCount: 10, global: true },
  { id: MethodId.ConfirmSelect, nowait: false },
  { id: MethodId.ConnectionBlocked, reason: 'low on memory' },
];

describe('AMQP 0-9-1 codec against amqplib', () => {
  for (const m of samples) {
    const name = Object.entries(MethodId).find(([, v]) => v === m.id)![0];

    test(`${name}: ours decodes in amqplib, amqplib's decodes in ours, same bytes`, () => {
      const ours = encodeMethodFrame(3, m);
      const theirs = defs.encodeMethod(m.id, 3, fieldsOf(m));
      assert.deepEqual(ours, theirs, 'byte-identical');

      const d = amqplibDecode(ours);
      assert.equal(d.id, m.id);
      assert.equal(d.channel, 3);
      assert.deepEqual({ ...d.fields }, fieldsOf(m));

      const f = ourFrame(theirs);
      assert.equal(f.channel, 3);
      assert.deepEqual(decodeMethod(f.payload), m);
    });
  }

  test('numbers in tables: amqplib picks b/s/I/l/d, we decode each to the same number', () => {
    const args = { small: 5, neg: -100, short: 30000, int: 2 ** 30, long: 2 ** 40, dbl: 0.5, nested: { n: 7 } };
    const theirs = defs.encodeMethod(MethodId.QueueDeclare, 1, {
      ticket: 0,
      queue: 'q',
      passive: false,
      durable: false,
      exclusive: false,
      autoDelete: false,
      nowait: false,
      arguments: args,
    });
    const m = decodeMethod(ourFrame(theirs).payload);
    assert.ok(m.id === MethodId.QueueDeclare);
    assert.deepEqual(m.arguments, args);
    // And the other way round.
    const ours = encodeMethodFrame(1, m);
    assert.deepEqual(amqplibDecode(ours).fields?.arguments, args);
  });

  const props: BasicProperties = {
    contentType: 'application/json',
    contentEncoding: 'gzip',
    headers: [
      ['x-first', 'one'],
      ['x-flag', true],
      ['x-nested', { k: 'v' }],
      ['x-list', ['a', 'b']],
    ],
    deliveryMode: 2,
    priority: 9,
    correlationId: 'corr',
    replyTo: 'amq.rabbitmq.reply-to',
    expiration: '60000',
    messageId: 'msg-1',
    timestamp: 1700000000,
    type: 'event',
    userId: 'guest',
    appId: 'braid',
    clusterId: 'c1',
  };
  const asObject = (p: BasicProperties): Record<string, unknown> => ({
    ...p,
    headers: p.headers === undefined ? undefined : Object.fromEntries(p.headers),
  });

  test('basic properties with headers: ours → amqplib, same bytes', () => {
    const body = Buffer.from('payload');
    const [wire] = encodeContent(4, encodeBasicProperties(props), body, 131072);
    const f = amqpFrame.parseFrame(wire!, 0);
    assert.ok(f);
    const d = amqpFrame.decodeFrame(f);
    assert.equal(d.id, 60);
    assert.equal(d.size, body.length);
    assert.deepEqual({ ...d.fields }, asObject(props));
    const theirs = defs.encodeProperties(60, 4, body.length, asObject(props));
    assert.deepEqual(theirs, wire!.subarray(0, theirs.length), 'header frame byte-identical');
  });

  test('basic properties: amqplib → ours, every single property and all of them', () => {
    const all = Object.keys(props) as Array<keyof BasicProperties>;
    for (const subset of [...all.map((k) => [k]), all, []]) {
      const p = Object.fromEntries(subset.map((k) => [k, props[k]])) as BasicProperties;
      const theirs = defs.encodeProperties(60, 1, 123, asObject(p));
      const h = decodeContentHeader(ourFrame(theirs).payload);
      assert.deepEqual(h, { classId: 60, weight: 0, bodySize: 123, properties: p }, subset.join(','));
    }
  });
});
