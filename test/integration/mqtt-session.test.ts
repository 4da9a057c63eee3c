/**
 * Persistent sessions: 3.1.1 clean session, 5.0 Clean Start and Session Expiry Interval,
 * offline queueing (QoS 0 excluded by default), and resending unacknowledged PUBLISH and
 * PUBREL on resume (raw socket, since mqtt.js always acknowledges).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import { type Harness, harness } from '../helpers/harness.js';
import { fence, versionName as name, payloads, sleep, VERSIONS, waitFor } from '../helpers/mqtt.js';
import { ackPacket, parsePublish, persistentConnect, subscribePacket } from '../helpers/raw-mqtt.js';

const T = { timeout: 20_000 };

/** A clean DISCONNECT, then waits for the broker to have processed it. */
async function leave(h: Harness, c: MqttClient, id: string, opts = {}): Promise<void> {
  const before = h.goneCount(id);
  await c.endAsync(false, opts);
  await h.disconnected(id, before + 1);
}

/** Connects a raw persistent session; returns the socket and the CONNACK's Session Present. */
async function rawSession(h: Harness, v: 4 | 5, id: string) {
  const r = await h.raw();
  const connack = await r.handshake(persistentConnect(v, id));
  return { r, sessionPresent: (connack.body[0]! & 1) === 1 };
}

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
