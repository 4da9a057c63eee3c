import assert from 'node:assert/strict';
import { test } from 'node:test';
import mqtt from 'mqtt';
import { startBroker } from '../helpers/broker.js';
import { collect, connect, end, sleep, waitFor } from '../helpers/mqtt.js';

// 5.0 §3.1.2.11.2: the Session Expiry Interval is up to 0xFFFFFFFE seconds. Node's setTimeout
// fires after 1 ms for delays over 2^31-1 ms, which once ended such sessions at once (found by
// the Paho interoperability suite's test_publication_expiry, which uses 999999999 s).
test('a session with Session Expiry Interval 999999999 survives the disconnect and keeps its messages', async (t) => {
  const tb = await startBroker();
  t.after(() => tb.stop());
  const opts = {
    protocolVersion: 5 as const,
    clientId: 'long-expiry',
    clean: false,
    properties: { sessionExpiryInterval: 999_999_999 },
  };
  const first = await connect(tb.url, opts);
  await first.subscribeAsync('long/expiry', { qos: 1 });
  await first.endAsync();
  await sleep(100);
  const pub = await connect(tb.url, { protocolVersion: 5 });
  await pub.publishAsync('long/expiry', 'kept', { qos: 1 });
  let present: boolean | undefined;
  const again = mqtt.connect(tb.url, { ...opts, reconnectPeriod: 0 });
  t.after(() => end(pub, again));
  const got = collect(again);
  again.on('connect', (c) => {
    present = c.sessionPresent;
  });
  await waitFor(() => got.length === 1, 5000, 'the queued message');
  assert.equal(present, true);
  assert.equal(got[0]!.payload.toString(), 'kept');
});
