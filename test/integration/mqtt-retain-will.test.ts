/**
 * Retained messages (set, replace, clear, wildcards, Retain Handling) and will messages
 * (abrupt close, clean DISCONNECT, 5.0 DISCONNECT 0x04, retained will, Will Delay Interval).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import { harness } from '../helpers/harness.js';
import {
  fence,
  versionName as name,
  payloads,
  type Received,
  real,
  sleep,
  VERSIONS,
  waitFor,
} from '../helpers/mqtt.js';

const T = { timeout: 20_000 };

/** Drops the TCP connection without DISCONNECT, as a crashed client would. */
function crash(c: MqttClient): void {
  c.stream.destroy();
}

describe('MQTT retained messages', () => {
  for (const v of VERSIONS) {
    const ids = v === 4 ? '[MQTT-3.3.1-6] [MQTT-3.3.1-8]' : '[MQTT-3.3.1-5] [MQTT-3.3.1-9]';
    test(`${ids} ${name(v)}: a retained message is sent to a new subscriber with RETAIN 1`, T, async (t) => {
      const h = await harness(t);
      const pub = await h.open({ protocolVersion: v });
      await pub.c.publishAsync('ret/set', 'kept', { qos: 1, retain: true });
      const sub = await h.open({ protocolVersion: v });
      await sub.c.subscribeAsync('ret/set', { qos: 1 });
      await waitFor(() => sub.msgs.length === 1, 5000, 'the retained message');
      const m = sub.msgs[0]!;
      assert.equal(m.topic, 'ret/set');
      assert.equal(m.payload.toString(), 'kept');
      assert.equal(m.packet.retain, true);
      assert.equal(m.packet.qos, 1);
    });

    test(`[MQTT-3.3.1-5] ${name(v)}: a new retained message replaces the previous one`, T, async (t) => {
      const h = await harness(t);
      const pub = await h.open({ protocolVersion: v });
      await pub.c.publishAsync('ret/replace', 'one', { qos: 1, retain: true });
      await pub.c.publishAsync('ret/replace', 'two', { qos: 1, retain: true });
      const sub = await h.open({ protocolVersion: v });
      await sub.c.subscribeAsync(['ret/replace', 'fence'], { qos: 1 });
      await fence(pub.c, 'fence', sub.msgs);
      assert.deepEqual(payloads(sub.msgs), ['two']);
    });

    const clearIds = v === 4 ? '[MQTT-3.3.1-10] [MQTT-3.3.1-11]' : '[MQTT-3.3.1-6] [MQTT-3.3.1-7]';
    test(
      `${clearIds} ${name(v)}: an empty retained payload is delivered and clears the retained message`,
      T,
      async (t) => {
        const h = await harness(t);
        const pub = await h.open({ protocolVersion: v });
        const live = await h.open({ protocolVersion: v });
        await pub.c.publishAsync('ret/clear', 'old', { qos: 1, retain: true });
        await live.c.subscribeAsync('ret/clear', { qos: 1 });
        await waitFor(() => live.msgs.length === 1, 5000, 'the retained message');
        await pub.c.publishAsync('ret/clear', Buffer.alloc(0), { qos: 1, retain: true });
        await waitFor(() => live.msgs.length === 2, 5000, 'the empty message, processed as normal');
        assert.equal(live.msgs[1]!.payload.length, 0);
        const late = await h.open({ protocolVersion: v });
        await late.c.subscribeAsync(['ret/clear', 'fence'], { qos: 1 });
        await fence(pub.c, 'fence', late.msgs);
        assert.deepEqual(real(late.msgs), [], 'nothing retained any more');
      },
    );

    test(
      `${name(v)}: retained messages are matched by wildcard filters, $ topics only by explicit ones`,
      T,
      async (t) => {
        const h = await harness(t);
        const pub = await h.open({ protocolVersion: v });
        for (const topic of ['rw/a/x', 'rw/b/x', 'rw/b/y', 'rw', '$SYS/rw']) {
          await pub.c.publishAsync(topic, topic, { qos: 1, retain: true });
        }
        const plus = await h.open({ protocolVersion: v });
        const hash = await h.open({ protocolVersion: v });
        const all = await h.open({ protocolVersion: v });
        const sys = await h.open({ protocolVersion: v });
        await plus.c.subscribeAsync(['rw/+/x', 'fence'], { qos: 1 });
        await hash.c.subscribeAsync(['rw/#', 'fence'], { qos: 1 });
        await all.c.subscribeAsync(['#'], { qos: 1 });
        await sys.c.subscribeAsync(['$SYS/#', 'fence'], { qos: 1 });
        await fence(pub.c, 'fence', plus.msgs, hash.msgs, all.msgs, sys.msgs);
        const topics = (msgs: Received[]) => real(msgs).map((m) => m.topic);
        assert.deepEqual(topics(plus.msgs).sort(), ['rw/a/x', 'rw/b/x']);
        assert.deepEqual(topics(hash.msgs).sort(), ['rw', 'rw/a/x', 'rw/b/x', 'rw/b/y']);
        assert.deepEqual(topics(all.msgs).sort(), ['rw', 'rw/a/x', 'rw/b/x', 'rw/b/y'], '[MQTT-4.7.2-1] no $SYS');
        assert.deepEqual(topics(sys.msgs), ['$SYS/rw']);
        assert.ok(real(all.msgs).every((m) => m.packet.retain));
      },
    );

    test(`[MQTT-3.3.1-5] ${name(v)}: a retained message keeps its QoS, capped by the subscription`, T, async (t) => {
      const h = await harness(t);
      const pub = await h.open({ protocolVersion: v });
      await pub.c.publishAsync('ret/qos', 'q1', { qos: 1, retain: true });
      const s2 = await h.open({ protocolVersion: v });
      const s0 = await h.open({ protocolVersion: v });
      await s2.c.subscribeAsync('ret/qos', { qos: 2 });
      await s0.c.subscribeAsync('ret/qos', { qos: 0 });
      await waitFor(() => s2.msgs.length === 1 && s0.msgs.length === 1, 5000, 'the retained message');
      assert.equal(s2.msgs[0]!.packet.qos, 1);
      assert.equal(s0.msgs[0]!.packet.qos, 0);
    });
  }

  test(
    '[MQTT-3.3.1-9] MQTT 3.1.1: a retained message sent to an established subscription has RETAIN 0',
    T,
    async (t) => {
      const h = await harness(t);
      const sub = await h.open({ protocolVersion: 4 });
      const pub = await h.open({ protocolVersion: 4 });
      await sub.c.subscribeAsync('ret/live', { qos: 1 });
      await pub.c.publishAsync('ret/live', 'x', { qos: 1, retain: true });
      await waitFor(() => sub.msgs.length === 1, 5000, 'the message');
      assert.equal(sub.msgs[0]!.packet.retain, false);
    },
  );

  test('(§3.2.2.3.5) mqtt.retainAvailable false: a 5.0 retained PUBLISH gets DISCONNECT 0x9A', T, async (t) => {
    const h = await harness(t, { mqtt: { retainAvailable: false } });
    const pub = await h.open({ protocolVersion: 5 });
    assert.equal(pub.connack.properties?.retainAvailable, false);
    const reasons: number[] = [];
    let closed = false;
    pub.c.on('disconnect', (p) => reasons.push(p.reasonCode ?? 0));
    pub.c.on('close', () => {
      closed = true;
    });
    pub.c.publish('ret/off', 'x', { qos: 1, retain: true });
    await waitFor(() => closed, 5000, 'the server to close the connection');
    assert.deepEqual(reasons, [0x9a]);
  });

  describe('Retain Handling (MQTT 5.0)', () => {
    test('[MQTT-3.3.1-9] Retain Handling 0: retained messages are sent on every SUBSCRIBE', T, async (t) => {
      const h = await harness(t);
      const pub = await h.open({ protocolVersion: 5 });
      await pub.c.publishAsync('rh/0', 'r', { qos: 1, retain: true });
      const sub = await h.open({ protocolVersion: 5 });
      await sub.c.subscribeAsync('rh/0', { qos: 1, rh: 0 });
      await waitFor(() => sub.msgs.length === 1, 5000, 'the retained message');
      await sub.c.subscribeAsync('rh/0', { qos: 1, rh: 0 });
      await waitFor(() => sub.msgs.length === 2, 5000, 'the retained message again');
      assert.ok(sub.msgs.every((m) => m.packet.retain && m.payload.toString() === 'r'));
    });

    test('[MQTT-3.3.1-10] Retain Handling 1: retained messages only when the subscription is new', T, async (t) => {
      const h = await harness(t);
      const pub = await h.open({ protocolVersion: 5 });
      await pub.c.publishAsync('rh/1', 'r', { qos: 1, retain: true });
      const sub = await h.open({ protocolVersion: 5 });
      await sub.c.subscribeAsync(['rh/1', 'fence'], { qos: 1, rh: 1 });
      await waitFor(() => sub.msgs.length === 1, 5000, 'the retained message');
      await sub.c.subscribeAsync('rh/1', { qos: 1, rh: 1 });
      await fence(pub.c, 'fence', sub.msgs);
      assert.deepEqual(payloads(sub.msgs), ['r']);
    });

    test('[MQTT-3.3.1-11] Retain Handling 2: retained messages are not sent', T, async (t) => {
      const h = await harness(t);
      const pub = await h.open({ protocolVersion: 5 });
      await pub.c.publishAsync('rh/2', 'r', { qos: 1, retain: true });
      const sub = await h.open({ protocolVersion: 5 });
      await sub.c.subscribeAsync(['rh/2', 'fence'], { qos: 1, rh: 2 });
      await fence(pub.c, 'fence', sub.msgs);
      assert.deepEqual(payloads(sub.msgs), []);
      await pub.c.publishAsync('rh/2', 'live', { qos: 1 });
      await waitFor(() => payloads(sub.msgs).length === 1, 5000, 'a live message');
      assert.deepEqual(payloads(sub.msgs), ['live'], 'the subscription itself works');
    });
  });
});

describe('MQTT will messages', () => {
  for (const v of VERSIONS) {
    test(`[MQTT-3.1.2-8] ${name(v)}: the will is published when the connection drops`, T, async (t) => {
      const h = await harness(t);
      const watch = await h.open({ protocolVersion: v });
      await watch.c.subscribeAsync('will/+', { qos: 2 });
      const dying = await h.open({
        protocolVersion: v,
        clientId: `dying-${v}`,
        will: { topic: 'will/dying', payload: Buffer.from('gone'), qos: 1, retain: false },
      });
      crash(dying.c);
      await waitFor(() => watch.msgs.length === 1, 5000, 'the will');
      const m = watch.msgs[0]!;
      assert.equal(m.topic, 'will/dying');
      assert.equal(m.payload.toString(), 'gone');
      assert.equal(m.packet.qos, 1);
      assert.equal(m.packet.retain, false);
    });

    test(`[MQTT-3.1.2-10] ${name(v)}: no will after a clean DISCONNECT`, T, async (t) => {
      const h = await harness(t);
      const watch = await h.open({ protocolVersion: v });
      await watch.c.subscribeAsync('will/#', { qos: 1 });
      const leaving = await h.open({
        protocolVersion: v,
        clientId: `leaving-${v}`,
        will: { topic: 'will/leaving', payload: Buffer.from('gone'), qos: 1, retain: false },
      });
      await leaving.c.endAsync(false);
      await h.disconnected(`leaving-${v}`);
      await fence(watch.c, 'will/fence', watch.msgs);
      assert.deepEqual(payloads(watch.msgs), []);
    });

    test(
      `[MQTT-3.1.2-8] ${name(v)}: the will is published when the server closes the connection for a protocol error`,
      T,
      async (t) => {
        const h = await harness(t);
        const watch = await h.open({ protocolVersion: v });
        await watch.c.subscribeAsync('will/+', { qos: 1 });
        const bad = await h.open({
          protocolVersion: v,
          clientId: `bad-${v}`,
          will: { topic: 'will/bad', payload: Buffer.from('violated'), qos: 1, retain: false },
        });
        // A second CONNECT is a protocol violation [MQTT-3.1.0-2].
        bad.c.stream.write(
          Buffer.from([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 0x78]),
        );
        await waitFor(() => watch.msgs.length === 1, 5000, 'the will');
        assert.equal(watch.msgs[0]!.payload.toString(), 'violated');
      },
    );

    const retainId = v === 4 ? 'MQTT-3.1.2-17' : 'MQTT-3.1.2-15';
    test(
      `[${retainId}] ${name(v)}: a will with Will Retain is published as a retained message, at its QoS`,
      T,
      async (t) => {
        const h = await harness(t);
        const dying = await h.open({
          protocolVersion: v,
          clientId: `dying-retained-${v}`,
          will: { topic: 'will/retained', payload: Buffer.from('last words'), qos: 2, retain: true },
        });
        crash(dying.c);
        await h.disconnected(`dying-retained-${v}`);
        const late = await h.open({ protocolVersion: v });
        await late.c.subscribeAsync('will/retained', { qos: 2 });
        await waitFor(() => late.msgs.length === 1, 5000, 'the retained will');
        const m = late.msgs[0]!;
        assert.equal(m.payload.toString(), 'last words');
        assert.equal(m.packet.retain, true);
        assert.equal(m.packet.qos, 2);
      },
    );
  }

  test('(§3.14.2.1) MQTT 5.0: DISCONNECT 0x04 (with Will Message) publishes the will', T, async (t) => {
    const h = await harness(t);
    const watch = await h.open({ protocolVersion: 5 });
    await watch.c.subscribeAsync('will/#', { qos: 1 });
    const leaving = await h.open({
      protocolVersion: 5,
      clientId: 'leaving-0x04',
      will: { topic: 'will/0x04', payload: Buffer.from('bye'), qos: 1, retain: false },
    });
    await leaving.c.endAsync(false, { reasonCode: 0x04 });
    await waitFor(() => watch.msgs.length === 1, 5000, 'the will');
    assert.equal(watch.msgs[0]!.topic, 'will/0x04');
    assert.equal(watch.msgs[0]!.payload.toString(), 'bye');
  });

  test('(§3.1.3.2) MQTT 5.0: will properties are published with the will', T, async (t) => {
    const h = await harness(t);
    const watch = await h.open({ protocolVersion: 5 });
    await watch.c.subscribeAsync('will/#', { qos: 1 });
    const dying = await h.open({
      protocolVersion: 5,
      clientId: 'dying-props',
      will: {
        topic: 'will/props',
        payload: Buffer.from('{"state":"offline"}'),
        qos: 1,
        retain: false,
        properties: {
          contentType: 'application/json',
          payloadFormatIndicator: true,
          responseTopic: 'will/reply',
          correlationData: Buffer.from([1, 2, 3]),
          userProperties: { device: 'd1', why: ['a', 'b'] },
        },
      },
    });
    crash(dying.c);
    await waitFor(() => watch.msgs.length === 1, 5000, 'the will');
    const p = watch.msgs[0]!.packet.properties ?? {};
    assert.equal(p.contentType, 'application/json');
    assert.equal(p.payloadFormatIndicator, true);
    assert.equal(p.responseTopic, 'will/reply');
    assert.deepEqual([...(p.correlationData ?? [])], [1, 2, 3]);
    assert.deepEqual({ ...p.userProperties }, { device: 'd1', why: ['a', 'b'] });
  });

  describe('Will Delay Interval (MQTT 5.0)', () => {
    test('(§3.1.3.2.2) the will is published after the Will Delay Interval, not at once', T, async (t) => {
      const h = await harness(t);
      const watch = await h.open({ protocolVersion: 5 });
      await watch.c.subscribeAsync('will/#', { qos: 1 });
      const dying = await h.open({
        protocolVersion: 5,
        clientId: 'delayed',
        clean: false,
        properties: { sessionExpiryInterval: 30 },
        will: {
          topic: 'will/delayed',
          payload: Buffer.from('late'),
          qos: 1,
          retain: false,
          properties: { willDelayInterval: 1 },
        },
      });
      crash(dying.c);
      await h.disconnected('delayed');
      await fence(watch.c, 'will/fence', watch.msgs);
      assert.deepEqual(payloads(watch.msgs), [], 'not yet published');
      await waitFor(() => payloads(watch.msgs).length === 1, 5000, 'the delayed will');
      assert.deepEqual(payloads(watch.msgs), ['late']);
    });

    test('[MQTT-3.1.3-9] a reconnect within the Will Delay Interval cancels the will', T, async (t) => {
      const h = await harness(t);
      const watch = await h.open({ protocolVersion: 5 });
      await watch.c.subscribeAsync('will/#', { qos: 1 });
      const opts: IClientOptions = {
        protocolVersion: 5,
        clientId: 'comeback',
        clean: false,
        properties: { sessionExpiryInterval: 30 },
        will: {
          topic: 'will/comeback',
          payload: Buffer.from('lost'),
          qos: 1,
          retain: false,
          properties: { willDelayInterval: 1 },
        },
      };
      const first = await h.open(opts);
      crash(first.c);
      await h.disconnected('comeback');
      const again = await h.open(opts);
      assert.equal(again.connack.sessionPresent, true);
      await sleep(1500);
      await fence(watch.c, 'will/fence', watch.msgs);
      assert.deepEqual(payloads(watch.msgs), []);
    });

    test('(§3.1.3.2.2) the will is published when the session ends before the Will Delay Interval', T, async (t) => {
      const h = await harness(t);
      const watch = await h.open({ protocolVersion: 5 });
      await watch.c.subscribeAsync('will/#', { qos: 1 });
      const dying = await h.open({
        protocolVersion: 5,
        clientId: 'short-session',
        clean: false,
        properties: { sessionExpiryInterval: 1 },
        will: {
          topic: 'will/session-end',
          payload: Buffer.from('ended'),
          qos: 1,
          retain: false,
          properties: { willDelayInterval: 600 },
        },
      });
      crash(dying.c);
      await waitFor(() => payloads(watch.msgs).length === 1, 5000, 'the will at session end');
      assert.deepEqual(payloads(watch.msgs), ['ended']);
    });
  });
});
