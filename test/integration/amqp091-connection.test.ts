/**
 * AMQP 0-9-1 connections with amqplib and a raw frame client: the handshake (§2.2.4), server
 * properties and RabbitMQ's capabilities, tuning (heartbeat, frame_max, channel_max),
 * authentication and virtual hosts, loopback-only guest, and closing from either side.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, test } from 'node:test';
import amqp from 'amqplib';
import {
  amqpHarness,
  assertClose,
  type Coded,
  closedWith,
  connectionError,
  eventually,
  raiseClientChannelMax,
  rejection,
  tuning,
  uniq,
  watch,
  within,
} from '../helpers/amqp.js';

const T = { timeout: 30_000 };

/** A queue round trip on a fresh channel of `conn`: the connection is usable. */
async function roundTrip(conn: amqp.ChannelModel, body = 'ping'): Promise<void> {
  const ch = await conn.createChannel();
  watch(ch);
  const { queue } = await ch.assertQueue('', { exclusive: true });
  ch.sendToQueue(queue, Buffer.from(body));
  let got: amqp.GetMessage | false = false;
  for (let i = 0; i < 200 && !got; i++) {
    got = await ch.get(queue, { noAck: true });
    if (!got) await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(got, 'the message came back');
  assert.equal(got.content.toString(), body);
  await ch.close();
}

/** A non-loopback IPv4 address of this machine, if it has one. */
function externalIPv4(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}
const hasIPv6Loopback = (): boolean =>
  Object.values(os.networkInterfaces()).some((l) => (l ?? []).some((a) => a.address === '::1'));

describe('AMQP 0-9-1 connection', () => {
  describe('opening (§2.2.4)', () => {
    test('amqplib connects with a URL and is usable', T, async (t) => {
      const h = await amqpHarness(t);
      const conn = await h.connect(h.url);
      await roundTrip(conn);
    });

    test('amqplib connects with an object (hostname, port, username, password, vhost)', T, async (t) => {
      const h = await amqpHarness(t);
      const conn = await h.connect({
        protocol: 'amqp',
        hostname: '127.0.0.1',
        port: h.b.amqpPort,
        username: 'guest',
        password: 'guest',
        vhost: '/',
      });
      await roundTrip(conn);
    });

    test('a URL with the vhost spelled %2F reaches vhost /', T, async (t) => {
      const h = await amqpHarness(t);
      const conn = await h.connect(`${h.url}/%2F`);
      await roundTrip(conn);
    });

    test('connection.start: version 0-9, PLAIN offered, locale en_US (§1.4.2.1)', T, async (t) => {
      const h = await amqpHarness(t);
      const r = await h.raw();
      const { start, tune, result } = await r.handshake();
      assert.equal(start.fields.versionMajor, 0);
      assert.equal(start.fields.versionMinor, 9);
      assert.ok(String(start.fields.mechanisms).split(' ').includes('PLAIN'), String(start.fields.mechanisms));
      assert.ok(String(start.fields.locales).split(' ').includes('en_US'), String(start.fields.locales));
      assert.ok(tune, 'connection.tune follows start-ok');
      assert.equal(result.name, 'ConnectionOpenOk');
    });

    test('[rabbitmq connections] server-properties: product Braid and the capabilities table', T, async (t) => {
      const h = await amqpHarness(t);
      const conn = await h.connect();
      const props = conn.connection.serverProperties as unknown as Record<string, unknown>;
      assert.equal(props.product, 'Braid');
      assert.equal(typeof props.version, 'string');
      assert.equal(typeof props.platform, 'string');
      const caps = props.capabilities as Record<string, unknown>;
      assert.ok(caps && typeof caps === 'object', 'capabilities is a table');
      for (const cap of [
        'publisher_confirms',
        'exchange_exchange_bindings',
        'basic.nack',
        'consumer_cancel_notify',
        'connection.blocked',
        'authentication_failure_close',
        'per_consumer_qos',
        'direct_reply_to',
      ]) {
        assert.equal(caps[cap], true, `capability ${cap}`);
      }
    });
  });

  describe('tuning (§1.4.2.5 connection.tune)', () => {
    test('the server proposes heartbeat 60, frame_max 131072 and channel_max 2047 by default', T, async (t) => {
      const h = await amqpHarness(t);
      const r = await h.raw();
      const { tune } = await r.handshake();
      assert.equal(tune?.fields.heartbeat, 60);
      assert.equal(tune?.fields.frameMax, 131072);
      assert.equal(tune?.fields.channelMax, 2047);
    });

    test('amqp.heartbeat, amqp.frameMax and amqp.channelMax are what connection.tune proposes', T, async (t) => {
      const h = await amqpHarness(t, { amqp: { heartbeat: 7, frameMax: 8192, channelMax: 16 } });
      const r = await h.raw();
      const { tune, result } = await r.handshake();
      assert.equal(tune?.fields.heartbeat, 7);
      assert.equal(tune?.fields.frameMax, 8192);
      assert.equal(tune?.fields.channelMax, 16);
      assert.equal(result.name, 'ConnectionOpenOk');
    });

    test('a client asking for heartbeat 5 gets 5 (the lower of the two)', T, async (t) => {
      const h = await amqpHarness(t);
      const conn = await h.connect(`${h.url}?heartbeat=5`);
      assert.equal(tuning(conn).heartbeat, 5);
      await roundTrip(conn);
      const conn0 = await h.connect(`${h.url}?heartbeat=0`);
      assert.equal(tuning(conn0).heartbeat, 0, 'heartbeat 0 turns heartbeats off');
      await roundTrip(conn0);
    });

    test('§4.2.7 the server sends heartbeats, and closes a client silent for two intervals', T, async (t) => {
      const h = await amqpHarness(t);
      const r = await h.raw();
      const { result } = await r.handshake({ heartbeat: 1 });
      assert.equal(result.name, 'ConnectionOpenOk');
      const hb = await r.next(5000, true);
      assert.equal(hb.name, 'heartbeat', 'a heartbeat frame arrives');
      assert.equal(hb.channel, 0);
      // We send nothing at all: RabbitMQ gives up after two missed intervals.
      await r.waitClosed(15_000);
    });

    test('a client heartbeating keeps an otherwise idle connection open', T, async (t) => {
      const h = await amqpHarness(t);
      const r = await h.raw();
      await r.handshake({ heartbeat: 1 });
      const timer = setInterval(() => r.heartbeat(), 300);
      try {
        let beats = 0;
        while (beats < 3) if ((await r.next(5000, true)).name === 'heartbeat') beats++;
        assert.equal(r.closed, false, 'still open after several intervals');
      } finally {
        clearInterval(timer);
      }
    });

    test('frame_max: the lower of client and server; large messages are split and reassembled', T, async (t) => {
      const h = await amqpHarness(t, { amqp: { frameMax: 8192 } });
      const conn = await h.connect();
      assert.equal(tuning(conn).frameMax, 8192, 'the server limit wins over amqplib 131072');
      const small = await h.connect(`${h.url}?frameMax=4096`);
      assert.equal(tuning(small).frameMax, 4096, 'the client limit wins when lower');
      const body = Buffer.alloc(100_000);
      for (let i = 0; i < body.length; i++) body[i] = (i * 7) % 251;
      for (const c of [conn, small]) {
        const ch = await h.channel(c);
        const { queue } = await ch.assertQueue('', { exclusive: true });
        ch.sendToQueue(queue, body);
        const got = await within(
          new Promise<amqp.ConsumeMessage>((resolve) => {
            void ch.consume(queue, (m) => m && resolve(m), { noAck: true });
          }),
          5000,
          'the large message',
        );
        assert.ok(got.content.equals(body), 'the body is intact');
      }
    });

    test('channel_max: a channel beyond the negotiated limit is a connection error 530', T, async (t) => {
      const h = await amqpHarness(t, { amqp: { channelMax: 3 } });
      const conn = await h.connect();
      assert.equal(tuning(conn).channelMax, 3);
      for (let i = 0; i < 3; i++) await h.channel(conn);
      raiseClientChannelMax(conn, 10);
      // RabbitMQ: "NOT_ALLOWED - number of channels opened (3) has reached the negotiated channel_max (3)"
      await connectionError(conn, () => conn.createChannel(), 530, /channel_max/);
    });

    test('a closed channel frees its slot under channel_max', T, async (t) => {
      const h = await amqpHarness(t, { amqp: { channelMax: 2 } });
      const conn = await h.connect();
      const a = await h.channel(conn);
      await h.channel(conn);
      await a.close();
      const c = await h.channel(conn);
      await c.assertQueue('', { exclusive: true });
      assert.equal(watch(conn).isClosed, false);
    });
  });

  describe('authentication and virtual hosts', () => {
    const users = { auth: { users: [{ name: 'alice', password: 's3cret', vhost: 'v1', tags: ['monitoring'] }] } };

    test('[rabbitmq access-control] a wrong password is refused with 403 ACCESS_REFUSED', T, async (t) => {
      const h = await amqpHarness(t);
      const err = await rejection(amqp.connect(`amqp://guest:wrong@127.0.0.1:${h.b.amqpPort}`));
      assert.match(err.message, /403/);
      assert.match(err.message, /ACCESS.REFUSED/);
    });

    test('authentication_failure_close: the refusal is a connection.close 403 after start-ok', T, async (t) => {
      const h = await amqpHarness(t);
      const r = await h.raw();
      const { result } = await r.handshake({ password: 'wrong' });
      assertClose(result, 403, /^ACCESS_REFUSED - /);
      r.method(0, 'ConnectionCloseOk');
      await r.waitClosed();
    });

    test('an unknown user is refused with 403 ACCESS_REFUSED', T, async (t) => {
      const h = await amqpHarness(t);
      const r = await h.raw();
      const { result } = await r.handshake({ user: 'nobody', password: 'x' });
      assertClose(result, 403, /ACCESS_REFUSED/);
    });

    test('a configured user connects to its vhost', T, async (t) => {
      const h = await amqpHarness(t, users);
      const conn = await h.connect(`amqp://alice:s3cret@127.0.0.1:${h.b.amqpPort}/v1`);
      await roundTrip(conn);
    });

    test('[rabbitmq vhosts] an unknown vhost is refused with 530 NOT_ALLOWED', T, async (t) => {
      const h = await amqpHarness(t);
      const r = await h.raw();
      const { result } = await r.handshake({ vhost: 'nope' });
      // RabbitMQ: "NOT_ALLOWED - vhost nope not found"
      assertClose(result, 530, /^NOT_ALLOWED - .*nope/);
      r.method(0, 'ConnectionCloseOk');
      await r.waitClosed();
      await rejection(amqp.connect(`${h.url}/nope`));
    });

    test('[rabbitmq access-control] a user without access to a vhost is refused with 530', T, async (t) => {
      const h = await amqpHarness(t, users);
      const r = await h.raw();
      const { result } = await r.handshake({ user: 'alice', password: 's3cret', vhost: '/' });
      // RabbitMQ: "NOT_ALLOWED - access to vhost '/' refused for user 'alice'"
      assertClose(result, 530, /NOT_ALLOWED/);
    });

    test('vhosts are separate namespaces: a queue in v1 is not found in /', T, async (t) => {
      const h = await amqpHarness(t, users);
      const alice = await h.connect(`amqp://alice:s3cret@127.0.0.1:${h.b.amqpPort}/v1`);
      const name = uniq('vh');
      const a = await h.channel(alice);
      await a.assertQueue(name, { durable: false });
      const g = await h.channel();
      const err = await rejection(g.checkQueue(name));
      assert.equal(err.code, 404);
      assert.match(err.message, new RegExp(`no queue '${name}' in vhost '/'`));
      const ok = await a.checkQueue(name);
      assert.equal(ok.queue, name);
    });

    test('guest from loopback is accepted (127.0.0.1 and localhost)', T, async (t) => {
      const h = await amqpHarness(t);
      await roundTrip(await h.connect(`amqp://guest:guest@127.0.0.1:${h.b.amqpPort}`));
      await roundTrip(await h.connect(`amqp://guest:guest@localhost:${h.b.amqpPort}`));
    });

    test('[rabbitmq access-control] guest from a non-loopback address is refused with 403', T, async (t) => {
      const ip = externalIPv4();
      if (!ip) return t.skip('no non-loopback IPv4 address');
      const h = await amqpHarness(t, { listeners: { amqp: { port: 0, host: '0.0.0.0' } } });
      const err = await rejection(amqp.connect(`amqp://guest:guest@${ip}:${h.b.amqpPort}`));
      assert.match(err.message, /403|ACCESS.REFUSED/);
    });

    test('listening on :: accepts 127.0.0.1, ::1 and localhost', T, async (t) => {
      if (!hasIPv6Loopback()) return t.skip('no IPv6 loopback');
      const h = await amqpHarness(t, { listeners: { amqp: { port: 0, host: '::' } } });
      const port = h.b.amqpPort;
      await roundTrip(await h.connect(`amqp://guest:guest@127.0.0.1:${port}`), 'v4');
      await roundTrip(await h.connect(`amqp://guest:guest@[::1]:${port}`), 'v6');
      await roundTrip(await h.connect(`amqp://guest:guest@localhost:${port}`), 'localhost');
    });
  });

  describe('closing (§1.4.2.9 connection.close)', () => {
    test('a client close completes: close-ok, the close event carries no error', T, async (t) => {
      const h = await amqpHarness(t);
      const conn = await h.connect();
      const ch = await h.channel(conn);
      await ch.assertQueue('', { exclusive: true });
      await within(conn.close(), 5000, 'connection.close-ok');
      assert.equal(await closedWith(conn), undefined);
      assert.equal(watch(ch).isClosed, true, 'its channels are closed too');
      assert.deepEqual(watch(conn).errors, []);
      await roundTrip(await h.connect(), 'after');
    });

    test('a channel close (§1.5.2.5) leaves the connection and its other channels usable', T, async (t) => {
      const h = await amqpHarness(t);
      const conn = await h.connect();
      const a = await h.channel(conn);
      const b = await h.channel(conn);
      await a.close();
      const { queue } = await b.assertQueue('', { exclusive: true });
      assert.match(queue, /^amq\.gen-/);
      await roundTrip(conn);
    });

    test('[rabbitmq connections] stopping the broker closes connections with 320 CONNECTION_FORCED', T, async (t) => {
      const h = await amqpHarness(t);
      const conn = await h.connect();
      const ch = await h.channel(conn);
      await ch.assertQueue('', { exclusive: true });
      const closed = closedWith(conn, 10_000);
      await h.b.stop();
      const err = await closed;
      assert.equal(err?.code, 320);
      assert.match(err?.message ?? '', /CONNECTION_FORCED/);
    });

    test('a connection whose socket just goes away releases its exclusive queues', T, async (t) => {
      const h = await amqpHarness(t);
      const r = await h.raw();
      await r.handshake();
      r.method(1, 'ChannelOpen', {});
      await r.expect('ChannelOpenOk');
      const name = uniq('gone');
      r.method(1, 'QueueDeclare', { queue: name, exclusive: true, durable: false, arguments: {} });
      await r.expect('QueueDeclareOk');
      r.destroy();
      const conn = await h.connect();
      // Until the owner is gone the queue is locked (405); then it is gone (404).
      await eventually(
        async () => {
          const c = await h.channel(conn);
          const err = await c.checkQueue(name).then(
            () => undefined,
            (e: Coded) => e,
          );
          if (!err) await c.close();
          return err?.code === 404;
        },
        5000,
        'the exclusive queue to be deleted',
      );
    });
  });

  test('many channels on one connection work independently', T, async (t) => {
    const h = await amqpHarness(t);
    const conn = await h.connect();
    const chans = await Promise.all(Array.from({ length: 200 }, () => h.channel(conn)));
    const numbers = new Set(chans.map((c) => (c as unknown as { ch: number }).ch));
    assert.equal(numbers.size, 200, 'distinct channel numbers');
    const queues = await Promise.all(chans.map((c) => c.assertQueue('', { exclusive: true })));
    for (const [i, c] of chans.entries()) c.sendToQueue(queues[i].queue, Buffer.from(`m${i}`));
    const got = await Promise.all(
      chans.map(
        (c, i) =>
          new Promise<string>((resolve) => {
            void c.consume(queues[i].queue, (m) => m && resolve(m.content.toString()), { noAck: true });
          }),
      ),
    );
    assert.deepEqual(
      got,
      chans.map((_, i) => `m${i}`),
    );
    await Promise.all(chans.slice(0, 100).map((c) => c.close()));
    await roundTrip(conn);
    assert.deepEqual(watch(conn).errors, []);
  });
});
