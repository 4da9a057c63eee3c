/**
 * Run as a child process by lmdb.ts at every open: reads every row of every db. A page past the
 * end of the file kills this process with SIGBUS, a garbled B-tree page with LMDB's SIGABRT, and
 * the parent reports the store as damaged instead of crashing itself (LMDB has no checksums).
 *
 * Usage: node probe.js <data file>
 */

import { open } from 'lmdb';

const DBS = ['meta', 'defs', 'qids', 'entries', 'delivery', 'retained', 'records'];

async function main(file: string): Promise<void> {
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
    // Copying each value out reads every page it spans, overflow pages included.
    for (const _row of db.getRange({})) rows++;
  }
  await env.close();
  process.stdout.write(`${rows}\n`);
}

main(process.argv[2]!).catch((err: unknown) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
});
