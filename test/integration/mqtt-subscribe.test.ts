/**
 * SUBSCRIBE / UNSUBSCRIBE with mqtt.js: wildcards, `$` topics, overlapping subscriptions,
 * 5.0 subscription options and identifiers, topics with dots, UNSUBACK codes, denied filters.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ClientSubscribeCallback, IClientSubscribeOptions, MqttClient } from 'mqtt';
import { harness } from '../helpers/harness.js';
import { fence, isFence, versionName as name, type Received, subackCodes, VERSIONS, waitFor } from '../helpers/mqtt.js';

type SubackPacket = Parameters<ClientSubscribeCallback>[2];
/** mqtt-packet puts the 5.0 UNSUBACK reason codes in `granted`. */
interface UnsubackPacket {
  cmd: string;
  granted?: number[];
}

const T = { timeout: 20_000 };

const topics = (msgs: Received[]): string[] =>
  msgs
    .filter((m) => !isFence(m))
    .map((m) => m.topic)
    .sort();

const subIds = (m: Received): number[] => {
  const id = m.packet.properties?.subscriptionIdentifier as number | number[] | undefined;
  return id === undefined ? [] : ([] as number[]).concat(id).sort((a, b) => a - b);
};

describe('MQTT SUBSCRIBE', () => {
  describe('wildcards', () => {
    for (const v of VERSIONS) {
      test(`[MQTT-4.7.1-3] ${name(v)}: + matches exactly one level`, T, async (t) => {
        const h = await harness(t);
        const sub = await h.open({ protocolVersion: v });
        const pub = await h.open({ protocolVersion: v });
        await sub.c.subscribeAsync(['w/+/c', 'fence'], { qos: 1 });
        for (const topic of ['w/b/c', 'w//c', 'w/b/c/d', 'w/c', 'w/b/d', 'x/b/c']) {
          await pub.c.publishAsync(topic, 'm', { qos: 1 });
        }
        await fence(pub.c, 'fence', sub.msgs);
        assert.deepEqual(topics(sub.msgs), ['w//c', 'w/b/c']);
      });

      test(`[MQTT-4.7.1-2] ${name(v)}: a/# matches a itself and every level below`, T, async (t) => {
        const h = await harness(t);
        const sub = await h.open({ protocolVersion: v });
        const all = await h.open({ protocolVersion: v });
        const pub = await h.open({ protocolVersion: v });
        await sub.c.subscribeAsync(['a/#', 'fence'], { qos: 1 });
        await all.c.subscribeAsync('#', { qos: 1 });
        for (const topic of ['a', 'a/b', 'a/b/c', 'a/', 'ab', 'b/a', '/a']) {
          await pub.c.publishAsync(topic, 'm', { qos: 1 });
        }
        await fence(pub.c, 'fence', sub.msgs, all.msgs);
        assert.deepEqual(topics(sub.msgs), ['a', 'a/', 'a/b', 'a/b/c']);
        assert.deepEqual(topics(all.msgs), ['/a', 'a', 'a/', 'a/b', 'a/b/c', 'ab', 'b/a']);
      });

      test(`[MQTT-4.7.2-1] ${name(v)}: $SYS/x is not matched by # or +/x, but by $SYS/# and $SYS/+`, T, async (t) => {
        const h = await harness(t);
        const hash = await h.open({ protocolVersion: v });
        const plus = await h.open({ protocolVersion: v });
        const sys = await h.open({ protocolVersion: v });
        const sysPlus = await h.open({ protocolVersion: v });
        const pub = await h.open({ protocolVersion: v });
        await hash.c.subscribeAsync('#', { qos: 1 });
        await plus.c.subscribeAsync(['+/x', 'fence'], { qos: 1 });
        await sys.c.subscribeAsync(['$SYS/#', 'fence'], { qos: 1 });
        await sysPlus.c.subscribeAsync(['$SYS/+', 'fence'], { qos: 1 });
        await pub.c.publishAsync('$SYS/x', 'sys', { qos: 1 });
        await pub.c.publishAsync('other/x', 'other', { qos: 1 });
        await fence(pub.c, 'fence', hash.msgs, plus.msgs, sys.msgs, sysPlus.msgs);
        assert.deepEqual(topics(hash.msgs), ['other/x']);
        assert.deepEqual(topics(plus.msgs), ['other/x']);
        assert.deepEqual(topics(sys.msgs), ['$SYS/x']);
        assert.deepEqual(topics(sysPlus.msgs), ['$SYS/x']);
      });
    }
  });

  describe('topics with dots (Braid swaps . and / for the routing key)', () => {
    for (const v of VERSIONS) {
      test(`${name(v)}: a.b/c and a/b/c stay two different topics both ways`, T, async (t) => {
        const h = await harness(t);
        const dotted = await h.open({ protocolVersion: v });
        const dottedExact = await h.open({ protocolVersion: v });
        const slashed = await h.open({ protocolVersion: v });
        const slashedPlus = await h.open({ protocolVersion: v });
        const all = await h.open({ protocolVersion: v });
        const pub = await h.open({ protocolVersion: v });
        await dotted.c.subscribeAsync(['a.b/+', 'fence'], { qos: 1 });
        await dottedExact.c.subscribeAsync(['a.b/c', 'fence'], { qos: 1 });
        await slashed.c.subscribeAsync(['a/b/c', 'fence'], { qos: 1 });
        await slashedPlus.c.subscribeAsync(['a/+/c', 'fence'], { qos: 1 });
        await all.c.subscribeAsync('#', { qos: 1 });
        await pub.c.publishAsync('a.b/c', 'dotted', { qos: 1 });
        await pub.c.publishAsync('a/b/c', 'slashed', { qos: 1 });
        await pub.c.publishAsync('x.y.z', 'only dots', { qos: 1 });
        await fence(pub.c, 'fence', dotted.msgs, dottedExact.msgs, slashed.msgs, slashedPlus.msgs, all.msgs);
        assert.deepEqual(topics(dotted.msgs), ['a.b/c']);
        assert.deepEqual(topics(dottedExact.msgs), ['a.b/c']);
        assert.equal(dotted.msgs[0]!.payload.toString(), 'dotted');
        assert.deepEqual(topics(slashed.msgs), ['a/b/c']);
        assert.deepEqual(topics(slashedPlus.msgs), ['a/b/c']);
        assert.equal(slashed.msgs[0]!.payload.toString(), 'slashed');
        assert.deepEqual(topics(all.msgs), ['a.b/c', 'a/b/c', 'x.y.z']);
      });
    }
  });

  describe('overlapping subscriptions', () => {
    for (const v of VERSIONS) {
      const id = v === 4 ? 'MQTT-3.3.5-1' : 'MQTT-3.3.4-2';
      test(
        `[${id}] ${name(v)}: one copy per message, at the maximum QoS of the matching subscriptions`,
        T,
        async (t) => {
          const h = await harness(t);
          const sub = await h.open({ protocolVersion: v });
          const pub = await h.open({ protocolVersion: v });
          await sub.c.subscribeAsync('ov/+', { qos: 0 });
          await sub.c.subscribeAsync('ov/#', { qos: 1 });
          await sub.c.subscribeAsync('ov/a', { qos: 2 });
          await pub.c.publishAsync('ov/a', 'a', { qos: 2 });
          await pub.c.publishAsync('ov/b', 'b', { qos: 2 });
          await pub.c.publishAsync('ov/b/c', 'c', { qos: 2 });
          await fence(pub.c, 'ov/end', sub.msgs);
          const got = sub.msgs.filter((m) => !isFence(m)).map((m) => [m.topic, m.packet.qos]);
          assert.deepEqual(got, [
            ['ov/a', 2],
            ['ov/b', 1],
            ['ov/b/c', 1],
          ]);
        },
      );
    }

    test(
      '[MQTT-3.3.4-3] [MQTT-3.3.4-4] MQTT 5.0: the one copy carries every matching Subscription Identifier',
      T,
      async (t) => {
        const h = await harness(t);
        const sub = await h.open({ protocolVersion: 5 });
        const pub = await h.open({ protocolVersion: 5 });
        await sub.c.subscribeAsync('si/+', { qos: 0, properties: { subscriptionIdentifier: 1 } });
        await sub.c.subscribeAsync('si/#', { qos: 1, properties: { subscriptionIdentifier: 2 } });
        await sub.c.subscribeAsync('si/a', { qos: 2, properties: { subscriptionIdentifier: 300 } });
        await sub.c.subscribeAsync('si/+/+', { qos: 1 });
        await pub.c.publishAsync('si/a', 'a', { qos: 2 });
        await pub.c.publishAsync('si/b', 'b', { qos: 1 });
        await pub.c.publishAsync('si/b/c', 'c', { qos: 1 });
        await fence(pub.c, 'si/end', sub.msgs);
        const got = sub.msgs.filter((m) => !isFence(m)).map((m) => [m.topic, m.packet.qos, subIds(m)]);
        assert.deepEqual(got, [
          ['si/a', 2, [1, 2, 300]],
          ['si/b', 1, [1, 2]],
          ['si/b/c', 1, [2]],
        ]);
      },
    );

    for (const v of VERSIONS) {
      test(
        `[MQTT-3.8.4-3] ${name(v)}: subscribing to the same filter again replaces the subscription`,
        T,
        async (t) => {
          const h = await harness(t);
          const sub = await h.open({ protocolVersion: v });
          const pub = await h.open({ protocolVersion: v });
          await sub.c.subscribeAsync('re/t', { qos: 0 });
          await sub.c.subscribeAsync('re/t', { qos: 2 });
          await pub.c.publishAsync('re/t', 'x', { qos: 2 });
          await fence(pub.c, 're/t', sub.msgs);
          const got = sub.msgs.filter((m) => !isFence(m)).map((m) => m.packet.qos);
          assert.deepEqual(got, [2]);
        },
      );
    }
  });

  describe('MQTT 5.0 subscription options', () => {
    test('[MQTT-3.8.3-3] No Local: the subscriber does not get its own messages, others do', T, async (t) => {
      const h = await harness(t);
      const self = await h.open({ protocolVersion: 5 });
      const other = await h.open({ protocolVersion: 5 });
      await self.c.subscribeAsync('nl/t', { qos: 1, nl: true });
      await other.c.subscribeAsync('nl/t', { qos: 1 });
      await self.c.publishAsync('nl/t', 'from self', { qos: 1 });
      await other.c.publishAsync('nl/t', 'from other', { qos: 1 });
      await waitFor(() => self.msgs.length >= 1 && other.msgs.length >= 2, 5000, 'messages');
      await fence(other.c, 'nl/t', self.msgs, other.msgs);
      const payloads = (msgs: Received[]) => msgs.filter((m) => !isFence(m)).map((m) => m.payload.toString());
      assert.deepEqual(payloads(self.msgs), ['from other']);
      assert.deepEqual(payloads(other.msgs), ['from self', 'from other'], 'No Local is per subscription');
    });

    test('[MQTT-3.3.1-12] [MQTT-3.3.1-13] Retain As Published: RETAIN is kept with 1, cleared with 0', T, async (t) => {
      const h = await harness(t);
      const rap = await h.open({ protocolVersion: 5 });
      const plain = await h.open({ protocolVersion: 5 });
      const pub = await h.open({ protocolVersion: 5 });
      await rap.c.subscribeAsync('rap/t', { qos: 1, rap: true });
      await plain.c.subscribeAsync('rap/t', { qos: 1, rap: false });
      await pub.c.publishAsync('rap/t', 'retained', { qos: 1, retain: true });
      await pub.c.publishAsync('rap/t', 'not retained', { qos: 1, retain: false });
      await waitFor(() => rap.msgs.length === 2 && plain.msgs.length === 2, 5000, 'two messages each');
      assert.deepEqual(
        rap.msgs.map((m) => [m.payload.toString(), m.packet.retain]),
        [
          ['retained', true],
          ['not retained', false],
        ],
      );
      assert.deepEqual(
        plain.msgs.map((m) => [m.payload.toString(), m.packet.retain]),
        [
          ['retained', false],
          ['not retained', false],
        ],
      );
    });

    test(
      '[MQTT-3.3.4-3] a Subscription Identifier is sent with each matching message; none without one',
      T,
      async (t) => {
        const h = await harness(t);
        const withId = await h.open({ protocolVersion: 5 });
        const without = await h.open({ protocolVersion: 5 });
        const pub = await h.open({ protocolVersion: 5 });
        await withId.c.subscribeAsync('sid/+', { qos: 1, properties: { subscriptionIdentifier: 268435455 } });
        await without.c.subscribeAsync('sid/+', { qos: 1 });
        await pub.c.publishAsync('sid/x', 'x', { qos: 1 });
        await waitFor(() => withId.msgs.length === 1 && without.msgs.length === 1, 5000, 'the message');
        assert.deepEqual(subIds(withId.msgs[0]!), [268435455]);
        assert.deepEqual(subIds(without.msgs[0]!), []);
      },
    );
  });

  describe('UNSUBSCRIBE', () => {
    for (const v of VERSIONS) {
      test(`[MQTT-3.10.4-1] ${name(v)}: only the named subscription of this client is removed`, T, async (t) => {
        const h = await harness(t);
        const a = await h.open({ protocolVersion: v });
        const b = await h.open({ protocolVersion: v });
        const pub = await h.open({ protocolVersion: v });
        await a.c.subscribeAsync('uo/+', { qos: 2 });
        await a.c.subscribeAsync('uo/#', { qos: 1 });
        await b.c.subscribeAsync('uo/+', { qos: 2 });
        await a.c.unsubscribeAsync('uo/+');
        await pub.c.publishAsync('uo/x', 'x', { qos: 2 });
        await fence(pub.c, 'uo/fence', a.msgs, b.msgs);
        const got = (msgs: Received[]) => msgs.filter((m) => !isFence(m)).map((m) => [m.topic, m.packet.qos]);
        assert.deepEqual(got(a.msgs), [['uo/x', 1]], 'uo/# is left, at its QoS');
        assert.deepEqual(got(b.msgs), [['uo/x', 2]], 'the other client keeps its uo/+');
      });
    }

    for (const v of VERSIONS) {
      test(`[MQTT-3.10.4-2] ${name(v)}: after UNSUBACK no more messages arrive for the filter`, T, async (t) => {
        const h = await harness(t);
        const sub = await h.open({ protocolVersion: v });
        const pub = await h.open({ protocolVersion: v });
        await sub.c.subscribeAsync(['un/+', 'fence'], { qos: 1 });
        await pub.c.publishAsync('un/a', 'before', { qos: 1 });
        await waitFor(() => sub.msgs.length === 1, 5000, 'the first message');
        await sub.c.unsubscribeAsync('un/+');
        await pub.c.publishAsync('un/a', 'after', { qos: 1 });
        await fence(pub.c, 'fence', sub.msgs);
        assert.deepEqual(
          sub.msgs.filter((m) => !isFence(m)).map((m) => m.payload.toString()),
          ['before'],
        );
      });
    }

    test(
      '[MQTT-3.11.3-1] MQTT 5.0: UNSUBACK has 0x00 for a subscribed filter and 0x11 for an unknown one',
      T,
      async (t) => {
        const h = await harness(t);
        const { c } = await h.open({ protocolVersion: 5 });
        await c.subscribeAsync('known/t', { qos: 1 });
        const ack = (await c.unsubscribeAsync(['known/t', 'unknown/t'])) as UnsubackPacket | undefined;
        assert.deepEqual(ack?.granted, [0x00, 0x11]);
        const again = (await c.unsubscribeAsync('known/t')) as UnsubackPacket | undefined;
        assert.deepEqual(again?.granted, [0x11], 'gone after the first UNSUBSCRIBE');
      },
    );

    test('[MQTT-3.10.4-5] MQTT 3.1.1: an UNSUBSCRIBE of an unknown filter still gets an UNSUBACK', T, async (t) => {
      const h = await harness(t);
      const { c } = await h.open({ protocolVersion: 4 });
      const ack = (await c.unsubscribeAsync('never/subscribed')) as UnsubackPacket | undefined;
      assert.equal(ack?.cmd, 'unsuback');
    });
  });

  describe('denied subscriptions (authorizeSubscribe hook)', () => {
    const hooks = {
      authorizeSubscribe: async (_client: unknown, sub: { topic: string; qos: 0 | 1 | 2 }) =>
        sub.topic.startsWith('secret/') ? null : sub,
    };
    for (const v of VERSIONS) {
      const code = v === 4 ? 0x80 : 0x87;
      test(
        `[MQTT-3.9.3-1] ${name(v)}: a denied filter gets 0x${code.toString(16)} in SUBACK, in order with the others`,
        T,
        async (t) => {
          const h = await harness(t, { hooks });
          const sub = await h.open({ protocolVersion: v });
          const pub = await h.open({ protocolVersion: v });
          assert.deepEqual(await subackCodes(sub.c, 'secret/t', { qos: 1 }), [code]);
          assert.deepEqual(await subackCodes(sub.c, ['open/t', 'secret/x', 'open/u'], { qos: 1 }), [1, code, 1]);
          await pub.c.publishAsync('secret/x', 'hidden', { qos: 1 });
          await pub.c.publishAsync('open/t', 'visible', { qos: 1 });
          await fence(pub.c, 'open/u', sub.msgs);
          assert.deepEqual(
            sub.msgs.filter((m) => !isFence(m)).map((m) => m.payload.toString()),
            ['visible'],
          );
        },
      );
    }
  });
  describe('features turned off in the config (MQTT 5.0)', () => {
    /** The refusal: a SUBACK reason code, or the reason code of a DISCONNECT (both are allowed). */
    function refusal(c: MqttClient, filter: string, opts: IClientSubscribeOptions): Promise<number | undefined> {
      return new Promise((resolve) => {
        c.once('disconnect', (p) => resolve(p.reasonCode));
        c.subscribe(filter, opts, (_err, _granted, packet?: SubackPacket) => {
          if (packet) resolve((packet.granted as number[])[0]);
        });
      });
    }
    const off = {
      wildcardSubscriptionAvailable: false,
      sharedSubscriptionAvailable: false,
      subscriptionIdentifierAvailable: false,
    };

    for (const [what, filter, opts, code] of [
      ['a wildcard filter', 'wc/+', { qos: 1 }, 0xa2],
      ['a # filter', 'wc/#', { qos: 1 }, 0xa2],
      ['a shared subscription', '$share/g/sh/t', { qos: 1 }, 0x9e],
      ['a Subscription Identifier', 'si/t', { qos: 1, properties: { subscriptionIdentifier: 5 } }, 0xa1],
    ] as const) {
      test(`(§3.2.2.3) ${what} is refused with 0x${code.toString(16)} when not available`, T, async (t) => {
        const h = await harness(t, { mqtt: off });
        const { c } = await h.open({ protocolVersion: 5 });
        assert.equal(await refusal(c, filter, opts), code);
      });
    }

    test('(§3.2.2.3) a plain filter is still granted with those features off', T, async (t) => {
      const h = await harness(t, { mqtt: off });
      const { c } = await h.open({ protocolVersion: 5 });
      assert.deepEqual(await subackCodes(c, 'plain/t', { qos: 1 }), [1]);
    });
  });
});
