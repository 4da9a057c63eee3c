/**
 * MQTT ⇄ AMQP 0-9-1 on one broker, with real clients on both sides (mqtt.js 5, amqplib), after
 * RabbitMQ's MQTT plugin conventions (DESIGN.md "MQTT on the model"; RabbitMQ 3.13/4.x
 * deps/rabbitmq_mqtt/src/mc_mqtt.erl convert_to/convert_from mc_amqpl): an MQTT topic is a
 * routing key on `amq.topic` with `/` and `.` swapped; QoS ⇄ delivery-mode (with the publisher's
 * QoS in the `x-mqtt-publish-qos` header), and an AMQP message reaches MQTT with QoS
 * min(subscription QoS, persistent ? 1 : 0); MQTT 5 content type / correlation data / response
 * topic / user properties / message expiry ⇄ content-type / correlation-id (or header
 * `x-correlation-id`) / header `x-reply-to-topic` and reply-to / headers / expiration; retain and
 * payload format indicator are not carried by 0-9-1 (as in RabbitMQ). An AMQP consumer may join
 * the queue of an MQTT shared subscription. Unit tests of every rule: test/unit/mapping-mqtt-amqp.test.ts.
 *
 * Retained messages are not covered: DESIGN.md does not say how an AMQP publisher would retain.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { IClientOptions, MqttClient } from 'mqtt';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { collect, connect, end, type Received, waitFor } from '../helpers/mqtt.js';
import { amqpConnect, closeQuietly, consumeAll } from '../helpers/raw-amqp.js';

const T = { timeout: 30_000 };
const WAIT = 10_000;

describe('MQTT ⇄ AMQP 0-9-1 interop', () => {
  let tb: TestBroker;
  let amqpPort: number;
  const mqttClients: MqttClient[] = [];
  const amqpConns: ChannelModel[] = [];
  let seq = 0;

  before(async () => {
    tb = await startBroker({ listeners: { amqp: { port: 0, host: '127.0.0.1' } } });
    amqpPort = tb.broker.address('amqp')!.port;
  });

  after(async () => {
    await end(...mqttClients);
    await closeQuietly(...amqpConns);
    await tb?.stop();
  });

  async function mqttClient(opts: IClientOptions = {}): Promise<{ c: MqttClient; msgs: Received[] }> {
    const c = await connect(tb.url, { clientId: `interop-${process.pid}-${++seq}`, ...opts });
    mqttClients.push(c);
    return { c, msgs: collect(c) };
  }

  async function amqpChannel(): Promise<Channel> {
    const conn = await amqpConnect(amqpPort);
    amqpConns.push(conn);
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    return ch;
  }

  /** A server-named exclusive queue bound to amq.topic with each key, consumed (no-ack). */
  async function boundQueue(ch: Channel, ...keys: string[]): Promise<ConsumeMessage[]> {
    const q = await ch.assertQueue('', { exclusive: true });
    for (const k of keys) await ch.bindQueue(q.queue, 'amq.topic', k);
    return consumeAll(ch, q.queue);
  }

  const bodies = (msgs: ConsumeMessage[]): string[] => msgs.map((m) => m.content.toString());
  const waitBodies = (msgs: ConsumeMessage[], body: string, what: string) =>
    waitFor(() => msgs.some((m) => m.content.toString() === body), WAIT, what);
  /** The headers of an AMQP message other than the x- ones, in order. */
  const userHeaders = (m: ConsumeMessage): Array<[string, string]> =>
    Object.entries((m.properties.headers ?? {}) as Record<string, unknown>)
      .filter(([k]) => !k.startsWith('x-'))
      .map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString() : String(v)]);

  describe('mqtt→amqp091', () => {
    for (const v of [4, 5] as const) {
      const label = v === 4 ? 'MQTT 3.1.1' : 'MQTT 5.0';

      it(`${label}: PUBLISH to a/b/c reaches queues bound to amq.topic with a.*.c and a.#, key a.b.c`, T, async () => {
        const ch = await amqpChannel();
        const star = await boundQueue(ch, 'a.*.c');
        const hash = await boundQueue(ch, 'a.#');
        const { c } = await mqttClient({ protocolVersion: v });
        await c.publishAsync('a/b/c', `abc-${v}`, { qos: 1 });
        await c.publishAsync('a/b/d', `abd-${v}`, { qos: 1 });
        await c.publishAsync('b/b/c', `bbc-${v}`, { qos: 1 });
        await c.publishAsync('a/x/c', `last-${v}`, { qos: 1 });
        await waitBodies(star, `last-${v}`, 'the last message on a.*.c');
        await waitBodies(hash, `last-${v}`, 'the last message on a.#');
        assert.deepEqual(bodies(star), [`abc-${v}`, `last-${v}`]);
        assert.deepEqual(bodies(hash), [`abc-${v}`, `abd-${v}`, `last-${v}`]);
        for (const m of [star[0]!, hash[0]!]) {
          assert.equal(m.fields.exchange, 'amq.topic');
          assert.equal(m.fields.routingKey, 'a.b.c');
        }
        assert.equal(hash[1]!.fields.routingKey, 'a.b.d');
      });

      it(`${label}: QoS 1 → delivery-mode 2, QoS 0 → 1, with x-mqtt-publish-qos`, T, async () => {
        const ch = await amqpChannel();
        const got = await boundQueue(ch, `qos.v${v}.#`);
        const { c } = await mqttClient({ protocolVersion: v });
        await c.publishAsync(`qos/v${v}/q1`, 'q1', { qos: 1 });
        await c.publishAsync(`qos/v${v}/q0`, 'q0', { qos: 0 });
        await waitFor(() => got.length >= 2, WAIT, 'both messages');
        const byBody = new Map(got.map((m) => [m.content.toString(), m]));
        const q1 = byBody.get('q1')!;
        const q0 = byBody.get('q0')!;
        assert.equal(q1.properties.deliveryMode, 2, 'QoS 1 is persistent');
        assert.equal(q0.properties.deliveryMode, 1, 'QoS 0 is transient');
        assert.equal(Number(q1.properties.headers?.['x-mqtt-publish-qos']), 1);
        assert.equal(Number(q0.properties.headers?.['x-mqtt-publish-qos']), 0);
        assert.equal(q1.fields.routingKey, `qos.v${v}.q1`);
      });
    }

    it(
      'MQTT 5.0: content type, correlation data, response topic, user properties, expiry → AMQP properties',
      T,
      async () => {
        const ch = await amqpChannel();
        const got = await boundQueue(ch, 'props.v5');
        const { c } = await mqttClient({ protocolVersion: 5 });
        await c.publishAsync('props/v5', '{"ok":true}', {
          qos: 1,
          properties: {
            contentType: 'application/json',
            correlationData: Buffer.from('corr-1'),
            responseTopic: 'x/y',
            userProperties: { zeta: 'first', alpha: 'second', mid: 'third' },
            messageExpiryInterval: 60,
          },
        });
        await waitFor(() => got.length >= 1, WAIT, 'the message');
        const m = got[0]!;
        assert.equal(m.content.toString(), '{"ok":true}');
        assert.equal(m.properties.contentType, 'application/json');
        assert.equal(String(m.properties.correlationId), 'corr-1');
        assert.equal(m.properties.replyTo, 'x.y', 'response topic x/y → reply-to x.y');
        assert.deepEqual(
          userHeaders(m),
          [
            ['zeta', 'first'],
            ['alpha', 'second'],
            ['mid', 'third'],
          ],
          'user properties → headers, in order',
        );
        const expiration = Number(m.properties.expiration);
        assert.ok(
          Number.isInteger(expiration) && expiration > 0 && expiration <= 60_000,
          `message expiry interval 60 s → expiration in ms, got ${JSON.stringify(m.properties.expiration)}`,
        );
        assert.equal(m.properties.deliveryMode, 2);
        assert.equal(m.properties.headers?.['x-reply-to-topic'], 'x.y', 'response topic also in x-reply-to-topic');
      },
    );

    it(
      'MQTT 5.0: binary correlation data → x-correlation-id; repeated user properties once; non-ASCII content type dropped; retain, payload format and QoS 2',
      T,
      async () => {
        const ch = await amqpChannel();
        const got = await boundQueue(ch, 'props2.v5');
        const { c } = await mqttClient({ protocolVersion: 5 });
        const corr = Buffer.from([0, 255, 1, 254]);
        await c.publishAsync('props2/v5', 'text 🙂', {
          qos: 2,
          retain: true,
          properties: {
            contentType: 'text/plain; charset=ünï',
            correlationData: corr,
            payloadFormatIndicator: true,
            userProperties: { b: ['first', 'second'], a: 'only', ['k'.repeat(256)]: 'name too long for AMQP' },
          },
        });
        await waitFor(() => got.length >= 1, WAIT, 'the message');
        const m = got[0]!;
        assert.equal(m.properties.deliveryMode, 2, 'QoS 2 is persistent');
        assert.equal(m.properties.correlationId, undefined, 'not UTF-8: no correlation-id');
        assert.deepEqual(m.properties.headers?.['x-correlation-id'], corr, 'the bytes in x-correlation-id');
        assert.equal(m.properties.contentType, undefined, 'a content type that is not ASCII is dropped');
        assert.deepEqual(
          userHeaders(m),
          [
            ['b', 'first'],
            ['a', 'only'],
          ],
          'the first of repeated names; names over 255 bytes dropped',
        );
        assert.deepEqual(
          Object.keys(m.properties.headers ?? {}).filter((k) => k.startsWith('x-')),
          ['x-mqtt-publish-qos', 'x-correlation-id'],
          'no header for retain or payload format indicator',
        );
        assert.equal(Number(m.properties.headers?.['x-mqtt-publish-qos']), 2);
        await c.publishAsync('props2/v5', '', { qos: 1, retain: true }); // clear the retained message
      },
    );

    it('a topic with "." swaps "." and "/" in the routing key: sensors/v1.2/temp → sensors.v1/2.temp', T, async () => {
      const ch = await amqpChannel();
      const got = await boundQueue(ch, 'sensors.v1/2.temp');
      const { c } = await mqttClient({ protocolVersion: 5 });
      await c.publishAsync('sensors/v1.2/temp', 'dotted', { qos: 1 });
      await waitFor(() => got.length >= 1, WAIT, 'the message');
      assert.equal(got[0]!.fields.routingKey, 'sensors.v1/2.temp');
      assert.equal(got[0]!.content.toString(), 'dotted');
    });
  });

  describe('amqp091→mqtt', () => {
    for (const v of [4, 5] as const) {
      const label = v === 4 ? 'MQTT 3.1.1' : 'MQTT 5.0';

      it(`publish to amq.topic with key a.b.c reaches ${label} subscribers of a/b/c, a/+/c and a/#`, T, async () => {
        const exact = await mqttClient({ protocolVersion: v });
        const plus = await mqttClient({ protocolVersion: v });
        const hash = await mqttClient({ protocolVersion: v });
        await exact.c.subscribeAsync('a/b/c', { qos: 1 });
        await plus.c.subscribeAsync('a/+/c', { qos: 1 });
        await hash.c.subscribeAsync('a/#', { qos: 1 });
        const ch = await amqpChannel();
        ch.publish('amq.topic', 'a.b.c', Buffer.from(`from-amqp-${v}`));
        ch.publish('amq.topic', 'a.b.d', Buffer.from(`abd-${v}`));
        ch.publish('amq.topic', 'a.x.c', Buffer.from(`last-${v}`));
        const last = (s: Received[]) => s.some((m) => m.payload.toString() === `last-${v}`);
        await waitFor(() => last(plus.msgs) && last(hash.msgs), WAIT, 'the last message on a/+/c and a/#');
        await waitFor(() => exact.msgs.length >= 1, WAIT, 'the message on a/b/c');
        const got = (s: Received[]) => s.map((m) => [m.topic, m.payload.toString()]);
        assert.deepEqual(got(exact.msgs), [['a/b/c', `from-amqp-${v}`]]);
        assert.deepEqual(got(plus.msgs), [
          ['a/b/c', `from-amqp-${v}`],
          ['a/x/c', `last-${v}`],
        ]);
        assert.deepEqual(got(hash.msgs), [
          ['a/b/c', `from-amqp-${v}`],
          ['a/b/d', `abd-${v}`],
          ['a/x/c', `last-${v}`],
        ]);
      });
    }

    it('QoS = min(subscription QoS, persistent ? 1 : 0)', T, async () => {
      const sub1 = await mqttClient({ protocolVersion: 5 });
      const sub0 = await mqttClient({ protocolVersion: 4 });
      await sub1.c.subscribeAsync('qosmap/+', { qos: 1 });
      await sub0.c.subscribeAsync('qosmap/+', { qos: 0 });
      const ch = await amqpChannel();
      ch.publish('amq.topic', 'qosmap.persistent', Buffer.from('persistent'), { persistent: true });
      ch.publish('amq.topic', 'qosmap.transient', Buffer.from('transient'), { persistent: false });
      ch.publish('amq.topic', 'qosmap.default', Buffer.from('default'));
      await waitFor(() => sub1.msgs.length >= 3 && sub0.msgs.length >= 3, WAIT, 'three messages on each subscriber');
      const qos = (s: Received[]) => Object.fromEntries(s.map((m) => [m.payload.toString(), m.packet.qos]));
      assert.deepEqual(qos(sub1.msgs), { persistent: 1, transient: 0, default: 0 }, 'QoS 1 subscription');
      assert.deepEqual(qos(sub0.msgs), { persistent: 0, transient: 0, default: 0 }, 'QoS 0 subscription');
    });

    it('content-type, correlation-id, reply-to, headers, expiration → MQTT 5 properties', T, async () => {
      const sub = await mqttClient({ protocolVersion: 5 });
      await sub.c.subscribeAsync('amqpprops/#', { qos: 1 });
      const ch = await amqpChannel();
      ch.publish('amq.topic', 'amqpprops.one', Buffer.from('with properties'), {
        contentType: 'text/plain',
        correlationId: 'corr-2',
        replyTo: 'reply.to.me',
        headers: { h1: 'v1', n: 5, flag: true },
        expiration: '60000',
        persistent: true,
      });
      await waitFor(() => sub.msgs.length >= 1, WAIT, 'the message');
      const m = sub.msgs[0]!;
      assert.equal(m.topic, 'amqpprops/one');
      assert.equal(m.payload.toString(), 'with properties');
      const p = m.packet.properties ?? {};
      assert.equal(p.contentType, 'text/plain');
      assert.equal(Buffer.from(p.correlationData ?? []).toString(), 'corr-2');
      assert.equal(p.responseTopic, 'reply/to/me', 'reply-to reply.to.me → response topic reply/to/me');
      assert.deepEqual(
        Object.entries(p.userProperties ?? {}),
        [
          ['h1', 'v1'],
          ['n', '5'],
          ['flag', 'true'],
        ],
        'headers → user properties, as strings, in order',
      );
      const expiry = p.messageExpiryInterval;
      assert.ok(
        typeof expiry === 'number' && expiry >= 1 && expiry <= 60,
        `expiration 60000 ms → message expiry interval ≤ 60 s, got ${expiry}`,
      );
    });

    it(
      'x-reply-to-topic / x-correlation-id headers → Response Topic / Correlation Data; header types → strings',
      T,
      async () => {
        const sub = await mqttClient({ protocolVersion: 5 });
        await sub.c.subscribeAsync('amqphdr/#', { qos: 1 });
        const ch = await amqpChannel();
        const corr = Buffer.from([0, 255, 7]);
        ch.publish('amq.topic', 'amqphdr.one', Buffer.from('hdr'), {
          persistent: true,
          replyTo: 'amq.gen-ignored-when-the-header-is-there',
          headers: {
            'x-reply-to-topic': 'replies.for.me',
            'x-correlation-id': corr,
            s: 'text',
            neg: -70000,
            f: 1.5,
            no: false,
            nil: null,
            ts: { '!': 'timestamp', value: 1_700_000_000 },
            bin: Buffer.from([1, 2, 3]),
            arr: ['a', 'b'],
            table: { k: 'v' },
            'x-mqtt-publish-qos': 2,
            'x-first-death-reason': 'expired',
            last: 'z',
          },
          contentEncoding: 'gzip',
          messageId: 'm-1',
          type: 'kind',
          appId: 'app',
          timestamp: 1_700_000_000,
          priority: 3,
        });
        await waitFor(() => sub.msgs.length >= 1, WAIT, 'the message');
        const m = sub.msgs[0]!;
        const p = m.packet.properties ?? {};
        assert.equal(p.responseTopic, 'replies/for/me', 'x-reply-to-topic wins over reply-to');
        assert.deepEqual(Buffer.from(p.correlationData ?? []), corr, 'x-correlation-id → correlation data');
        assert.deepEqual(
          Object.entries(p.userProperties ?? {}),
          [
            ['s', 'text'],
            ['neg', '-70000'],
            ['f', '1.5'],
            ['no', 'false'],
            ['nil', ''],
            ['ts', '1700000000'],
            ['x-first-death-reason', 'expired'],
            ['last', 'z'],
          ],
          'byte arrays, arrays, tables and x-mqtt-publish-qos dropped; the rest as strings, in order',
        );
        assert.deepEqual(
          Object.keys(p).sort(),
          ['correlationData', 'responseTopic', 'userProperties'],
          'content-encoding, message-id, type, app-id, timestamp, priority have no MQTT counterpart',
        );
        assert.equal(m.packet.qos, 1, 'persistent → QoS 1 even with x-mqtt-publish-qos 2');
        assert.equal(m.packet.retain, false);
      },
    );

    it('reply-to in RabbitMQ address form /exchange/amq.topic/<key> → Response Topic', T, async () => {
      const sub = await mqttClient({ protocolVersion: 5 });
      await sub.c.subscribeAsync('amqpaddr/+', { qos: 0 });
      const ch = await amqpChannel();
      ch.publish('amq.topic', 'amqpaddr.one', Buffer.from('a1'), { replyTo: '/exchange/amq.topic/resp.one' });
      ch.publish('amq.topic', 'amqpaddr.two', Buffer.from('a2'), { replyTo: '/exchange/other/resp.two' });
      await waitFor(() => sub.msgs.length >= 2, WAIT, 'both messages');
      const rt = Object.fromEntries(sub.msgs.map((m) => [m.topic, m.packet.properties?.responseTopic]));
      assert.deepEqual(rt, { 'amqpaddr/one': 'resp/one', 'amqpaddr/two': undefined });
    });

    it('MQTT 3.1.1 subscribers get the payload; QoS 2 subscription still gets QoS 1 at most', T, async () => {
      const v4 = await mqttClient({ protocolVersion: 4 });
      await v4.c.subscribeAsync('amqpv4/#', { qos: 2 });
      const ch = await amqpChannel();
      ch.publish('amq.topic', 'amqpv4.p', Buffer.from('p'), { persistent: true, headers: { h: 'v' } });
      ch.publish('amq.topic', 'amqpv4.t', Buffer.from('t'), { persistent: false, contentType: 'text/plain' });
      await waitFor(() => v4.msgs.length >= 2, WAIT, 'both messages');
      const byTopic = Object.fromEntries(v4.msgs.map((m) => [m.topic, [m.payload.toString(), m.packet.qos]]));
      assert.deepEqual(byTopic, { 'amqpv4/p': ['p', 1], 'amqpv4/t': ['t', 0] });
    });

    it('a routing key with "/" arrives on a topic with ".": v1/2.temp → v1.2/temp', T, async () => {
      const sub = await mqttClient({ protocolVersion: 5 });
      await sub.c.subscribeAsync('v1.2/#', { qos: 1 });
      const ch = await amqpChannel();
      ch.publish('amq.topic', 'v1/2.temp', Buffer.from('swapped'));
      await waitFor(() => sub.msgs.length >= 1, WAIT, 'the message');
      assert.equal(sub.msgs[0]!.topic, 'v1.2/temp');
    });
  });

  describe('mqtt→amqp091→mqtt (an AMQP consumer republishes what it got)', () => {
    /** An AMQP consumer on `in` that republishes each delivery to amq.topic `out`, properties as received. */
    async function relay(inKey: string, outKey: string): Promise<ConsumeMessage[]> {
      const ch = await amqpChannel();
      const q = await ch.assertQueue('', { exclusive: true });
      await ch.bindQueue(q.queue, 'amq.topic', inKey);
      const seen: ConsumeMessage[] = [];
      await ch.consume(
        q.queue,
        (m) => {
          if (!m) return;
          seen.push(m);
          const { headers, ...rest } = m.properties;
          ch.publish('amq.topic', outKey, m.content, { ...rest, headers: { ...headers } });
        },
        { noAck: true },
      );
      return seen;
    }

    it('every MQTT 5 property the AMQP table allows comes back; QoS from delivery-mode', T, async () => {
      const seen = await relay('rt.in', 'rt.out');
      const sub = await mqttClient({ protocolVersion: 5 });
      await sub.c.subscribeAsync('rt/out', { qos: 2 });
      const { c } = await mqttClient({ protocolVersion: 5 });
      const corr = Buffer.from([0, 255, 0]);
      await c.publishAsync('rt/in', 'round trip', {
        qos: 2,
        properties: {
          contentType: 'application/json',
          correlationData: corr,
          responseTopic: 'reply/v1.2',
          userProperties: { zeta: ['1', '3'], alpha: '2' },
          payloadFormatIndicator: true,
          messageExpiryInterval: 60,
        },
      });
      await waitFor(() => sub.msgs.length >= 1, WAIT, 'the relayed message');
      assert.equal(seen.length, 1);
      const m = sub.msgs[0]!;
      assert.equal(m.payload.toString(), 'round trip');
      assert.equal(m.packet.qos, 1, 'QoS 2 → persistent → QoS 1 (the republish is an AMQP message)');
      const p = m.packet.properties ?? {};
      assert.equal(p.contentType, 'application/json');
      assert.deepEqual(Buffer.from(p.correlationData ?? []), corr, 'binary correlation data via x-correlation-id');
      assert.equal(p.responseTopic, 'reply/v1.2', 'response topic via x-reply-to-topic, dots kept');
      assert.deepEqual({ ...p.userProperties }, { zeta: '1', alpha: '2' }, 'the first of repeated names');
      assert.equal(p.payloadFormatIndicator, undefined, 'not carried by AMQP 0-9-1 (RabbitMQ neither)');
      const expiry = p.messageExpiryInterval;
      assert.ok(typeof expiry === 'number' && expiry >= 1 && expiry <= 60, `expiry ≤ 60 s, got ${expiry}`);
    });

    it('QoS 0 and 1 publishes come back at QoS 0 and 1', T, async () => {
      await relay('rtq.*', 'rtq.out');
      const sub = await mqttClient({ protocolVersion: 5 });
      await sub.c.subscribeAsync('rtq/out', { qos: 1 });
      const { c } = await mqttClient({ protocolVersion: 4 });
      await c.publishAsync('rtq/q0', 'q0', { qos: 0 });
      await c.publishAsync('rtq/q1', 'q1', { qos: 1 });
      await waitFor(() => sub.msgs.length >= 2, WAIT, 'both relayed messages');
      const qos = Object.fromEntries(sub.msgs.map((m) => [m.payload.toString(), m.packet.qos]));
      assert.deepEqual(qos, { q0: 0, q1: 1 });
    });

    it('request/response: an AMQP responder answers an MQTT requester on its response topic', T, async () => {
      const ch = await amqpChannel();
      const q = await ch.assertQueue('', { exclusive: true });
      await ch.bindQueue(q.queue, 'amq.topic', 'svc.time');
      await ch.consume(
        q.queue,
        (m) => {
          if (!m) return;
          // RabbitMQ's way: the topic in x-reply-to-topic, the correlation in correlation-id.
          const key = String(m.properties.headers?.['x-reply-to-topic']);
          ch.publish('amq.topic', key, Buffer.from(`answer to ${m.content}`), {
            correlationId: m.properties.correlationId,
          });
        },
        { noAck: true },
      );
      const requester = await mqttClient({ protocolVersion: 5 });
      await requester.c.subscribeAsync('clients/me/responses', { qos: 1 });
      await requester.c.publishAsync('svc/time', 'what time is it', {
        qos: 1,
        properties: { responseTopic: 'clients/me/responses', correlationData: Buffer.from('req-42') },
      });
      await waitFor(() => requester.msgs.length >= 1, WAIT, 'the response');
      const r = requester.msgs[0]!;
      assert.equal(r.topic, 'clients/me/responses');
      assert.equal(r.payload.toString(), 'answer to what time is it');
      assert.equal(Buffer.from(r.packet.properties?.correlationData ?? []).toString(), 'req-42');
    });
  });

  describe('mqtt→mqtt via a shared subscription with an AMQP consumer', () => {
    it('an AMQP consumer on mqtt-shared.g.shared/# shares $share/g/shared/# with an MQTT member', T, async () => {
      const member = await mqttClient({ protocolVersion: 5 });
      await member.c.subscribeAsync('$share/g/shared/#', { qos: 1 });
      const ch = await amqpChannel();
      // The queue MQTT made for the group (src/mqtt/handlers/subscribe.ts: mqtt-shared.<g>.<f>).
      const queue = 'mqtt-shared.g.shared/#';
      await ch.checkQueue(queue);
      const amqpGot: ConsumeMessage[] = [];
      await ch.consume(
        queue,
        (m) => {
          if (!m) return;
          amqpGot.push(m);
          ch.ack(m);
        },
        { noAck: false },
      );
      const pub = await mqttClient({ protocolVersion: 5 });
      const N = 40;
      for (let i = 0; i < N; i++) await pub.c.publishAsync(`shared/${i % 4}`, `m${i}`, { qos: 1 });
      await waitFor(() => amqpGot.length + member.msgs.length >= N, WAIT, `${N} messages between the two members`);
      const all = [...bodies(amqpGot), ...member.msgs.map((m) => m.payload.toString())];
      assert.equal(all.length, N, `no message delivered twice: ${all.length} deliveries`);
      assert.equal(new Set(all).size, N, 'every message delivered once');
      assert.ok(amqpGot.length > 0, `the AMQP consumer got some (${amqpGot.length})`);
      assert.ok(member.msgs.length > 0, `the MQTT member got some (${member.msgs.length})`);
      for (const m of amqpGot) assert.match(m.fields.routingKey, /^shared\.[0-3]$/);
      for (const m of member.msgs) assert.match(m.topic, /^shared\/[0-3]$/);
    });
  });
});
