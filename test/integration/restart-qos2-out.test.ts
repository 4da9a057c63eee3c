/**
 * Outbound QoS 2 across a broker restart, on raw MQTT 3.1.1 packets: a PUBLISH in flight comes
 * back with DUP and its packet id, and a PUBREL owed comes back as PUBREL, not as the message
 * again [MQTT-4.4.0-1, MQTT-4.3.3]. Either way the receiver sees the message exactly once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { ackPacket, parsePublish, persistentConnect, Raw, subscribePacket } from '../helpers/raw-mqtt.js';

const PUBLISH = 3;
const PUBREL = 6;
const PINGRESP = 13;

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'braid-qos2-'));
  dirs.push(d);
  return d;
}

const persistent = (dir: string) => startBroker({ storage: { persistence: true, dataDir: dir } });

/** A persistent 3.1.1 session subscribed to `q2/#` at QoS 2, then the message published to it. */
async function subscribeAndPublish(tb: TestBroker, clientId: string, payloads = ['once']): Promise<Raw> {
  const sub = await Raw.open(tb.port);
  await sub.handshake(persistentConnect(4, clientId));
  sub.send(subscribePacket(4, 1, 'q2/#', 2));
  await sub.next(9); // SUBACK
  const pub = await mqtt.connectAsync(tb.url, { reconnectPeriod: 0 });
  for (const p of payloads) await pub.publishAsync('q2/a', p, { qos: 2 });
  await pub.endAsync();
  return sub;
}

describe('outbound QoS 2 across a restart [MQTT-4.4.0-1]', () => {
  it('a PUBLISH not yet acknowledged comes back with DUP and the same packet id', async () => {
    const dir = dataDir();
    let tb = await persistent(dir);
    const first = await subscribeAndPublish(tb, 'q2-publish', ['warm-up', 'once']);
    // The first message completes, so the one left in flight does not have the first id a
    // fresh session would allocate.
    const warm = parsePublish(await first.next(PUBLISH), 4);
    first.send(ackPacket(5, warm.id!));
    await first.next(PUBREL);
    first.send(ackPacket(7, warm.id!));
    // A ping answered means the PUBCOMP before it was handled: the warm-up exchange is over.
    first.send(Buffer.from([0xc0, 0]));
    await first.next(PINGRESP);
    const sent = parsePublish(await first.next(PUBLISH), 4);
    assert.equal(sent.payload, 'once');
    assert.notEqual(sent.id, 1);
    first.close(); // no PUBREC
    await tb.stop();
    tb = await persistent(dir);
    try {
      const again = await Raw.open(tb.port);
      await again.handshake(persistentConnect(4, 'q2-publish'));
      const resent = parsePublish(await again.next(PUBLISH), 4);
      assert.equal(resent.payload, 'once');
      assert.equal(resent.dup, true, 'sent before, so DUP');
      assert.equal(resent.id, sent.id, 'the same packet id, so the receiver knows it');
      again.close();
    } finally {
      await tb.stop();
    }
  });

  it('a PUBREL owed (PUBREC received) comes back as PUBREL, and the message is not sent again', async () => {
    const dir = dataDir();
    let tb = await persistent(dir);
    const first = await subscribeAndPublish(tb, 'q2-pubrel');
    const sent = parsePublish(await first.next(PUBLISH), 4);
    first.send(ackPacket(5, sent.id!)); // PUBREC
    await first.next(PUBREL);
    first.close(); // no PUBCOMP
    await tb.stop();
    tb = await persistent(dir);
    try {
      const again = await Raw.open(tb.port);
      await again.handshake(persistentConnect(4, 'q2-pubrel'));
      const rel = await again.next(PUBREL);
      assert.equal(rel.body.readUInt16BE(0), sent.id);
      again.send(ackPacket(7, sent.id!)); // PUBCOMP
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(again.count(PUBLISH), 0, 'the message is not delivered a second time');
      again.close();
    } finally {
      await tb.stop();
    }
  });
});
