/**
 * MQTT 5 ⇄ AMQP 0-9-1 property mapping, both ways, after RabbitMQ 3.13/4.x
 * (deps/rabbitmq_mqtt/src/mc_mqtt.erl convert_to/convert_from mc_amqpl; expected conversions as in
 * deps/rabbitmq_mqtt/test/mc_mqtt_SUITE.erl mqtt_amqpl, mqtt_amqpl_alt, roundtrip_amqpl*,
 * amqp_to_mqtt_reply_to). The AMQP side goes through the real encoder and decoder, so every
 * mapping is also one the wire can carry.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeBasicProperties } from '../../src/amqp091/codec/index.js';
import type { BasicProperties } from '../../src/amqp091/codec/properties.gen.js';
import { EMPTY_BASIC, encodedProperties, toBasicProperties, toCoreMessage } from '../../src/amqp091/mapping.js';
import type { HeaderValue, Message } from '../../src/core/message.js';
import type { Properties, PublishPacket, QoS } from '../../src/mqtt/codec/packets.js';
import {
  keyToTopic,
  messageProperties,
  messageQos,
  publishToMessage,
  replyToTopic,
  topicToKey,
} from '../../src/mqtt/mapping.js';

const NOW = 1_700_000_000_000;

function fromMqtt(properties?: Properties, qos: QoS = 1, retain = false, topic = 'a/b'): Message {
  const p: PublishPacket = { type: 3, dup: false, qos, retain, topic, payload: Buffer.from('x') };
  if (properties) p.properties = properties;
  return publishToMessage(p, topicToKey(topic), p.payload, {
    vhost: '/',
    exchange: 'amq.topic',
    publisherId: 'mqtt-pub',
    now: NOW,
  });
}

function fromAmqp(props: BasicProperties, routingKey = 'a.b'): Message {
  return toCoreMessage(props, Buffer.from('x'), {
    vhost: '/',
    exchange: 'amq.topic',
    routingKey,
    publisherId: 'amqp-pub',
    now: NOW,
  });
}

/** What an AMQP consumer receives: the encoded property list, decoded again. */
function onAmqpWire(msg: Message): BasicProperties {
  const b = encodedProperties(msg);
  return decodeBasicProperties(b, 0, b.length);
}

/** An AMQP consumer republishing a delivery with the properties it received (amqplib does). */
const republish = (msg: Message): Message => fromAmqp(onAmqpWire(msg), msg.routingKey);

const header = (p: BasicProperties, k: string): HeaderValue | undefined => p.headers?.find((h) => h[0] === k)?.[1];
const headerNames = (p: BasicProperties): string[] => (p.headers ?? []).map((h) => h[0]);

describe('mqtt→amqp091 mapping (mc_mqtt convert_to mc_amqpl)', () => {
  it('QoS 0 → delivery-mode 1, QoS 1 and 2 → 2, each with x-mqtt-publish-qos', () => {
    for (const [qos, mode] of [
      [0, 1],
      [1, 2],
      [2, 2],
    ] as const) {
      const p = onAmqpWire(fromMqtt(undefined, qos));
      assert.equal(p.deliveryMode, mode, `QoS ${qos}`);
      assert.deepEqual(p.headers, [['x-mqtt-publish-qos', qos]], `QoS ${qos}`);
      assert.equal(p.expiration, undefined);
      assert.equal(p.contentType, undefined);
    }
  });

  it('a PUBLISH without message properties shares frozen properties and annotations', () => {
    for (const qos of [0, 1, 2] as const) {
      for (const retain of [false, true]) {
        const a = fromMqtt(undefined, qos, retain);
        const b = fromMqtt(undefined, qos, retain);
        assert.equal(a.properties, b.properties, `QoS ${qos} retain ${retain}: properties shared`);
        assert.equal(a.annotations, b.annotations, `QoS ${qos} retain ${retain}: annotations shared`);
        assert.ok(Object.isFrozen(a.properties) && Object.isFrozen(a.annotations));
      }
    }
    // A Topic Alias alone is no message property.
    const aliased = fromMqtt({ topicAlias: 3 }, 1);
    assert.equal(aliased.properties, fromMqtt(undefined, 1).properties);
  });

  it('retain and Payload Format Indicator stay MQTT annotations: nothing on the AMQP side', () => {
    const msg = fromMqtt({ payloadFormatIndicator: 1 }, 1, true);
    assert.equal(msg.annotations['x-mqtt-retain'], true);
    assert.equal(msg.annotations['x-mqtt-payload-format'], 1);
    const p = onAmqpWire(msg);
    assert.deepEqual(headerNames(p), ['x-mqtt-publish-qos']);
    assert.equal(p.contentType, undefined);
  });

  it('Content Type → content-type when ASCII and at most 255 bytes, else dropped', () => {
    assert.equal(onAmqpWire(fromMqtt({ contentType: 'text/plain' })).contentType, 'text/plain');
    assert.equal(onAmqpWire(fromMqtt({ contentType: 'no-ascii🐇' })).contentType, undefined);
    assert.equal(onAmqpWire(fromMqtt({ contentType: 'a'.repeat(256) })).contentType, undefined);
  });

  it('Correlation Data → correlation-id when a valid shortstr, else header x-correlation-id', () => {
    const short = onAmqpWire(fromMqtt({ correlationData: Buffer.from('banana') }));
    assert.equal(short.correlationId, 'banana');
    assert.equal(header(short, 'x-correlation-id'), undefined);

    const invalidUtf8 = Buffer.from([14, 23, 97, 23, 144, 149, 12, 108, 140, 66, 151, 2]);
    const bin = onAmqpWire(fromMqtt({ correlationData: invalidUtf8 }, 0));
    assert.equal(bin.correlationId, undefined);
    assert.deepEqual(header(bin, 'x-correlation-id'), invalidUtf8, 'bytes that are not UTF-8 as a byte array');

    // mc_mqtt_SUITE roundtrip_amqpl_correlation: 1024 NULs are UTF-8, so a longstr.
    const nul = Buffer.alloc(1024);
    assert.equal(header(onAmqpWire(fromMqtt({ correlationData: nul })), 'x-correlation-id'), '\0'.repeat(1024));

    const withNul = Buffer.from('a\0b');
    const n = onAmqpWire(fromMqtt({ correlationData: withNul }));
    assert.equal(n.correlationId, undefined, 'NUL is not allowed in a shortstr (mc_util:is_valid_shortstr)');
    assert.equal(header(n, 'x-correlation-id'), 'a\0b');

    const long = 'é'.repeat(200); // 400 bytes of UTF-8
    const l = onAmqpWire(fromMqtt({ correlationData: Buffer.from(long) }));
    assert.equal(l.correlationId, undefined);
    assert.equal(header(l, 'x-correlation-id'), long, 'long UTF-8 as a longstr');
  });

  it('Response Topic → header x-reply-to-topic and reply-to, as a routing key (/ ⇄ .)', () => {
    const p = onAmqpWire(fromMqtt({ responseTopic: 'tmp/blah/responses' }));
    assert.equal(header(p, 'x-reply-to-topic'), 'tmp.blah.responses');
    assert.equal(p.replyTo, 'tmp.blah.responses');
    const dotted = onAmqpWire(fromMqtt({ responseTopic: 'reply/v1.2' }));
    assert.equal(header(dotted, 'x-reply-to-topic'), 'reply.v1/2');

    const longTopic = `r/${'t'.repeat(300)}`;
    const l = onAmqpWire(fromMqtt({ responseTopic: longTopic }));
    assert.equal(l.replyTo, undefined, 'over 255 bytes: no reply-to');
    assert.equal(header(l, 'x-reply-to-topic'), topicToKey(longTopic));
  });

  it('User Properties → headers as longstr, in order; repeats and names over 255 bytes dropped', () => {
    const p = onAmqpWire(
      fromMqtt({
        userProperties: [
          ['key-2', 'val-2'],
          ['key-1', 'val-1'],
          ['k'.repeat(256), 'too long'],
          ['key-1', 'again'],
          ['x-key', 'x-val'],
        ],
      }),
    );
    assert.deepEqual(p.headers, [
      ['key-2', 'val-2'],
      ['key-1', 'val-1'],
      ['x-key', 'x-val'],
      ['x-mqtt-publish-qos', 1],
    ]);
  });

  it("the broker's x-correlation-id and x-reply-to-topic win over User Properties of the same name", () => {
    const p = onAmqpWire(
      fromMqtt({
        userProperties: [
          ['x-reply-to-topic', 'user'],
          ['x-correlation-id', 'user'],
          ['k', 'v'],
        ],
        responseTopic: 'r/t',
        correlationData: Buffer.from([0xff]),
      }),
    );
    assert.deepEqual(headerNames(p), ['k', 'x-mqtt-publish-qos', 'x-correlation-id', 'x-reply-to-topic']);
    assert.equal(header(p, 'x-reply-to-topic'), 'r.t');
    assert.deepEqual(header(p, 'x-correlation-id'), Buffer.from([0xff]));
  });

  it('Message Expiry Interval → expiration in ms (timer:seconds)', () => {
    const msg = fromMqtt({ messageExpiryInterval: 1001 });
    assert.equal(msg.expiresAt, NOW + 1_001_000);
    assert.equal(onAmqpWire(msg).expiration, '1001000');
  });

  it('every property at once (mc_mqtt_SUITE mqtt_amqpl)', () => {
    const p = onAmqpWire(
      fromMqtt({
        contentType: 'text/plain',
        userProperties: [
          ['key-2', 'val-2'],
          ['key-1', 'val-1'],
        ],
        correlationData: Buffer.from('banana'),
        messageExpiryInterval: 1001,
        responseTopic: 'tmp/blah/responses',
      }),
    );
    assert.deepEqual(p, {
      contentType: 'text/plain',
      headers: [
        ['key-2', 'val-2'],
        ['key-1', 'val-1'],
        ['x-mqtt-publish-qos', 1],
        ['x-reply-to-topic', 'tmp.blah.responses'],
      ],
      deliveryMode: 2,
      correlationId: 'banana',
      replyTo: 'tmp.blah.responses',
      expiration: '1001000',
    });
    assert.deepEqual(toBasicProperties(fromMqtt({ contentType: 'text/plain' })).contentType, 'text/plain');
  });
});

describe('amqp091→mqtt mapping (mc_mqtt convert_from mc_amqpl)', () => {
  it('QoS: persistent → 1, transient or unset → 0; an x-mqtt-publish-qos header does not count', () => {
    assert.equal(messageQos(fromAmqp({ deliveryMode: 2 })), 1);
    assert.equal(messageQos(fromAmqp({ deliveryMode: 1 })), 0);
    assert.equal(messageQos(fromAmqp(EMPTY_BASIC)), 0);
    assert.equal(messageQos(fromAmqp({ deliveryMode: 2, headers: [['x-mqtt-publish-qos', 2]] })), 1);
    assert.equal(messageQos(fromAmqp({ deliveryMode: 1, headers: [['x-mqtt-publish-qos', 1]] })), 0);
  });

  it('no properties → no MQTT properties; never retained, no Payload Format Indicator', () => {
    const msg = fromAmqp(EMPTY_BASIC);
    assert.equal(messageProperties(msg), null);
    assert.equal(msg.annotations['x-mqtt-retain'], undefined);
    assert.equal(messageProperties(fromAmqp({ contentType: 'text/plain' }))?.payloadFormatIndicator, undefined);
  });

  it('content-type → Content Type, correlation-id → Correlation Data', () => {
    const p = messageProperties(fromAmqp({ contentType: 'application/json', correlationId: 'corr-1' }));
    assert.equal(p?.contentType, 'application/json');
    assert.deepEqual(p?.correlationData, Buffer.from('corr-1'));
  });

  it('header x-correlation-id → Correlation Data when there is no correlation-id', () => {
    const bytes = Buffer.from([0, 255, 0]);
    const bin = messageProperties(fromAmqp({ headers: [['x-correlation-id', bytes]] }));
    assert.deepEqual(bin?.correlationData, bytes);
    assert.equal(bin?.userProperties, undefined);
    const str = messageProperties(fromAmqp({ headers: [['x-correlation-id', 'abc']] }));
    assert.deepEqual(str?.correlationData, Buffer.from('abc'));
    // With a correlation-id, the header is an ordinary one.
    const both = messageProperties(fromAmqp({ correlationId: 'c', headers: [['x-correlation-id', 'h']] }));
    assert.deepEqual(both?.correlationData, Buffer.from('c'));
    assert.deepEqual(both?.userProperties, [['x-correlation-id', 'h']]);
  });

  it('header x-reply-to-topic → Response Topic (. → /), before reply-to', () => {
    const p = messageProperties(fromAmqp({ replyTo: 'ignored', headers: [['x-reply-to-topic', 'my.response.topic']] }));
    assert.equal(p?.responseTopic, 'my/response/topic');
    assert.equal(p?.userProperties, undefined);
  });

  it('reply-to → Response Topic: a routing key swapped, RabbitMQ addresses of the MQTT exchange', () => {
    const rt = (replyTo: string): string | undefined => messageProperties(fromAmqp({ replyTo }))?.responseTopic;
    assert.equal(rt('reply.to.me'), 'reply/to/me');
    assert.equal(rt('v1/2.x'), 'v1.2/x');
    assert.equal(rt('/exchange/amq.topic/my.routing.key'), 'my/routing/key');
    assert.equal(rt('/exchanges/amq.topic/my.sp%25%24%40cial.routing.key'), 'my/sp%$@cial/routing/key');
    assert.equal(rt('/exchanges/amq.topic/my.sp%$@cial.key'), undefined, 'not percent-encoded: ignored');
    assert.equal(rt('/topic/a.b'), 'a/b');
    assert.equal(rt('/exchange/other/a.b'), undefined, 'another exchange: no Response Topic');
    assert.equal(rt('/exchanges/other/a.b'), undefined);
    assert.equal(replyToTopic('/exchanges/mqtt-x/a.b', 'mqtt-x'), 'a/b');
    assert.equal(replyToTopic('/topic/a.b', 'mqtt-x'), undefined, '/topic/ is amq.topic only');
    assert.equal(replyToTopic('/odd', 'amq.topic'), '.odd');
    assert.equal(rt('a.#'), undefined, 'wildcards are not allowed in a Response Topic [MQTT-3.3.2-14]');
    assert.equal(rt('a.*.+'), undefined);
    assert.equal(rt(''), undefined, 'nor is an empty one');
  });

  it('headers → User Properties in order, as UTF-8 strings (amqpl_field_to_utf8_string_pair)', () => {
    const p = messageProperties(
      fromAmqp({
        headers: [
          ['s', 'text'],
          ['i', -5],
          ['big', 9007199254740993n],
          ['f', 1.5],
          ['t', true],
          ['no', false],
          ['void', null],
          ['ts', new Date(1_700_000_000_500)],
          ['bin', Buffer.from([1, 2])],
          ['arr', ['a']],
          ['table', { a: 1 }],
          ['nul', 'a\0b'],
          ['n\0ame', 'v'],
          ['x-mqtt-publish-qos', 1],
          ['x-first-death-reason', 'expired'],
          ['last', 'z'],
        ],
      }),
    );
    assert.deepEqual(p?.userProperties, [
      ['s', 'text'],
      ['i', '-5'],
      ['big', '9007199254740993'],
      ['f', '1.5'],
      ['t', 'true'],
      ['no', 'false'],
      ['void', ''],
      ['ts', '1700000000'],
      ['x-first-death-reason', 'expired'],
      ['last', 'z'],
    ]);
  });

  it('content-encoding, message-id, type, app-id, user-id, timestamp, priority have no MQTT counterpart', () => {
    const p = messageProperties(
      fromAmqp({
        contentEncoding: 'gzip',
        messageId: 'm1',
        type: 't',
        appId: 'app',
        userId: 'guest',
        timestamp: 1_700_000_000,
        priority: 5,
      }),
    );
    assert.equal(p, null);
  });

  it('expiration → the message expiry (sent to MQTT as what is left of it)', () => {
    assert.equal(fromAmqp({ expiration: '60000' }).expiresAt, NOW + 60_000);
    assert.equal(fromAmqp({ expiration: '0' }).expiresAt, NOW);
  });

  it('every property at once', () => {
    const msg = fromAmqp({
      contentType: 'text/plain',
      correlationId: 'corr-2',
      replyTo: 'reply.to.me',
      headers: [
        ['h1', 'v1'],
        ['n', 5],
        ['flag', true],
      ],
      expiration: '60000',
      deliveryMode: 2,
    });
    assert.deepEqual(messageProperties(msg), {
      userProperties: [
        ['h1', 'v1'],
        ['n', '5'],
        ['flag', 'true'],
      ],
      contentType: 'text/plain',
      correlationData: Buffer.from('corr-2'),
      responseTopic: 'reply/to/me',
    });
    assert.equal(messageQos(msg), 1);
    assert.equal(messageProperties(msg), messageProperties(msg), 'cached per message');
  });
});

describe('mqtt→mqtt and mqtt→amqp091→mqtt round trips', () => {
  const all: Properties = {
    contentType: 'application/json',
    correlationData: Buffer.from([0, 255, 0]),
    responseTopic: 'my/response/topic.v1',
    userProperties: [
      ['zeta', '1'],
      ['alpha', '2'],
      ['zeta', '3'],
      ['x-reply-to-topic', 'a user property'],
    ],
    payloadFormatIndicator: 1,
    messageExpiryInterval: 60,
  };

  it('mqtt→mqtt: every property back as published, repeats and order kept', () => {
    const msg = fromMqtt(all, 2, true);
    const { messageExpiryInterval: _, ...expected } = all;
    assert.deepEqual(messageProperties(msg), expected);
    assert.equal(messageQos(msg), 2);
    assert.equal(msg.annotations['x-mqtt-retain'], true);
  });

  it('mqtt→amqp091→mqtt: what the AMQP table allows comes back; QoS from delivery-mode', () => {
    const again = republish(fromMqtt(all, 2, true));
    assert.deepEqual(messageProperties(again), {
      // Repeats dropped by the AMQP table; the user's x-reply-to-topic lost to the broker's own.
      userProperties: [
        ['zeta', '1'],
        ['alpha', '2'],
      ],
      contentType: 'application/json',
      correlationData: Buffer.from([0, 255, 0]),
      responseTopic: 'my/response/topic.v1',
    });
    assert.equal(again.expiresAt, NOW + 60_000);
    assert.equal(messageQos(again), 1, 'persistent → QoS 1, whatever x-mqtt-publish-qos says');
    assert.equal(again.annotations['x-mqtt-retain'], undefined, 'retain is not carried by AMQP 0-9-1');
    assert.equal(messageQos(republish(fromMqtt(undefined, 0))), 0);
  });

  it('mqtt→amqp091→mqtt: correlation data of any bytes and a response topic of any length', () => {
    // mc_mqtt_SUITE roundtrip_amqpl_correlation: 1024 NULs survive too.
    for (const corr of [
      Buffer.from('abc-123'),
      Buffer.from('c'.repeat(1000)),
      Buffer.alloc(1024),
      Buffer.from([255]),
    ]) {
      const back = messageProperties(republish(fromMqtt({ correlationData: corr })));
      assert.deepEqual(back?.correlationData, corr);
    }
    const longTopic = `r/${'t'.repeat(300)}`;
    assert.equal(messageProperties(republish(fromMqtt({ responseTopic: longTopic })))?.responseTopic, longTopic);
  });

  it('amqp091→mqtt→amqp091: the topic swap is its own inverse', () => {
    for (const key of ['a.b.c', '.weather.st01', 'v1/2.temp']) assert.equal(topicToKey(keyToTopic(key)), key);
  });
});
