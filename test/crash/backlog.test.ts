/**
 * Backlog (issue 5): a durable queue with no consumer takes 300,000 persistent 64-byte
 * messages (far past the in-memory head a durable queue keeps), the broker is SIGKILLed and
 * restarted, and one consumer drains the queue: every message arrives once, in order. The
 * broker's resident memory (VmRSS from /proc/PID/status, sampled throughout) stays under
 * RSS_LIMIT in both processes: a memory bound, not a timing.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import amqp from 'amqplib';
import {
  type BraidProcess,
  killAllBraids,
  removeDir,
  sleep,
  startBraidProcess,
  tempDir,
} from '../helpers/braid-process.js';

const COUNT = Number(process.env.BACKLOG_COUNT ?? 300_000);
const SIZE = 64;
const RSS_LIMIT = 400 * 1024 * 1024;
const QUEUE = 'backlog';

const root = tempDir('braid-backlog-');
after(async () => {
  await killAllBraids();
  removeDir(root);
});

const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(0)} MB`;

/** Samples the broker's memory every 100 ms until stopped; returns the peaks (VmRSS, RssAnon, RssFile). */
function sampler(b: BraidProcess): { stop: () => { rss: number; text: string } } {
  const peak = { VmRSS: 0, RssAnon: 0, RssFile: 0 };
  const sample = (): void => {
    const m = b.memory();
    if (m) for (const k of ['VmRSS', 'RssAnon', 'RssFile'] as const) peak[k] = Math.max(peak[k], m[k]);
  };
  sample();
  const timer = setInterval(sample, 100);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      return {
        rss: peak.VmRSS,
        text: `${mb(peak.VmRSS)} (anonymous ${mb(peak.RssAnon)}, mapped files ${mb(peak.RssFile)})`,
      };
    },
  };
}

const body = (seq: number): Buffer => Buffer.from(String(seq).padStart(SIZE, '0'));

test(`a backlog of ${COUNT} persistent messages is paged, survives SIGKILL and drains in order`, {
  timeout: 150_000,
}, async (t) => {
  const dataDir = join(root, 'data');
  const first = await startBraidProcess({ dataDir });
  const base = first.rss() ?? 0;
  const fillRss = sampler(first);
  const conn = await amqp.connect(first.amqpUrl);
  conn.on('error', () => {});
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue(QUEUE, { durable: true });
  let next = 0;
  let confirmed = 0;
  let failed = 0;
  await new Promise<void>((resolve) => {
    let outstanding = 0;
    const pump = (): void => {
      while (next < COUNT && outstanding < 2000) {
        const seq = next++;
        outstanding++;
        ch.sendToQueue(QUEUE, body(seq), { persistent: true }, (err) => {
          outstanding--;
          if (err) failed++;
          else confirmed++;
          if (confirmed + failed === COUNT) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  assert.equal(failed, 0, 'every publish confirmed');
  assert.equal((await ch.checkQueue(QUEUE)).messageCount, COUNT);
  await conn.close();
  const fillPeak = fillRss.stop();
  t.diagnostic(`filled ${COUNT} × ${SIZE} B; broker RSS at start ${mb(base)}, peak while filling ${fillPeak.text}`);
  await first.kill();

  const second = await startBraidProcess({ dataDir, readyTimeoutMs: 60_000 });
  const drainRss = sampler(second);
  t.diagnostic(`restarted; RSS after recovery ${mb(second.rss() ?? 0)}`);
  const c2 = await amqp.connect(second.amqpUrl);
  c2.on('error', () => {});
  const ch2 = await c2.createChannel();
  assert.equal((await ch2.checkQueue(QUEUE)).messageCount, COUNT, 'the whole backlog survived the kill');
  await ch2.prefetch(1000);
  let expected = 0;
  let outOfOrder = 0;
  let firstBad = '';
  let received = 0;
  let lastAt = Date.now();
  await ch2.consume(
    QUEUE,
    (m) => {
      if (!m) return;
      lastAt = Date.now();
      received++;
      const seq = Number(m.content.toString());
      if (seq !== expected || m.content.length !== SIZE) {
        outOfOrder++;
        if (!firstBad) firstBad = `expected ${expected}, got ${seq} (${m.content.length} B) at delivery ${received}`;
      }
      expected = seq + 1;
      if (received % 500 === 0) ch2.ack(m, true);
    },
    { noAck: false },
  );
  const deadline = Date.now() + 90_000;
  while (received < COUNT && Date.now() < deadline && Date.now() - lastAt < 10_000) await sleep(100);
  await ch2.ackAll();
  await sleep(300);
  const extra = received - COUNT;
  const left = (await (await c2.createChannel()).checkQueue(QUEUE)).messageCount;
  await c2.close();
  const drainPeak = drainRss.stop();
  await second.stop();
  t.diagnostic(
    `drained ${received} (expected ${COUNT}), out of order ${outOfOrder}, left in the queue ${left}; ` +
      `broker RSS peak while draining ${drainPeak.text} (limit ${mb(RSS_LIMIT)})`,
  );
  assert.equal(received, COUNT, 'every message delivered once');
  assert.equal(extra, 0);
  assert.equal(outOfOrder, 0, `in order: ${firstBad}`);
  assert.equal(left, 0);
  assert.ok(fillPeak.rss < RSS_LIMIT, `broker RSS while filling ${fillPeak.text} ≥ ${mb(RSS_LIMIT)}`);
  assert.ok(drainPeak.rss < RSS_LIMIT, `broker RSS while draining ${drainPeak.text} ≥ ${mb(RSS_LIMIT)}`);
});
