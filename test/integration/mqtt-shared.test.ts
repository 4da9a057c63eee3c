/**
 * Shared subscriptions `$share/group/filter`: round-robin among members, groups independent
 * of each other, no retained messages, and redelivery to another member of the QoS 1
 * messages a departed member never acknowledged.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { harness } from '../helpers/harness.js';
import { fence, versionName as name, payloads, VERSIONS, waitFor } from '../helpers/mqtt.js';
import { connectPacket, parsePublish, subscribePacket } from '../helpers/raw-mqtt.js';

const T = { timeout: 20_000 };

describe('MQTT shared subscriptions', () => {
  for (const v of VERSIONS) {
    test(`(§4.8.2) ${name(v)}: messages are shared round-robin between two members, each once`, T, async (t) => {
      const h = await harness(t);
      const m1 = await h.open({ protocolVersion: v });
      const m2 = await h.open({ protocolVersion: v });
      const pub = await h.open({ protocolVersion: v });
      await m1.c.subscribeAsync('$share/g/sh/+', { qos: 1 });
      await m2.c.subscribeAsync('$share/g/sh/+', { qos: 1 });
      const sent: string[] = [];
      for (let i = 0; i < 10; i++) {
        sent.push(`m${i}`);
        await pub.c.publishAsync(i % 2 ? 'sh/a' : 'sh/b', `m${i}`, { qos: 1 });
      }
      await waitFor(() => m1.msgs.length + m2.msgs.length >= 10, 5000, 'ten messages');
      assert.equal(m1.msgs.length, 5, 'round-robin: half to each member');
      assert.equal(m2.msgs.length, 5);
      assert.deepEqual([...payloads(m1.msgs), ...payloads(m2.msgs)].sort(), sent.sort(), 'each message exactly once');
      for (const m of [...m1.msgs, ...m2.msgs]) {
        assert.equal(m.topic, Number(m.payload.toString().slice(1)) % 2 ? 'sh/a' : 'sh/b', 'the real topic');
      }
    });
  }

  test('(§4.8.2) every group, and every non-shared subscriber, gets its own copy', T, async (t) => {
    const h = await harness(t);
    const g1a = await h.open({ protocolVersion: 5 });
    const g1b = await h.open({ protocolVersion: 5 });
    const g2 = await h.open({ protocolVersion: 5 });
    const plain = await h.open({ protocolVersion: 5 });
    const pub = await h.open({ protocolVersion: 5 });
    await g1a.c.subscribeAsync('$share/g1/grp/t', { qos: 1 });
    await g1b.c.subscribeAsync('$share/g1/grp/t', { qos: 1 });
    await g2.c.subscribeAsync('$share/g2/grp/t', { qos: 1 });
    await plain.c.subscribeAsync('grp/t', { qos: 1 });
    for (let i = 0; i < 4; i++) await pub.c.publishAsync('grp/t', `m${i}`, { qos: 1 });
    await waitFor(
      () => g1a.msgs.length + g1b.msgs.length === 4 && g2.msgs.length === 4 && plain.msgs.length === 4,
      5000,
      'every copy',
    );
    assert.deepEqual([...payloads(g1a.msgs), ...payloads(g1b.msgs)].sort(), ['m0', 'm1', 'm2', 'm3']);
    assert.deepEqual(payloads(g2.msgs), ['m0', 'm1', 'm2', 'm3']);
    assert.deepEqual(payloads(plain.msgs), ['m0', 'm1', 'm2', 'm3']);
  });

  test('[MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error (0x82)', T, async (t) => {
    const h = await harness(t);
    const { c } = await h.open({ protocolVersion: 5 });
    const code = await new Promise<number | undefined>((resolve) => {
      c.once('disconnect', (p) => resolve(p.reasonCode));
      c.subscribe('$share/g/nl/t', { qos: 1, nl: true }, (_err, _granted, packet) => {
        if (packet) resolve((packet.granted as number[])[0]);
      });
    });
    assert.equal(code, 0x82);
  });

  test('(§4.8.2) retained messages are not sent when a shared subscription is made', T, async (t) => {
    const h = await harness(t);
    const pub = await h.open({ protocolVersion: 5 });
    await pub.c.publishAsync('shret/t', 'retained', { qos: 1, retain: true });
    const member = await h.open({ protocolVersion: 5 });
    await member.c.subscribeAsync('$share/g/shret/t', { qos: 1 });
    await fence(pub.c, 'shret/t', member.msgs);
    assert.deepEqual(payloads(member.msgs), []);
  });

  test('after a member unsubscribes, the remaining member gets everything', T, async (t) => {
    const h = await harness(t);
    const m1 = await h.open({ protocolVersion: 5 });
    const m2 = await h.open({ protocolVersion: 5 });
    const pub = await h.open({ protocolVersion: 5 });
    await m1.c.subscribeAsync('$share/g/shun/t', { qos: 1 });
    await m2.c.subscribeAsync('$share/g/shun/t', { qos: 1 });
    await m1.c.unsubscribeAsync('$share/g/shun/t');
    for (let i = 0; i < 4; i++) await pub.c.publishAsync('shun/t', `m${i}`, { qos: 1 });
    await waitFor(() => m2.msgs.length === 4, 5000, 'four messages on the remaining member');
    assert.deepEqual(payloads(m1.msgs), []);
  });

  test('(§4.8.2) while a persistent member is offline, the online member gets every message', T, async (t) => {
    const h = await harness(t);
    const gone: string[] = [];
    h.b.broker.on('clientDisconnect', (c: { id: string }) => gone.push(c.id));
    const m1 = await h.open({
      protocolVersion: 5,
      clientId: 'sleeper',
      clean: false,
      properties: { sessionExpiryInterval: 60 },
    });
    const m2 = await h.open({ protocolVersion: 5 });
    await m1.c.subscribeAsync('$share/g/away/t', { qos: 1 });
    await m2.c.subscribeAsync('$share/g/away/t', { qos: 1 });
    await m1.c.endAsync(false);
    await waitFor(() => gone.includes('sleeper'), 5000, 'the member to leave');
    const pub = await h.open({ protocolVersion: 5 });
    for (let i = 0; i < 6; i++) await pub.c.publishAsync('away/t', `m${i}`, { qos: 1 });
    await waitFor(() => m2.msgs.length === 6, 5000, 'all six on the online member');
    assert.deepEqual(payloads(m2.msgs), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
  });

  test('(§4.8.2) QoS 1 messages a departed member never acknowledged go to the other member', T, async (t) => {
    const h = await harness(t);
    // Member 1: a raw clean session that takes messages and never sends PUBACK.
    const r = await h.raw();
    r.send(connectPacket({ v: 4, clientId: 'greedy' }));
    assert.equal((await r.next(2)).body[1], 0);
    r.send(subscribePacket(4, 1, '$share/g/redo/t', 1));
    await r.next(9);
    const m2 = await h.open({ protocolVersion: 5 });
    await m2.c.subscribeAsync('$share/g/redo/t', { qos: 1 });
    const pub = await h.open({ protocolVersion: 5 });
    const sent = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'];
    for (const p of sent) await pub.c.publishAsync('redo/t', p, { qos: 1 });
    const rawGot = () => r.packets.filter((p) => p.type === 3);
    await waitFor(() => rawGot().length + m2.msgs.length >= sent.length, 5000, 'every message to some member');
    assert.ok(rawGot().length > 0, 'the raw member got its share');
    const unacked = rawGot().map((p) => parsePublish(p, 4).payload);
    r.close();
    await waitFor(() => unacked.every((p) => payloads(m2.msgs).includes(p)), 5000, 'the unacknowledged messages');
    assert.deepEqual([...new Set(payloads(m2.msgs))].sort(), sent, 'the remaining member has them all');
  });
});
