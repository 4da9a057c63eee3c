/**
 * Persistent sessions: 3.1.1 clean session, 5.0 Clean Start and Session Expiry Interval,
 * offline queueing (QoS 0 excluded by default), and resending unacknowledged PUBLISH and
 * PUBREL on resume (raw socket, since mqtt.js always acknowledges).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import type { MqttClientInfo } from '../../src/index.js';
import { startBroker } from '../helpers/broker.js';
import { collect, end, type Received, sleep, waitFor } from '../helpers/mqtt.js';

const T = { timeout: 20_000 };
const VERSIONS = [4, 5] as const;
const name = (v: 4 | 5): string => (v === 4 ? 'MQTT 3.1.1' : 'MQTT 5.0');

type Overrides = Parameters<typeof startBroker>[0];
interface Conn {
  c: MqttClient;
  msgs: Received[];
  connack: IConnackPacket;
}

async function harness(t: TestContext, overrides: Overrides = {}) {
  const b = await startBroker(overrides);
  const clients: MqttClient[] = [];
  const raws: Raw[] = [];
  const gone: string[] = [];
  b.broker.on('clientDisconnect', (client: MqttClientInfo) => gone.push(client.id));
  t.after(async () => {
    for (const r of raws) r.close();
    await end(...clients);
    await b.stop();
  });
  const open = async (opts: IClientOptions = {}, url = b.url): Promise<Conn> => {
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    clients.push(c);
    const msgs = collect(c);
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      c.once('connect', resolve);
      c.once('error', reject);
      c.once('close', () => reject(new Error('closed before CONNACK')));
    });
    c.removeAllListeners('error');
    c.on('error', () => {});
    return { c, msgs, connack };
  };
  const raw = async (): Promise<Raw> => {
    const r = await Raw.open(b.port);
    raws.push(r);
    return r;
  };
  /** Waits until the broker has finished with the connection of `id` (the n-th time). */
  const goneCount = (id: string): number => gone.filter((g) => g === id).length;
  const disconnected = (id: string, times = 1) =>
    waitFor(() => goneCount(id) >= times, 5000, `the broker to drop ${id}`);
  return { b, open, raw, disconnected, goneCount };
}

/** A clean DISCONNECT, then waits for the broker to have processed it. */
async function leave(h: Awaited<ReturnType<typeof harness>>, c: MqttClient, id: string, opts = {}): Promise<void> {
  const before = h.goneCount(id);
  await c.endAsync(false, opts);
  await h.disconnected(id, before + 1);
}

/** Publishes a marker on `topic` and waits until the subscriber has it. */
async function fence(pub: MqttClient, topic: string, sub: Received[]): Promise<void> {
  const marker = `fence-${Math.random()}`;
  await pub.publishAsync(topic, marker, { qos: 1 });
  await waitFor(() => sub.some((m) => m.payload.toString() === marker), 5000, 'the fence');
}
const payloads = (msgs: Received[]): string[] =>
  msgs.map((m) => m.payload.toString()).filter((p) => !p.startsWith('fence-'));

// ---------------------------------------------------------------------------------------------
// A raw MQTT socket: a subscriber that decides itself when (and whether) to acknowledge.

interface RawPacket {
  type: number;
  flags: number;
  body: Buffer;
}
interface RawPublish {
  topic: string;
  qos: number;
  dup: boolean;
  id: number | undefined;
  payload: string;
}

const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const str = (s: string): Buffer => Buffer.concat([u16(Buffer.byteLength(s)), Buffer.from(s)]);
function vbi(n: number): Buffer {
  const out: number[] = [];
  do {
    let d = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) d |= 0x80;
    out.push(d);
  } while (n > 0);
  return Buffer.from(out);
}
function frame(first: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([first]), vbi(body.length), body]);
}
/** CONNECT with Clean Session / Clean Start 0; 5.0 asks for a 60 s Session Expiry Interval. */
function persistentConnect(v: 4 | 5, clientId: string): Buffer {
  const props = v === 5 ? Buffer.from([5, 0x11, 0, 0, 0, 60]) : Buffer.alloc(0);
  return frame(0x10, str('MQTT'), Buffer.from([v, 0x00]), u16(60), props, str(clientId));
}
const subscribePacket = (v: 4 | 5, id: number, filter: string, qos: number): Buffer =>
  frame(0x82, u16(id), v === 5 ? Buffer.from([0]) : Buffer.alloc(0), str(filter), Buffer.from([qos]));
const ackPacket = (type: 4 | 5 | 7, id: number): Buffer => frame(type << 4, u16(id));

function parsePublish(p: RawPacket, v: 4 | 5): RawPublish {
  const qos = (p.flags >> 1) & 3;
  const tl = p.body.readUInt16BE(0);
  const topic = p.body.toString('utf8', 2, 2 + tl);
  let pos = 2 + tl;
  let id: number | undefined;
  if (qos > 0) {
    id = p.body.readUInt16BE(pos);
    pos += 2;
  }
  if (v === 5) {
    let len = 0;
    let mul = 1;
    let d: number;
    do {
      d = p.body[pos++]!;
      len += (d & 0x7f) * mul;
      mul *= 128;
    } while (d & 0x80);
    pos += len;
  }
  return { topic, qos, dup: (p.flags & 0x08) !== 0, id, payload: p.body.toString('utf8', pos) };
}

class Raw {
  readonly packets: RawPacket[] = [];
  closed = false;
  private buf = Buffer.alloc(0);

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
    });
    sock.on('close', () => {
      this.closed = true;
    });
    sock.on('error', () => {});
  }

  static open(port: number): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }

  private parse(): void {
    for (;;) {
      let len = 0;
      let mul = 1;
      let i = 1;
      let d: number;
      do {
        if (i >= this.buf.length) return;
        d = this.buf[i++]!;
        len += (d & 0x7f) * mul;
        mul *= 128;
      } while (d & 0x80);
      if (this.buf.length < i + len) return;
      this.packets.push({ type: this.buf[0]! >> 4, flags: this.buf[0]! & 0x0f, body: this.buf.subarray(i, i + len) });
      this.buf = this.buf.subarray(i + len);
    }
  }

  send(b: Buffer): void {
    this.sock.write(b);
  }

  async next(type: number, timeoutMs = 5000): Promise<RawPacket> {
    await waitFor(() => this.packets.some((p) => p.type === type), timeoutMs, `a packet of type ${type}`);
    return this.packets.splice(
      this.packets.findIndex((p) => p.type === type),
      1,
    )[0]!;
  }

  close(): void {
    this.sock.destroy();
  }
}

/** Connects a raw persistent session; returns the socket and the CONNACK's Session Present. */
async function rawSession(h: Awaited<ReturnType<typeof harness>>, v: 4 | 5, id: string) {
  const r = await h.raw();
  r.send(persistentConnect(v, id));
  const connack = await r.next(2);
  assert.equal(connack.body[1], 0, 'CONNACK accepted');
  return { r, sessionPresent: (connack.body[0]! & 1) === 1 };
}

// ---------------------------------------------------------------------------------------------

describe('MQTT persistent sessions', () => {
  describe('MQTT 3.1.1 clean session', () => {
    test(
      '[MQTT-3.1.2-4] [MQTT-3.1.2-5] [MQTT-3.2.2-2] clean session 0: QoS 1 messages published while offline arrive on resume',
      T,
      async (t) => {
        const h = await harness(t);
        const opts: IClientOptions = { protocolVersion: 4, clientId: 'persist-4', clean: false };
        const first = await h.open(opts);
        assert.equal(first.connack.sessionPresent, false, 'no session yet');
        await first.c.subscribeAsync('persist/t', { qos: 1 });
        await leave(h, first.c, 'persist-4');

        const pub = await h.open({ protocolVersion: 4 });
        for (let i = 1; i <= 5; i++) await pub.c.publishAsync('persist/t', `m${i}`, { qos: 1 });

        const again = await h.open(opts);
        assert.equal(again.connack.sessionPresent, true);
        await waitFor(() => again.msgs.length === 5, 5000, 'five queued messages');
        assert.deepEqual(payloads(again.msgs), ['m1', 'm2', 'm3', 'm4', 'm5']);
        assert.ok(again.msgs.every((m) => m.packet.qos === 1));
        // The subscription itself survived too.
        await pub.c.publishAsync('persist/t', 'live', { qos: 1 });
        await waitFor(() => again.msgs.length === 6, 5000, 'a live message');
      },
    );

    test('[MQTT-3.1.2-6] [MQTT-3.2.2-1] clean session 1 discards the stored session', T, async (t) => {
      const h = await harness(t);
      const first = await h.open({ protocolVersion: 4, clientId: 'discard-4', clean: false });
      await first.c.subscribeAsync('discard/t', { qos: 1 });
      await leave(h, first.c, 'discard-4');
      const pub = await h.open({ protocolVersion: 4 });
      await pub.c.publishAsync('discard/t', 'queued', { qos: 1 });

      const clean = await h.open({ protocolVersion: 4, clientId: 'discard-4', clean: true });
      assert.equal(clean.connack.sessionPresent, false);
      await clean.c.subscribeAsync('discard/fence', { qos: 1 });
      await pub.c.publishAsync('discard/t', 'after', { qos: 1 });
      await fence(pub.c, 'discard/fence', clean.msgs);
      assert.deepEqual(payloads(clean.msgs), [], 'neither the queued messages nor the subscription survived');
      await leave(h, clean.c, 'discard-4');

      const later = await h.open({ protocolVersion: 4, clientId: 'discard-4', clean: false });
      assert.equal(later.connack.sessionPresent, false, 'a clean session is not kept after it ends');
    });
    test('[MQTT-4.6.0-6] 300 QoS 1 messages queued for an offline session arrive in order', T, async (t) => {
      const h = await harness(t);
      const opts: IClientOptions = { protocolVersion: 4, clientId: 'backlog', clean: false };
      const first = await h.open(opts);
      await first.c.subscribeAsync('backlog/t', { qos: 1 });
      await leave(h, first.c, 'backlog');
      const pub = await h.open({ protocolVersion: 4 });
      const sends: Promise<unknown>[] = [];
      for (let i = 0; i < 300; i++) sends.push(pub.c.publishAsync('backlog/t', String(i), { qos: 1 }));
      await Promise.all(sends);
      const again = await h.open(opts);
      await waitFor(() => again.msgs.length >= 300, 10_000, '300 queued messages');
      assert.deepEqual(
        again.msgs.map((m) => Number(m.payload.toString())),
        Array.from({ length: 300 }, (_, i) => i),
      );
    });
  });

  describe('MQTT 5.0 Session Expiry Interval', () => {
    test('(§3.1.2.11.2) Session Expiry Interval absent (0): the session ends with the connection', T, async (t) => {
      const h = await harness(t);
      const opts: IClientOptions = { protocolVersion: 5, clientId: 'exp-0', clean: false };
      const first = await h.open(opts);
      await first.c.subscribeAsync('exp0/t', { qos: 1 });
      await leave(h, first.c, 'exp-0');
      const pub = await h.open({ protocolVersion: 5 });
      await pub.c.publishAsync('exp0/t', 'lost', { qos: 1 });
      const again = await h.open(opts);
      assert.equal(again.connack.sessionPresent, false);
      await again.c.subscribeAsync('exp0/fence', { qos: 1 });
      await fence(pub.c, 'exp0/fence', again.msgs);
      assert.deepEqual(payloads(again.msgs), []);
    });

    for (const expiry of [60, 0xffffffff]) {
      test(
        `[MQTT-3.2.2-3] Session Expiry Interval ${expiry}: QoS 1 and 2 messages queued offline arrive on resume`,
        T,
        async (t) => {
          const h = await harness(t);
          const id = `exp-${expiry}`;
          const opts: IClientOptions = {
            protocolVersion: 5,
            clientId: id,
            clean: false,
            properties: { sessionExpiryInterval: expiry },
          };
          const first = await h.open(opts);
          await first.c.subscribeAsync('expn/t', { qos: 2 });
          await leave(h, first.c, id);
          const pub = await h.open({ protocolVersion: 5 });
          await pub.c.publishAsync('expn/t', 'one', { qos: 1 });
          await pub.c.publishAsync('expn/t', 'two', { qos: 2 });
          const again = await h.open(opts);
          assert.equal(again.connack.sessionPresent, true);
          await waitFor(() => again.msgs.length === 2, 5000, 'the queued messages');
          assert.deepEqual(
            again.msgs.map((m) => [m.payload.toString(), m.packet.qos]),
            [
              ['one', 1],
              ['two', 2],
            ],
          );
        },
      );
    }

    test('[MQTT-3.3.4-3] subscription options and identifiers survive in the session', T, async (t) => {
      const h = await harness(t);
      const opts: IClientOptions = {
        protocolVersion: 5,
        clientId: 'subid-resume',
        clean: false,
        properties: { sessionExpiryInterval: 60 },
      };
      const first = await h.open(opts);
      await first.c.subscribeAsync('sr/t', { qos: 1, nl: true, properties: { subscriptionIdentifier: 7 } });
      await leave(h, first.c, 'subid-resume');
      const pub = await h.open({ protocolVersion: 5 });
      await pub.c.publishAsync('sr/t', 'queued', { qos: 1 });
      const again = await h.open(opts);
      await waitFor(() => again.msgs.length === 1, 5000, 'the queued message');
      assert.equal(again.msgs[0]!.packet.properties?.subscriptionIdentifier, 7);
      await again.c.publishAsync('sr/t', 'own', { qos: 1 }); // No Local still applies
      await pub.c.publishAsync('sr/t', 'live', { qos: 1 });
      await waitFor(() => again.msgs.length >= 2, 5000, 'the live message');
      await fence(pub.c, 'sr/t', again.msgs);
      assert.deepEqual(payloads(again.msgs), ['queued', 'live']);
    });

    test('(§3.1.2.11.2) a session with Session Expiry Interval 1 is gone 2 s after the disconnect', T, async (t) => {
      const h = await harness(t);
      const opts: IClientOptions = {
        protocolVersion: 5,
        clientId: 'exp-1',
        clean: false,
        properties: { sessionExpiryInterval: 1 },
      };
      const first = await h.open(opts);
      await first.c.subscribeAsync('exp1/t', { qos: 1 });
      await leave(h, first.c, 'exp-1');
      const pub = await h.open({ protocolVersion: 5 });
      await pub.c.publishAsync('exp1/t', 'expires with the session', { qos: 1 });
      await sleep(2000);
      const again = await h.open(opts);
      assert.equal(again.connack.sessionPresent, false);
      await again.c.subscribeAsync('exp1/fence', { qos: 1 });
      await fence(pub.c, 'exp1/fence', again.msgs);
      assert.deepEqual(payloads(again.msgs), []);
    });

    test('(§3.14.2.2.2) the Session Expiry Interval can be set to 0 at DISCONNECT', T, async (t) => {
      const h = await harness(t);
      const opts: IClientOptions = {
        protocolVersion: 5,
        clientId: 'exp-change',
        clean: false,
        properties: { sessionExpiryInterval: 60 },
      };
      const first = await h.open(opts);
      await first.c.subscribeAsync('expc/t', { qos: 1 });
      await leave(h, first.c, 'exp-change', { properties: { sessionExpiryInterval: 0 } });
      const again = await h.open(opts);
      assert.equal(again.connack.sessionPresent, false);
    });

    test('[MQTT-3.1.2-4] [MQTT-3.2.2-2] Clean Start 1 discards an existing session', T, async (t) => {
      const h = await harness(t);
      const persistent: IClientOptions = {
        protocolVersion: 5,
        clientId: 'clean-start',
        clean: false,
        properties: { sessionExpiryInterval: 60 },
      };
      const first = await h.open(persistent);
      await first.c.subscribeAsync('cs/t', { qos: 1 });
      await leave(h, first.c, 'clean-start');
      const pub = await h.open({ protocolVersion: 5 });
      await pub.c.publishAsync('cs/t', 'queued', { qos: 1 });
      const fresh = await h.open({ ...persistent, clean: true });
      assert.equal(fresh.connack.sessionPresent, false);
      await fresh.c.subscribeAsync('cs/fence', { qos: 1 });
      await pub.c.publishAsync('cs/t', 'after', { qos: 1 });
      await fence(pub.c, 'cs/fence', fresh.msgs);
      assert.deepEqual(payloads(fresh.msgs), []);
    });
  });

  describe('offline QoS 0', () => {
    for (const v of VERSIONS) {
      test(`${name(v)}: QoS 0 messages to an offline session are not queued by default`, T, async (t) => {
        const h = await harness(t);
        const opts: IClientOptions = {
          protocolVersion: v,
          clientId: `q0-${v}`,
          clean: false,
          ...(v === 5 && { properties: { sessionExpiryInterval: 60 } }),
        };
        const first = await h.open(opts);
        await first.c.subscribeAsync('q0/t', { qos: 1 });
        await leave(h, first.c, `q0-${v}`);
        const pub = await h.open({ protocolVersion: v });
        await pub.c.publishAsync('q0/t', 'qos0', { qos: 0 });
        await pub.c.publishAsync('q0/t', 'qos1', { qos: 1 });
        const again = await h.open(opts);
        await waitFor(() => again.msgs.length >= 1, 5000, 'the QoS 1 message');
        await fence(pub.c, 'q0/t', again.msgs);
        assert.deepEqual(payloads(again.msgs), ['qos1']);
      });
    }

    test('mqtt.queueQos0Offline: QoS 0 messages are queued for offline sessions', T, async (t) => {
      const h = await harness(t, { mqtt: { queueQos0Offline: true } });
      const opts: IClientOptions = { protocolVersion: 4, clientId: 'q0-on', clean: false };
      const first = await h.open(opts);
      await first.c.subscribeAsync('q0on/t', { qos: 1 });
      await leave(h, first.c, 'q0-on');
      const pub = await h.open({ protocolVersion: 4 });
      await pub.c.publishAsync('q0on/t', 'qos0', { qos: 0 });
      await pub.c.publishAsync('q0on/t', 'qos1', { qos: 1 });
      const again = await h.open(opts);
      await waitFor(() => again.msgs.length === 2, 5000, 'both messages');
      assert.deepEqual(payloads(again.msgs), ['qos0', 'qos1']);
      assert.equal(again.msgs[0]!.packet.qos, 0);
    });
  });

  describe('resending on resume', () => {
    for (const v of VERSIONS) {
      for (const qos of [1, 2] as const) {
        test(
          `[MQTT-4.4.0-1] [MQTT-3.3.1-1] ${name(v)}: an unacknowledged QoS ${qos} PUBLISH is resent with DUP and its packet id`,
          T,
          async (t) => {
            const h = await harness(t);
            const id = `resend-${v}-${qos}`;
            const s1 = await rawSession(h, v, id);
            s1.r.send(subscribePacket(v, 1, 'resend/t', qos));
            await s1.r.next(9);
            const pub = await h.open({ protocolVersion: v });
            await pub.c.publishAsync('resend/t', 'unacked', { qos });
            const first = parsePublish(await s1.r.next(3), v);
            assert.deepEqual([first.payload, first.qos, first.dup], ['unacked', qos, false]);
            s1.r.close(); // no PUBACK / PUBREC
            await h.disconnected(id);

            const s2 = await rawSession(h, v, id);
            assert.equal(s2.sessionPresent, true);
            const again = parsePublish(await s2.r.next(3), v);
            assert.deepEqual(
              [again.payload, again.qos, again.dup, again.id],
              ['unacked', qos, true, first.id],
              'same message, DUP 1, original packet id',
            );
            if (qos === 1) s2.r.send(ackPacket(4, again.id!));
            else {
              s2.r.send(ackPacket(5, again.id!));
              const rel = await s2.r.next(6);
              assert.equal(rel.body.readUInt16BE(0), again.id);
              s2.r.send(ackPacket(7, again.id!));
            }
            await pub.c.publishAsync('resend/t', 'next', { qos });
            const next = parsePublish(await s2.r.next(3), v);
            assert.deepEqual([next.payload, next.dup], ['next', false], 'the acknowledged message is not sent again');
          },
        );
      }

      test(
        `[MQTT-3.1.4-2] ${name(v)}: on session takeover, unacknowledged messages go to the new connection with DUP`,
        T,
        async (t) => {
          const h = await harness(t);
          const id = `takeover-${v}`;
          const s1 = await rawSession(h, v, id);
          s1.r.send(subscribePacket(v, 1, 'takeover/t', 1));
          await s1.r.next(9);
          const pub = await h.open({ protocolVersion: v });
          await pub.c.publishAsync('takeover/t', 'in flight', { qos: 1 });
          const first = parsePublish(await s1.r.next(3), v);
          const s2 = await rawSession(h, v, id); // s1 never acknowledged and is still open
          assert.equal(s2.sessionPresent, true);
          await waitFor(() => s1.r.closed, 5000, 'the old connection to be closed');
          const again = parsePublish(await s2.r.next(3), v);
          assert.deepEqual([again.payload, again.dup, again.id], ['in flight', true, first.id]);
        },
      );

      test(`[MQTT-4.4.0-1] ${name(v)}: an unacknowledged PUBREL is resent on resume, not the PUBLISH`, T, async (t) => {
        const h = await harness(t);
        const id = `pubrel-${v}`;
        const s1 = await rawSession(h, v, id);
        s1.r.send(subscribePacket(v, 1, 'pubrel/t', 2));
        await s1.r.next(9);
        const pub = await h.open({ protocolVersion: v });
        await pub.c.publishAsync('pubrel/t', 'exactly once', { qos: 2 });
        const first = parsePublish(await s1.r.next(3), v);
        s1.r.send(ackPacket(5, first.id!));
        const rel1 = await s1.r.next(6);
        assert.equal(rel1.body.readUInt16BE(0), first.id);
        s1.r.close(); // no PUBCOMP
        await h.disconnected(id);

        const s2 = await rawSession(h, v, id);
        assert.equal(s2.sessionPresent, true);
        const rel2 = await s2.r.next(6);
        assert.equal(rel2.flags, 0x02, 'PUBREL fixed header flags');
        assert.equal(rel2.body.readUInt16BE(0), first.id, 'PUBREL with the original packet id');
        s2.r.send(ackPacket(7, first.id!));
        await pub.c.publishAsync('pubrel/t', 'next', { qos: 2 });
        const next = parsePublish(await s2.r.next(3), v);
        assert.equal(next.payload, 'next', 'the released message was not published again');
      });
    }
  });
});
