/**
 * Damaged stores (issue 5): `braid start` on a data directory whose store file is garbage,
 * truncated, empty, a foreign LMDB file, or from an unknown format version must exit non-zero
 * (not die by a signal) within a few seconds, with a message on stderr naming the store, and
 * must neither start (no ready line) nor replace the file (never silently start empty).
 *
 * The fixtures are made from a real store: a first run creates it with some state and stops.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import amqp from 'amqplib';
import { open } from 'lmdb';
import { CODEC_OPTIONS, DATA_FILE, FORMAT_VERSION, MAGIC } from '../../src/store/embedded/format.js';
import {
  BraidRun,
  type Exit,
  killAllBraids,
  removeDir,
  seededRandom,
  sleep,
  startBraidProcess,
  tempDir,
} from '../helpers/braid-process.js';

const root = tempDir('braid-damaged-');
const pristine = join(root, 'pristine');
after(async () => {
  await killAllBraids();
  removeDir(root);
});

/** Deterministic garbage, so that a failure repeats. */
function noise(n: number, seed: number): Buffer {
  const r = seededRandom(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

const hash = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

before(async () => {
  const b = await startBraidProcess({ dataDir: pristine });
  const conn = await amqp.connect(b.amqpUrl);
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue('kept', { durable: true });
  for (let i = 0; i < 200; i++) ch.sendToQueue('kept', Buffer.alloc(1024, i), { persistent: true });
  await ch.waitForConfirms();
  await conn.close();
  await b.stop();
});

/** A copy of the pristine data dir, damaged by `damage(file)`; returns the dir. */
function fixture(name: string, damage: (file: string) => void | Promise<void>): Promise<string> {
  const dir = join(root, name);
  cpSync(pristine, dir, { recursive: true });
  return Promise.resolve(damage(join(dir, DATA_FILE))).then(() => dir);
}

/** Starts braid on `dir` and asserts the refusal. */
async function refuses(t: { diagnostic: (s: string) => void }, dir: string, what: RegExp): Promise<void> {
  const file = join(dir, DATA_FILE);
  const before = existsSync(file) ? hash(file) : undefined;
  const run = new BraidRun({ dataDir: dir });
  const deadline = Date.now() + 20_000;
  while (run.running && !run.stdout.includes('braid ready') && Date.now() < deadline) await sleep(50);
  if (run.running) {
    const ready = run.stdout.includes('braid ready');
    run.kill('SIGKILL');
    await run.exited;
    assert.fail(`braid ${ready ? 'started' : 'was still running after 20 s'} on a damaged store; ${run.describe()}`);
  }
  const exit = (await run.exited) as Exit;
  const message = run.stderr.split('\n').find((l) => l.startsWith('braid:')) ?? run.stderr.trim().split('\n').at(-1);
  t.diagnostic(`exit ${exit.code ?? exit.signal}: ${message}`);
  assert.equal(exit.signal, null, `braid died by ${exit.signal} instead of refusing to start; ${run.describe()}`);
  assert.notEqual(exit.code, 0, `braid exited 0; ${run.describe()}`);
  assert.doesNotMatch(run.stdout, /braid ready/, 'braid must not start on a damaged store');
  assert.ok(run.stderr.includes(dir), `stderr names the data directory or file ${dir}; ${run.describe()}`);
  assert.match(run.stderr, what);
  if (before !== undefined) assert.equal(hash(file), before, 'the damaged file is left as it was');
}

describe('a damaged store stops the start with a clear message', () => {
  test('the fixture: a store with a durable queue restarts fine', async () => {
    const files = readdirSync(pristine).map((f) => `${f} (${statSync(join(pristine, f)).size} bytes)`);
    assert.ok(existsSync(join(pristine, DATA_FILE)), `the store file ${DATA_FILE} exists; found ${files.join(', ')}`);
    const dir = await fixture('intact', () => {});
    const b = await startBraidProcess({ dataDir: dir });
    const conn = await amqp.connect(b.amqpUrl);
    const ch = await conn.createChannel();
    assert.equal((await ch.checkQueue('kept')).messageCount, 200);
    await conn.close();
    await b.stop();
  });

  test('the whole file overwritten with garbage', async (t) => {
    const dir = await fixture('garbage', (f) => writeFileSync(f, noise(statSync(f).size, 1)));
    await refuses(t, dir, /damaged|not a Braid store|store/i);
  });

  test('the data pages overwritten with garbage, meta pages intact', async (t) => {
    const dir = await fixture('pages', (f) => {
      const b = readFileSync(f);
      const pageSize = b.readUInt32LE(48) || 4096;
      noise(b.length - 2 * pageSize, 2).copy(b, 2 * pageSize);
      writeFileSync(f, b);
    });
    await refuses(t, dir, /damaged|cannot read|store/i);
  });

  test('the newest half of the pages overwritten with garbage', async (t) => {
    const dir = await fixture('newest-pages', (f) => {
      const b = readFileSync(f);
      const pageSize = b.readUInt32LE(48) || 4096;
      const pages = b.length / pageSize;
      const from = Math.max(2, Math.floor(pages / 2)) * pageSize;
      noise(b.length - from, 3).copy(b, from);
      writeFileSync(f, b);
    });
    await refuses(t, dir, /damaged|cannot read|store/i);
  });

  test('one page in the middle overwritten with garbage', async (t) => {
    const dir = await fixture('one-page', (f) => {
      const b = readFileSync(f);
      const pageSize = b.readUInt32LE(48) || 4096;
      const pages = b.length / pageSize;
      noise(pageSize, 4).copy(b, Math.max(2, Math.floor(pages / 2)) * pageSize);
      writeFileSync(f, b);
    });
    await refuses(t, dir, /damaged|cannot read|store/i);
  });

  test('one byte of a stored message flipped (the page itself intact)', async (t) => {
    const dir = await fixture('one-byte', (f) => {
      const b = readFileSync(f);
      // Message 7's body is 1024 bytes of 0x07: flip one in the middle of its run.
      const at = b.indexOf(Buffer.alloc(256, 7));
      assert.ok(at > 0, 'the fixture holds message 7 in the clear');
      b[at + 100] = 0x08;
      writeFileSync(f, b);
    });
    await refuses(t, dir, /checksum/i);
  });

  test('the file truncated to half', async (t) => {
    const dir = await fixture('truncated', (f) => {
      const b = readFileSync(f);
      const pageSize = b.readUInt32LE(48) || 4096;
      truncateSync(f, Math.max(2 * pageSize, Math.floor(b.length / 2 / pageSize) * pageSize));
    });
    await refuses(t, dir, /truncated|damaged|store/i);
  });

  test('an empty file', async (t) => {
    const dir = await fixture('empty', (f) => truncateSync(f, 0));
    await refuses(t, dir, /empty|damaged|store/i);
  });

  test('an LMDB file that is not a Braid store', async (t) => {
    const dir = await fixture('foreign', async (f) => {
      removeDir(f);
      removeDir(`${f}-lock`);
      const env = open({ path: f, noSubdir: true });
      await env.put('hello', 'world');
      await env.close();
    });
    await refuses(t, dir, /not a Braid store|format|store/i);
  });

  test('a store from an unknown format version', async (t) => {
    const dir = await fixture('version', async (f) => {
      const env = open({ path: f, noSubdir: true, maxDbs: 12 });
      const meta = env.openDB('meta', { encoder: CODEC_OPTIONS } as object);
      const rec = meta.get('format') as { magic?: string; format?: number } | undefined;
      assert.equal(rec?.magic, MAGIC, 'the format record is where the test expects it');
      await meta.put('format', { ...rec, format: FORMAT_VERSION + 1 });
      await env.close();
    });
    await refuses(t, dir, new RegExp(`version ${FORMAT_VERSION + 1}`));
  });
});
