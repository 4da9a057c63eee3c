/**
 * PUBLISH with mqtt.js (and a raw socket for QoS 2 retransmission): QoS 0, 1 and 2 in both
 * directions, payload integrity, ordering, QoS downgrade, and 5.0 acknowledgement codes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type { MqttClient, Packet } from 'mqtt';
import { harness } from '../helpers/harness.js';
import { fence, versionName as name, type Received, sleep, VERSIONS, waitFor } from '../helpers/mqtt.js';
import {
  connectPacket,
  parsePublish,
  persistentConnect,
  pubackPacket,
  publishPacket,
  pubrelPacket,
  type RawPublish,
  subscribePacket,
} from '../helpers/raw-mqtt.js';

const T = { timeout: 30_000 };
const QOS = [0, 1, 2] as const;

/** Every packet of one type the client received, captured before mqtt.js handles it. */
function received(c: MqttClient, cmd: Packet['cmd']): Packet[] {
  const out: Packet[] = [];
  c.on('packetreceive', (p) => {
    if (p.cmd === cmd) out.push(p);
  });
  return out;
}

describe('MQTT PUBLISH', () => {
  describe('QoS 0, 1 and 2 both ways', () => {
    for (const v of VERSIONS) {
      for (const qos of QOS) {
        test(`${name(v)}: a QoS ${qos} PUBLISH is acknowledged and delivered at QoS ${qos}`, T, async (t) => {
          const h = await harness(t);
          const sub = await h.open({ protocolVersion: v });
          const pub = await h.open({ protocolVersion: v });
          await sub.c.subscribeAsync('qos/t', { qos: 2 });
          // publishAsync resolves on PUBACK (QoS 1) or PUBCOMP (QoS 2).
          await pub.c.publishAsync('qos/t', `hello ${qos}`, { qos });
          await waitFor(() => sub.msgs.length === 1, 5000, 'the message');
          const m = sub.msgs[0]!;
          assert.equal(m.topic, 'qos/t');
          assert.equal(m.payload.toString(), `hello ${qos}`);
          assert.equal(m.packet.qos, qos);
          assert.equal(m.packet.retain, false);
          assert.equal(m.packet.dup, false, '[MQTT-3.3.1-1] DUP is 0 on a first delivery');
          await fence(pub.c, 'qos/t', sub.msgs);
          assert.equal(sub.msgs.filter((x) => x.payload.toString() === `hello ${qos}`).length, 1);
        });
      }
    }

    for (const v of VERSIONS) {
      test(`${name(v)}: publisher and subscriber on one connection, QoS 2 in and out`, T, async (t) => {
        const h = await harness(t);
        const { c, msgs } = await h.open({ protocolVersion: v });
        await c.subscribeAsync('self/t', { qos: 2 });
        await c.publishAsync('self/t', 'to myself', { qos: 2 });
        await waitFor(() => msgs.length === 1, 5000, 'the message');
        assert.equal(msgs[0]!.packet.qos, 2);
        assert.equal(msgs[0]!.payload.toString(), 'to myself');
      });
    }
  });

  describe('payload integrity', () => {
    for (const v of VERSIONS) {
      test(`${name(v)}: binary, empty and 1 MB payloads arrive byte for byte`, T, async (t) => {
        const h = await harness(t);
        const sub = await h.open({ protocolVersion: v });
        const pub = await h.open({ protocolVersion: v });
        await sub.c.subscribeAsync('bin/+', { qos: 1 });
        const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        const big = randomBytes(1024 * 1024);
        await pub.c.publishAsync('bin/every', every, { qos: 1 });
        await pub.c.publishAsync('bin/empty', Buffer.alloc(0), { qos: 1 });
        await pub.c.publishAsync('bin/big', big, { qos: 1 });
        await pub.c.publishAsync('bin/big0', big, { qos: 0 });
        await waitFor(() => sub.msgs.length === 4, 10_000, 'four messages');
        const by = new Map(sub.msgs.map((m) => [m.topic, m.payload]));
        assert.ok(by.get('bin/every')!.equals(every), 'all 256 byte values');
        assert.equal(by.get('bin/empty')!.length, 0, 'an empty payload is delivered, empty');
        assert.ok(by.get('bin/big')!.equals(big), '1 MB at QoS 1');
        assert.ok(by.get('bin/big0')!.equals(big), '1 MB at QoS 0');
      });
    }
  });

  describe('payload integrity over WebSocket', () => {
    for (const v of VERSIONS) {
      test(`${name(v)}: a 1 MB binary payload crosses WebSocket and TCP both ways`, T, async (t) => {
        const h = await harness(t);
        const wsSub = await h.open({ protocolVersion: v }, h.b.wsUrl);
        const tcpSub = await h.open({ protocolVersion: v });
        const wsPub = await h.open({ protocolVersion: v }, h.b.wsUrl);
        await wsSub.c.subscribeAsync('wsbin/+', { qos: 1 });
        await tcpSub.c.subscribeAsync('wsbin/+', { qos: 1 });
        const big = randomBytes(1024 * 1024);
        await wsPub.c.publishAsync('wsbin/big', big, { qos: 1 });
        await waitFor(() => wsSub.msgs.length === 1 && tcpSub.msgs.length === 1, 10_000, 'the big message');
        assert.ok(wsSub.msgs[0]!.payload.equals(big), 'WebSocket → WebSocket');
        assert.ok(tcpSub.msgs[0]!.payload.equals(big), 'WebSocket → TCP');
      });
    }
  });

  describe('ordering', () => {
    for (const v of VERSIONS) {
      test(`[MQTT-4.6.0-6] ${name(v)}: 1000 QoS 1 messages arrive in the order they were published`, T, async (t) => {
        const h = await harness(t);
        const sub = await h.open({ protocolVersion: v });
        const pub = await h.open({ protocolVersion: v });
        await sub.c.subscribeAsync('order/t', { qos: 1 });
        const sends: Promise<unknown>[] = [];
        for (let i = 0; i < 1000; i++) sends.push(pub.c.publishAsync('order/t', String(i), { qos: 1 }));
        await Promise.all(sends);
        await waitFor(() => sub.msgs.length >= 1000, 20_000, '1000 messages');
        const got = sub.msgs.map((m) => Number(m.payload.toString()));
        assert.deepEqual(
          got,
          Array.from({ length: 1000 }, (_, i) => i),
        );
      });
    }
  });

  describe('QoS downgrade', () => {
    for (const v of VERSIONS) {
      const id = v === 4 ? 'MQTT-3.8.4-6' : 'MQTT-3.8.4-8';
      test(`[${id}] ${name(v)}: delivery QoS is the minimum of the publish and the subscription QoS`, T, async (t) => {
        const h = await harness(t);
        const s0 = await h.open({ protocolVersion: v });
        const s1 = await h.open({ protocolVersion: v });
        const s2 = await h.open({ protocolVersion: v });
        const pub = await h.open({ protocolVersion: v });
        await s0.c.subscribeAsync('down/+', { qos: 0 });
        await s1.c.subscribeAsync('down/+', { qos: 1 });
        await s2.c.subscribeAsync('down/+', { qos: 2 });
        for (const q of QOS) await pub.c.publishAsync(`down/${q}`, `q${q}`, { qos: q });
        await waitFor(() => s0.msgs.length === 3 && s1.msgs.length === 3 && s2.msgs.length === 3, 5000, 'all');
        const qosOf = (msgs: Received[]) => QOS.map((q) => msgs.find((m) => m.topic === `down/${q}`)?.packet.qos);
        assert.deepEqual(qosOf(s0.msgs), [0, 0, 0]);
        assert.deepEqual(qosOf(s1.msgs), [0, 1, 1]);
        assert.deepEqual(qosOf(s2.msgs), [0, 1, 2]);
      });
    }
  });

  describe('MQTT 5.0 acknowledgements', () => {
    test('(§3.4.2.1) PUBACK 0x10 No matching subscribers when nobody is subscribed, 0x00 otherwise', T, async (t) => {
      const h = await harness(t);
      const pub = await h.open({ protocolVersion: 5 });
      const acks = received(pub.c, 'puback');
      await pub.c.publishAsync('nobody/home', 'x', { qos: 1 });
      await waitFor(() => acks.length === 1, 5000, 'the PUBACK');
      assert.equal((acks[0] as { reasonCode?: number }).reasonCode, 0x10);

      const sub = await h.open({ protocolVersion: 5 });
      await sub.c.subscribeAsync('nobody/home', { qos: 1 });
      await pub.c.publishAsync('nobody/home', 'y', { qos: 1 });
      await waitFor(() => acks.length === 2, 5000, 'the second PUBACK');
      assert.equal((acks[1] as { reasonCode?: number }).reasonCode ?? 0, 0);
    });

    test('(§3.5.2.1) PUBREC 0x10 No matching subscribers at QoS 2 when nobody is subscribed', T, async (t) => {
      const h = await harness(t);
      const pub = await h.open({ protocolVersion: 5 });
      const recs = received(pub.c, 'pubrec');
      await pub.c.publishAsync('nobody/home2', 'x', { qos: 2 });
      assert.equal(recs.length, 1);
      assert.equal((recs[0] as { reasonCode?: number }).reasonCode, 0x10);
    });
  });

  describe('QoS 2 exactly once', () => {
    for (const v of VERSIONS) {
      const id = v === 4 ? 'MQTT-4.3.3-2' : 'MQTT-4.3.3-9';
      test(`[${id}] ${name(v)}: a QoS 2 PUBLISH sent again with DUP before PUBREL is delivered once`, T, async (t) => {
        const h = await harness(t);
        const sub = await h.open({ protocolVersion: v });
        await sub.c.subscribeAsync('eo/t', { qos: 2 });
        const r = await h.raw();
        r.send(connectPacket({ v, clientId: `eo-raw-${v}` }));
        assert.equal((await r.next(2)).body[1], 0, 'CONNACK accepted');

        r.send(publishPacket({ v, topic: 'eo/t', payload: 'once', qos: 2, id: 7 }));
        const rec1 = await r.next(5);
        assert.equal(rec1.body.readUInt16BE(0), 7, 'PUBREC for packet id 7');
        r.send(publishPacket({ v, topic: 'eo/t', payload: 'once', qos: 2, id: 7, dup: true }));
        const rec2 = await r.next(5);
        assert.equal(rec2.body.readUInt16BE(0), 7, 'the retransmission is acknowledged with PUBREC again');
        r.send(pubrelPacket(7));
        const comp = await r.next(7);
        assert.equal(comp.body.readUInt16BE(0), 7, 'PUBCOMP for packet id 7');

        // Once PUBCOMP is sent the id is free: the same id is a new message.
        r.send(publishPacket({ v, topic: 'eo/t', payload: 'again', qos: 2, id: 7 }));
        await r.next(5);
        r.send(pubrelPacket(7));
        await r.next(7);
        r.send(publishPacket({ v, topic: 'eo/t', payload: 'end', qos: 0 }));

        await waitFor(() => sub.msgs.some((m) => m.payload.toString() === 'end'), 5000, 'the last message');
        assert.deepEqual(
          sub.msgs.map((m) => m.payload.toString()),
          ['once', 'again', 'end'],
        );
      });
    }
  });
  describe('QoS 2 state across reconnects', () => {
    for (const v of VERSIONS) {
      test(
        `[MQTT-4.3.3-${v === 4 ? 2 : 9}] ${name(v)}: a QoS 2 PUBLISH resent after a reconnect (PUBREC lost) is delivered once`,
        T,
        async (t) => {
          const h = await harness(t);
          const sub = await h.open({ protocolVersion: v });
          await sub.c.subscribeAsync('eo2/t', { qos: 2 });
          const r1 = await h.raw();
          r1.send(persistentConnect(v, `eo2-${v}`));
          assert.equal((await r1.next(2)).body[1], 0);
          r1.send(publishPacket({ v, topic: 'eo2/t', payload: 'once', qos: 2, id: 9 }));
          await r1.next(5); // the broker owns the message now; the client "loses" the PUBREC
          r1.close();

          const r2 = await h.raw();
          r2.send(persistentConnect(v, `eo2-${v}`));
          const connack = await r2.next(2);
          assert.equal(connack.body[0]! & 1, 1, 'session present');
          r2.send(publishPacket({ v, topic: 'eo2/t', payload: 'once', qos: 2, id: 9, dup: true }));
          assert.equal((await r2.next(5)).body.readUInt16BE(0), 9, 'PUBREC again');
          r2.send(pubrelPacket(9));
          assert.equal((await r2.next(7)).body.readUInt16BE(0), 9, 'PUBCOMP');
          r2.send(publishPacket({ v, topic: 'eo2/t', payload: 'end', qos: 0 }));
          await waitFor(() => sub.msgs.some((m) => m.payload.toString() === 'end'), 5000, 'the last message');
          assert.deepEqual(
            sub.msgs.map((m) => m.payload.toString()),
            ['once', 'end'],
          );
        },
      );
    }
  });

  describe('flow control', () => {
    test('(§3.3.4) MQTT 5.0: a client exceeding our Receive Maximum gets DISCONNECT 0x93', T, async (t) => {
      const h = await harness(t, { mqtt: { receiveMaximum: 2 } });
      const r = await h.raw();
      r.send(connectPacket({ v: 5, clientId: 'too-eager' }));
      assert.equal((await r.next(2)).body[1], 0);
      // QoS 2 messages stay unacknowledged (in the Receive Maximum sense) until PUBCOMP.
      for (const id of [1, 2, 3]) r.send(publishPacket({ v: 5, topic: 'flow/in', payload: `m${id}`, qos: 2, id }));
      const disconnect = await r.next(14);
      assert.equal(disconnect.body[0], 0x93);
      await r.waitClosed();
      assert.equal(r.count(5), 2, 'the first two were accepted with PUBREC');
    });

    test(
      '[MQTT-3.3.4-7] a QoS 2 PUBLISH reusing a pending id without DUP counts against Receive Maximum; with DUP it is a retransmission',
      T,
      async (t) => {
        const h = await harness(t, { mqtt: { receiveMaximum: 2 } });
        const r = await h.raw();
        r.send(connectPacket({ v: 5, clientId: 'id-reuse' }));
        assert.equal((await r.next(2)).body[1], 0);
        for (const id of [1, 2]) r.send(publishPacket({ v: 5, topic: 'flow/in', payload: `m${id}`, qos: 2, id }));
        // A retransmission of id 1 with DUP is acknowledged again, not refused.
        r.send(publishPacket({ v: 5, topic: 'flow/in', payload: 'm1', qos: 2, id: 1, dup: true }));
        await waitFor(() => r.count(5) === 3, 5000, 'three PUBRECs');
        // The Paho suite's test_flow_control2: id 1 again without DUP, over the limit.
        r.send(publishPacket({ v: 5, topic: 'flow/in', payload: 'm3', qos: 2, id: 1 }));
        const disconnect = await r.next(14);
        assert.equal(disconnect.body[0], 0x93);
        await r.waitClosed();
      },
    );

    for (const v of VERSIONS) {
      const how = v === 5 ? 'the client’s Receive Maximum (2)' : 'mqtt.maxInflightMessages (2)';
      test(`[MQTT-3.3.4-9] ${name(v)}: no more than ${how} unacknowledged QoS 1 messages are sent`, T, async (t) => {
        const h = await harness(t, v === 4 ? { mqtt: { maxInflightMessages: 2 } } : {});
        const r = await h.raw();
        r.send(connectPacket({ v, clientId: `slow-${v}`, receiveMaximum: 2 }));
        assert.equal((await r.next(2)).body[1], 0);
        r.send(subscribePacket(v, 1, 'flow/out', 1));
        await r.next(9);
        const pub = await h.open({ protocolVersion: v });
        const sent = ['m1', 'm2', 'm3', 'm4', 'm5'];
        for (const p of sent) await pub.c.publishAsync('flow/out', p, { qos: 1 });
        const got: RawPublish[] = [];
        got.push(parsePublish(await r.next(3), v), parsePublish(await r.next(3), v));
        assert.notEqual(got[0]!.id, got[1]!.id, 'packet ids in flight are distinct');
        assert.ok(got.every((g) => g.id! > 0));
        await sleep(300);
        assert.equal(r.count(3), 0, 'a third message waits for an acknowledgement');
        while (got.length < sent.length) {
          r.send(pubackPacket(got[got.length - 2]!.id!));
          got.push(parsePublish(await r.next(3), v));
          const inFlight = got.slice(-2).map((g) => g.id);
          assert.notEqual(inFlight[0], inFlight[1], 'an id is not reused while in flight');
        }
        assert.deepEqual(
          got.map((g) => g.payload),
          sent,
        );
      });
    }

    test('(§3.2.2.3.4) mqtt.maxQos 1: a 5.0 QoS 2 PUBLISH gets DISCONNECT 0x9B', T, async (t) => {
      const h = await harness(t, { mqtt: { maxQos: 1 } });
      const pub = await h.open({ protocolVersion: 5 });
      assert.equal(pub.connack.properties?.maximumQoS, 1);
      const reasons: number[] = [];
      let closed = false;
      pub.c.on('disconnect', (p) => reasons.push(p.reasonCode ?? 0));
      pub.c.on('close', () => {
        closed = true;
      });
      pub.c.publish('maxqos/t', 'x', { qos: 2 });
      await waitFor(() => closed, 5000, 'the server to close the connection');
      assert.deepEqual(reasons, [0x9b]);
    });
  });
});
