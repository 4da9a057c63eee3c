/**
 * CONNECT / CONNACK with mqtt.js and a raw socket: protocol levels 3, 4 and 5, client
 * identifiers, session takeover, keep-alive, CONNACK properties and authentication.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import { harness } from '../helpers/harness.js';
import { versionName as name, type Received, refusal, sleep, VERSIONS, waitFor } from '../helpers/mqtt.js';
import { connackProperties, connectPacket } from '../helpers/raw-mqtt.js';

const T = { timeout: 20_000 };

/** A QoS 1 round trip through the broker on one client: the connection is usable. */
async function roundTrip(c: MqttClient, msgs: Received[], topic: string): Promise<void> {
  await c.subscribeAsync(topic, { qos: 1 });
  await c.publishAsync(topic, 'ping', { qos: 1 });
  await waitFor(() => msgs.some((m) => m.topic === topic), 5000, `message on ${topic}`);
  assert.equal(msgs.find((m) => m.topic === topic)?.payload.toString(), 'ping');
}

describe('MQTT CONNECT', () => {
  describe('protocol levels', () => {
    test('protocol level 3 (MQIsdp, MQTT 3.1) is accepted and usable', T, async (t) => {
      const h = await harness(t);
      const { c, msgs, connack } = await h.open({ protocolVersion: 3, protocolId: 'MQIsdp', clientId: 'lvl3' });
      assert.equal(connack.returnCode, 0);
      await roundTrip(c, msgs, 'levels/3');
    });

    for (const v of VERSIONS) {
      test(`protocol level ${v} (${name(v)}) is accepted and usable`, T, async (t) => {
        const h = await harness(t);
        const { c, msgs, connack } = await h.open({ protocolVersion: v, clientId: `lvl${v}` });
        assert.equal(v === 5 ? connack.reasonCode : connack.returnCode, 0);
        assert.equal(connack.sessionPresent, false);
        await roundTrip(c, msgs, `levels/${v}`);
      });
    }

    test(
      '[MQTT-3.1.2-2] an unsupported protocol level is refused (0x01, or 0x84 in a 5.0 CONNACK) and closed',
      T,
      async (t) => {
        const h = await harness(t);
        const r = await h.raw();
        const connect = connectPacket({ v: 4, clientId: 'lvl6', clean: true, keepAlive: 30 });
        connect[2 + 6] = 6; // the protocol level byte, after the fixed header and "MQTT"
        r.send(connect);
        const connack = await r.next(2);
        assert.ok(
          (connack.body.length === 2 && connack.body[1] === 0x01) || connack.body[1] === 0x84,
          `CONNACK code ${connack.body[1]}`,
        );
        await r.waitClosed();
      },
    );

    test('protocol level 3 over WebSocket (subprotocol mqttv3.1) is accepted and usable', T, async (t) => {
      const h = await harness(t);
      const { c, msgs } = await h.open({ protocolVersion: 3, protocolId: 'MQIsdp', clientId: 'lvl3ws' }, h.b.wsUrl);
      await roundTrip(c, msgs, 'levels/3ws');
    });

    test('a connection that never sends CONNECT is closed after mqtt.connectTimeout', T, async (t) => {
      const h = await harness(t, { mqtt: { connectTimeout: 300 } });
      const r = await h.raw();
      await r.waitClosed(5000);
      assert.deepEqual(r.packets, [], 'nothing is sent to a client that never connected');
    });
  });

  describe('client identifiers', () => {
    test('[MQTT-3.1.3-6] MQTT 3.1.1: a zero-length client id with clean session is accepted', T, async (t) => {
      const h = await harness(t);
      const { c, msgs, connack } = await h.open({ protocolVersion: 4, clientId: '', clean: true });
      assert.equal(connack.returnCode, 0);
      assert.equal(connack.sessionPresent, false);
      await roundTrip(c, msgs, 'ids/empty4');
    });

    test(
      '[MQTT-3.1.3-8] MQTT 3.1.1: a zero-length client id without clean session is refused with 0x02',
      T,
      async (t) => {
        const h = await harness(t);
        const r = await h.raw();
        r.send(connectPacket({ v: 4, clientId: '', clean: false, keepAlive: 30 }));
        const connack = await r.next(2);
        assert.deepEqual([...connack.body], [0x00, 0x02], 'CONNACK: session present 0, return code 2');
        // [MQTT-3.2.2-5]: a refusing CONNACK is followed by closing the connection.
        await r.waitClosed();
      },
    );

    test(
      '[MQTT-3.1.3-6] [MQTT-3.1.3-7] MQTT 5.0: a zero-length client id gets an Assigned Client Identifier',
      T,
      async (t) => {
        const h = await harness(t);
        const a = await h.open({ protocolVersion: 5, clientId: '', clean: true });
        const b = await h.open({ protocolVersion: 5, clientId: '', clean: true });
        const idA = a.connack.properties?.assignedClientIdentifier;
        const idB = b.connack.properties?.assignedClientIdentifier;
        assert.equal(a.connack.reasonCode, 0);
        assert.ok(typeof idA === 'string' && idA.length > 0, 'CONNACK carries an Assigned Client Identifier');
        assert.ok(typeof idB === 'string' && idB.length > 0);
        assert.notEqual(idA, idB, 'each connection gets its own identifier');
        await roundTrip(a.c, a.msgs, 'ids/empty5');
      },
    );

    test(
      '[MQTT-3.1.3-7] MQTT 5.0: a zero-length client id with Clean Start 0 is accepted with an Assigned Client Identifier',
      T,
      async (t) => {
        const h = await harness(t);
        const r = await h.raw();
        r.send(connectPacket({ v: 5, clientId: '', clean: false, keepAlive: 30 }));
        const connack = await r.next(2);
        assert.equal(connack.body[0], 0, 'session present 0');
        assert.equal(connack.body[1], 0, 'reason code 0x00');
        const id = connackProperties(connack.body).get(0x12);
        assert.ok(typeof id === 'string' && id.length > 0, 'Assigned Client Identifier (0x12) present');
        assert.equal(r.closed, false);
      },
    );
  });

  describe('client identifier length', () => {
    for (const v of VERSIONS) {
      test(
        `${name(v)}: a client id longer than mqtt.maxClientIdLength is refused with ${v === 5 ? '0x85' : 'return code 2'}`,
        T,
        async (t) => {
          const h = await harness(t, { mqtt: { maxClientIdLength: 23 } });
          await h.open({ protocolVersion: v, clientId: 'x'.repeat(23) });
          const code = await refusal(h.open({ protocolVersion: v, clientId: 'y'.repeat(24) }));
          assert.equal(code, v === 5 ? 0x85 : 2);
        },
      );
    }
  });

  describe('session takeover', () => {
    test('[MQTT-3.1.4-2] MQTT 3.1.1: a second connection with the same client id closes the first', T, async (t) => {
      const h = await harness(t);
      const first = await h.open({ protocolVersion: 4, clientId: 'dup-4' });
      let closed = false;
      first.c.on('close', () => {
        closed = true;
      });
      const second = await h.open({ protocolVersion: 4, clientId: 'dup-4' });
      await waitFor(() => closed, 5000, 'the first connection to be closed');
      await roundTrip(second.c, second.msgs, 'takeover/4');
    });

    test('[MQTT-3.1.4-3] MQTT 5.0: the old connection of a taken-over client id gets DISCONNECT 0x8E', T, async (t) => {
      const h = await harness(t);
      const first = await h.open({ protocolVersion: 5, clientId: 'dup-5' });
      const reasons: number[] = [];
      let closed = false;
      first.c.on('disconnect', (p) => reasons.push(p.reasonCode ?? 0));
      first.c.on('close', () => {
        closed = true;
      });
      const second = await h.open({ protocolVersion: 5, clientId: 'dup-5' });
      await waitFor(() => closed, 5000, 'the first connection to be closed');
      assert.deepEqual(reasons, [0x8e], 'DISCONNECT with Session taken over');
      await roundTrip(second.c, second.msgs, 'takeover/5');
    });

    test('[MQTT-3.2.2-2] a taken-over 3.1.1 session keeps its subscriptions when clean session is 0', T, async (t) => {
      const h = await harness(t);
      const first = await h.open({ protocolVersion: 4, clientId: 'dup-keep', clean: false });
      await first.c.subscribeAsync('takeover/keep', { qos: 1 });
      const second = await h.open({ protocolVersion: 4, clientId: 'dup-keep', clean: false });
      assert.equal(second.connack.sessionPresent, true);
      const pub = await h.open({ protocolVersion: 4 });
      await pub.c.publishAsync('takeover/keep', 'kept', { qos: 1 });
      await waitFor(() => second.msgs.length === 1, 5000, 'the message on the new connection');
      assert.equal(second.msgs[0]!.payload.toString(), 'kept');
    });
  });

  describe('keep-alive', () => {
    for (const v of VERSIONS) {
      test(
        `[MQTT-${v === 4 ? '3.1.2-24' : '3.1.2-22'}] ${name(v)}: a client silent for 1.5 × its keep-alive is disconnected`,
        T,
        async (t) => {
          const h = await harness(t);
          const r = await h.raw();
          r.send(connectPacket({ v, clientId: `silent-${v}`, clean: true, keepAlive: 1 }));
          const connack = await r.next(2);
          assert.equal(connack.body[1], 0, 'accepted');
          await r.waitClosed(5000);
          // 5.0 may say why first: DISCONNECT 0x8D Keep Alive timeout; nothing else is allowed.
          for (const p of r.packets) {
            assert.equal(p.type, 14, 'only a DISCONNECT may precede the close');
            assert.equal(v, 5, '3.1.1 servers send no DISCONNECT');
            assert.equal(p.body[0], 0x8d);
          }
        },
      );
    }

    test('a client that sends PINGREQ within its keep-alive stays connected', T, async (t) => {
      const h = await harness(t);
      const { c, msgs } = await h.open({ protocolVersion: 4, keepalive: 1 });
      let closed = false;
      c.on('close', () => {
        closed = true;
      });
      await sleep(2000);
      assert.equal(closed, false);
      await roundTrip(c, msgs, 'keepalive/alive');
    });

    test('(§3.2.2.3.14) mqtt.maxKeepAlive 10: a 5.0 client asking for 60 s gets Server Keep Alive 10', T, async (t) => {
      const h = await harness(t, { mqtt: { maxKeepAlive: 10 } });
      const { connack } = await h.open({ protocolVersion: 5, keepalive: 60 });
      assert.equal(connack.reasonCode, 0);
      assert.equal(connack.properties?.serverKeepAlive, 10);
    });

    test(
      '(§3.2.2.3.14) mqtt.maxKeepAlive 10: a 5.0 client asking for 0 (none) gets Server Keep Alive 10',
      T,
      async (t) => {
        const h = await harness(t, { mqtt: { maxKeepAlive: 10 } });
        const { connack } = await h.open({ protocolVersion: 5, keepalive: 0 });
        assert.equal(connack.properties?.serverKeepAlive, 10);
      },
    );

    test(
      'mqtt.maxKeepAlive 1: the Server Keep Alive, not the asked 60 s, is enforced on a 5.0 client',
      T,
      async (t) => {
        const h = await harness(t, { mqtt: { maxKeepAlive: 1 } });
        const r = await h.raw();
        r.send(connectPacket({ v: 5, clientId: 'capped', clean: true, keepAlive: 60 }));
        const connack = await r.next(2);
        assert.equal(connack.body[1], 0);
        assert.equal(connackProperties(connack.body).get(0x13), 1, 'Server Keep Alive 1');
        await r.waitClosed(5000);
      },
    );

    test('mqtt.maxKeepAlive 10: a 5.0 client asking for 5 s keeps it', T, async (t) => {
      const h = await harness(t, { mqtt: { maxKeepAlive: 10 } });
      const { connack } = await h.open({ protocolVersion: 5, keepalive: 5 });
      const ska = connack.properties?.serverKeepAlive;
      assert.ok(ska === undefined || ska === 5, `Server Keep Alive absent or 5, got ${ska}`);
    });

    test('mqtt.maxKeepAlive 10: a 3.1.1 client asking for 60 s is accepted', T, async (t) => {
      const h = await harness(t, { mqtt: { maxKeepAlive: 10 } });
      const { c, msgs, connack } = await h.open({ protocolVersion: 4, keepalive: 60 });
      assert.equal(connack.returnCode, 0);
      await roundTrip(c, msgs, 'keepalive/v4cap');
    });
  });

  describe('CONNACK properties (MQTT 5.0)', () => {
    test('the defaults: Receive Maximum 1024, Topic Alias Maximum 1024, everything else available', T, async (t) => {
      const h = await harness(t);
      const p = (await h.open({ protocolVersion: 5 })).connack.properties ?? {};
      assert.equal(p.topicAliasMaximum, 1024);
      assert.equal(p.receiveMaximum, 1024);
      assert.equal(p.maximumQoS ?? 2, 2);
      assert.equal(p.retainAvailable ?? true, true);
      assert.equal(p.wildcardSubscriptionAvailable ?? true, true);
      assert.equal(p.subscriptionIdentifiersAvailable ?? true, true);
      assert.equal(p.sharedSubscriptionAvailable ?? true, true);
      assert.equal(p.maximumPacketSize ?? 268435455, 268435455);
    });

    test('[MQTT-3.2.2-9] configured limits are announced', T, async (t) => {
      const h = await harness(t, {
        mqtt: {
          receiveMaximum: 50,
          maxPacketSize: 10000,
          topicAliasMaximum: 7,
          maxQos: 1,
          retainAvailable: false,
          wildcardSubscriptionAvailable: false,
          subscriptionIdentifierAvailable: false,
          sharedSubscriptionAvailable: false,
        },
      });
      const p = (await h.open({ protocolVersion: 5 })).connack.properties ?? {};
      assert.equal(p.receiveMaximum, 50);
      assert.equal(p.maximumPacketSize, 10000);
      assert.equal(p.topicAliasMaximum, 7);
      assert.equal(p.maximumQoS, 1);
      assert.equal(p.retainAvailable, false);
      assert.equal(p.wildcardSubscriptionAvailable, false);
      assert.equal(p.subscriptionIdentifiersAvailable, false);
      assert.equal(p.sharedSubscriptionAvailable, false);
    });

    test('mqtt.maxQos 1: a QoS 2 subscription is granted QoS 1', T, async (t) => {
      const h = await harness(t, { mqtt: { maxQos: 1 } });
      for (const v of VERSIONS) {
        const { c } = await h.open({ protocolVersion: v });
        const granted = await c.subscribeAsync('maxqos/t', { qos: 2 });
        assert.equal(granted[0]?.qos, 1, name(v));
      }
    });
  });

  describe('authentication', () => {
    const users = { auth: { users: [{ name: 'user', password: 'password' }] } };

    for (const v of [3, 4, 5] as const) {
      const proto: IClientOptions = v === 3 ? { protocolVersion: 3, protocolId: 'MQIsdp' } : { protocolVersion: v };

      test(`${name(v)}: a config user with the right password is accepted`, T, async (t) => {
        const h = await harness(t, users);
        const { c, msgs } = await h.open({ ...proto, username: 'user', password: 'password' });
        await roundTrip(c, msgs, `auth/ok${v}`);
      });

      test(`${name(v)}: a wrong password is refused with ${v === 5 ? '0x86' : 'return code 4'}`, T, async (t) => {
        const h = await harness(t, users);
        const code = await refusal(h.open({ ...proto, username: 'user', password: 'wrong' }));
        assert.equal(code, v === 5 ? 0x86 : 4);
      });
    }

    for (const v of VERSIONS) {
      test(`${name(v)}: an unknown user is refused with ${v === 5 ? '0x86' : 'return code 4'}`, T, async (t) => {
        const h = await harness(t, users);
        const code = await refusal(h.open({ protocolVersion: v, username: 'nobody', password: 'password' }));
        assert.equal(code, v === 5 ? 0x86 : 4);
      });

      test(`${name(v)}: anonymous clients are accepted from loopback by default`, T, async (t) => {
        const h = await harness(t);
        const { c, msgs } = await h.open({ protocolVersion: v });
        await roundTrip(c, msgs, `auth/anon${v}`);
      });

      test(`${name(v)}: guest/guest is accepted from loopback by default`, T, async (t) => {
        const h = await harness(t);
        const { c, msgs } = await h.open({ protocolVersion: v, username: 'guest', password: 'guest' });
        await roundTrip(c, msgs, `auth/guest${v}`);
      });

      test(
        `${name(v)}: auth.allowAnonymous false refuses anonymous clients with ${v === 5 ? '0x87' : 'return code 5'}`,
        T,
        async (t) => {
          const h = await harness(t, {
            auth: { allowAnonymous: false, users: [{ name: 'user', password: 'password' }] },
          });
          const code = await refusal(h.open({ protocolVersion: v }));
          assert.equal(code, v === 5 ? 0x87 : 5);
          const { c, msgs } = await h.open({ protocolVersion: v, username: 'user', password: 'password' });
          await roundTrip(c, msgs, `auth/named${v}`);
        },
      );
    }

    test('[MQTT-4.12.0-1] MQTT 5.0: a CONNECT naming an authentication method is refused with 0x8C', T, async (t) => {
      const h = await harness(t);
      const code = await refusal(h.open({ protocolVersion: 5, properties: { authenticationMethod: 'SCRAM-SHA-256' } }));
      assert.equal(code, 0x8c);
    });
  });
});
