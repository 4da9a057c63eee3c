import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { startBroker } from '../helpers/broker.js';
import { collect, connect, end, sleep, waitFor } from '../helpers/mqtt.js';

// The conformance suites configure an ACL that denies `test/nosubscribe` and expect 0x80 in a
// 3.1.1 SUBACK and 0x87 in a 5.0 SUBACK ([MQTT-3.9.3-?] failure code; 5.0 §3.9.3 Not authorized).
const aclFile = join(tmpdir(), `braid-acl-${process.pid}.acl`);
writeFileSync(aclFile, 'topic deny test/nosubscribe\ntopic readwrite test/#\ntopic read ro/#\n');

describe('auth.aclFile', () => {
  for (const protocolVersion of [4, 5] as const) {
    test(`v${protocolVersion}: a denied subscription gets ${protocolVersion === 5 ? '0x87' : '0x80'}, others are granted`, async (t) => {
      const tb = await startBroker({ auth: { aclFile } });
      t.after(() => tb.stop());
      const c = await connect(tb.url, { protocolVersion });
      t.after(() => end(c));
      let codes: number[] | undefined;
      c.on('packetreceive', (p) => {
        if (p.cmd === 'suback') codes = p.granted as number[];
      });
      c.subscribe({ 'test/nosubscribe': { qos: 1 }, 'test/ok': { qos: 1 } }, () => {});
      await waitFor(() => codes !== undefined, 5000, 'SUBACK');
      assert.deepEqual(codes, [protocolVersion === 5 ? 0x87 : 0x80, 1]);
      assert.ok(tb.logs.some((l) => l.includes('subscription denied')));
    });
  }

  test('v5: a denied publish gets PUBACK 0x87 and is not delivered; v3.1.1 is acked and dropped', async (t) => {
    const tb = await startBroker({ auth: { aclFile } });
    t.after(() => tb.stop());
    const sub = await connect(tb.url, { protocolVersion: 5 });
    const got = collect(sub);
    await sub.subscribeAsync('ro/#', { qos: 1 });
    const p5 = await connect(tb.url, { protocolVersion: 5 });
    const p4 = await connect(tb.url, { protocolVersion: 4 });
    t.after(() => end(sub, p5, p4));
    const acks: number[] = [];
    p5.on('packetreceive', (p) => {
      if (p.cmd === 'puback') acks.push(p.reasonCode ?? 0);
    });
    await p5.publishAsync('ro/x', 'denied', { qos: 1 }).catch(() => {});
    await waitFor(() => acks.length === 1, 5000, 'PUBACK');
    assert.equal(acks[0], 0x87);
    await p4.publishAsync('ro/y', 'denied too', { qos: 1 });
    await sub.publishAsync('test/ok', 'fine', { qos: 1 });
    await sleep(200);
    assert.deepEqual(got, []);
  });
});
