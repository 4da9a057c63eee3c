/**
 * The embedding API as Aedes users know it: `authenticate`, `authorizePublish` and
 * `authorizeSubscribe` hooks (async and callback style), and the broker's events.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MqttClientInfo, PublishInfo, SubscriptionInfo } from '../../src/index.js';
import { harness } from '../helpers/harness.js';
import {
  fence,
  versionName as name,
  payloads,
  publishCode,
  refusal,
  subackCodes,
  VERSIONS,
  waitFor,
} from '../helpers/mqtt.js';

const T = { timeout: 20_000 };

describe('broker hooks', () => {
  describe('authenticate', () => {
    for (const v of VERSIONS) {
      test(
        `${name(v)}: an async authenticate hook decides, and sees the client, user name and password`,
        T,
        async (t) => {
          const seen: Array<{
            id: string;
            version: number;
            username: string | undefined;
            password: string | undefined;
          }> = [];
          const h = await harness(t, {
            hooks: {
              authenticate: async (
                client: MqttClientInfo,
                username: string | undefined,
                password: Buffer | undefined,
              ) => {
                seen.push({ id: client.id, version: client.protocolVersion, username, password: password?.toString() });
                return username === 'alice' && password?.toString() === 'secret';
              },
            },
          });
          const { c, msgs } = await h.open({
            protocolVersion: v,
            clientId: `auth-${v}`,
            username: 'alice',
            password: 'secret',
          });
          await c.subscribeAsync('auth/t', { qos: 1 });
          await c.publishAsync('auth/t', 'in', { qos: 1 });
          await waitFor(() => msgs.length === 1, 5000, 'the message');
          assert.deepEqual(seen[0], { id: `auth-${v}`, version: v, username: 'alice', password: 'secret' });
          const code = await refusal(h.open({ protocolVersion: v, username: 'alice', password: 'guess' }));
          assert.equal(code, v === 5 ? 0x86 : 4);
        },
      );

      test(`${name(v)}: an Aedes callback-style authenticate hook decides`, T, async (t) => {
        const h = await harness(t, {
          hooks: {
            authenticate: (
              _client: MqttClientInfo,
              username: string | undefined,
              password: Buffer | undefined,
              cb: (err: Error | null | undefined, ok?: boolean) => void,
            ) => {
              setImmediate(() => {
                if (username === 'boom') cb(new Error('backend down'));
                else cb(null, username === 'bob' && password?.toString() === 'pw');
              });
            },
          },
        });
        await h.open({ protocolVersion: v, username: 'bob', password: 'pw' });
        assert.equal(
          await refusal(h.open({ protocolVersion: v, username: 'bob', password: 'nope' })),
          v === 5 ? 0x86 : 4,
        );
        const failed = await refusal(h.open({ protocolVersion: v, username: 'boom', password: 'pw' }));
        assert.ok(failed !== undefined && failed !== 0, 'an error in the hook refuses the connection');
      });
    }

    test('MQTT 5.0: the authenticate hook can pick the CONNACK reason code', T, async (t) => {
      const h = await harness(t, { hooks: { authenticate: async () => ({ reasonCode: 0x8a }) } });
      assert.equal(await refusal(h.open({ protocolVersion: 5, username: 'banned', password: 'x' })), 0x8a);
    });
  });

  describe('authorizePublish', () => {
    const asyncHook = {
      authorizePublish: async (_client: MqttClientInfo, packet: PublishInfo) => !packet.topic.startsWith('forbidden/'),
    };
    const callbackHook = {
      authorizePublish: (_client: MqttClientInfo, packet: PublishInfo, cb: (err?: Error | null) => void) => {
        setImmediate(() => cb(packet.topic.startsWith('forbidden/') ? new Error('denied') : null));
      },
    };
    for (const [style, hooks] of [
      ['async', asyncHook],
      ['callback', callbackHook],
    ] as const) {
      test(
        `(§3.4.2.1) MQTT 5.0, ${style} hook: a denied publish gets PUBACK / PUBREC 0x87 and is not delivered`,
        T,
        async (t) => {
          const h = await harness(t, { hooks });
          const sub = await h.open({ protocolVersion: 5 });
          const pub = await h.open({ protocolVersion: 5 });
          await sub.c.subscribeAsync(['forbidden/#', 'allowed/#'], { qos: 2 });
          assert.equal(await publishCode(pub.c, 'forbidden/t', 'q1', { qos: 1 }), 0x87);
          assert.equal(await publishCode(pub.c, 'forbidden/t', 'q2', { qos: 2 }), 0x87);
          await pub.c.publishAsync('forbidden/t', 'q0', { qos: 0 });
          assert.equal(await publishCode(pub.c, 'allowed/t', 'ok', { qos: 1 }), 0);
          await fence(pub.c, 'allowed/t', sub.msgs);
          assert.deepEqual(payloads(sub.msgs), ['ok']);
          assert.equal(pub.c.connected, true);
        },
      );
    }

    test('MQTT 3.1.1: a denied publish is acknowledged but not delivered, nor retained', T, async (t) => {
      const h = await harness(t, { hooks: asyncHook });
      const sub = await h.open({ protocolVersion: 4 });
      const pub = await h.open({ protocolVersion: 4 });
      await sub.c.subscribeAsync(['forbidden/#', 'allowed/#'], { qos: 1 });
      await pub.c.publishAsync('forbidden/t', 'no', { qos: 1, retain: true });
      await fence(pub.c, 'allowed/t', sub.msgs);
      assert.deepEqual(payloads(sub.msgs), []);
      const late = await h.open({ protocolVersion: 4 });
      await late.c.subscribeAsync(['forbidden/t', 'allowed/t'], { qos: 1 });
      await fence(pub.c, 'allowed/t', late.msgs);
      assert.deepEqual(payloads(late.msgs), [], 'nothing was retained');
    });

    test('the hook sees topic, payload, QoS and retain', T, async (t) => {
      const seen: Array<[string, string, number, boolean, string]> = [];
      const h = await harness(t, {
        hooks: {
          authorizePublish: async (client: MqttClientInfo, p: PublishInfo) => {
            seen.push([p.topic, p.payload.toString(), p.qos, p.retain, client.id]);
            return true;
          },
        },
      });
      const pub = await h.open({ protocolVersion: 5, clientId: 'seer' });
      await pub.c.publishAsync('see/t', 'payload', { qos: 2, retain: true });
      assert.deepEqual(seen, [['see/t', 'payload', 2, true, 'seer']]);
    });
  });

  describe('authorizeSubscribe', () => {
    for (const v of VERSIONS) {
      const denied = v === 4 ? 0x80 : 0x87;
      test(
        `${name(v)}: a callback-style hook denies with 0x${denied.toString(16)} and can lower the QoS`,
        T,
        async (t) => {
          const h = await harness(t, {
            hooks: {
              authorizeSubscribe: (
                _client: MqttClientInfo,
                sub: SubscriptionInfo,
                cb: (err: Error | null | undefined, sub?: SubscriptionInfo | null) => void,
              ) => {
                setImmediate(() => {
                  if (sub.topic.startsWith('deny/')) cb(null, null);
                  else if (sub.topic.startsWith('error/')) cb(new Error('backend down'));
                  else if (sub.topic.startsWith('low/')) cb(null, { topic: sub.topic, qos: 0 });
                  else cb(null, sub);
                });
              },
            },
          });
          const sub = await h.open({ protocolVersion: v });
          const pub = await h.open({ protocolVersion: v });
          assert.deepEqual(await subackCodes(sub.c, 'deny/t', { qos: 1 }), [denied]);
          assert.deepEqual(await subackCodes(sub.c, 'error/t', { qos: 1 }), [denied], 'an error in the hook denies');
          assert.deepEqual(await subackCodes(sub.c, 'low/t', { qos: 2 }), [0]);
          assert.deepEqual(await subackCodes(sub.c, 'ok/t', { qos: 2 }), [2]);
          await pub.c.publishAsync('deny/t', 'd', { qos: 1 });
          await pub.c.publishAsync('low/t', 'l', { qos: 2 });
          await fence(pub.c, 'ok/t', sub.msgs);
          assert.deepEqual(
            sub.msgs.filter((m) => !m.payload.toString().startsWith('fence-')).map((m) => [m.topic, m.packet.qos]),
            [['low/t', 0]],
          );
        },
      );
    }

    test('an async hook that throws denies the subscription', T, async (t) => {
      const h = await harness(t, {
        hooks: {
          authorizeSubscribe: async (_client: MqttClientInfo, sub: SubscriptionInfo) => {
            if (sub.topic === 'throw/t') throw new Error('nope');
            return sub;
          },
        },
      });
      const { c } = await h.open({ protocolVersion: 5 });
      assert.deepEqual(await subackCodes(c, 'throw/t', { qos: 1 }), [0x87]);
      assert.deepEqual(await subackCodes(c, 'fine/t', { qos: 1 }), [1]);
    });
  });

  describe('events', () => {
    test(
      'client, clientReady, subscribe, publish, unsubscribe and clientDisconnect fire with their data',
      T,
      async (t) => {
        const h = await harness(t);
        const events: Array<[string, ...unknown[]]> = [];
        const broker = h.b.broker;
        broker.on('client', (c: MqttClientInfo) => events.push(['client', c.id]));
        broker.on('clientReady', (c: MqttClientInfo) => events.push(['clientReady', c.id]));
        broker.on('subscribe', (subs: SubscriptionInfo[], c: MqttClientInfo) =>
          events.push(['subscribe', subs.map((s) => [s.topic, s.qos]), c.id]),
        );
        broker.on('unsubscribe', (filters: string[], c: MqttClientInfo) => events.push(['unsubscribe', filters, c.id]));
        broker.on('publish', (p: PublishInfo, c: MqttClientInfo | undefined) =>
          events.push(['publish', p.topic, p.payload.toString(), p.qos, p.retain, c?.id]),
        );
        broker.on('clientDisconnect', (c: MqttClientInfo) => events.push(['clientDisconnect', c.id]));

        const { c } = await h.open({ protocolVersion: 5, clientId: 'evented' });
        await c.subscribeAsync({ 'ev/#': { qos: 1 }, 'ev/x': { qos: 2 } });
        await c.publishAsync('ev/t', 'hello', { qos: 1, retain: false });
        await c.unsubscribeAsync('ev/x');
        await c.endAsync(false);
        await waitFor(() => events.some((e) => e[0] === 'clientDisconnect'), 5000, 'clientDisconnect');
        const of = (kind: string) => events.filter((e) => e[0] === kind);
        assert.deepEqual(of('client'), [['client', 'evented']]);
        assert.deepEqual(of('clientReady'), [['clientReady', 'evented']]);
        assert.deepEqual(of('subscribe'), [
          [
            'subscribe',
            [
              ['ev/#', 1],
              ['ev/x', 2],
            ],
            'evented',
          ],
        ]);
        assert.deepEqual(of('publish'), [['publish', 'ev/t', 'hello', 1, false, 'evented']]);
        assert.deepEqual(of('unsubscribe'), [['unsubscribe', ['ev/x'], 'evented']]);
        assert.deepEqual(of('clientDisconnect'), [['clientDisconnect', 'evented']]);
        const order = events.map((e) => e[0]);
        assert.ok(order.indexOf('client') < order.indexOf('subscribe'));
        assert.ok(order.indexOf('publish') < order.indexOf('clientDisconnect'));
      },
    );

    test('clientDisconnect fires for a dropped connection too', T, async (t) => {
      const h = await harness(t);
      const gone: string[] = [];
      h.b.broker.on('clientDisconnect', (c: MqttClientInfo) => gone.push(c.id));
      const { c } = await h.open({ protocolVersion: 4, clientId: 'dropped' });
      c.stream.destroy();
      await waitFor(() => gone.includes('dropped'), 5000, 'clientDisconnect');
    });
  });
});
