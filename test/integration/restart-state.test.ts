/**
 * Restart tests (issue 5): state made by real clients (amqplib, mqtt.js, raw AMQP and MQTT
 * sockets) against a `braid start` process, which is then stopped with SIGTERM, or killed with
 * SIGKILL, and started again on the same data directory.
 *
 * Survives: durable exchanges (type, alternate-exchange), durable queues and their arguments
 * (x-message-ttl, x-dead-letter-exchange, x-max-length), queue and exchange-to-exchange
 * bindings, persistent messages in durable queues (property bytes exact), the redelivered flag
 * of an unacked delivery (and its absence on a message never delivered), retained MQTT messages
 * with their properties, MQTT persistent sessions (subscriptions, queued QoS 1 messages, a QoS 1
 * delivery in flight, a QoS 2 publish received but not released).
 *
 * Does not survive: non-durable exchanges and queues, exclusive queues, transient messages in a
 * durable queue, MQTT clean sessions.
 *
 * Before a SIGKILL the test waits for a publisher confirm issued after everything else: the
 * store commits in order, so all earlier writes are on disk by then.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import {
  type BraidProcess,
  killAllBraids,
  removeDir,
  sleep,
  startBraidProcess,
  tempDir,
} from '../helpers/braid-process.js';
import {
  basicPublish,
  bodyFrame,
  contentHeader,
  FRAME_BODY,
  FRAME_HEADER,
  isMethod,
  methodFrame,
  parseClose,
  RawAmqp,
  shortstr,
  u8,
  u16,
  u32,
  u64,
} from '../helpers/raw-amqp.js';
import {
  connectPacket,
  parsePublish,
  pubackPacket,
  publishPacket,
  pubrelPacket,
  Raw,
  subscribePacket,
} from '../helpers/raw-mqtt.js';

const root = tempDir('braid-restart-');
after(async () => {
  await killAllBraids();
  removeDir(root);
});

// ---------------------------------------------------------------------------------------------
// A persistent message with every basic property and every field type, built byte by byte.

const ln = (b: Buffer): Buffer => Buffer.concat([u32(b.length), b]);
const field = (name: string, type: string, value: Buffer): Buffer =>
  Buffer.concat([shortstr(name), Buffer.from(type, 'latin1'), value]);
const i8 = (n: number) => Buffer.from([n & 0xff]);
function num(size: 2 | 4 | 8, n: number | bigint, signed: boolean, float = false): Buffer {
  const b = Buffer.alloc(size);
  if (float && size === 4) b.writeFloatBE(Number(n));
  else if (float) b.writeDoubleBE(Number(n));
  else if (size === 2) signed ? b.writeInt16BE(Number(n)) : b.writeUInt16BE(Number(n));
  else if (size === 4) signed ? b.writeInt32BE(Number(n)) : b.writeUInt32BE(Number(n));
  else signed ? b.writeBigInt64BE(BigInt(n)) : b.writeBigUInt64BE(BigInt(n));
  return b;
}
const HEADERS = ln(
  Buffer.concat([
    field('zeta-first', 'S', ln(Buffer.from('unordered keys stay in order'))),
    field('int8', 'b', i8(-5)),
    field('uint8', 'B', i8(200)),
    field('int16', 's', num(2, -300, true)),
    field('uint16', 'u', num(2, 60000, false)),
    field('int32', 'I', num(4, 7, true)),
    field('uint32', 'i', num(4, 4000000000, false)),
    field('int64', 'l', num(8, 9007199254740993n, true)),
    field('small-int64', 'l', num(8, 1, true)),
    field('float', 'f', num(4, 1.5, true, true)),
    field('double', 'd', num(8, 2.25, true, true)),
    field('decimal', 'D', Buffer.concat([u8(2), num(4, 12345, true)])),
    field('bool', 't', u8(1)),
    field('bytes', 'x', ln(Buffer.from([0, 1, 2, 255]))),
    field('timestamp', 'T', u64(1700000000)),
    field('void', 'V', Buffer.alloc(0)),
    field(
      'array',
      'A',
      ln(
        Buffer.concat([
          Buffer.from('S'),
          ln(Buffer.from('a')),
          Buffer.from('b'),
          i8(1),
          Buffer.from('I'),
          num(4, 2, true),
        ]),
      ),
    ),
    field(
      'table',
      'F',
      ln(Buffer.concat([field('inner', 's', num(2, 1, true)), field('s', 'S', ln(Buffer.from('x')))])),
    ),
  ]),
);
/** content-type ... app-id (no expiration: the queue TTL applies; no cluster-id). */
const PROPS = Buffer.concat([
  u16(0x8000 | 0x4000 | 0x2000 | 0x1000 | 0x0800 | 0x0400 | 0x0200 | 0x0080 | 0x0040 | 0x0020 | 0x0010 | 0x0008),
  shortstr('application/octet-stream'),
  shortstr('identity'),
  HEADERS,
  u8(2), // persistent
  u8(3), // priority
  shortstr('corr-1'),
  shortstr('reply-here'),
  shortstr('msg-1'),
  u64(1700000001),
  shortstr('a-type'),
  shortstr('guest'),
  shortstr('restart-test'),
]);
const RAW_BODY = Buffer.from([0, 1, 2, 3, 0xfe, 0xff, 0x41]);

/** Opens a raw AMQP connection with channel 1 in confirm mode. */
async function rawChannel(port: number): Promise<RawAmqp> {
  const raw = await RawAmqp.open(port);
  await raw.handshake();
  await raw.openChannel(1);
  raw.send(methodFrame(1, 85, 10, u8(0))); // confirm.select
  await raw.nextMethod(85, 11, 1);
  return raw;
}

/** basic.get no-ack on channel 1: redelivered, the property bytes and the body; undefined if empty. */
async function rawGet(
  raw: RawAmqp,
  queue: string,
): Promise<{ redelivered: boolean; props: Buffer; body: Buffer } | undefined> {
  raw.send(methodFrame(1, 60, 70, u16(0), shortstr(queue), u8(1)));
  const reply = await raw.next(
    (f) => f.channel === 1 && (isMethod(f, 60, 71) || isMethod(f, 60, 72) || isMethod(f, 20, 40)),
    'basic.get-ok or get-empty',
  );
  if (isMethod(reply, 20, 40)) assert.fail(`basic.get ${queue}: channel.close ${JSON.stringify(parseClose(reply))}`);
  if (isMethod(reply, 60, 72)) return undefined;
  const redelivered = (reply.payload[12]! & 1) === 1;
  const header = await raw.next((f) => f.type === FRAME_HEADER && f.channel === 1, 'the content header');
  const size = Number(header.payload.readBigUInt64BE(4));
  const parts: Buffer[] = [];
  let got = 0;
  while (got < size) {
    const b = await raw.next((f) => f.type === FRAME_BODY && f.channel === 1, 'a body frame');
    parts.push(b.payload);
    got += b.payload.length;
  }
  return { redelivered, props: header.payload.subarray(12), body: Buffer.concat(parts) };
}

// ---------------------------------------------------------------------------------------------
// Clients

async function amqpConnect(b: BraidProcess): Promise<ChannelModel> {
  const conn = await amqp.connect(b.amqpUrl);
  conn.on('error', () => {});
  return conn;
}

/** Connects; `onMessage` is attached before the CONNACK (a resumed session's messages come with it). */
function mqttConnect(
  b: BraidProcess,
  opts: IClientOptions,
  onMessage?: (topic: string, payload: Buffer, packet: IPublishPacket) => void,
): Promise<{ c: MqttClient; sessionPresent: boolean }> {
  const c = mqtt.connect(b.mqttUrl, { reconnectPeriod: 0, connectTimeout: 10_000, ...opts });
  if (onMessage) c.on('message', onMessage);
  return new Promise((resolve, reject) => {
    c.once('connect', (connack) => {
      c.removeAllListeners('error');
      c.on('error', () => {});
      resolve({ c, sessionPresent: connack.sessionPresent });
    });
    c.once('error', reject);
    c.once('close', () => reject(new Error(`${opts.clientId}: closed before CONNACK`)));
  });
}

async function rawMqtt(
  b: BraidProcess,
  clientId: string,
  clean: boolean,
): Promise<{ raw: Raw; sessionPresent: boolean }> {
  const raw = await Raw.open(b.mqttPort);
  const connack = await raw.handshake(connectPacket({ v: 5, clientId, clean, sessionExpiry: 3600 }));
  return { raw, sessionPresent: (connack.body[0]! & 1) === 1 };
}

async function waitUntil(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A channel operation that must fail with `code`; each failure closes its channel, so each gets its own. */
async function channelFails(
  conn: ChannelModel,
  code: number,
  op: (ch: ConfirmChannel) => Promise<unknown>,
  what: string,
) {
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => {});
  await assert.rejects(op(ch), (err: Error & { code?: number }) => {
    assert.equal(err.code, code, `${what}: ${err.message}`);
    return true;
  });
}

const MSG_PROPS = {
  contentType: 'text/plain',
  userProperties: { a: '1', b: 'two' },
  responseTopic: 'rs/resp',
  correlationData: Buffer.from('corr'),
  payloadFormatIndicator: true,
  messageExpiryInterval: 3600,
};

// ---------------------------------------------------------------------------------------------
// Before the restart

interface Held {
  amqp: ChannelModel[];
  mqtt: MqttClient[];
  raw: Array<{ close(): void }>;
  inflightId: number;
}

async function makeState(b: BraidProcess): Promise<Held> {
  const held: Held = { amqp: [], mqtt: [], raw: [], inflightId: 0 };
  const conn = await amqpConnect(b);
  held.amqp.push(conn);
  const ch = await conn.createConfirmChannel();
  await ch.assertExchange('rs-ae', 'fanout', { durable: true });
  await ch.assertExchange('rs-x', 'topic', { durable: true, alternateExchange: 'rs-ae' });
  await ch.assertExchange('rs-x2', 'direct', { durable: true });
  await ch.bindExchange('rs-x2', 'rs-x', 'e2e.#');
  await ch.assertQueue('rs-dlq', { durable: true });
  await ch.bindQueue('rs-dlq', 'rs-ae', '');
  await ch.assertQueue('rs-args', {
    durable: true,
    messageTtl: 3_600_000,
    deadLetterExchange: 'rs-ae',
    maxLength: 100,
  });
  await ch.bindQueue('rs-args', 'rs-x', 'args.#');
  await ch.assertQueue('rs-q2', { durable: true });
  await ch.bindQueue('rs-q2', 'rs-x2', 'e2e.k');
  await ch.assertQueue('rs-unacked', { durable: true });
  await ch.assertQueue('rs-barrier', { durable: true });
  // Not durable, not kept.
  await ch.assertExchange('rs-tx', 'fanout', { durable: false });
  await ch.assertQueue('rs-tq', { durable: false });
  await ch.bindQueue('rs-tq', 'rs-tx', '');
  await ch.assertQueue('rs-excl', { exclusive: true, durable: true });

  // Messages: one persistent (raw, every property) and one transient into rs-args; one through
  // the alternate exchange; two into rs-unacked, of which one is delivered and not acked.
  const raw = await rawChannel(b.amqpPort);
  held.raw.push({ close: () => raw.close() });
  raw.send(
    Buffer.concat([
      basicPublish(1, 'rs-x', 'args.raw'),
      contentHeader(1, RAW_BODY.length, 60, PROPS),
      bodyFrame(1, RAW_BODY),
    ]),
  );
  await raw.nextMethod(60, 80, 1); // basic.ack
  const pub = (ex: string, key: string, body: string, persistent = true) =>
    new Promise<void>((resolve, reject) =>
      ch.publish(ex, key, Buffer.from(body), { persistent }, (err) => (err ? reject(err) : resolve())),
    );
  await pub('rs-x', 'args.transient', 'transient', false);
  await pub('rs-x', 'nomatch', 'via-ae');
  await pub('', 'rs-unacked', 'U1');
  await pub('', 'rs-unacked', 'U2');
  const holder = await amqpConnect(b);
  held.amqp.push(holder);
  const hch = await holder.createChannel();
  await hch.prefetch(1);
  const got: string[] = [];
  await hch.consume('rs-unacked', (m) => m && got.push(m.content.toString()), { noAck: false });
  await waitUntil(() => got.length === 1, 'the delivery of U1');
  assert.deepEqual(got, ['U1']);

  // MQTT: a retained message with properties.
  const retainer = await mqttConnect(b, { clientId: 'rs-retainer', protocolVersion: 5 });
  await retainer.c.publishAsync('rs/retained', 'R1', { qos: 1, retain: true, properties: MSG_PROPS });
  await retainer.c.endAsync();

  // A persistent session with a subscription and two queued QoS 1 messages.
  const sess = await mqttConnect(b, {
    clientId: 'rs-sess',
    protocolVersion: 5,
    clean: false,
    properties: { sessionExpiryInterval: 3600 },
  });
  await sess.c.subscribeAsync('rs/s/#', { qos: 2 });
  await sess.c.endAsync();
  const p = await mqttConnect(b, { clientId: 'rs-pub', protocolVersion: 5 });
  await p.c.publishAsync('rs/s/1', 'S1', { qos: 1 });
  await p.c.publishAsync('rs/s/2', 'S2', { qos: 1 });

  // A QoS 2 publish received (PUBREC) but not released (no PUBREL), from a persistent session.
  const q2 = await rawMqtt(b, 'rs-q2pub', true);
  held.raw.push(q2.raw);
  q2.raw.send(publishPacket({ v: 5, topic: 'rs/s/q2', payload: 'Q2', qos: 2, id: 7 }));
  const pubrec = await q2.raw.next(5);
  assert.equal(pubrec.body.readUInt16BE(0), 7);
  assert.ok(pubrec.body.length === 2 || pubrec.body[2]! < 0x80, 'PUBREC reason code success');
  // A second one, which the client will send again (DUP) after the restart, as a client whose
  // PUBREC was lost with the connection does: the broker must not deliver it twice.
  q2.raw.send(publishPacket({ v: 5, topic: 'rs/s/q2', payload: 'Q2b', qos: 2, id: 8 }));
  const pubrec8 = await q2.raw.next(5);
  assert.equal(pubrec8.body.readUInt16BE(0), 8);

  // A QoS 1 delivery in flight (sent, not PUBACKed) to another persistent session.
  const inflight = await rawMqtt(b, 'rs-inflight', true);
  held.raw.push(inflight.raw);
  inflight.raw.send(subscribePacket(5, 1, 'rs/if', 1));
  await inflight.raw.next(9);
  await p.c.publishAsync('rs/if', 'IF1', { qos: 1 });
  const first = parsePublish(await inflight.raw.next(3), 5);
  assert.equal(first.payload, 'IF1');
  assert.equal(first.dup, false);
  held.inflightId = first.id!;
  await p.c.endAsync();

  // Clean sessions, connected at the restart: 3.1.1 clean session, 5.0 clean start + expiry 0.
  for (const [clientId, protocolVersion] of [
    ['rs-clean4', 4],
    ['rs-clean5', 5],
  ] as const) {
    const c = await mqttConnect(b, { clientId, protocolVersion, clean: true });
    await c.c.subscribeAsync('rs/s/#', { qos: 1 });
    held.mqtt.push(c.c);
  }

  // The barrier: confirmed after everything above was written.
  await pub('', 'rs-barrier', 'barrier');
  return held;
}

// ---------------------------------------------------------------------------------------------
// After the restart

/** The checks after the restart, each independent of the others' outcome. */
function checksAfterRestart(
  b: BraidProcess,
  inflightId: number,
): Array<[string, (conn: ChannelModel) => Promise<void>]> {
  /** A confirm channel of its own for each check: a failed operation closes its channel. */
  const tools = async (conn: ChannelModel) => {
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => {});
    const pub = (ex: string, key: string, body: string) =>
      new Promise<void>((resolve, reject) =>
        ch.publish(ex, key, Buffer.from(body), { persistent: true }, (err) => (err ? reject(err) : resolve())),
      );
    /** basic.get; undefined when the queue is empty. */
    const get = async (queue: string, noAck = true) => (await ch.get(queue, { noAck })) || undefined;
    return { ch, pub, get };
  };
  return [
    [
      'a persistent message never delivered: back with redelivered = false, property bytes exact',
      async () => {
        const raw = await rawChannel(b.amqpPort);
        try {
          const m = await rawGet(raw, 'rs-args');
          assert.ok(m, 'the persistent message in rs-args survived');
          assert.equal(m.redelivered, false, 'a message never delivered comes back with redelivered = false');
          assert.deepEqual(m.body, RAW_BODY, 'body');
          assert.equal(await rawGet(raw, 'rs-args'), undefined, 'the transient message did not survive');
          assert.equal(m.props.toString('hex'), PROPS.toString('hex'), 'property bytes exactly as published');
        } finally {
          raw.close();
        }
      },
    ],
    [
      'durable exchanges keep their type',
      async (conn) => {
        const { ch } = await tools(conn);
        await ch.checkExchange('rs-x');
        await ch.checkExchange('rs-x2');
        await ch.checkExchange('rs-ae');
        await ch.assertExchange('rs-x', 'topic', { durable: true, alternateExchange: 'rs-ae' });
        await channelFails(conn, 406, (c) => c.assertExchange('rs-x', 'direct', { durable: true }), 'rs-x type');
        await channelFails(conn, 406, (c) => c.assertExchange('rs-x2', 'fanout', { durable: true }), 'rs-x2 type');
      },
    ],
    [
      'durable queue arguments: the same declaration is accepted, a different one refused',
      async (conn) => {
        const { ch } = await tools(conn);
        const args = { durable: true, messageTtl: 3_600_000, deadLetterExchange: 'rs-ae', maxLength: 100 };
        await ch.assertQueue('rs-args', args);
        await channelFails(conn, 406, (c) => c.assertQueue('rs-args', { ...args, messageTtl: 1000 }), 'x-message-ttl');
        await channelFails(conn, 406, (c) => c.assertQueue('rs-args', { ...args, deadLetterExchange: 'x' }), 'x-dlx');
        await channelFails(conn, 406, (c) => c.assertQueue('rs-args', { ...args, maxLength: 5 }), 'x-max-length');
      },
    ],
    [
      'the alternate exchange: the message routed through it, and new ones',
      async (conn) => {
        const { pub, get } = await tools(conn);
        const ae = await get('rs-dlq');
        assert.ok(ae, 'the message routed through the alternate exchange survived');
        assert.equal(ae.content.toString(), 'via-ae');
        assert.equal(ae.properties.deliveryMode, 2);
        await pub('rs-x', 'nomatch-2', 'via-ae-2');
        const ae2 = await get('rs-dlq');
        assert.equal(ae2?.content.toString(), 'via-ae-2', 'rs-x still has its alternate exchange');
      },
    ],
    [
      'bindings: exchange to exchange, exchange to queue',
      async (conn) => {
        const { pub, get } = await tools(conn);
        await pub('rs-x', 'e2e.k', 'through-e2e');
        const e2e = await get('rs-q2');
        assert.equal(e2e?.content.toString(), 'through-e2e', 'rs-x → rs-x2 → rs-q2');
      },
    ],
    [
      'the dead-letter exchange of a durable queue',
      async (conn) => {
        const { ch, pub, get } = await tools(conn);
        // rs-args held the raw message; the first check took it.
        await pub('rs-x', 'args.new', 'to-dead-letter');
        let dl = await get('rs-args', false);
        while (dl && dl.content.toString() !== 'to-dead-letter') dl = await get('rs-args', false);
        assert.equal(dl?.content.toString(), 'to-dead-letter', 'rs-x → rs-args binding survived');
        if (dl) ch.nack(dl, false, false);
        let dead: { content: Buffer } | undefined;
        for (let i = 0; i < 100 && dead?.content.toString() !== 'to-dead-letter'; i++) {
          dead = await get('rs-dlq');
          if (!dead) await sleep(20);
        }
        assert.equal(dead?.content.toString(), 'to-dead-letter', 'rs-args still dead-letters to rs-ae');
      },
    ],
    [
      'an unacked delivery comes back redelivered, a message never delivered does not',
      async (conn) => {
        const { ch, get } = await tools(conn);
        const u1 = await get('rs-unacked');
        const u2 = await get('rs-unacked');
        assert.equal(u1?.content.toString(), 'U1');
        assert.equal(u2?.content.toString(), 'U2');
        assert.equal(u1?.fields.redelivered, true, 'U1 was delivered and not acked: redelivered = true');
        assert.equal(u2?.fields.redelivered, false, 'U2 was never delivered: redelivered = false');
        assert.equal((await ch.checkQueue('rs-barrier')).messageCount, 1);
      },
    ],
    [
      'non-durable exchange and queue, exclusive queue: gone',
      async (conn) => {
        await channelFails(conn, 404, (c) => c.checkExchange('rs-tx'), 'the non-durable exchange');
        await channelFails(conn, 404, (c) => c.checkQueue('rs-tq'), 'the non-durable queue');
        await channelFails(conn, 404, (c) => c.checkQueue('rs-excl'), 'the exclusive queue');
      },
    ],
    [
      'the retained message, with its properties',
      async () => {
        const r = await mqttConnect(b, { clientId: 'rs-reader', protocolVersion: 5 });
        try {
          const got: IPublishPacket[] = [];
          r.c.on('message', (_t, _p, packet) => got.push(packet));
          await r.c.subscribeAsync('rs/retained', { qos: 1 });
          await waitUntil(() => got.length > 0, 'the retained message');
          const m = got[0]!;
          assert.equal(m.payload.toString(), 'R1');
          assert.equal(m.retain, true);
          const props = m.properties ?? {};
          assert.equal(props.contentType, MSG_PROPS.contentType);
          assert.deepEqual({ ...props.userProperties }, MSG_PROPS.userProperties);
          assert.equal(props.responseTopic, MSG_PROPS.responseTopic);
          assert.deepEqual(props.correlationData, MSG_PROPS.correlationData);
          assert.equal(props.payloadFormatIndicator, true);
          assert.ok(
            typeof props.messageExpiryInterval === 'number' &&
              props.messageExpiryInterval > 0 &&
              props.messageExpiryInterval <= 3600,
            `message expiry interval counts down from 3600: ${props.messageExpiryInterval}`,
          );
        } finally {
          await r.c.endAsync().catch(() => {});
        }
      },
    ],
    [
      'QoS 2 publishes received before the restart: a resent PUBLISH (DUP) is not new, PUBREL completes them',
      async () => {
        const q2 = await rawMqtt(b, 'rs-q2pub', false);
        try {
          assert.equal(q2.sessionPresent, true, 'the QoS 2 publisher session survived');
          // Id 8: PUBLISH again with DUP, as after a lost PUBREC; then release both.
          q2.raw.send(publishPacket({ v: 5, topic: 'rs/s/q2', payload: 'Q2b', qos: 2, id: 8, dup: true }));
          const pubrec = await q2.raw.next(5);
          assert.equal(pubrec.body.readUInt16BE(0), 8);
          for (const id of [7, 8]) {
            q2.raw.send(pubrelPacket(id));
            const pubcomp = await q2.raw.next(7);
            assert.equal(pubcomp.body.readUInt16BE(0), id);
            assert.ok(
              pubcomp.body.length === 2 || pubcomp.body[2] === 0,
              `PUBCOMP ${id}: success, not 0x${pubcomp.body[2]?.toString(16)} (packet identifier not found: the state was lost)`,
            );
          }
        } finally {
          q2.raw.close();
        }
      },
    ],
    [
      'a persistent session: subscription, queued QoS 1 messages, the QoS 2 messages exactly once',
      async () => {
        const got: string[] = [];
        const sess = await mqttConnect(
          b,
          { clientId: 'rs-sess', protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 3600 } },
          (_t, payload, packet) => got.push(`${payload.toString()} QoS ${packet.qos}`),
        );
        try {
          assert.equal(sess.sessionPresent, true, 'the persistent session survived');
          const p = await mqttConnect(b, { clientId: 'rs-pub2', protocolVersion: 5 });
          await p.c.publishAsync('rs/s/fence', 'fence', { qos: 1 });
          await p.c.endAsync();
          await waitUntil(() => got.includes('fence QoS 1'), 'the fence through the surviving subscription');
          await sleep(200);
          assert.deepEqual(
            got.filter((s) => !s.startsWith('fence')).sort(),
            ['Q2 QoS 2', 'Q2b QoS 2', 'S1 QoS 1', 'S2 QoS 1'],
            'queued QoS 1 messages and the QoS 2 message, each exactly once',
          );
        } finally {
          await sess.c.endAsync().catch(() => {});
        }
      },
    ],
    [
      'a QoS 1 delivery in flight is resent with DUP and the same packet identifier',
      async () => {
        const inflight = await rawMqtt(b, 'rs-inflight', false);
        try {
          assert.equal(inflight.sessionPresent, true, 'the session with a delivery in flight survived');
          const again = parsePublish(await inflight.raw.next(3), 5);
          assert.deepEqual(
            { payload: again.payload, qos: again.qos, dup: again.dup, id: again.id },
            { payload: 'IF1', qos: 1, dup: true, id: inflightId },
            'resent with DUP and the same packet identifier',
          );
          inflight.raw.send(pubackPacket(again.id!));
        } finally {
          inflight.raw.close();
        }
      },
    ],
    [
      'MQTT clean sessions: gone',
      async () => {
        for (const [clientId, protocolVersion] of [
          ['rs-clean4', 4],
          ['rs-clean5', 5],
        ] as const) {
          const c = await mqttConnect(b, { clientId, protocolVersion, clean: false });
          await c.c.endAsync().catch(() => {});
          assert.equal(c.sessionPresent, false, `${clientId}: a clean session does not survive a restart`);
        }
      },
    ],
  ];
}

describe('state survives a restart', () => {
  for (const how of ['SIGTERM', 'SIGKILL'] as const) {
    test(`after ${how}`, { timeout: 60_000 }, async (t) => {
      const dataDir = join(root, how);
      const first = await startBraidProcess({ dataDir });
      const held = await makeState(first);
      if (how === 'SIGKILL') await first.kill();
      else await first.stop();
      for (const c of held.amqp) await c.close().catch(() => {});
      for (const c of held.mqtt) await c.endAsync(true).catch(() => {});
      for (const r of held.raw) r.close();
      const second = await startBraidProcess({ dataDir });
      const failures: string[] = [];
      try {
        const conn = await amqpConnect(second);
        try {
          for (const [name, check] of checksAfterRestart(second, held.inflightId)) {
            try {
              await check(conn);
              t.diagnostic(`ok: ${name}`);
            } catch (err) {
              failures.push(`${name}: ${(err as Error).message}`);
              t.diagnostic(`FAILED: ${name}: ${(err as Error).message.split('\n')[0]}`);
            }
          }
        } finally {
          await conn.close().catch(() => {});
        }
        assert.deepEqual(failures, [], `${failures.length} of the checks after ${how} failed`);
      } finally {
        await second.stop().catch((err: Error) => t.diagnostic(`stop after the checks: ${err.message}`));
      }
    });
  }
});
