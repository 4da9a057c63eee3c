/**
 * Live fuzzing of the MQTT listener with fast-check: random byte strings and mutations of valid
 * packets (built with the codec's own encoder) go to one running broker on fresh sockets, both
 * before any CONNECT and after a valid one, sometimes split into several writes; the conformance
 * tables' conversations, mutated, are a third source. After every run:
 *
 * - nothing was thrown out of the broker (uncaughtException / unhandledRejection), and it logged
 *   no error (an internal exception caught by a connection is a bug too, not bad input);
 * - everything the server sent after CONNACK decodes as MQTT packets;
 * - a healthy mqtt.js client, connected since the start, still publishes a QoS 1 message and
 *   receives it on the topic it subscribed to, without ever having been disconnected.
 *
 * Bounded: about 300 runs in all, each test stops after 25 s (fast-check's time limit), and every
 * socket is destroyed when its run ends.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import type { MqttClient } from 'mqtt';
import { mqttCodec } from '../../src/internal.js';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { collect, connect, end, type Received, waitFor } from '../helpers/mqtt.js';

type Version = 4 | 5;
type Packet = mqttCodec.Packet;

/** How long a run waits for the server's reaction once its bytes are sent. */
const SETTLE_MS = 30;
const TIME_LIMIT_MS = 25_000;

// ---- arbitraries ----------------------------------------------------------------------------

const topicArb = fc.constantFrom('a', 'a/b', 'fuzz/t', '/weather/st01/temperature', '$SYS/x', 'x/y/z', 'é/ü', 's p');
const filterArb = fc.oneof(topicArb, fc.constantFrom('#', '+', 'a/+', 'fuzz/#', '+/+/#', '$share/g/a/#', '$share/g/#'));
const qosArb = fc.constantFrom<0 | 1 | 2>(0, 1, 2);
const packetIdArb = fc.integer({ min: 1, max: 65535 });
const payloadArb = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
const shortString = fc.string({ maxLength: 12 });

const userPropertiesArb = fc.array(fc.tuple(shortString, shortString), { maxLength: 2 });

const publishPropsArb = fc.record(
  {
    payloadFormatIndicator: fc.constantFrom(0, 1),
    messageExpiryInterval: fc.integer({ min: 0, max: 100 }),
    contentType: shortString,
    responseTopic: topicArb,
    correlationData: payloadArb,
    topicAlias: fc.integer({ min: 1, max: 8 }),
    userProperties: userPropertiesArb,
  },
  { requiredKeys: [] },
);

function publishArb(ver: Version): fc.Arbitrary<Packet> {
  return fc
    .record({
      qos: qosArb,
      dup: fc.boolean(),
      retain: fc.boolean(),
      topic: topicArb,
      packetId: packetIdArb,
      payload: payloadArb,
      properties: ver === 5 ? fc.option(publishPropsArb, { nil: undefined }) : fc.constant(undefined),
    })
    .map(({ qos, dup, retain, topic, packetId, payload, properties }) => {
      const p: mqttCodec.PublishPacket = { type: 3, dup: qos > 0 && dup, qos, retain, topic, payload };
      if (qos > 0) p.packetId = packetId;
      if (properties) p.properties = properties;
      return p;
    });
}

function subscribeArb(ver: Version): fc.Arbitrary<Packet> {
  const sub = fc.record({
    topicFilter: filterArb,
    qos: qosArb,
    noLocal: ver === 5 ? fc.boolean() : fc.constant(false),
    retainAsPublished: ver === 5 ? fc.boolean() : fc.constant(false),
    retainHandling: ver === 5 ? fc.constantFrom<0 | 1 | 2>(0, 1, 2) : fc.constant<0>(0),
  });
  return fc
    .record({
      packetId: packetIdArb,
      subscriptions: fc.array(sub, { minLength: 1, maxLength: 3 }),
      subscriptionId: fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined }),
    })
    .map(({ packetId, subscriptions, subscriptionId }) => {
      const p: mqttCodec.SubscribePacket = { type: 8, packetId, subscriptions };
      if (ver === 5 && subscriptionId !== undefined) p.properties = { subscriptionIdentifiers: [subscriptionId] };
      return p;
    });
}

const unsubscribeArb: fc.Arbitrary<Packet> = fc
  .record({ packetId: packetIdArb, topicFilters: fc.array(filterArb, { minLength: 1, maxLength: 3 }) })
  .map(({ packetId, topicFilters }) => ({ type: 10, packetId, topicFilters }));

function ackArb(ver: Version): fc.Arbitrary<Packet> {
  return fc
    .record({
      type: fc.constantFrom<4 | 5 | 6 | 7>(4, 5, 6, 7),
      packetId: packetIdArb,
      reasonCode: ver === 5 ? fc.constantFrom(0, 0x10, 0x80, 0x92) : fc.constant(0),
    })
    .map((a): Packet => a);
}

function disconnectArb(ver: Version): fc.Arbitrary<Packet> {
  if (ver === 4) return fc.constant<Packet>({ type: 14, reasonCode: 0 });
  return fc
    .record({
      reasonCode: fc.constantFrom(0, 4, 0x80),
      expiry: fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined }),
    })
    .map(({ reasonCode, expiry }) => {
      const p: mqttCodec.DisconnectPacket = { type: 14, reasonCode };
      if (expiry !== undefined) p.properties = { sessionExpiryInterval: expiry };
      return p;
    });
}

function connectArb(ver: Version): fc.Arbitrary<Packet> {
  return fc
    .record({
      cleanSession: fc.boolean(),
      keepAlive: fc.integer({ min: 0, max: 120 }),
      clientId: fc.oneof(
        fc.constant(''),
        fc.string({ minLength: 1, maxLength: 10 }).map((s) => `fz-${s}`),
      ),
      will: fc.option(
        fc
          .record({ topic: topicArb, payload: payloadArb, qos: qosArb, retain: fc.boolean() })
          .map((w) => w as mqttCodec.Will),
        { nil: undefined },
      ),
      username: fc.option(fc.constantFrom('user', 'guest', ''), { nil: undefined }),
      password: fc.option(payloadArb, { nil: undefined }),
      sessionExpiry: fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }),
    })
    .map(({ cleanSession, keepAlive, clientId, will, username, password, sessionExpiry }) => {
      const p: mqttCodec.ConnectPacket = {
        type: 1,
        protocolName: 'MQTT',
        protocolVersion: ver,
        cleanSession,
        keepAlive,
        clientId,
      };
      if (will) p.will = will;
      if (username !== undefined) {
        p.username = username;
        if (password !== undefined) p.password = password;
      }
      if (ver === 5 && sessionExpiry !== undefined) p.properties = { sessionExpiryInterval: sessionExpiry };
      return p;
    });
}

function packetArb(ver: Version): fc.Arbitrary<Packet> {
  const arbs: fc.Arbitrary<Packet>[] = [
    publishArb(ver),
    publishArb(ver),
    subscribeArb(ver),
    unsubscribeArb,
    ackArb(ver),
    fc.constant<Packet>({ type: 12 }),
    disconnectArb(ver),
    connectArb(ver),
  ];
  if (ver === 5)
    arbs.push(fc.constant<Packet>({ type: 15, reasonCode: 0x18, properties: { authenticationMethod: 'x' } }));
  return fc.oneof(...arbs);
}

/** One edit of a byte string; positions are taken modulo its length when applied. */
type Mutation =
  | { kind: 'set'; at: number; value: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'truncate'; at: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

function mutate(input: Buffer, mutations: Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of mutations) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    switch (m.kind) {
      case 'set':
        b[at] = m.value;
        break;
      case 'flip':
        b[at] = b[at]! ^ (1 << m.bit);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
    }
  }
  return b;
}

/** Valid packets, encoded back to back, then mutated (mutations may be empty: valid input too). */
function mutatedPacketsArb(ver: Version, first?: fc.Arbitrary<Packet>): fc.Arbitrary<Buffer> {
  const packets = first
    ? fc.tuple(first, fc.array(packetArb(ver), { maxLength: 2 })).map(([a, rest]) => [a, ...rest])
    : fc.array(packetArb(ver), { minLength: 1, maxLength: 4 });
  return fc
    .tuple(packets, fc.array(mutationArb, { maxLength: 4 }))
    .map(([ps, mutations]) => mutate(Buffer.concat(ps.map((p) => mqttCodec.encodePacket(p, ver))), mutations));
}

const randomBytesArb = fc.uint8Array({ minLength: 1, maxLength: 256 }).map((a) => Buffer.from(a));

/** Cuts `bytes` into writes at the given positions. */
function chunk(bytes: Buffer, cuts: number[]): Buffer[] {
  if (bytes.length < 2 || cuts.length === 0) return [bytes];
  const at = [...new Set(cuts.map((c) => 1 + (c % (bytes.length - 1))))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of at) {
    out.push(bytes.subarray(prev, c));
    prev = c;
  }
  out.push(bytes.subarray(prev));
  return out;
}

const cutsArb = fc.array(fc.nat(), { maxLength: 3 });

/**
 * The conformance tables seed the corpus too (STYLE.md habit 12): what each entry sends, one
 * buffer per entry, for the version it speaks and whether it is sent before or after CONNECT.
 */
interface Seed {
  ver: number;
  afterConnect: boolean;
  bytes: Buffer;
}

function loadSeeds(): Seed[] {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return [];
    dir = up;
  }
  const data = join(dir, 'test', 'conformance', 'data');
  if (!existsSync(data)) return [];
  const seeds: Seed[] = [];
  for (const file of readdirSync(data).filter((f) => f.endsWith('.json'))) {
    const table = JSON.parse(readFileSync(join(data, file), 'utf8')) as {
      tests: Array<{ ver: number; connect: boolean; msgs: Array<{ type: string; payload?: string }> }>;
    };
    for (const e of table.tests) {
      const sent = e.msgs.filter((m) => m.type === 'send' && m.payload !== undefined);
      const bytes = Buffer.concat(sent.map((m) => Buffer.from(m.payload!.replace(/\s+/g, ''), 'hex')));
      if (bytes.length > 0) seeds.push({ ver: e.ver, afterConnect: e.connect, bytes });
    }
  }
  return seeds;
}

const seeds = loadSeeds();

/** Table entries that fit (version, before or after CONNECT), mutated; random bytes if none fit. */
function seedArb(fits: (s: Seed) => boolean): fc.Arbitrary<Buffer> {
  const fitting = seeds.filter(fits);
  if (fitting.length === 0) return randomBytesArb;
  return fc
    .tuple(fc.constantFrom(...fitting), fc.array(mutationArb, { maxLength: 3 }))
    .map(([seed, mutations]) => mutate(seed.bytes, mutations));
}

// ---- one run on a raw socket ----------------------------------------------------------------------

interface Outcome {
  /** Bytes the server sent after CONNACK (after-connect runs only). */
  afterConnack: Buffer;
  closed: boolean;
}

async function runOnSocket(port: number, connectFirst: Version | undefined, writes: Buffer[]): Promise<Outcome> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.setNoDelay(true);
  let received = Buffer.alloc(0);
  let closed = false;
  let wake: (() => void) | undefined;
  socket.on('data', (d: Buffer) => {
    received = Buffer.concat([received, d]);
    wake?.();
  });
  const gone = () => {
    closed = true;
    wake?.();
  };
  socket.on('close', gone);
  socket.on('end', gone);
  socket.on('error', gone);
  const until = async (done: () => boolean, ms: number): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!done() && !closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  };
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    let connackLength = 0;
    if (connectFirst) {
      const clientId = `fz-${Math.random().toString(36).slice(2, 10)}`;
      const connectPacket: Packet = {
        type: 1,
        protocolName: 'MQTT',
        protocolVersion: connectFirst,
        cleanSession: true,
        keepAlive: 60,
        clientId,
      };
      socket.write(mqttCodec.encodePacket(connectPacket, connectFirst));
      const framed = (): number => {
        if (received.length < 2) return -1;
        const d = mqttCodec.decodePacket(received, 0, connectFirst, 1 << 20);
        return d === mqttCodec.NEED_MORE ? -1 : (d as mqttCodec.Decoded).next;
      };
      await until(() => framed() > 0, 3000);
      assert.ok(framed() > 0, `no CONNACK to a valid CONNECT (got [${received.toString('hex')}], closed=${closed})`);
      assert.equal(received[0], 0x20, 'CONNACK first');
      assert.equal(received[3], 0x00, 'CONNACK 0x00');
      connackLength = framed();
    }
    for (const w of writes) {
      if (closed) break;
      socket.write(w);
    }
    // Give the server time to answer or to close; a closed socket ends the wait at once.
    await until(() => false, SETTLE_MS);
    return { afterConnack: received.subarray(connackLength), closed };
  } finally {
    socket.destroy();
  }
}

/** Every byte after CONNACK must decode as server packets of that version. */
function assertDecodes(bytes: Buffer, ver: Version): void {
  const acc = new mqttCodec.PacketAccumulator(1 << 28, ver);
  try {
    acc.push(bytes, () => {});
  } catch (err) {
    assert.fail(`the server sent bytes that do not decode: ${(err as Error).message}: [${bytes.toString('hex')}]`);
  }
}

// ---- the tests --------------------------------------------------------------------------------------

describe('live MQTT broker under random and mutated input', () => {
  let tb: TestBroker;
  let healthy: MqttClient;
  let healthyGot: Received[];
  let healthyCloses = 0;
  const topic = `healthy/${process.pid}/${Date.now()}`;
  let seq = 0;
  const thrown: unknown[] = [];
  const onThrown = (err: unknown) => thrown.push(err);

  before(async () => {
    process.on('uncaughtException', onThrown);
    process.on('unhandledRejection', onThrown);
    tb = await startBroker();
    healthy = await connect(tb.url, { clientId: `healthy-${process.pid}`, protocolVersion: 5, keepalive: 30 });
    healthy.on('close', () => healthyCloses++);
    healthyGot = collect(healthy);
    await healthy.subscribeAsync(topic, { qos: 1 });
  });

  after(async () => {
    process.off('uncaughtException', onThrown);
    process.off('unhandledRejection', onThrown);
    await end(healthy);
    await tb?.stop();
  });

  /** The invariants every run must leave intact. */
  async function assertBrokerHealthy(logMark: number): Promise<void> {
    assert.deepEqual(thrown, [], 'the broker threw');
    const errors = tb.logs.slice(logMark).filter((l) => /^\S+ error /.test(l));
    assert.deepEqual(errors, [], 'the broker logged an error');
    assert.equal(healthyCloses, 0, 'the healthy client was disconnected');
    const payload = `ping-${++seq}`;
    await healthy.publishAsync(topic, payload, { qos: 1 });
    await waitFor(
      () => healthyGot.some((m) => m.payload.toString() === payload),
      3000,
      `healthy client to get ${payload}`,
    );
    const got = healthyGot.find((m) => m.payload.toString() === payload)!;
    assert.equal(got.packet.qos, 1);
  }

  it('survives random bytes and mutated CONNECT packets sent before CONNECT', { timeout: 60_000 }, async () => {
    const input = fc.record({
      bytes: fc.oneof(
        randomBytesArb,
        fc.constantFrom<Version>(4, 5).chain((ver) => mutatedPacketsArb(ver, connectArb(ver))),
        // A valid first byte, so that the decoder gets past it more often.
        randomBytesArb.map((b) => Buffer.concat([Buffer.from([0x10]), b])),
        seedArb((seed) => !seed.afterConnect),
      ),
      cuts: cutsArb,
    });
    await fc.assert(
      fc.asyncProperty(input, async ({ bytes, cuts }) => {
        const logMark = tb.logs.length;
        await runOnSocket(tb.port, undefined, chunk(bytes, cuts));
        await assertBrokerHealthy(logMark);
      }),
      { numRuns: 150, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
    await assertBrokerHealthy(0);
  });

  it('survives random bytes and mutated packets sent after a valid CONNECT', { timeout: 60_000 }, async () => {
    const input = fc.constantFrom<Version>(4, 5).chain((ver) =>
      fc.record({
        ver: fc.constant(ver),
        bytes: fc.oneof(
          { weight: 1, arbitrary: randomBytesArb },
          { weight: 3, arbitrary: mutatedPacketsArb(ver) },
          { weight: 1, arbitrary: seedArb((seed) => seed.afterConnect && seed.ver === ver) },
        ),
        cuts: cutsArb,
      }),
    );
    await fc.assert(
      fc.asyncProperty(input, async ({ ver, bytes, cuts }) => {
        const logMark = tb.logs.length;
        const outcome = await runOnSocket(tb.port, ver, chunk(bytes, cuts));
        assertDecodes(outcome.afterConnack, ver);
        await assertBrokerHealthy(logMark);
      }),
      { numRuns: 200, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
    await assertBrokerHealthy(0);
  });
});
