import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createEmbeddedStore } from '../../src/store/embedded/index.js';

const WRITER = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/store/crash-writer.js');

function bodyOf(seq: number): Buffer {
  return Buffer.alloc(16 + (seq % 200), `body-${seq}|`);
}

/** Runs the writer until a random moment after it is ready, SIGKILLs it; returns the acked seqs. */
function runAndKill(dir: string, killAfterMs: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      if (timer === undefined && out.startsWith('ready\n')) {
        timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') return reject(new Error(`writer exited ${code} ${signal}: ${err}`));
      // A line cut by the kill is not an acknowledgement: keep whole lines only.
      const lines = out.slice(0, out.lastIndexOf('\n') + 1).split('\n');
      resolve(lines.filter((l) => l !== '' && l !== 'ready').map(Number));
    });
  });
}

test('every seq acknowledged by whenDurable survives SIGKILL at a random moment', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'braid-store-crash-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const acked = new Set<number>();
  for (let round = 0; round < 4; round++) {
    const got = await runAndKill(dir, 100 + Math.floor(Math.random() * 500));
    for (const s of got) acked.add(s);
    assert.ok(got.length > 0, `round ${round}: the writer acknowledged something`);

    const store = createEmbeddedStore({ dir });
    await store.open();
    const stats = store.queueStats('/', 'crash');
    // Transactions are atomic and ordered: what survived is a prefix 0..count-1 with no hole.
    assert.equal(stats.nextSeq, stats.count, `round ${round}: no hole`);
    const present = new Set<number>();
    for (let after = -1; ; ) {
      const page = store.readEntries('/', 'crash', after, 5000);
      if (page.length === 0) break;
      for (const e of page) {
        assert.ok(e.message.body.equals(bodyOf(e.seq)), `seq ${e.seq} body intact`);
        assert.deepEqual(e.message.properties.headers, [['seq', e.seq]]);
        present.add(e.seq);
      }
      after = page[page.length - 1]!.seq;
    }
    assert.equal(present.size, stats.count);
    const lost = [...acked].filter((s) => !present.has(s));
    assert.deepEqual(lost, [], `round ${round}: acknowledged seqs lost`);
    t.diagnostic(`round ${round}: ${got.length} acked, ${present.size} present`);
    await store.close();
  }
});
