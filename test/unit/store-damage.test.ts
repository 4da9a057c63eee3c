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
import { crc32 } from 'node:zlib';
import { open } from 'lmdb';
import { CODEC_OPTIONS } from '../../src/store/embedded/format.js';
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
  await meta.put('format', { magic: 'braid-store', format: 3, createdAt: 0 });
  await env.close();
  await assertOpenFails(dir, new RegExp(`^store in ${dir} has format version 3; this Braid reads versions 1 and 2$`));
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
  // Sealed (format.ts) with a good checksum around 0xc1, a byte msgpack never uses.
  const sealed = Buffer.from([0xc1, 0, 0, 0, 0, 0xc1]);
  sealed.writeUInt32BE(crc32(sealed.subarray(5)), 1);
  await defs.put('["q","/","bad"]', sealed);
  await env.close();
  await assertOpenFails(dir, /value of defs key "\[\\"q\\",\\"\/\\",\\"bad\\"\]" cannot be decoded/);
});

test('a value whose checksum fails is found by the probe at open, naming its key', async (t) => {
  const dir = tempDir(t);
  const file = await realStore(dir, 10);
  const env = open({ path: file, ...LMDB_OPTIONS });
  const defs = env.openDB('defs', { encoding: 'binary' });
  const [key] = [...defs.getKeys({ limit: 1 })];
  const v = Buffer.from(defs.getBinary(key!)!);
  v[v.length - 1]! ^= 1;
  await defs.put(key!, v);
  await env.close();
  await assertOpenFails(dir, /braid\.mdb is damaged \(reading it: .*defs key .*: value checksum mismatch\)/);
});

test('a queue entry with a damaged header is a StoreError naming vhost, queue and seq', async (t) => {
  const dir = tempDir(t);
  const file = await realStore(dir, 10);
  const env = open({ path: file, ...LMDB_OPTIONS });
  const entries = env.openDB('entries', { encoding: 'binary' });
  const [key] = [...entries.getKeys({ limit: 1, offset: 3 })];
  await entries.put(key!, Buffer.from('garbage'));
  await env.close();
  // The probe at open reads every value: the garbled entry is named before recovery starts.
  await assertOpenFails(dir, /braid\.mdb is damaged \(reading it: .*entries key \[1,3\]: bad entry header\)/);
});

test('a queue entry whose message does not decode fails the read, naming it', async (t) => {
  const dir = tempDir(t);
  const file = await realStore(dir, 10);
  const env = open({ path: file, ...LMDB_OPTIONS });
  const entries = env.openDB('entries', { encoding: 'binary' });
  const [key] = [...entries.getKeys({ limit: 1, offset: 5 })];
  const v = Buffer.from(entries.getBinary(key!)!);
  v[14] = 0xc1; // first byte of the msgpack part; header and lengths stay valid
  // ...and so does the checksum (format.ts: CRC-32 of bytes 0-9 and 14-end, at 10), so that only
  // the decoder can tell: this is the path of a read at run time, past the probe.
  v.writeUInt32BE(crc32(v.subarray(14), crc32(v.subarray(0, 10))), 10);
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

test('values written before checksums (format 1: entry layout 1, plain msgpack) are still read', async (t) => {
  const dir = tempDir(t);
  const file = await realStore(dir, 10);
  // Rewrite the store as format 1 wrote it: entries without the CRC field, values unsealed.
  const env = open({ path: file, ...LMDB_OPTIONS });
  const entries = env.openDB('entries', { encoding: 'binary' });
  for (const { key, value } of [...entries.getRange({})]) {
    const v = Buffer.from(value as Uint8Array);
    assert.equal(v[0], 2, 'this build writes entry layout 2');
    const old = Buffer.concat([v.subarray(0, 10), v.subarray(14)]);
    old[0] = 1;
    await entries.put(key, old);
  }
  for (const name of ['defs', 'qids']) {
    const db = env.openDB(name, { encoding: 'binary' });
    for (const { key, value } of [...db.getRange({})]) {
      const v = Buffer.from(value as Uint8Array);
      assert.equal(v[0], 0xc1, `${name} values are sealed`);
      await db.put(key, v.subarray(5));
    }
  }
  const meta = env.openDB('meta', {});
  await meta.put('format', { magic: 'braid-store', format: 1, createdAt: 0 });
  await env.close();

  const s = createEmbeddedStore({ dir });
  const defs = await s.open();
  assert.deepEqual(
    defs.queues.map((q) => q.name),
    ['q'],
  );
  const read = s.readEntries('/', 'q', -1, 100);
  assert.equal(read.length, 10);
  assert.deepEqual(read[3]!.message.body, Buffer.alloc(200, 3));
  await s.close();
  // Opened once by this build, the store says format 2: an older Braid refuses it by its version.
  const env2 = open({ path: file, ...LMDB_OPTIONS });
  const format = env2.openDB('meta', { encoder: CODEC_OPTIONS } as object).get('format');
  assert.equal((format as { format: number }).format, 2, JSON.stringify(format));
  await env2.close();
});
