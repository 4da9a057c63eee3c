/**
 * AMQP 0-9-1 codec: methods, basic properties, field tables (habit 11: hex fixtures that are
 * parsed, generated and mirrored; property round trips from the generated metadata; fuzzing).
 * Frames and content are in amqp091-codec-frame.test.ts, the amqplib cross-check in
 * amqp091-codec-amqplib.test.ts, the generator check in amqp091-codec-gen.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  AmqpCodecError,
  type AmqpDomainType,
  BASIC_PROPERTY_INFO,
  type BasicProperties,
  basicPropertiesSize,
  decodeBasicProperties,
  decodeFieldTable,
  decodeMethod,
  encodeBasicProperties,
  encodeFieldTable,
  encodeMethodFrame,
  type FieldTable,
  type FieldValue,
  fieldValueSize,
  type HeaderPairs,
  hasContent,
  isSynchronous,
  METHOD_INFO,
  type Method,
  MethodId,
  type MethodInfo,
  methodName,
  methodPayloadSize,
  readHeaderPairs,
  writeFieldValue,
  writeMethodPayload,
} from '../../src/amqp091/codec/index.js';
import type { Headers, HeaderValue } from '../../src/core/message.js';

// ---------------------------------------------------------------------------------------------
// Arbitraries from the generated metadata (METHOD_INFO, BASIC_PROPERTY_INFO), so that a method
// added to the spec is covered without touching the tests (after amqplib test/lib/data.js).
// Every arbitrary yields values that decode back to themselves: longstr as a Buffer, bigint only
// outside the safe-integer range, Dates in whole seconds, no -0.

const shortstr: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'grapheme-ascii', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }).filter((s) => Buffer.byteLength(s) <= 255),
  fc.constant('x'.repeat(255)),
);
const bytes = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
const safeLong = fc.maxSafeInteger().filter((n) => (n | 0) !== n);
const bigLong = fc
  .bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })
  .filter((n) => n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER));
const seconds = fc.integer({ min: 0, max: 4102444800 }).map((s) => new Date(s * 1000));

const fieldValue: fc.Arbitrary<FieldValue> = fc.letrec<{ value: FieldValue; table: FieldTable }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.integer(),
    safeLong,
    fc.double().filter((d) => !Object.is(d, -0)),
    bigLong,
    fc.boolean(),
    fc.constant(null),
    bytes,
    seconds,
    fc.array(tie('value'), { maxLength: 4 }),
    tie('table'),
  ),
  table: fc.dictionary(shortstr, tie('value'), { maxKeys: 4, noNullPrototype: true }),
})).value;
const fieldTable: fc.Arbitrary<FieldTable> = fc.dictionary(shortstr, fieldValue, { maxKeys: 6, noNullPrototype: true });
const headerPairs: fc.Arbitrary<HeaderPairs> = fc.array(fc.tuple(shortstr, fieldValue), { maxLength: 6 });

function domainArbitrary(t: AmqpDomainType): fc.Arbitrary<unknown> {
  switch (t) {
    case 'bit':
      return fc.boolean();
    case 'octet':
      return fc.integer({ min: 0, max: 255 });
    case 'short':
      return fc.integer({ min: 0, max: 0xffff });
    case 'long':
      return fc.integer({ min: 0, max: 0xffffffff });
    case 'longlong':
    case 'timestamp':
      return fc.oneof(fc.maxSafeNat(), fc.integer({ min: 0, max: 1000 }));
    case 'shortstr':
      return shortstr;
    case 'longstr':
      return bytes;
    case 'table':
      return fieldTable;
  }
}

function methodArbitrary(info: MethodInfo): fc.Arbitrary<Method> {
  const model: Record<string, fc.Arbitrary<unknown>> = { id: fc.constant(info.id) };
  for (const a of info.args) model[a.name] = domainArbitrary(a.type);
  return fc.record(model, { noNullPrototype: true }) as unknown as fc.Arbitrary<Method>;
}
const anyMethod: fc.Arbitrary<Method> = fc.oneof(...METHOD_INFO.map(methodArbitrary));

const propertyArbitrary = (type: string): fc.Arbitrary<unknown> =>
  type === 'table' ? headerPairs : domainArbitrary(type as AmqpDomainType);
const propertyModel: Record<string, fc.Arbitrary<unknown>> = {};
for (const p of BASIC_PROPERTY_INFO) propertyModel[p.name] = propertyArbitrary(p.type);
const someProperties = fc.record(propertyModel, {
  requiredKeys: [],
  noNullPrototype: true,
}) as fc.Arbitrary<BasicProperties>;
const allProperties = fc.record(propertyModel, { noNullPrototype: true }) as fc.Arbitrary<BasicProperties>;

// ---------------------------------------------------------------------------------------------
// Helpers

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** The method frame payload of an encoded frame (after the 7-byte header, before 0xCE). */
const payloadOf = (frame: Buffer): Buffer => frame.subarray(7, frame.length - 1);

function roundTripMethod(m: Method, channel = 1): Method {
  const frame = encodeMethodFrame(channel, m);
  assert.equal(frame[0], 1, 'frame type 1');
  assert.equal(frame.readUInt16BE(1), channel);
  assert.equal(frame.readUInt32BE(3), frame.length - 8, 'declared size');
  assert.equal(frame[frame.length - 1], 0xce, 'frame end');
  assert.equal(methodPayloadSize(m), frame.length - 8);
  return decodeMethod(payloadOf(frame));
}

function roundTripProps(p: BasicProperties): BasicProperties {
  const b = encodeBasicProperties(p);
  assert.equal(b.length, basicPropertiesSize(p));
  return decodeBasicProperties(b, 0, b.length);
}

function codecError(code: number): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof AmqpCodecError, `expected AmqpCodecError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

// ---------------------------------------------------------------------------------------------

describe('AMQP 0-9-1 method metadata', () => {
  test('ids are (classId << 16) | methodId, PascalCase ClassMethod', () => {
    assert.equal(MethodId.ConnectionStart, 0x000a000a);
    assert.equal(MethodId.BasicPublish, 0x003c0028);
    assert.equal(MethodId.BasicGetOk, 0x003c0047);
    assert.equal(MethodId.BasicNack, 0x003c0078);
    assert.equal(MethodId.ConfirmSelect, 0x0055000a);
    assert.equal(MethodId.ConnectionUpdateSecretOk, 0x000a0047);
    for (const info of METHOD_INFO) {
      assert.equal(info.id, (info.classId << 16) | info.methodId);
      assert.equal((MethodId as Record<string, number>)[info.key], info.id);
    }
    assert.equal(Object.keys(MethodId).length, METHOD_INFO.length);
    assert.equal(METHOD_INFO.length, 66, '0-9-1 plus RabbitMQ extensions (confirm, nack, blocked, update-secret)');
  });

  test('methodName, hasContent, isSynchronous', () => {
    assert.equal(methodName(MethodId.BasicPublish), 'basic.publish');
    assert.equal(methodName(MethodId.BasicGetOk), 'basic.get-ok');
    assert.equal(methodName(0x003c03e7), 'unknown(60,999)');
    const withContent = METHOD_INFO.filter((m) => hasContent(m.id)).map((m) => m.name);
    assert.deepEqual(withContent.sort(), ['basic.deliver', 'basic.get-ok', 'basic.publish', 'basic.return']);
    assert.equal(isSynchronous(MethodId.QueueDeclare), true);
    assert.equal(isSynchronous(MethodId.QueueDeclareOk), false);
    assert.equal(isSynchronous(MethodId.BasicPublish), false);
    assert.equal(isSynchronous(MethodId.ConfirmSelect), true);
  });

  test('field names are the spec names camelCased', () => {
    const start = METHOD_INFO.find((m) => m.id === MethodId.ConnectionStart)!;
    assert.deepEqual(
      start.args.map((a) => a.name),
      ['versionMajor', 'versionMinor', 'serverProperties', 'mechanisms', 'locales'],
    );
    const consume = METHOD_INFO.find((m) => m.id === MethodId.BasicConsume)!;
    assert.deepEqual(
      consume.args.map((a) => a.name),
      ['ticket', 'queue', 'consumerTag', 'noLocal', 'noAck', 'exclusive', 'nowait', 'arguments'],
    );
  });
});

describe('AMQP 0-9-1 method hex fixtures (parse, generate, mirror)', () => {
  const fixtures: Array<{ name: string; channel: number; m: Method; frame: string }> = [
    {
      name: 'basic.ack [§1.8.3.13]',
      channel: 1,
      m: { id: MethodId.BasicAck, deliveryTag: 1, multiple: true },
      frame: '01 0001 0000000d 003c0050 0000000000000001 01 ce',
    },
    {
      name: 'basic.ack with a delivery tag above 2^32',
      channel: 7,
      m: { id: MethodId.BasicAck, deliveryTag: 2 ** 40 + 5, multiple: false },
      frame: '01 0007 0000000d 003c0050 0000010000000005 00 ce',
    },
    {
      name: 'connection.tune',
      channel: 0,
      m: { id: MethodId.ConnectionTune, channelMax: 2047, frameMax: 131072, heartbeat: 60 },
      frame: '01 0000 0000000c 000a001e 07ff 00020000 003c ce',
    },
    {
      name: 'queue.declare: five bits share one octet, first bit lowest [§4.2.5.2]',
      channel: 1,
      m: {
        id: MethodId.QueueDeclare,
        ticket: 0,
        queue: 'q',
        passive: false,
        durable: true,
        exclusive: false,
        autoDelete: true,
        nowait: false,
        arguments: {},
      },
      frame: '01 0001 0000000d 0032000a 0000 0171 0a 00000000 ce',
    },
    {
      name: 'basic.publish',
      channel: 2,
      m: { id: MethodId.BasicPublish, ticket: 0, exchange: '', routingKey: 'rk', mandatory: true, immediate: false },
      frame: '01 0002 0000000b 003c0028 0000 00 02726b 01 ce',
    },
    {
      name: 'channel.close',
      channel: 3,
      m: { id: MethodId.ChannelClose, replyCode: 404, replyText: 'NOT_FOUND', classId: 50, methodId: 10 },
      frame: '01 0003 00000014 00140028 0194 09 4e4f545f464f554e44 0032 000a ce',
    },
    {
      name: 'connection.start with a server-properties table and longstrs',
      channel: 0,
      m: {
        id: MethodId.ConnectionStart,
        versionMajor: 0,
        versionMinor: 9,
        serverProperties: { product: 'Braid', capabilities: { publisher_confirms: true } },
        mechanisms: Buffer.from('PLAIN'),
        locales: Buffer.from('en_US'),
      },
      frame:
        '01 0000 00000055 000a000a 00 09' +
        ' 00000039' + // table length 57
        ' 07 70726f64756374 53 00000005 4272616964' + // product S "Braid"
        ' 0c 6361706162696c6974696573 46 00000015' + // capabilities F (21)
        ' 12 7075626c69736865725f636f6e6669726d73 74 01' + // publisher_confirms t 1
        ' 00000005 504c41494e 00000005 656e5f5553 ce',
    },
    {
      name: 'tx.select (no arguments)',
      channel: 1,
      m: { id: MethodId.TxSelect },
      frame: '01 0001 00000004 005a000a ce',
    },
  ];

  for (const f of fixtures) {
    test(f.name, () => {
      const wire = hex(f.frame);
      assert.equal(wire.readUInt32BE(3), wire.length - 8, 'fixture declared size is consistent');
      assert.deepEqual(encodeMethodFrame(f.channel, f.m), wire, 'generate');
      assert.deepEqual(decodeMethod(payloadOf(wire)), f.m, 'parse');
      assert.deepEqual(encodeMethodFrame(f.channel, decodeMethod(payloadOf(wire))), wire, 'mirror');
    });
  }

  test('writeMethodPayload writes in place at an offset and returns the end', () => {
    const m: Method = { id: MethodId.BasicCancelOk, consumerTag: 'ctag' };
    const b = Buffer.alloc(3 + methodPayloadSize(m) + 2, 0xaa);
    const end = writeMethodPayload(b, 3, m);
    assert.equal(end, b.length - 2);
    assert.deepEqual(b, hex('aaaaaa 003c001f 04 63746167 aaaa'));
  });

  test('a longstr may be given as a string; it decodes as a Buffer', () => {
    const m = decodeMethod(
      payloadOf(
        encodeMethodFrame(0, {
          id: MethodId.ConnectionStartOk,
          clientProperties: {},
          mechanism: 'PLAIN',
          response: '\0guest\0gäst',
          locale: 'en_US',
        }),
      ),
    );
    assert.ok(m.id === MethodId.ConnectionStartOk);
    assert.deepEqual(m.response, Buffer.from('\0guest\0gäst'));
  });
});

describe('AMQP 0-9-1 method round trips (every method in the spec)', () => {
  for (const info of METHOD_INFO) {
    test(info.name, () => {
      fc.assert(
        fc.property(methodArbitrary(info), fc.integer({ min: 0, max: 0xffff }), (m, channel) => {
          assert.deepEqual(roundTripMethod(m, channel), m);
        }),
        { numRuns: 40 },
      );
    });
  }
});

describe('AMQP 0-9-1 method decoding errors', () => {
  test('an unknown class or method id is 540 NOT_IMPLEMENTED, with class-id and method-id', () => {
    for (const id of [0x003c03e7, 0x00630001, 0xffffffff]) {
      assert.throws(
        () => decodeMethod(Buffer.from([id >>> 24, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff, 0, 0])),
        (e: unknown) => {
          codecError(540)(e);
          const err = e as AmqpCodecError;
          assert.equal(err.classId, id >>> 16);
          assert.equal(err.methodId, id & 0xffff);
          return true;
        },
      );
    }
  });

  test('a payload without a class and method id is 501 (rabbit_command_assembler analyze_frame)', () => {
    for (let n = 0; n < 4; n++) assert.throws(() => decodeMethod(Buffer.alloc(n)), codecError(501));
  });

  test('arguments truncated at every byte are 501 "cannot decode" (rabbit_framing decode_method_fields), never another error', () => {
    fc.assert(
      fc.property(anyMethod, (m) => {
        const p = payloadOf(encodeMethodFrame(1, m));
        for (let n = 4; n < p.length; n++) {
          assert.throws(
            () => decodeMethod(p.subarray(0, n)),
            (e: unknown) => codecError(501)(e) && (e as AmqpCodecError).method === m.id,
          );
        }
      }),
      { numRuns: 150 },
    );
  });

  test('bytes after the last argument are 501, as RabbitMQ', () => {
    fc.assert(
      fc.property(anyMethod, fc.uint8Array({ minLength: 1, maxLength: 8 }), (m, extra) => {
        const p = payloadOf(encodeMethodFrame(1, m));
        assert.throws(() => decodeMethod(Buffer.concat([p, extra])), codecError(501));
      }),
      { numRuns: 150 },
    );
  });

  test('an illegal value inside an argument table is 502 SYNTAX_ERROR', () => {
    const p = Buffer.from(
      payloadOf(
        encodeMethodFrame(1, {
          id: MethodId.QueueDeclare,
          ticket: 0,
          queue: 'q',
          passive: false,
          durable: false,
          exclusive: false,
          autoDelete: false,
          nowait: false,
          arguments: { k: 'v' },
        }),
      ),
    );
    // The table body is 01 6b 53 00000001 76: make the type letter 'Z'.
    assert.equal(p[p.length - 6], 0x53);
    p[p.length - 6] = 0x5a;
    assert.throws(
      () => decodeMethod(p),
      (e: unknown) => codecError(502)(e) && (e as AmqpCodecError).method === MethodId.QueueDeclare,
    );
  });

  test('encoding a shortstr over 255 bytes is a RangeError', () => {
    const m: Method = {
      id: MethodId.BasicPublish,
      ticket: 0,
      exchange: '',
      routingKey: 'é'.repeat(128),
      mandatory: false,
      immediate: false,
    };
    assert.throws(() => encodeMethodFrame(1, m), RangeError);
    assert.doesNotThrow(() => encodeMethodFrame(1, { ...m, routingKey: `${'é'.repeat(127)}e` }));
  });
});

describe('AMQP 0-9-1 basic properties', () => {
  test('hex fixture: content-type and delivery-mode set flags 0x8000 | 0x1000 [§4.2.6.1]', () => {
    const p: BasicProperties = { contentType: 'text/plain', deliveryMode: 2 };
    const wire = hex('9000 0a 746578742f706c61696e 02');
    assert.deepEqual(encodeBasicProperties(p), wire);
    assert.deepEqual(decodeBasicProperties(wire, 0, wire.length), p);
  });

  test('no properties: two zero flag octets', () => {
    assert.deepEqual(encodeBasicProperties({}), hex('0000'));
    assert.deepEqual(decodeBasicProperties(hex('0000'), 0, 2), {});
  });

  test('random subsets round trip; absent properties stay absent', () => {
    fc.assert(
      fc.property(someProperties, (p) => {
        assert.deepEqual(roundTripProps(p), p);
      }),
      { numRuns: 500 },
    );
  });

  for (const info of BASIC_PROPERTY_INFO) {
    test(`only ${info.name} round trips and sets flag 0x${info.flag.toString(16)}`, () => {
      fc.assert(
        fc.property(propertyArbitrary(info.type), (v) => {
          const p = { [info.name]: v } as BasicProperties;
          const b = encodeBasicProperties(p);
          assert.equal(b.readUInt16BE(0), info.flag);
          assert.deepEqual(decodeBasicProperties(b, 0, b.length), p);
        }),
        { numRuns: 30 },
      );
    });
  }

  test('all fourteen round trip', () => {
    fc.assert(
      fc.property(allProperties, (p) => {
        const b = encodeBasicProperties(p);
        assert.equal(b.readUInt16BE(0), 0xfffc);
        assert.deepEqual(decodeBasicProperties(b, 0, b.length), p);
      }),
      { numRuns: 200 },
    );
  });

  test('header order and repeated keys survive', () => {
    const headers: HeaderPairs = [
      ['b', 1],
      ['a', 'x'],
      ['b', 'again'],
    ];
    assert.deepEqual(roundTripProps({ headers }).headers, headers);
  });

  test('null and undefined properties are absent', () => {
    const p = { contentType: undefined, priority: null } as unknown as BasicProperties;
    assert.deepEqual(encodeBasicProperties(p), hex('0000'));
  });

  test('the continuation and reserved flag bits are ignored, as RabbitMQ does', () => {
    assert.deepEqual(decodeBasicProperties(hex('8003 01 61'), 0, 4), { contentType: 'a' });
  });

  test('truncated properties and trailing bytes are 501', () => {
    fc.assert(
      fc.property(someProperties, (p) => {
        const b = encodeBasicProperties(p);
        for (let n = 0; n < b.length; n++) assert.throws(() => decodeBasicProperties(b, 0, n), codecError(501));
        const extra = Buffer.concat([b, hex('00')]);
        assert.throws(() => decodeBasicProperties(extra, 0, extra.length), codecError(501));
      }),
      { numRuns: 100 },
    );
  });

  test('the core Headers type and HeaderPairs are interchangeable', () => {
    const core: Headers = [['k', { nested: [1, 'two', null] }]];
    const pairs: HeaderPairs = core;
    const back: Headers = pairs;
    const value: HeaderValue = back[0]![1];
    const field: FieldValue = value;
    assert.deepEqual(field, { nested: [1, 'two', null] });
  });
});

/** Builds a table body from [key, type letter, value bytes] entries (with its 4-byte length). */
function table(...entries: Array<[string, string, Buffer | string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, letter, v] of entries) {
    parts.push(Buffer.from([Buffer.byteLength(k)]), Buffer.from(k), Buffer.from(letter, 'latin1'));
    parts.push(typeof v === 'string' ? hex(v) : v);
  }
  const body = Buffer.concat(parts);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

describe('AMQP 0-9-1 field tables (RabbitMQ type letters, rabbit_binary_parser.erl)', () => {
  test('decodes every type letter', () => {
    const t = decodeFieldTable(
      table(
        ['t', 't', '01'],
        ['f', 't', '00'],
        ['b', 'b', 'ff'],
        ['B', 'B', 'ff'],
        ['s', 's', '8000'],
        ['u', 'u', 'ffff'],
        ['I', 'I', 'ffffffff'],
        ['i', 'i', 'ffffffff'],
        ['l', 'l', 'fffffffffffffffe'],
        ['lbig', 'l', '7fffffffffffffff'],
        ['lneg', 'l', '8000000000000000'],
        ['L', 'L', '0000000000000007'],
        ['fl', 'f', '3fc00000'],
        ['d', 'd', '400921fb54442d18'],
        ['D', 'D', '02 000004d2'],
        ['S', 'S', '00000003 616263'],
        ['x', 'x', '00000002 0102'],
        ['A', 'A', '0000000b 49 00000001 53 00000001 7a'],
        ['T', 'T', '0000000065920080'],
        ['F', 'F', '00000004 01 6b 74 01'],
        ['V', 'V', ''],
      ),
    );
    assert.equal(t.t, true);
    assert.equal(t.f, false);
    assert.equal(t.b, -1);
    assert.equal(t.B, 255);
    assert.equal(t.s, -32768);
    assert.equal(t.u, 65535);
    assert.equal(t.I, -1);
    assert.equal(t.i, 4294967295);
    assert.equal(t.l, -2);
    assert.equal(t.lbig, 2n ** 63n - 1n, 'l beyond 2^53 is a bigint');
    assert.equal(t.lneg, -(2n ** 63n));
    assert.equal(t.L, 7, 'L is a signed 64-bit integer too');
    assert.equal(t.fl, 1.5);
    assert.equal(t.d, Math.PI);
    assert.equal(t.D, 12.34, 'decimal: 1234 / 10^2');
    assert.equal(t.S, 'abc');
    assert.deepEqual(t.x, Buffer.from([1, 2]));
    assert.deepEqual(t.A, [1, 'z']);
    assert.deepEqual(t.T, new Date(0x65920080 * 1000));
    assert.deepEqual(t.F, { k: true });
    assert.equal(t.V, null);
  });

  test('encoding picks the letter from the JS type', () => {
    const letter = (v: FieldValue | undefined): string => {
      const b = Buffer.alloc(fieldValueSize(v));
      assert.equal(writeFieldValue(b, 0, v), b.length);
      return String.fromCharCode(b[0]!);
    };
    assert.equal(letter('s'), 'S');
    assert.equal(letter(Buffer.from('x')), 'x');
    assert.equal(letter(true), 't');
    assert.equal(letter(null), 'V');
    assert.equal(letter(undefined), 'V');
    assert.equal(letter(new Date(1000)), 'T');
    assert.equal(letter(5n), 'l');
    assert.equal(letter(0), 'I');
    assert.equal(letter(-(2 ** 31)), 'I');
    assert.equal(letter(2 ** 31 - 1), 'I');
    assert.equal(letter(2 ** 31), 'l');
    assert.equal(letter(Number.MAX_SAFE_INTEGER), 'l');
    assert.equal(letter(2 ** 60), 'd');
    assert.equal(letter(1.5), 'd');
    assert.equal(letter(Number.NaN), 'd');
    assert.equal(letter([1]), 'A');
    assert.equal(letter({ a: 1 }), 'F');
  });

  test('random tables round trip, nested tables and arrays included', () => {
    fc.assert(
      fc.property(fieldTable, (t) => {
        assert.deepEqual(decodeFieldTable(encodeFieldTable(t)), t);
      }),
      { numRuns: 500 },
    );
  });

  test('a decoded byte array is a copy, not a view of the input', () => {
    const wire = table(['x', 'x', '00000002 0102']);
    const t = decodeFieldTable(wire);
    wire.fill(0);
    assert.deepEqual(t.x, Buffer.from([1, 2]));
  });

  test('an unknown type letter is 502', () => {
    for (const letter of ['X', 'Z', 'c', '\0']) {
      assert.throws(() => decodeFieldTable(table(['k', letter, '00'])), codecError(502));
    }
  });

  test('a table truncated at any byte is 502, at every nesting level', () => {
    fc.assert(
      fc.property(fieldTable, (t) => {
        const b = encodeFieldTable(t);
        for (let n = 4; n < b.length; n++) {
          const cut = Buffer.from(b.subarray(0, n));
          cut.writeUInt32BE(n - 4, 0);
          try {
            decodeFieldTable(cut);
          } catch (e) {
            codecError(502)(e);
          }
        }
        for (let n = 0; n < b.length; n++) assert.throws(() => decodeFieldTable(b.subarray(0, n)), codecError(502));
      }),
      { numRuns: 200 },
    );
  });

  test('a __proto__ key is an own property, no prototype pollution', () => {
    const t = decodeFieldTable(table(['__proto__', 'F', '0000000b 08 706f6c6c75746564 74 01']));
    assert.equal(Object.getPrototypeOf(t), Object.prototype);
    assert.deepEqual(Object.keys(t), ['__proto__']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal((t as Record<string, unknown>).polluted, undefined);
    const wire = table(['__proto__', 't', '01']);
    const pairs = readHeaderPairs(wire, 4, wire.length);
    assert.deepEqual(pairs, [['__proto__', true]]);
  });

  test('nesting deeper than 100 is 502, not a stack overflow', () => {
    // Innermost first: an empty table, wrapped 5000 times in ["k" F <len> …].
    let inner = Buffer.alloc(0);
    for (let i = 0; i < 5000; i++) {
      const head = Buffer.alloc(7);
      head[0] = 1;
      head[1] = 0x6b;
      head[2] = 0x46;
      head.writeUInt32BE(inner.length, 3);
      inner = Buffer.concat([head, inner]);
    }
    const len = Buffer.alloc(4);
    len.writeUInt32BE(inner.length);
    assert.throws(() => decodeFieldTable(Buffer.concat([len, inner])), codecError(502));
  });

  test('encoding errors are programming errors: RangeError or TypeError', () => {
    assert.throws(() => encodeFieldTable({ ['k'.repeat(256)]: 1 }), RangeError);
    assert.throws(() => encodeFieldTable({ f: (() => 1) as unknown as FieldValue }), TypeError);
    assert.throws(() => encodeFieldTable({ d: new Date(-1000) }), RangeError);
    assert.throws(() => encodeFieldTable({ b: 2n ** 64n }), RangeError);
  });
});

describe('AMQP 0-9-1 decoders under fuzzing (only AmqpCodecError escapes)', () => {
  const onlyCodecErrors = (f: () => unknown): void => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof AmqpCodecError)) throw e;
    }
  };
  const knownId = fc.constantFrom(...METHOD_INFO.map((m) => m.id));

  test('decodeMethod on random bytes, with and without a valid id', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
          fc.tuple(knownId, fc.uint8Array({ maxLength: 300 })).map(([id, rest]) => {
            const b = Buffer.alloc(4 + rest.length);
            b.writeUInt32BE(id);
            b.set(rest, 4);
            return b;
          }),
        ),
        (b) => onlyCodecErrors(() => decodeMethod(b)),
      ),
      { numRuns: 5000 },
    );
  });

  test('decodeMethod on mutated valid methods', () => {
    fc.assert(
      fc.property(
        anyMethod,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        (m, muts) => {
          const p = Buffer.from(payloadOf(encodeMethodFrame(1, m)));
          for (const [at, v] of muts) p[4 + (at % Math.max(1, p.length - 4))] = v;
          onlyCodecErrors(() => decodeMethod(p));
        },
      ),
      { numRuns: 3000 },
    );
  });

  test('decodeBasicProperties and decodeFieldTable on random and mutated bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (a) => {
        const b = Buffer.from(a);
        onlyCodecErrors(() => decodeBasicProperties(b, 0, b.length));
        onlyCodecErrors(() => decodeFieldTable(b));
      }),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(someProperties, fc.nat(), fc.integer({ min: 0, max: 255 }), (p, at, v) => {
        const b = encodeBasicProperties(p);
        b[at % b.length] = v;
        onlyCodecErrors(() => decodeBasicProperties(b, 0, b.length));
      }),
      { numRuns: 3000 },
    );
  });
});
