/**
 * Damaged and foreign stores (STYLE.md habit 12: persistence fixtures include damaged ones).
 * The fixtures are generated here, in temp dirs, from a real store: garbage, an empty file,
 * truncations, an unknown format version, a foreign LMDB file and undecodable values. Each must
 * be a StoreError naming the file (never a crash, never a fresh empty store over the data), and
 * a failed open must leave the file as it was.
 */

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { open } from 'lmdb';
import { createEmbeddedStore } from '../../src/store/embedded/index.js';
import { StoreError } from '../../src/store/store.js';

const LMDB_OPTIONS = { noSubdir: true, maxDbs: 12, overlappingSync: false } as const;

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'braid-store-damage-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A real store with some of everything, closed. */
async function realStore(dir: string, entries = 2000): Promise<string> {
  const s = createEmbeddedStore({ dir });
  await s.open();
  s.putVhost('/');
  s.putQueue({ vhost: '/', name: 'q', autoDelete: false, args: {} });
  for (let i = 0; i < entries; i++) {
    s.putEntry('/', 'q', {
      seq: i,
      message: {
        vhost: '/',
        exchange: '',
        routingKey: 'q',
        body: Buffer.alloc(i % 7 === 0 ? 5000 : 200, i), // some overflow pages too
        properties: {},
        annotations: {},
        publisherId: undefined,
        expiresAt: undefined,
        createdAt: 0,
      },
      delivered: false,
      deliveryCount: 0,
      tag: undefined,
      transient: false,
    });
  }
  await s.close();
  return join(dir, 'braid.mdb');
}

function digest(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

async function assertOpenFails(dir: string, pattern: RegExp): Promise<void> {
  const file = join(dir, 'braid.mdb');
  const before = digest(file);
  const s = createEmbeddedStore({ dir });
  await assert.rejects(
    () => s.open(),
    (err: unknown) => {
      assert.ok(err instanceof StoreError, `a StoreError, got ${String(err)}`);
      assert.match(err.message, pattern);
      return true;
    },
  );
  assert.equal(digest(file), before, 'the damaged file is left as it was');
}

test('a data file of garbage is a StoreError naming the file', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'braid.mdb'), randomBytes(16384));
  await assertOpenFails(
    dir,
    /store data file .*braid\.mdb is damaged or not a Braid store \(no LMDB meta page|bad magic/,
  );
});

test('an empty data file is damage, not a new store', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'braid.mdb'), '');
  await assertOpenFails(dir, /braid\.mdb is damaged .*the file is empty/);
});

test('a truncated data file is a StoreError, not a SIGBUS', async (t) => {
  const dir = tempDir(t);
  const file = await realStore(dir);
  const size = statSync(file).size;
  const copy = readFileSync(file);
  for (const cut of [100, 4096 + 100, 3 * 4096, Math.floor(size / 2 / 4096) * 4096, size - 1000]) {
    writeFileSync(file, copy);
    truncateSync(file, cut);
    t.diagnostic(`cut at ${cut} of ${size}`);
    await assertOpenFails(dir, /braid\.mdb (is damaged .*truncated|is truncated|is damaged .*too short)/);
  }
  // The untouched file still opens.
  writeFileSync(file, copy);
  const s = createEmbeddedStore({ dir });
  await s.open();
  assert.equal(s.queueStats('/', 'q').count, 2000);
  await s.close();
});

test('another format version is refused with the version in the message', async (t) => {
  const dir = tempDir(t);
  const file = await realStore(dir, 1);
  const env = open({ path: file, ...LMDB_OPTIONS });
  const meta = env.openDB('meta', {});
  await meta.put('format', { magic: 'braid-store', format: 2, createdAt: 0 });
  await env.close();
  await assertOpenFails(dir, new RegExp(`^store in ${dir} has format version 2; this Braid reads version 1$`));
});

test('an LMDB file that is not a Braid store is refused', async (t) => {
  const dir = tempDir(t);
  const env = open({ path: join(dir, 'braid.mdb'), ...LMDB_OPTIONS });
  await env.put('some', 'other application');
  await env.close();
  await assertOpenFails(dir, /braid\.mdb is an LMDB file without a Braid format record/);
});

test('a value that does not decode is a StoreError naming its key', async (t) => {
  const dir = tempDir(t);
  const file = await realStore(dir, 10);
  const env = open({ path: file, ...LMDB_OPTIONS });
  const defs = env.openDB('defs', { encoding: 'binary' });
  await defs.put('["q","/","bad"]', Buffer.from([0xc1])); // 0xc1 is never used in msgpack
  await env.close();
  await assertOpenFails(dir, /value of defs key "\[\\"q\\",\\"\/\\",\\"bad\\"\]" cannot be decoded/);
});

test('a queue entry with a damaged header is a StoreError naming vhost, queue and seq', async (t) => {
  const dir = tempDir(t);
  const file = await realStore(dir, 10);
  const env = open({ path: file, ...LMDB_OPTIONS });
  const entries = env.openDB('entries', { encoding: 'binary' });
  const [key] = [...entries.getKeys({ limit: 1, offset: 3 })];
  await entries.put(key!, Buffer.from('garbage'));
  await env.close();
  await assertOpenFails(dir, /queue entry \["\/","q",3\] cannot be decoded \(bad entry header\)/);
});

test('a queue entry whose message does not decode fails the read, naming it', async (t) => {
  const dir = tempDir(t);
  const file = await realStore(dir, 10);
  const env = open({ path: file, ...LMDB_OPTIONS });
  const entries = env.openDB('entries', { encoding: 'binary' });
  const [key] = [...entries.getKeys({ limit: 1, offset: 5 })];
  const v = Buffer.from(entries.getBinary(key!)!);
  v[10] = 0xc1; // first byte of the msgpack part; header and lengths stay valid
  await entries.put(key!, v);
  await env.close();
  const s = createEmbeddedStore({ dir });
  await s.open(); // recovery reads headers only
  t.after(() => s.close());
  assert.equal(s.readEntries('/', 'q', -1, 5).length, 5);
  assert.throws(
    () => s.readEntries('/', 'q', -1, 10),
    (err: unknown) => err instanceof StoreError && /queue entry \["\/","q",5\] cannot be decoded/.test(err.message),
  );
});

test('a directory that cannot be created is a StoreError', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'file'), 'x');
  const s = createEmbeddedStore({ dir: join(dir, 'file', 'sub') });
  await assert.rejects(() => s.open(), StoreError);
});

test('a data directory in use by another live process is refused; a lock left by a dead one is taken over', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'braid-store-lock-'));
  try {
    // The parent of this test process is alive and is not us.
    writeFileSync(join(dir, 'braid.pid'), `${process.ppid}\n`);
    await assert.rejects(
      createEmbeddedStore({ dir }).open(),
      (err: unknown) => err instanceof StoreError && new RegExp(`in use by process ${process.ppid}`).test(err.message),
    );
    // A pid that cannot be running (above Linux's pid_max limit of 2^22).
    writeFileSync(join(dir, 'braid.pid'), '4194305\n');
    const s = createEmbeddedStore({ dir });
    await s.open();
    assert.equal(readFileSync(join(dir, 'braid.pid'), 'utf8').trim(), String(process.pid));
    await s.close();
    assert.throws(() => statSync(join(dir, 'braid.pid')), /ENOENT/, 'the lock goes with a clean close');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
