/**
 * Run as a child process by lmdb.ts at every open: reads every row of every db and verifies each
 * value's CRC-32 (format.ts). A page past the end of the file kills this process with SIGBUS, a
 * garbled B-tree page with LMDB's SIGABRT, garbled values fail their checksum, and the parent
 * reports the store as damaged instead of crashing itself (LMDB keeps no checksums of its own).
 *
 * Usage: node probe.js <data file>
 */

import { open } from 'lmdb';
import { scanPages, verifyEntry, verifySealed } from './format.js';

const DBS = ['meta', 'defs', 'qids', 'entries', 'delivery', 'retained', 'records'];

async function main(file: string): Promise<void> {
  const garbled = scanPages(file);
  if (garbled !== undefined) throw new Error(garbled);
  const env = open({ path: file, noSubdir: true, maxDbs: 12, readOnly: true });
  let rows = 0;
  for (const name of DBS) {
    let db: ReturnType<typeof env.openDB>;
    try {
      db = env.openDB(name, { encoding: 'binary' });
    } catch {
      continue; // not created yet (a store that was never opened after creation)
    }
    // A read-only environment answers a missing db with undefined (a foreign or new file).
    if (db === undefined || db === null) continue;
    // Copying each value out reads every page it spans, overflow pages included. The meta db is
    // lmdb-js's own msgpack (one small row, checked by the parent).
    for (const { key, value } of db.getRange({})) {
      rows++;
      if (name === 'meta') continue;
      const bytes = value as Uint8Array;
      const bad = name === 'entries' ? verifyEntry(bytes) : verifySealed(bytes);
      if (bad) throw new Error(`${name} key ${JSON.stringify(key)}: ${bad.reason}`);
    }
  }
  await env.close();
  process.stdout.write(`${rows}\n`);
}

main(process.argv[2]!).catch((err: unknown) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
});
