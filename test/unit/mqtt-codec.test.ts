/**
 * MQTT codec tests (STYLE.md habits 10 and 11): hex fixtures that each give a parse, a generate
 * and a split-point test; round trips of every packet type in every version; and one test per
 * malformed-packet rule, named after the statement it enforces.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  decodePacket,
  encodePacket,
  encodePublishHeader,
  MqttProtocolError,
  NEED_MORE,
  type Packet,
  PacketAccumulator,
  type ProtocolVersion,
  type PublishPacket,
  packetSize,
  validTopicFilter,
  validTopicName,
  Writer,
  writePacket,
} from '../../src/mqtt/codec/index.js';
import { Reader } from '../../src/mqtt/codec/reader.js';
import { readVBI, VBI_MAX, vbiSize, writeVBI } from '../../src/mqtt/codec/vbi.js';

const MAX = 1 << 28;
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const b = (s: string): Buffer => Buffer.from(s);

function decodeAll(buf: Buffer, ver: ProtocolVersion | undefined): Packet[] {
  const out: Packet[] = [];
  let off = 0;
  while (off < buf.length) {
    const d = decodePacket(buf, off, ver, MAX);
    assert.notEqual(d, NEED_MORE);
    if (d === NEED_MORE) break;
    out.push(d.packet);
    if (d.packet.type === 1 && ver === undefined) ver = d.packet.protocolVersion;
    off = d.next;
  }
  return out;
}

function accumulate(chunks: Buffer[], ver: ProtocolVersion | undefined): Packet[] {
  const acc = new PacketAccumulator(MAX, ver);
  const out: Packet[] = [];
  for (const c of chunks) acc.push(c, (p) => out.push(p));
  return out;
}

function chunked(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

/** Habit 10: one byte at a time, at every split point and every fragment size, all identical. */
function assertSplitInvariant(buf: Buffer, ver: ProtocolVersion | undefined): void {
  const expected = decodeAll(buf, ver);
  assert.deepEqual(accumulate([buf], ver), expected, 'whole');
  for (let size = 1; size < buf.length; size++) {
    assert.deepEqual(accumulate(chunked(buf, size), ver), expected, `fragments of ${size}`);
  }
  for (let i = 1; i < buf.length; i++) {
    assert.deepEqual(accumulate([buf.subarray(0, i), buf.subarray(i)], ver), expected, `split at ${i}`);
  }
}

function codeOf(fn: () => unknown): MqttProtocolError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof MqttProtocolError, `expected MqttProtocolError, got ${e}`);
    return e;
  }
  assert.fail('expected a throw');
}

interface Fixture {
  name: string;
  hex: string;
  /** Version to decode with; undefined for CONNECT (read from the packet). */
  ver: ProtocolVersion | undefined;
  packet: Packet;
  /** False for valid but non-canonical forms we never generate. */
  generate?: boolean;
}

const conn4: Packet = {
  type: 1,
  protocolName: 'MQTT',
  protocolVersion: 4,
  cleanSession: true,
  keepAlive: 60,
  clientId: 'mosqpub',
};

const fixtures: Fixture[] = [];
fixtures.push(
  {
    name: '3.1.1 CONNECT as sent by mosquitto_pub',
    hex: '1013 00044d515454 04 02 003c 00076d6f7371707562',
    ver: undefined,
    packet: conn4,
  },
  {
    name: '3.1.1 CONNECT, flags 0xCE keep alive 10 (§3.1.2.10 example)',
    hex: '101d 00044d515454 04 ce 000a 0003636964 00027774 0002776d 000175 000170',
    ver: undefined,
    packet: {
      type: 1,
      protocolName: 'MQTT',
      protocolVersion: 4,
      cleanSession: true,
      keepAlive: 10,
      clientId: 'cid',
      will: { topic: 'wt', payload: b('wm'), qos: 1, retain: false },
      username: 'u',
      password: b('p'),
    },
  },
  {
    name: '3.1 CONNECT (MQIsdp)',
    hex: '1012 00064d51497364700302003c 00047061686f',
    ver: undefined,
    packet: {
      type: 1,
      protocolName: 'MQIsdp',
      protocolVersion: 3,
      cleanSession: true,
      keepAlive: 60,
      clientId: 'paho',
    },
  },
  {
    name: '5.0 CONNECT with Session Expiry 10 (§3.1.2.11 example)',
    hex: '101a 00044d515454 05 c2 000a 05 110000000a 00026335 000175 000170',
    ver: undefined,
    packet: {
      type: 1,
      protocolName: 'MQTT',
      protocolVersion: 5,
      cleanSession: true,
      keepAlive: 10,
      clientId: 'c5',
      username: 'u',
      password: b('p'),
      properties: { sessionExpiryInterval: 10 },
    },
  },
  {
    name: '5.0 CONNECT with Will Properties and an empty client id',
    hex: '101f 00044d515454 05 2e 001e 00 0000 07 0101 1800000005 0003772f74 0003627965',
    ver: undefined,
    packet: {
      type: 1,
      protocolName: 'MQTT',
      protocolVersion: 5,
      cleanSession: true,
      keepAlive: 30,
      clientId: '',
      will: {
        topic: 'w/t',
        payload: b('bye'),
        qos: 1,
        retain: true,
        properties: { payloadFormatIndicator: 1, willDelayInterval: 5 },
      },
    },
  },
  {
    name: '3.1.1 PUBLISH as sent by mosquitto_pub',
    hex: '300b 000474657374 68656c6c6f',
    ver: 4,
    packet: { type: 3, dup: false, qos: 0, retain: false, topic: 'test', payload: b('hello') },
  },
  {
    name: '3.1 PUBLISH QoS 1 retained',
    hex: '330a 0003612f62 0007 686921',
    ver: 3,
    packet: { type: 3, dup: false, qos: 1, retain: true, topic: 'a/b', packetId: 7, payload: b('hi!') },
  },
  {
    name: '5.0 PUBLISH QoS 2 with properties',
    hex: '342b 0003612f62 0102 1e 0101 020000003c 080003722f31 090002abcd 0b05 230003 260001' + '6b000176 68656c6c6f',
    ver: 5,
    packet: {
      type: 3,
      dup: false,
      qos: 2,
      retain: false,
      topic: 'a/b',
      packetId: 0x0102,
      properties: {
        payloadFormatIndicator: 1,
        messageExpiryInterval: 60,
        responseTopic: 'r/1',
        correlationData: hex('abcd'),
        subscriptionIdentifiers: [5],
        topicAlias: 3,
        userProperties: [['k', 'v']],
      },
      payload: b('hello'),
    },
  },
  {
    name: '5.0 PUBLISH with an empty topic and a Topic Alias',
    hex: '3007 0000 03 230001 78',
    ver: 5,
    packet: { type: 3, dup: false, qos: 0, retain: false, topic: '', properties: { topicAlias: 1 }, payload: b('x') },
  },
  {
    name: '3.1.1 PUBLISH DUP QoS 1, empty payload',
    hex: '3a05 000161 ffff',
    ver: 4,
    packet: { type: 3, dup: true, qos: 1, retain: false, topic: 'a', packetId: 0xffff, payload: Buffer.alloc(0) },
  },
  { name: '3.1.1 PUBACK', hex: '4002 0007', ver: 4, packet: { type: 4, packetId: 7, reasonCode: 0 } },
  { name: '5.0 PUBACK short form', hex: '4002 0007', ver: 5, packet: { type: 4, packetId: 7, reasonCode: 0 } },
  { name: '5.0 PUBACK reason only', hex: '4003 0007 10', ver: 5, packet: { type: 4, packetId: 7, reasonCode: 0x10 } },
  {
    name: '5.0 PUBACK long form with no properties',
    hex: '4004 0007 00 00',
    ver: 5,
    packet: { type: 4, packetId: 7, reasonCode: 0 },
    generate: false,
  },
  {
    name: '5.0 PUBACK with a Reason String',
    hex: '4008 0007 97 04 1f000178',
    ver: 5,
    packet: { type: 4, packetId: 7, reasonCode: 0x97, properties: { reasonString: 'x' } },
  },
  { name: '3.1.1 PUBREC', hex: '5002 0007', ver: 4, packet: { type: 5, packetId: 7, reasonCode: 0 } },
  { name: '3.1 PUBREL', hex: '6202 0007', ver: 3, packet: { type: 6, packetId: 7, reasonCode: 0 } },
  { name: '5.0 PUBREL 0x92', hex: '6203 0007 92', ver: 5, packet: { type: 6, packetId: 7, reasonCode: 0x92 } },
  { name: '3.1.1 PUBCOMP', hex: '7002 0007', ver: 4, packet: { type: 7, packetId: 7, reasonCode: 0 } },
  {
    name: '3.1.1 SUBSCRIBE',
    hex: '8208 0001 0003612f62 01',
    ver: 4,
    packet: {
      type: 8,
      packetId: 1,
      subscriptions: [{ topicFilter: 'a/b', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
    },
  },
  {
    name: '5.0 SUBSCRIBE with options and a Subscription Identifier',
    hex: '820f 0002 02 0b0a 0003612f2b 1d 000123 22',
    ver: 5,
    packet: {
      type: 8,
      packetId: 2,
      properties: { subscriptionIdentifiers: [10] },
      subscriptions: [
        { topicFilter: 'a/+', qos: 1, noLocal: true, retainAsPublished: true, retainHandling: 1 },
        { topicFilter: '#', qos: 2, noLocal: false, retainAsPublished: false, retainHandling: 2 },
      ],
    },
  },
  {
    name: '3.1.1 SUBACK',
    hex: '9005 0001 000180',
    ver: 4,
    packet: { type: 9, packetId: 1, reasonCodes: [0, 1, 0x80] },
  },
  {
    name: '5.0 SUBACK with a Reason String',
    hex: '900a 0002 04 1f000178 01028f',
    ver: 5,
    packet: { type: 9, packetId: 2, reasonCodes: [1, 2, 0x8f], properties: { reasonString: 'x' } },
  },
  {
    name: '3.1.1 UNSUBSCRIBE',
    hex: 'a207 0003 0003612f62',
    ver: 4,
    packet: { type: 10, packetId: 3, topicFilters: ['a/b'] },
  },
  {
    name: '5.0 UNSUBSCRIBE with a User Property',
    hex: 'a20f 0003 07 2600016b000176 0003612f62',
    ver: 5,
    packet: { type: 10, packetId: 3, topicFilters: ['a/b'], properties: { userProperties: [['k', 'v']] } },
  },
  { name: '3.1.1 UNSUBACK', hex: 'b002 0003', ver: 4, packet: { type: 11, packetId: 3, reasonCodes: [] } },
  { name: '5.0 UNSUBACK', hex: 'b005 0003 00 0011', ver: 5, packet: { type: 11, packetId: 3, reasonCodes: [0, 0x11] } },
  { name: '3.1.1 PINGREQ', hex: 'c000', ver: 4, packet: { type: 12 } },
  { name: '5.0 PINGRESP', hex: 'd000', ver: 5, packet: { type: 13 } },
  { name: '3.1 DISCONNECT', hex: 'e000', ver: 3, packet: { type: 14, reasonCode: 0 } },
  { name: '5.0 DISCONNECT short form', hex: 'e000', ver: 5, packet: { type: 14, reasonCode: 0 } },
  { name: '5.0 DISCONNECT with will', hex: 'e001 04', ver: 5, packet: { type: 14, reasonCode: 4 } },
  {
    name: '5.0 DISCONNECT with Session Expiry',
    hex: 'e007 00 05 1100000000',
    ver: 5,
    packet: { type: 14, reasonCode: 0, properties: { sessionExpiryInterval: 0 } },
  },
  { name: '5.0 AUTH short form', hex: 'f000', ver: 5, packet: { type: 15, reasonCode: 0 } },
  {
    name: '5.0 AUTH continue with method and data',
    hex: 'f00b 18 09 1500025331 160001ff',
    ver: 5,
    packet: { type: 15, reasonCode: 0x18, properties: { authenticationMethod: 'S1', authenticationData: hex('ff') } },
  },
  {
    name: '3.1.1 CONNACK session present',
    hex: '2002 0100',
    ver: 4,
    packet: { type: 2, sessionPresent: true, reasonCode: 0 },
  },
  { name: '3.1 CONNACK refused', hex: '2002 0005', ver: 3, packet: { type: 2, sessionPresent: false, reasonCode: 5 } },
  {
    name: '5.0 CONNACK minimal',
    hex: '2003 0000 00',
    ver: 5,
    packet: { type: 2, sessionPresent: false, reasonCode: 0 },
  },
  {
    name: '5.0 CONNACK with server properties',
    hex: '200d 0000 0a 13003c 21000a 2401 2500',
    ver: 5,
    packet: {
      type: 2,
      sessionPresent: false,
      reasonCode: 0,
      properties: { serverKeepAlive: 60, receiveMaximum: 10, maximumQoS: 1, retainAvailable: 0 },
    },
  },
);

describe('MQTT codec hex fixtures', () => {
  for (const f of fixtures) {
    const bytes = hex(f.hex);
    const encVer = f.packet.type === 1 ? f.packet.protocolVersion : (f.ver as ProtocolVersion);
    test(`parse: ${f.name}`, () => {
      const d = decodePacket(bytes, 0, f.ver, MAX);
      assert.notEqual(d, NEED_MORE);
      if (d === NEED_MORE) return;
      assert.deepEqual(d.packet, f.packet);
      assert.equal(d.next, bytes.length);
      // A prefix is never enough.
      assert.equal(decodePacket(bytes.subarray(0, bytes.length - 1), 0, f.ver, MAX), NEED_MORE);
    });
    if (f.generate !== false) {
      test(`generate: ${f.name}`, () => {
        assert.equal(encodePacket(f.packet, encVer).toString('hex'), bytes.toString('hex'));
        assert.equal(packetSize(f.packet, encVer), bytes.length);
      });
    }
    test(`split points: ${f.name}, with packets glued on`, () => {
      const next = encodePacket(
        { type: 3, dup: false, qos: 1, retain: false, topic: 'n', packetId: 9, payload: b('z') },
        encVer,
      );
      assertSplitInvariant(Buffer.concat([bytes, next, hex('c000'), bytes]), f.ver);
    });
  }
});

/** One packet of every type that exists in `ver`, with 5.0 properties where allowed. */
function samples(ver: ProtocolVersion): Packet[] {
  const v5 = ver === 5;
  const list: Packet[] = [
    {
      type: 1,
      protocolName: ver === 3 ? 'MQIsdp' : 'MQTT',
      protocolVersion: ver,
      cleanSession: false,
      keepAlive: 65535,
      clientId: 'client-é-😀',
      will: { topic: 'last/will', payload: Buffer.alloc(300, 7), qos: 2, retain: true },
      username: 'user',
      password: hex('00ff00'),
    },
    { type: 2, sessionPresent: ver !== 3, reasonCode: v5 ? 0x87 : 5 },
    { type: 3, dup: true, qos: 2, retain: true, topic: 'a/b/c', packetId: 65535, payload: Buffer.alloc(200, 1) },
    { type: 4, packetId: 1, reasonCode: v5 ? 0x10 : 0 },
    { type: 5, packetId: 2, reasonCode: 0 },
    { type: 6, packetId: 3, reasonCode: v5 ? 0x92 : 0 },
    { type: 7, packetId: 4, reasonCode: 0 },
    {
      type: 8,
      packetId: 5,
      subscriptions: [
        { topicFilter: 's/+/#', qos: 2, noLocal: v5, retainAsPublished: v5, retainHandling: v5 ? 2 : 0 },
        { topicFilter: '$share/g/x', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 },
      ],
    },
    { type: 9, packetId: 5, reasonCodes: [2, 0, 0x80] },
    { type: 10, packetId: 6, topicFilters: ['s/+/#', 'x'] },
    { type: 11, packetId: 6, reasonCodes: v5 ? [0, 0x11] : [] },
    { type: 12 },
    { type: 13 },
    { type: 14, reasonCode: v5 ? 0x8e : 0 },
  ];
  if (v5) {
    const withProps: Packet[] = [
      {
        type: 1,
        protocolName: 'MQTT',
        protocolVersion: 5,
        cleanSession: true,
        keepAlive: 0,
        clientId: 'c',
        password: b('token-without-user'),
        properties: {
          sessionExpiryInterval: 0xffffffff,
          receiveMaximum: 10,
          maximumPacketSize: 1024,
          topicAliasMaximum: 5,
          requestResponseInformation: 1,
          requestProblemInformation: 0,
          userProperties: [
            ['a', '1'],
            ['a', '2'],
          ],
          authenticationMethod: 'SCRAM-SHA-1',
          authenticationData: b('data'),
        },
        will: {
          topic: 'w',
          payload: b(''),
          qos: 0,
          retain: false,
          properties: {
            willDelayInterval: 10,
            messageExpiryInterval: 20,
            contentType: 'text/plain',
            responseTopic: 'r',
            correlationData: b('c'),
            payloadFormatIndicator: 1,
            userProperties: [['k', 'v']],
          },
        },
      },
      {
        type: 2,
        sessionPresent: false,
        reasonCode: 0,
        properties: {
          sessionExpiryInterval: 30,
          assignedClientIdentifier: 'auto-1',
          serverKeepAlive: 20,
          responseInformation: 'resp/',
          serverReference: 'other:1883',
          reasonString: 'ok',
          receiveMaximum: 100,
          topicAliasMaximum: 10,
          maximumQoS: 1,
          retainAvailable: 1,
          maximumPacketSize: 65536,
          wildcardSubscriptionAvailable: 0,
          subscriptionIdentifierAvailable: 1,
          sharedSubscriptionAvailable: 1,
          authenticationMethod: 'm',
          authenticationData: b('d'),
          userProperties: [['x', 'y']],
        },
      },
      {
        type: 3,
        dup: false,
        qos: 0,
        retain: false,
        topic: 't',
        properties: { subscriptionIdentifiers: [1, 268435455], topicAlias: 2, contentType: 'a/b' },
        payload: b('p'),
      },
      { type: 5, packetId: 9, reasonCode: 0x80, properties: { reasonString: 'no', userProperties: [['u', 'v']] } },
      {
        type: 8,
        packetId: 1,
        properties: { subscriptionIdentifiers: [16384] },
        subscriptions: [{ topicFilter: 'a', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
      },
      { type: 9, packetId: 1, reasonCodes: [0x8f], properties: { userProperties: [['u', 'v']] } },
      { type: 10, packetId: 1, topicFilters: ['a'], properties: { userProperties: [['u', 'v']] } },
      { type: 11, packetId: 1, reasonCodes: [0x80], properties: { reasonString: 'r' } },
      { type: 14, reasonCode: 0, properties: { sessionExpiryInterval: 5, serverReference: 's', reasonString: 'r' } },
      { type: 15, reasonCode: 0 },
      { type: 15, reasonCode: 0x19 },
      { type: 15, reasonCode: 0x18, properties: { authenticationMethod: 'm', reasonString: 'r' } },
    ];
    list.push(...withProps);
  }
  return list;
}

describe('MQTT codec round trips', () => {
  for (const ver of [3, 4, 5] as const) {
    for (const [i, p] of samples(ver).entries()) {
      const props = 'properties' in p || (p.type === 1 && p.will?.properties !== undefined);
      test(`v${ver} #${i} type ${p.type}${props ? ' with properties' : ''}: encode → decode`, () => {
        const bytes = encodePacket(p, ver);
        assert.equal(bytes.length, packetSize(p, ver));
        const d = decodePacket(bytes, 0, p.type === 1 ? undefined : ver, MAX);
        assert.notEqual(d, NEED_MORE);
        if (d !== NEED_MORE) assert.deepEqual(d.packet, p);
        // writePacket into an offset slice writes the same bytes.
        const out = Buffer.alloc(bytes.length + 3);
        const w = new Writer(out, 3);
        writePacket(w, p, ver);
        assert.equal(w.off, out.length);
        assert.deepEqual(out.subarray(3), bytes);
      });
    }
  }
  test('AUTH cannot be encoded before 5.0', () => {
    assert.throws(() => encodePacket({ type: 15, reasonCode: 0 }, 4), RangeError);
  });
  test('properties not allowed in a packet are not encoded', () => {
    const p: Packet = { type: 4, packetId: 1, reasonCode: 0, properties: { topicAlias: 3 } };
    assert.equal(encodePacket(p, 5).toString('hex'), '40020001');
  });
});

describe('encodePublishHeader', () => {
  for (const ver of [3, 4, 5] as const) {
    for (const size of [0, 1, 127, 200, 20000]) {
      test(`v${ver} header + ${size}-byte payload equals the whole packet`, () => {
        const p: PublishPacket = {
          type: 3,
          dup: false,
          qos: 1,
          retain: true,
          topic: 'héllo/wörld',
          packetId: 42,
          payload: Buffer.alloc(size, 0xab),
        };
        if (ver === 5) p.properties = { messageExpiryInterval: 9, userProperties: [['a', 'b']] };
        const header = encodePublishHeader(p, ver);
        const whole = encodePacket(p, ver);
        assert.equal(header.length, whole.length - size);
        assert.deepEqual(Buffer.concat([header, p.payload]), whole);
      });
    }
  }
});

// A CONNECT of the given level with the given connect flags, keep alive 60, then `rest`.
function connectHex(level: ProtocolVersion, flags: string, rest: string): string {
  const body = hex(`${level === 3 ? '00064d5149736470' : '00044d515454'} 0${level} ${flags} 003c ${rest}`);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]).toString('hex');
}
const c3 = (flags: string, rest: string) => connectHex(3, flags, rest);
const c4 = (flags: string, rest: string) => connectHex(4, flags, rest);
const c5 = (flags: string, rest: string) => connectHex(5, flags, rest);

/** [name, hex, decode version, reason code]; a leading [statement] in the name is also checked. */
const bad: Array<[string, string, ProtocolVersion | undefined, number]> = [
  ['[MQTT-2.2.2-1] reserved flags on PUBACK are malformed', '4102 0001', 4, 0x81],
  ['[MQTT-2.1.3-1] reserved flags on PUBACK are malformed (5.0)', '4102 0001', 5, 0x81],
  ['[MQTT-2.2.2-1] PUBREL flags must be 0010', '6002 0001', 4, 0x81],
  ['[MQTT-2.2.2-1] SUBSCRIBE flags must be 0010', '8008 0001 0003612f62 01', 4, 0x81],
  ['[MQTT-2.2.2-1] UNSUBSCRIBE flags must be 0010', 'a005 0001 000161', 4, 0x81],
  ['[MQTT-2.2.2-1] CONNECT flags must be 0000', '1113 00044d515454 04 02 003c 00076d6f7371707562', undefined, 0x81],
  ['[MQTT-2.2.2-1] PINGREQ flags must be 0000', 'c100', 4, 0x81],
  ['[MQTT-3.3.1-4] PUBLISH QoS 3 is malformed', '3607 000161 0001 6869', 4, 0x81],
  ['[MQTT-3.3.1-2] PUBLISH DUP with QoS 0 is malformed', '3805 000161 6869', 5, 0x81],
  ['[MQTT-3.1.0-1] PUBLISH before CONNECT', '3005 000161 6869', undefined, 0x82],
  ['[MQTT-3.1.0-1] PINGREQ before CONNECT', 'c000', undefined, 0x82],
  ['[MQTT-2.3.1-1] PUBLISH QoS 1 with packet id 0', '3207 000161 0000 6869', 4, 0x82],
  ['[MQTT-2.2.1-3] PUBLISH QoS 2 with packet id 0 (5.0)', '3406 000161 0000 00', 5, 0x82],
  ['[MQTT-2.3.1-1] SUBSCRIBE with packet id 0', '8206 0000 000161 00', 4, 0x82],
  ['[MQTT-2.3.1-1] UNSUBSCRIBE with packet id 0', 'a205 0000 000161', 3, 0x82],
  ['[MQTT-2.3.1-1] PUBACK with packet id 0', '4002 0000', 4, 0x82],
  ['[MQTT-2.2.1-3] PUBREL with packet id 0 (5.0)', '6202 0000', 5, 0x82],
  ['[MQTT-2.3.1-1] SUBACK with packet id 0', '9003 0000 00', 4, 0x82],
  ['[MQTT-2.3.1-1] UNSUBACK with packet id 0', 'b002 0000', 4, 0x82],
  ['[MQTT-3.1.2-1] unknown protocol name', '100d 00044d515458 04 02 003c 000161', undefined, 0x81],
  ['[MQTT-3.1.2-2] unsupported level 6 with name MQTT', '100d 00044d515454 06 02 003c 000161', undefined, 0x84],
  ['[MQTT-3.1.2-2] level 3 with name MQTT', '100d 00044d515454 03 02 003c 000161', undefined, 0x84],
  ['[MQTT-3.1.2-2] MQIsdp with level 4', '100f 00064d5149736470 04 02 003c 000161', undefined, 0x84],
  ['[MQTT-1.5.4-1] overlong 3-byte UTF-8 in topic', '3005 0003e08080', 4, 0x81],
  ['[MQTT-1.5.4-1] code point above U+10FFFF in topic', '3006 0004f4908080', 4, 0x81],
  ['[MQTT-3.3.2-2] "+" in a PUBLISH topic', '3005 0003612f2b', 4, 0x90],
  ['[MQTT-3.3.2-2] "#" in a PUBLISH topic (5.0)', '3004 000123 00', 5, 0x90],
  ['[MQTT-4.7.3-1] empty PUBLISH topic before 5.0', '3003 0000 78', 4, 0x82],
  ['[MQTT-3.8.3-3] SUBSCRIBE without a filter (3.1.1)', '8202 0001', 4, 0x81],
  ['[MQTT-3.8.3-2] SUBSCRIBE without a filter (5.0)', '8203 0001 00', 5, 0x82],
  ['[MQTT-3.8.3-5] reserved subscription option bits (5.0)', '8207 0001 00 000161 40', 5, 0x81],
  ['Retain Handling 3 is a Protocol Error (5.0 §3.8.3.1)', '8207 0001 00 000161 30', 5, 0x82],
  ['Maximum QoS 3 is a Protocol Error (5.0 §3.8.3.1)', '8207 0001 00 000161 03', 5, 0x82],
  ['[MQTT-3-8.3-4] upper bits of the requested QoS byte (3.1.1)', '8206 0001 000161 04', 4, 0x81],
  ['[MQTT-3-8.3-4] requested QoS 3 (3.1.1)', '8206 0001 000161 03', 4, 0x81],
  ['SUBSCRIBE filter without its options byte', '8205 0001 000161', 4, 0x81],
  ['[MQTT-3.10.3-2] UNSUBSCRIBE without a filter (3.1.1)', 'a202 0001', 4, 0x81],
  ['[MQTT-3.10.3-2] UNSUBSCRIBE without a filter (5.0)', 'a203 0001 00', 5, 0x82],
  ['[MQTT-3.9.3-2] SUBACK return code 0x03 (3.1.1)', '9003 0001 03', 4, 0x81],
  ['[MQTT-3.2.2-1] CONNACK reserved acknowledge flags', '2002 0200', 4, 0x81],
  ['3.1.1 CONNACK longer than 2 bytes', '2003 000000', 4, 0x81],
  ['3.1.1 PUBACK with a reason code', '4003 0001 00', 4, 0x81],
  ['3.1.1 UNSUBACK with a payload', 'b003 0001 00', 4, 0x81],
  ['3.1.1 DISCONNECT with a body', 'e001 00', 4, 0x81],
  ['PINGREQ with a body', 'c001 00', 5, 0x81],
  ['AUTH before 5.0 (type 15 reserved)', 'f000', 4, 0x81],
  ['packet type 0 is reserved', '0000', 5, 0x81],
  ['Remaining Length over 4 bytes', '30ffffffff7f', 4, 0x81],
  ['[MQTT-1.5.5-1] non-minimal Remaining Length', '308000', 4, 0x81],
  ['5.0 PUBLISH property length past the packet', '3005 000161 09 00', 5, 0x81],
  ['5.0 unknown property identifier', '3006 000161 02 7f00', 5, 0x81],
  ['5.0 Session Expiry Interval is not allowed in PUBLISH', '3009 000161 05 1100000001', 5, 0x81],
  ['5.0 duplicate Topic Alias is a Protocol Error', '300a 000161 06 230001 230002', 5, 0x82],
  ['5.0 two Subscription Identifiers in SUBSCRIBE', '820a 0001 04 0b010b02 000161 00', 5, 0x82],
  ['5.0 Subscription Identifier 0 is a Protocol Error', '8208 0001 02 0b00 000161 00', 5, 0x82],
  ['5.0 Subscription Identifier 0 in PUBLISH', '3006 000161 02 0b00', 5, 0x82],
  ['5.0 Maximum QoS 2 in CONNACK is a Protocol Error', '2005 0000 02 2402', 5, 0x82],
  ['[MQTT-3.1.2-3] reserved connect flag', c4('03', '000161'), undefined, 0x81],
  ['[MQTT-3.1.2-13] will QoS without will flag (3.1.1)', c4('0a', '000161'), undefined, 0x81],
  ['[MQTT-3.1.2-11] will QoS without will flag (5.0)', c5('0a', '00 000161'), undefined, 0x81],
  ['[MQTT-3.1.2-15] will retain without will flag (3.1.1)', c4('22', '000161'), undefined, 0x81],
  ['[MQTT-3.1.2-13] will retain without will flag (5.0)', c5('22', '00 000161'), undefined, 0x81],
  ['[MQTT-3.1.2-14] will QoS 3 (3.1.1)', c4('1e', '000161 000161 000161'), undefined, 0x81],
  ['[MQTT-3.1.2-12] will QoS 3 (5.0)', c5('1e', '00 000161 00 000161 000161'), undefined, 0x81],
  ['[MQTT-3.1.2-22] password without user name (3.1.1)', c4('42', '000161 000170'), undefined, 0x81],
  ['[MQTT-3.1.2-22] password without user name (3.1)', c3('42', '000161 000170'), undefined, 0x81],
  ['[MQTT-1.5.4-1] ill-formed UTF-8 client id', c4('02', '0002c0af'), undefined, 0x81],
  ['[MQTT-1.5.4-1] surrogate in user name', c4('82', '000161 0003eda080'), undefined, 0x81],
  ['[MQTT-1.5.4-2] U+0000 in client id', c4('02', '0002 6100'), undefined, 0x81],
  ['CONNECT with bytes after the payload', c4('02', '000161 00'), undefined, 0x81],
  ['CONNECT truncated inside the client id', c4('02', '000561'), undefined, 0x81],
  ['CONNECT ending after the protocol name', '1006 00044d515454', undefined, 0x81],
  ['5.0 Topic Alias is not allowed in Will Properties', c5('06', '00 000161 03 230001 000161 000178'), undefined, 0x81],
  ['5.0 Will Delay Interval is not allowed in CONNECT properties', c5('02', '05 1800000001 000161'), undefined, 0x81],
  ['5.0 Receive Maximum 0 is a Protocol Error', c5('02', '03 210000 000161'), undefined, 0x82],
  ['5.0 Maximum Packet Size 0 is a Protocol Error', c5('02', '05 2700000000 000161'), undefined, 0x82],
  ['5.0 Request Problem Information 2 is a Protocol Error', c5('02', '02 1702 000161'), undefined, 0x82],
];

describe('MQTT codec malformed packets', () => {
  for (const [name, h, ver, code] of bad) {
    test(name, () => {
      const buf = hex(h);
      const e = codeOf(() => decodePacket(buf, 0, ver, MAX));
      assert.equal(e.reasonCode, code, e.message);
      const statement = /^\[(MQTT-[\d.-]+)\]/.exec(name)?.[1];
      if (statement !== undefined) assert.equal(e.statement, statement);
      // The accumulator reports the same error whether fed whole or one byte at a time.
      assert.equal(codeOf(() => accumulate([buf], ver)).reasonCode, code);
      assert.equal(codeOf(() => accumulate(chunked(buf, 1), ver)).reasonCode, code);
    });
  }

  test('[MQTT-3.1.2-2] a refused CONNECT reports its protocol version, unless the name is wrong', () => {
    const level = (h: string) => codeOf(() => decodePacket(hex(h), 0, undefined, MAX)).protocolVersion;
    assert.equal(level('100d 00044d515454 06 02 003c 000161'), 6);
    assert.equal(level(c5('1e', '00 000161 00 000161 000161')), 5);
    assert.equal(level(c4('02', '0002c0af')), 4);
    assert.equal(level(c3('42', '000161 000170')), 3);
    assert.equal(level('100d 00044d515458 05 02 003c 000161'), undefined);
  });

  test('[MQTT-3.1.2-22] 5.0 allows a password without a user name', () => {
    const d = decodePacket(hex(c5('42', '00 000161 000170')), 0, undefined, MAX);
    assert.ok(d !== NEED_MORE && d.packet.type === 1 && d.packet.password?.toString() === 'p');
  });

  test('5.0 duplicate User Properties and repeated Subscription Identifiers in PUBLISH are allowed', () => {
    const d = decodePacket(hex('3016 000161 12 2600016100016226000161000163 0b01 0b02'), 0, 5, MAX);
    assert.notEqual(d, NEED_MORE);
  });

  test('Payload Format Indicator is not checked against the payload by the decoder', () => {
    const d = decodePacket(hex('3007 000161 02 0101 ff'), 0, 5, MAX);
    assert.ok(d !== NEED_MORE && d.packet.type === 3 && d.packet.payload[0] === 0xff);
  });

  test('a BOM is kept, not stripped [MQTT-1.5.4-3]', () => {
    const d = decodePacket(hex('3006 0004efbbbf61'), 0, 4, MAX);
    assert.ok(d !== NEED_MORE && d.packet.type === 3 && d.packet.topic === '\ufeffa');
  });

  test('packet too large is refused from the fixed header alone (0x95)', () => {
    // Remaining Length 1000, but only the header has arrived.
    const header = hex('32e807');
    assert.equal(codeOf(() => decodePacket(header, 0, 4, 100)).reasonCode, 0x95);
    const acc = new PacketAccumulator(100, 4);
    acc.push(header.subarray(0, 2), () => {});
    assert.equal(codeOf(() => acc.push(header.subarray(2), () => {})).reasonCode, 0x95);
    // Exactly at the limit is fine.
    assert.deepEqual(decodePacket(hex('c000'), 0, 4, 2), { packet: { type: 12 }, next: 2 });
    assert.equal(codeOf(() => decodePacket(hex('c000'), 0, 4, 1)).reasonCode, 0x95);
  });
});

describe('PacketAccumulator', () => {
  const connect = encodePacket(conn4, 4);
  const pub = encodePacket({ type: 3, dup: false, qos: 0, retain: false, topic: 't', payload: b('payload') }, 4);

  test('CONNECT sets the version for the packets after it in the same chunk', () => {
    const acc = new PacketAccumulator(MAX);
    const got: Packet[] = [];
    acc.push(Buffer.concat([connect, pub, hex('c000')]), (p) => got.push(p));
    assert.deepEqual(
      got.map((p) => p.type),
      [1, 3, 12],
    );
    assert.equal(acc.version, 4);
  });

  test('payloads lying whole in a chunk are views into it', () => {
    const chunk = Buffer.concat([pub, pub]);
    const got: Packet[] = [];
    new PacketAccumulator(MAX, 4).push(chunk, (p) => got.push(p));
    for (const p of got) assert.ok(p.type === 3 && p.payload.buffer === chunk.buffer);
  });

  test('after a throw the accumulator is dead and rethrows', () => {
    const acc = new PacketAccumulator(MAX, 4);
    const e = codeOf(() => acc.push(hex('4102 0001'), () => {}));
    assert.equal(
      codeOf(() => acc.push(hex('c000'), () => {})),
      e,
    );
  });

  test('close() from the callback drops the rest of the chunk', () => {
    const acc = new PacketAccumulator(MAX, 5);
    const got: number[] = [];
    acc.push(hex('c000 e000 c000'), (p) => {
      got.push(p.type);
      if (p.type === 14) acc.close();
    });
    acc.push(hex('c000'), (p) => got.push(p.type));
    assert.deepEqual(got, [12, 14]);
  });

  test('the callback may override the version set by CONNECT', () => {
    const acc = new PacketAccumulator(MAX);
    assert.throws(
      () =>
        acc.push(Buffer.concat([connect, hex('c000')]), () => {
          acc.version = undefined;
        }),
      (e: unknown) => e instanceof MqttProtocolError && e.statement === 'MQTT-3.1.0-1',
    );
  });

  test('setMaxPacketSize applies to the next packet', () => {
    const acc = new PacketAccumulator(4, 4);
    acc.push(hex('c000'), () => {});
    acc.setMaxPacketSize(MAX);
    let n = 0;
    acc.push(pub, () => n++);
    assert.equal(n, 1);
  });

  test('a body split across three chunks arrives intact', () => {
    const big = encodePacket(
      { type: 3, dup: false, qos: 0, retain: false, topic: 't', payload: Buffer.alloc(70000, 5) },
      5,
    );
    const got = accumulate([big.subarray(0, 3), big.subarray(3, 40000), big.subarray(40000)], 5);
    assert.equal(got.length, 1);
    assert.ok(got[0]!.type === 3 && got[0]!.payload.equals(Buffer.alloc(70000, 5)));
  });
});

describe('variable byte integer, UTF-8 and topics', () => {
  test('VBI boundaries round trip', () => {
    for (const n of [0, 127, 128, 16383, 16384, 2097151, 2097152, VBI_MAX]) {
      const buf = Buffer.alloc(4);
      const end = writeVBI(buf, 0, n);
      assert.equal(end, vbiSize(n));
      assert.equal(readVBI(buf, 0, end), n);
      assert.equal(readVBI(buf, 0, end - 1), -1);
    }
    assert.throws(() => vbiSize(VBI_MAX + 1), RangeError);
  });

  test('Reader bounds every read by the packet end', () => {
    const r = new Reader(hex('0005616263'), 0, 5);
    assert.equal(codeOf(() => r.readUtf8()).reasonCode, 0x81);
    assert.equal(codeOf(() => new Reader(hex('00'), 0, 1).readU16()).reasonCode, 0x81);
  });

  test('[MQTT-4.7.1-1] [MQTT-4.7.1-2] [MQTT-4.7.3-1] topic filter syntax', () => {
    for (const f of ['#', 'a/#', '+', '+/+', 'a/+/b', '/', '//', 'a//#', '$SYS/#', '+/#', 'sport/tennis/player1']) {
      assert.ok(validTopicFilter(f), f);
    }
    for (const f of ['', 'a#', '#/a', 'a/#/b', 'a+', '+a', 'a/b+', 'a/##', 'a\u0000'])
      assert.ok(!validTopicFilter(f), f);
  });

  test('[MQTT-3.3.2-2] [MQTT-4.7.3-1] topic name syntax', () => {
    for (const t of ['a', '/', 'a/b', ' ', '$SYS/x', 'ü']) assert.ok(validTopicName(t), t);
    for (const t of ['', 'a/+', '#', 'a\u0000b']) assert.ok(!validTopicName(t), t);
  });

  test('non-ASCII strings survive encode and decode', () => {
    for (const s of ['ü', '日本語/トピック', '😀/🎉', `${'a'.repeat(100)}é`, '\ufeff']) {
      const p: Packet = { type: 3, dup: false, qos: 0, retain: false, topic: s, payload: b('') };
      const d = decodePacket(encodePacket(p, 4), 0, 4, MAX);
      assert.ok(d !== NEED_MORE && d.packet.type === 3 && d.packet.topic === s);
    }
  });
});
