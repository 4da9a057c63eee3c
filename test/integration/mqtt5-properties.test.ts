/**
 * MQTT 5.0 properties end to end: user properties, content type, payload format indicator,
 * request / response, message expiry, topic aliases both ways and maximum packet size both
 * ways. A raw socket checks what mqtt.js would hide (property order, bad aliases).
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { BrokerOverrides } from '../helpers/broker.js';
import { harness as brokerHarness } from '../helpers/harness.js';
import { fence, payloads, publishCode, sleep, waitFor } from '../helpers/mqtt.js';
import { connectPacket, type Prop, parsePublish, publishPacket, subscribePacket } from '../helpers/raw-mqtt.js';

const T = { timeout: 20_000 };

/** A broker for one test; mqtt.js clients speak 5.0 unless told otherwise. */
async function harness(t: TestContext, overrides: BrokerOverrides = {}) {
  const h = await brokerHarness(t, overrides, { protocolVersion: 5 });
  /** A raw 5.0 client, connected with Clean Start as `clientId`. */
  const raw = async (clientId: string) => {
    const r = await h.raw();
    await r.handshake(connectPacket({ v: 5, clientId }));
    return r;
  };
  return { ...h, raw };
}

/** Waits for the server's DISCONNECT (its reason code) and the close that follows. */
function serverDisconnect(c: MqttClient): () => Promise<number | undefined> {
  let reason: number | undefined;
  let closed = false;
  c.on('disconnect', (p) => {
    reason = p.reasonCode ?? 0;
  });
  c.on('close', () => {
    closed = true;
  });
  return async () => {
    await waitFor(() => closed, 5000, 'the server to close the connection');
    return reason;
  };
}

describe('MQTT 5.0 properties', () => {
  describe('user properties', () => {
    test('[MQTT-3.3.2-17] user properties arrive unaltered, repeated keys included', T, async (t) => {
      const h = await harness(t);
      const sub = await h.open();
      const pub = await h.open();
      await sub.c.subscribeAsync('up/t', { qos: 1 });
      const userProperties = { zeta: '1', alpha: ['2', '3'], 'with space': 'ünïcödé', empty: '' };
      await pub.c.publishAsync('up/t', 'x', { qos: 1, properties: { userProperties } });
      await waitFor(() => sub.msgs.length === 1, 5000, 'the message');
      const got = sub.msgs[0]!.packet.properties?.userProperties ?? {};
      assert.deepEqual({ ...got }, userProperties);
      assert.deepEqual(Object.keys(got), Object.keys(userProperties), 'keys in the order sent');
    });

    test('[MQTT-3.3.2-18] the order of user properties is kept, interleaved repeated keys included', T, async (t) => {
      const h = await harness(t);
      const sub = await h.raw('up-order-sub');
      sub.send(subscribePacket(5, 1, 'up/order', 1));
      await sub.next(9);
      const pub = await h.raw('up-order-pub');
      const sent: Prop[] = [
        [0x26, ['z', '1']],
        [0x26, ['a', '2']],
        [0x26, ['z', '3']],
        [0x26, ['m', '4']],
        [0x26, ['a', '5']],
      ];
      pub.send(publishPacket({ v: 5, topic: 'up/order', payload: 'ordered', qos: 1, props: sent }));
      await pub.next(4);
      const got = parsePublish(await sub.next(3), 5);
      assert.equal(got.payload, 'ordered');
      assert.deepEqual(
        got.props.filter(([id]) => id === 0x26),
        sent,
      );
    });
  });

  describe('content type, payload format indicator', () => {
    test(
      '[MQTT-3.3.2-20] [MQTT-3.3.2-4] Content Type and Payload Format Indicator are forwarded unaltered',
      T,
      async (t) => {
        const h = await harness(t);
        const sub = await h.open();
        const pub = await h.open();
        await sub.c.subscribeAsync('ct/+', { qos: 1 });
        await pub.c.publishAsync('ct/json', '{"a":1}', {
          qos: 1,
          properties: { contentType: 'application/json; charset=utf-8', payloadFormatIndicator: true },
        });
        await pub.c.publishAsync('ct/bin', Buffer.from([0xff, 0x00]), {
          qos: 1,
          properties: { payloadFormatIndicator: false },
        });
        await pub.c.publishAsync('ct/none', 'x', { qos: 1 });
        await waitFor(() => sub.msgs.length === 3, 5000, 'three messages');
        const by = new Map(sub.msgs.map((m) => [m.topic, m.packet.properties ?? {}]));
        assert.equal(by.get('ct/json')!.contentType, 'application/json; charset=utf-8');
        assert.equal(by.get('ct/json')!.payloadFormatIndicator, true);
        assert.equal(by.get('ct/bin')!.contentType, undefined);
        assert.notEqual(by.get('ct/bin')!.payloadFormatIndicator, true);
        assert.equal(by.get('ct/none')!.contentType, undefined);
        assert.notEqual(by.get('ct/none')!.payloadFormatIndicator, true);
      },
    );

    test(
      '(§3.3.2.3.2) invalid UTF-8 with Payload Format Indicator 1 gets PUBACK 0x99 and is not delivered',
      T,
      async (t) => {
        const h = await harness(t);
        const sub = await h.open();
        const pub = await h.open();
        await sub.c.subscribeAsync('pfi/t', { qos: 1 });
        const bad = Buffer.from([0x61, 0xff, 0xfe, 0x62]);
        const code = await publishCode(pub.c, 'pfi/t', bad, { qos: 1, properties: { payloadFormatIndicator: true } });
        assert.equal(code, 0x99);
        const ok = await publishCode(pub.c, 'pfi/t', 'välid', { qos: 1, properties: { payloadFormatIndicator: true } });
        assert.equal(ok, 0);
        await fence(pub.c, 'pfi/t', sub.msgs);
        assert.deepEqual(payloads(sub.msgs), ['välid']);
        assert.equal(pub.c.connected, true, 'the publisher stays connected at QoS 1');
      },
    );

    test('(§3.3.2.3.2) invalid UTF-8 with Payload Format Indicator 1 at QoS 0 gets DISCONNECT 0x99', T, async (t) => {
      const h = await harness(t);
      const pub = await h.open();
      const closed = serverDisconnect(pub.c);
      pub.c.publish('pfi/t', Buffer.from([0xc3, 0x28]), { qos: 0, properties: { payloadFormatIndicator: true } });
      assert.equal(await closed(), 0x99);
    });
  });

  describe('properties of retained messages', () => {
    test(
      '[MQTT-3.3.2-17] [MQTT-3.3.2-20] a retained message is sent to new subscribers with its properties',
      T,
      async (t) => {
        const h = await harness(t);
        const pub = await h.open();
        await pub.c.publishAsync('rp/t', '{"v":1}', {
          qos: 1,
          retain: true,
          properties: {
            contentType: 'application/json',
            payloadFormatIndicator: true,
            responseTopic: 'rp/reply',
            correlationData: Buffer.from('c1'),
            userProperties: { a: '1', b: ['2', '3'] },
          },
        });
        const sub = await h.open();
        await sub.c.subscribeAsync('rp/t', { qos: 1, properties: { subscriptionIdentifier: 9 } });
        await waitFor(() => sub.msgs.length === 1, 5000, 'the retained message');
        const m = sub.msgs[0]!;
        const p = m.packet.properties ?? {};
        assert.equal(m.packet.retain, true);
        assert.equal(p.contentType, 'application/json');
        assert.equal(p.payloadFormatIndicator, true);
        assert.equal(p.responseTopic, 'rp/reply');
        assert.equal(Buffer.from(p.correlationData ?? []).toString(), 'c1');
        assert.deepEqual({ ...p.userProperties }, { a: '1', b: ['2', '3'] });
        assert.deepEqual(
          ([] as number[]).concat(p.subscriptionIdentifier ?? []),
          [9],
          'with the Subscription Identifier',
        );
      },
    );
  });

  describe('request / response', () => {
    test(
      '[MQTT-3.3.2-15] [MQTT-3.3.2-16] Response Topic and Correlation Data make a request/response round trip',
      T,
      async (t) => {
        const h = await harness(t);
        const requester = await h.open();
        const responder = await h.open();
        await requester.c.subscribeAsync('rr/responses/me', { qos: 1 });
        await responder.c.subscribeAsync('rr/requests', { qos: 1 });
        responder.c.on('message', (_topic, payload, packet) => {
          const p = packet.properties ?? {};
          if (!p.responseTopic) return;
          responder.c.publish(p.responseTopic, `answer to ${payload}`, {
            qos: 1,
            properties: { correlationData: p.correlationData },
          });
        });
        const correlation = Buffer.from([0, 1, 2, 250, 255]);
        await requester.c.publishAsync('rr/requests', 'question', {
          qos: 1,
          properties: { responseTopic: 'rr/responses/me', correlationData: correlation },
        });
        await waitFor(() => requester.msgs.length === 1, 5000, 'the response');
        const req = responder.msgs[0]!.packet.properties ?? {};
        assert.equal(req.responseTopic, 'rr/responses/me');
        assert.ok(Buffer.from(req.correlationData ?? []).equals(correlation));
        const res = requester.msgs[0]!;
        assert.equal(res.topic, 'rr/responses/me');
        assert.equal(res.payload.toString(), 'answer to question');
        assert.ok(Buffer.from(res.packet.properties?.correlationData ?? []).equals(correlation));
      },
    );

    test('a Response Topic with dots and levels survives the routing-key swap', T, async (t) => {
      const h = await harness(t);
      const sub = await h.open();
      const pub = await h.open();
      await sub.c.subscribeAsync('rr2/t', { qos: 1 });
      await pub.c.publishAsync('rr2/t', 'x', { qos: 1, properties: { responseTopic: 'reply/to.me/v1.2' } });
      await waitFor(() => sub.msgs.length === 1, 5000, 'the message');
      assert.equal(sub.msgs[0]!.packet.properties?.responseTopic, 'reply/to.me/v1.2');
    });
  });

  describe('message expiry', () => {
    test('[MQTT-3.3.2-6] a message delivered at once carries its Message Expiry Interval', T, async (t) => {
      const h = await harness(t);
      const sub = await h.open();
      const pub = await h.open();
      await sub.c.subscribeAsync('mx/online', { qos: 1 });
      await pub.c.publishAsync('mx/online', 'x', { qos: 1, properties: { messageExpiryInterval: 30 } });
      await waitFor(() => sub.msgs.length === 1, 5000, 'the message');
      const left = sub.msgs[0]!.packet.properties?.messageExpiryInterval;
      assert.ok(left !== undefined && left >= 1 && left <= 30, `remaining interval ${left}`);
    });

    test(
      '[MQTT-3.3.2-5] [MQTT-3.3.2-6] queued and retained messages expire; the others carry the remaining interval',
      T,
      async (t) => {
        const h = await harness(t);
        const opts: IClientOptions = {
          clientId: 'mx-offline',
          clean: false,
          properties: { sessionExpiryInterval: 60 },
        };
        const first = await h.open(opts);
        await first.c.subscribeAsync('mx/t', { qos: 1 });
        await first.c.endAsync(false);
        await h.disconnected('mx-offline');
        const pub = await h.open();
        await pub.c.publishAsync('mxr/short', 'short', {
          qos: 1,
          retain: true,
          properties: { messageExpiryInterval: 1 },
        });
        await pub.c.publishAsync('mxr/long', 'long', {
          qos: 1,
          retain: true,
          properties: { messageExpiryInterval: 60 },
        });
        await pub.c.publishAsync('mx/t', 'short', { qos: 1, properties: { messageExpiryInterval: 1 } });
        await pub.c.publishAsync('mx/t', 'long', { qos: 1, properties: { messageExpiryInterval: 60 } });
        await pub.c.publishAsync('mx/t', 'forever', { qos: 1 });
        await sleep(2000);
        const again = await h.open(opts);
        assert.equal(again.connack.sessionPresent, true);
        await waitFor(() => again.msgs.length >= 2, 5000, 'the unexpired messages');
        await fence(pub.c, 'mx/t', again.msgs);
        assert.deepEqual(payloads(again.msgs), ['long', 'forever'], 'the expired message is dropped');
        const long = again.msgs[0]!.packet.properties?.messageExpiryInterval;
        assert.ok(long !== undefined && long >= 1 && long < 60, `remaining interval ${long}, less than the 60 sent`);
        assert.equal(again.msgs[1]!.packet.properties?.messageExpiryInterval, undefined, 'no expiry was set');

        // Retained messages expire the same way.
        const late = await h.open();
        await late.c.subscribeAsync(['mxr/+', 'mxr-fence'], { qos: 1 });
        await fence(pub.c, 'mxr-fence', late.msgs);
        assert.deepEqual(payloads(late.msgs), ['long'], 'the expired retained message is gone');
        const left = late.msgs[0]!.packet.properties?.messageExpiryInterval;
        assert.ok(left !== undefined && left >= 1 && left < 60, `retained remaining interval ${left}`);
      },
    );
  });

  describe('topic aliases', () => {
    test(
      '[MQTT-3.3.2-12] inbound: a Topic Alias set with a topic then used alone reaches the right subscribers',
      T,
      async (t) => {
        const h = await harness(t);
        const sub = await h.open();
        const pub = await h.open();
        const sent: Array<{ topic: string; alias: number | undefined }> = [];
        pub.c.on('packetsend', (p) => {
          if (p.cmd === 'publish') sent.push({ topic: String(p.topic), alias: p.properties?.topicAlias });
        });
        await sub.c.subscribeAsync('alias/#', { qos: 1 });
        await pub.c.publishAsync('alias/one', 'a', { qos: 1, properties: { topicAlias: 1 } });
        await pub.c.publishAsync('', 'b', { qos: 1, properties: { topicAlias: 1 } });
        await pub.c.publishAsync('alias/two', 'c', { qos: 1, properties: { topicAlias: 1 } });
        await pub.c.publishAsync('', 'd', { qos: 1, properties: { topicAlias: 1 } });
        await waitFor(() => sub.msgs.length === 4, 5000, 'four messages');
        assert.deepEqual(
          sent.map((s) => s.topic),
          ['alias/one', '', 'alias/two', ''],
          'the client really sent empty topics',
        );
        assert.deepEqual(
          sub.msgs.map((m) => [m.topic, m.payload.toString()]),
          [
            ['alias/one', 'a'],
            ['alias/one', 'b'],
            ['alias/two', 'c'],
            ['alias/two', 'd'],
          ],
        );
      },
    );

    test('inbound: mqtt.js autoAssignTopicAlias round trip', T, async (t) => {
      const h = await harness(t);
      const sub = await h.open();
      const pub = await h.open({ autoAssignTopicAlias: true });
      await sub.c.subscribeAsync('auto/+', { qos: 1 });
      for (let i = 0; i < 3; i++) {
        for (const topic of ['auto/a', 'auto/b']) await pub.c.publishAsync(topic, `${topic}#${i}`, { qos: 1 });
      }
      await waitFor(() => sub.msgs.length === 6, 5000, 'six messages');
      assert.ok(sub.msgs.every((m) => m.payload.toString().startsWith(`${m.topic}#`)));
    });

    test('(§3.3.2.3.4) inbound: a Topic Alias above our Topic Alias Maximum gets DISCONNECT 0x94', T, async (t) => {
      const h = await harness(t, { mqtt: { topicAliasMaximum: 2 } });
      const r = await h.raw('alias-too-big');
      r.send(publishPacket({ v: 5, topic: 'alias/x', payload: 'x', qos: 0, props: [[0x23, 3]] }));
      const disconnect = await r.next(14);
      assert.equal(disconnect.body[0], 0x94);
      await r.waitClosed();
    });

    test('[MQTT-3.3.2-7] inbound: Topic Alias mappings do not carry over to a new connection', T, async (t) => {
      const h = await harness(t);
      const r1 = await h.raw('alias-carry');
      r1.send(publishPacket({ v: 5, topic: 'alias/carry', payload: 'x', qos: 1, props: [[0x23, 1]] }));
      await r1.next(4);
      r1.close();
      await h.disconnected('alias-carry');
      const r2 = await h.raw('alias-carry');
      r2.send(publishPacket({ v: 5, topic: '', payload: 'y', qos: 0, props: [[0x23, 1]] }));
      const disconnect = await r2.next(14);
      assert.equal(disconnect.body[0], 0x82, 'Protocol Error: the alias is unknown on this connection');
      await r2.waitClosed();
    });

    test('inbound: a retained message published through a Topic Alias is stored under its topic', T, async (t) => {
      const h = await harness(t);
      const pub = await h.open();
      await pub.c.publishAsync('alias/ret', 'first', { qos: 1, retain: true, properties: { topicAlias: 3 } });
      await pub.c.publishAsync('', 'second', { qos: 1, retain: true, properties: { topicAlias: 3 } });
      const sub = await h.open();
      await sub.c.subscribeAsync('alias/+', { qos: 1 });
      await waitFor(() => sub.msgs.length === 1, 5000, 'the retained message');
      assert.deepEqual([sub.msgs[0]!.topic, sub.msgs[0]!.payload.toString()], ['alias/ret', 'second']);
    });

    test('(§3.3.4) inbound: an unknown Topic Alias with an empty topic gets DISCONNECT 0x82', T, async (t) => {
      const h = await harness(t);
      const r = await h.raw('alias-unknown');
      r.send(publishPacket({ v: 5, topic: '', payload: 'x', qos: 0, props: [[0x23, 1]] }));
      const disconnect = await r.next(14);
      assert.equal(disconnect.body[0], 0x82);
      await r.waitClosed();
    });

    test(
      '[MQTT-3.1.2-26] outbound: a client with Topic Alias Maximum 5 gets every topic right, aliases ≤ 5',
      T,
      async (t) => {
        const h = await harness(t);
        const sub = await h.open({ properties: { topicAliasMaximum: 5 } });
        const pub = await h.open();
        const wire: Array<{ topic: string; alias: number | undefined }> = [];
        sub.c.on('packetreceive', (p) => {
          if (p.cmd === 'publish') wire.push({ topic: String(p.topic), alias: p.properties?.topicAlias });
        });
        await sub.c.subscribeAsync('oa/#', { qos: 1 });
        const topics = Array.from({ length: 8 }, (_, i) => `oa/topic/${i}`);
        const expected: string[] = [];
        for (let round = 0; round < 3; round++) {
          for (const topic of topics) {
            await pub.c.publishAsync(topic, topic, { qos: 1 });
            expected.push(topic);
          }
        }
        await waitFor(() => sub.msgs.length === expected.length, 5000, 'every message');
        assert.deepEqual(
          sub.msgs.map((m) => m.topic),
          expected,
        );
        assert.ok(
          sub.msgs.every((m) => m.payload.toString() === m.topic),
          'each message arrives under its own topic',
        );
        const aliases = wire.map((w) => w.alias).filter((a) => a !== undefined);
        assert.ok(
          aliases.every((a) => a >= 1 && a <= 5),
          `aliases ${aliases}`,
        );
        assert.ok(
          wire.some((w) => w.topic === '' && w.alias !== undefined),
          'Braid assigns outbound aliases and uses them',
        );
      },
    );

    test('[MQTT-3.3.2-7] outbound: aliases are set up again on a new connection of the same session', T, async (t) => {
      const h = await harness(t);
      const opts: IClientOptions = {
        clientId: 'alias-resume',
        clean: false,
        properties: { sessionExpiryInterval: 60, topicAliasMaximum: 5 },
      };
      const pub = await h.open();
      const first = await h.open(opts);
      await first.c.subscribeAsync('ar/+', { qos: 1 });
      for (let i = 0; i < 3; i++)
        for (const topic of ['ar/a', 'ar/b']) await pub.c.publishAsync(topic, topic, { qos: 1 });
      await waitFor(() => first.msgs.length === 6, 5000, 'six messages');
      await first.c.endAsync(false);
      await h.disconnected('alias-resume');
      await pub.c.publishAsync('ar/a', 'ar/a', { qos: 1 }); // queued while offline
      const again = await h.open(opts);
      let failed: Error | undefined;
      again.c.on('error', (err) => {
        failed = err;
      });
      await pub.c.publishAsync('ar/b', 'ar/b', { qos: 1 });
      await waitFor(() => again.msgs.length === 2 || failed !== undefined, 5000, 'two messages');
      assert.equal(failed, undefined, 'no alias from the old connection is used');
      assert.deepEqual(
        again.msgs.map((m) => [m.topic, m.payload.toString()]),
        [
          ['ar/a', 'ar/a'],
          ['ar/b', 'ar/b'],
        ],
      );
    });

    test('[MQTT-3.1.2-27] outbound: a client without Topic Alias Maximum gets no Topic Alias', T, async (t) => {
      const h = await harness(t);
      const sub = await h.open();
      const pub = await h.open();
      const aliases: number[] = [];
      sub.c.on('packetreceive', (p) => {
        if (p.cmd === 'publish' && p.properties?.topicAlias !== undefined) aliases.push(p.properties.topicAlias);
      });
      await sub.c.subscribeAsync('na/#', { qos: 1 });
      for (let i = 0; i < 6; i++) await pub.c.publishAsync(`na/${i % 2}`, 'x', { qos: 1 });
      await waitFor(() => sub.msgs.length === 6, 5000, 'six messages');
      assert.deepEqual(aliases, []);
    });
  });

  describe('maximum packet size', () => {
    test(
      '[MQTT-3.1.2-24] [MQTT-3.1.2-25] a message too big for the client is not sent to it; later ones are',
      T,
      async (t) => {
        const h = await harness(t);
        const small = await h.open({ properties: { maximumPacketSize: 100 } });
        const big = await h.open();
        const pub = await h.open();
        await small.c.subscribeAsync('mps/t', { qos: 1 });
        await big.c.subscribeAsync('mps/t', { qos: 1 });
        const payload = Buffer.alloc(1000, 0x61);
        await pub.c.publishAsync('mps/t', payload, { qos: 1 });
        await pub.c.publishAsync('mps/t', payload, { qos: 0 });
        await pub.c.publishAsync('mps/t', 'fits', { qos: 1 });
        await waitFor(() => small.msgs.length >= 1 && big.msgs.length === 3, 5000, 'messages');
        await fence(pub.c, 'mps/t', small.msgs);
        assert.deepEqual(payloads(small.msgs), ['fits']);
        assert.equal(small.c.connected, true);
        assert.equal(big.msgs[0]!.payload.length, 1000, 'other clients still get it');
      },
    );

    test('(§3.2.2.3.6) a client sending more than mqtt.maxPacketSize gets DISCONNECT 0x95', T, async (t) => {
      const h = await harness(t, { mqtt: { maxPacketSize: 1000 } });
      const pub = await h.open();
      assert.equal(pub.connack.properties?.maximumPacketSize, 1000);
      const closed = serverDisconnect(pub.c);
      pub.c.publish('mps/big', Buffer.alloc(2000, 0x62), { qos: 0 });
      assert.equal(await closed(), 0x95);
    });

    test('MQTT 3.1.1: a client sending more than mqtt.maxPacketSize is disconnected', T, async (t) => {
      const h = await harness(t, { mqtt: { maxPacketSize: 1000 } });
      const pub = await h.open({ protocolVersion: 4 });
      const closed = serverDisconnect(pub.c);
      pub.c.publish('mps/big', Buffer.alloc(2000, 0x62), { qos: 0 });
      assert.equal(await closed(), undefined, 'closed without a DISCONNECT');
    });
  });
});
