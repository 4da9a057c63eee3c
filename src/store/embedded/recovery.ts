/**
 * Reading a store at open: definitions, retained messages and adapter records are loaded whole;
 * queue entries are only scanned (header bytes, not decoded) to rebuild the per-queue counters
 * that make `queueStats` O(1), and to drop what recovery must drop:
 *
 * - transient entries (written only because a queue was paging: QueueEntry.transient);
 * - entries and delivery rows of a qid with no `qids` row (a queue removed before a crash
 *   finished its background range delete, see format.ts);
 * - delivery rows whose entry is gone.
 *
 * Every value that fails to decode is a StoreError naming its db and key; nothing is skipped
 * silently.
 */

import type { Database } from 'lmdb';
import type { Logger } from '../../util/log.js';
import {
  type BindingRecord,
  type ExchangeRecord,
  type MessageRecord,
  type QueueRecord,
  type RecoveredDefinitions,
  type StoredValue,
  StoreError,
} from '../store.js';
import { type Codec, type DecodedEntry, decodeMessage, type EntryHeader, Undecodable } from './format.js';

export type Key = string | number | (string | number)[];
export type Db = Database<Buffer, Key>;

export interface QueueState {
  readonly vhost: string;
  readonly name: string;
  readonly qid: number;
  count: number;
  bytes: number;
  nextSeq: number;
  /** nextSeq as last written to the `qids` row (so that seq numbers survive an emptied queue). */
  seqFloor: number;
  /** Writes not yet committed, by seq (read-your-writes for readEntries; see lmdb.ts). */
  overlay: Map<number, unknown> | undefined;
}

export interface Dbs {
  readonly defs: Db;
  readonly qids: Db;
  /** Values decoded whole (readEntries). */
  readonly entries: Database<DecodedEntry | Undecodable, Key>;
  /** The same db, decoding only the fixed header (recovery scan). */
  readonly entriesHead: Database<EntryHeader | Undecodable, Key>;
  readonly delivery: Db;
  readonly retained: Db;
  readonly records: Db;
}

export interface Recovered {
  readonly definitions: RecoveredDefinitions;
  readonly queues: QueueState[];
  readonly nextQid: number;
  /** qids whose entries are garbage: the caller deletes them in the background. */
  readonly orphanQids: number[];
  /** Keys to delete now (transient entries, stray delivery rows). */
  readonly drop: Array<{ db: Database<unknown, Key>; key: Key }>;
}

const PROGRESS_EVERY = 1_000_000;

export function decodeAt(file: string, codec: Codec, dbName: string, key: unknown, bytes: Uint8Array): unknown {
  try {
    return codec.decode(bytes);
  } catch (err) {
    throw new StoreError(
      `store data file ${file}: value of ${dbName} key ${JSON.stringify(key)} cannot be decoded (${(err as Error).message})`,
    );
  }
}

function shapeError(file: string, dbName: string, key: unknown): StoreError {
  return new StoreError(
    `store data file ${file}: value of ${dbName} key ${JSON.stringify(key)} cannot be decoded (unexpected shape)`,
  );
}

export function recover(file: string, dbs: Dbs, codec: Codec, logger: Logger | undefined): Recovered {
  const vhosts: string[] = [];
  const exchanges: ExchangeRecord[] = [];
  const queuesDefs: QueueRecord[] = [];
  const bindings: BindingRecord[] = [];
  for (const { key, value } of dbs.defs.getRange({})) {
    const v = decodeAt(file, codec, 'defs', key, value) as Record<string, unknown> | null;
    if (typeof key !== 'string' || v === null || typeof v !== 'object') throw shapeError(file, 'defs', key);
    switch (v.t) {
      case 'v':
        vhosts.push(v.vhost as string);
        break;
      case 'x':
        exchanges.push(v.r as ExchangeRecord);
        break;
      case 'q':
        queuesDefs.push(v.r as QueueRecord);
        break;
      case 'b':
        bindings.push(v.r as BindingRecord);
        break;
      default:
        throw shapeError(file, 'defs', key);
    }
  }

  const retained: Array<{ vhost: string; routingKey: string; message: MessageRecord }> = [];
  for (const { key, value } of dbs.retained.getRange({})) {
    const v = decodeAt(file, codec, 'retained', key, value);
    if (!Array.isArray(v) || v.length !== 3) throw shapeError(file, 'retained', key);
    let message: MessageRecord;
    try {
      message = decodeMessage(v[2]);
    } catch {
      throw shapeError(file, 'retained', key);
    }
    retained.push({ vhost: v[0], routingKey: v[1], message });
  }

  const records = new Map<string, Map<string, StoredValue>>();
  for (const { key, value } of dbs.records.getRange({})) {
    const v = decodeAt(file, codec, 'records', key, value);
    if (!Array.isArray(v) || v.length !== 3 || typeof v[0] !== 'string') throw shapeError(file, 'records', key);
    let ns = records.get(v[0]);
    if (ns === undefined) records.set(v[0], (ns = new Map()));
    ns.set(v[1], v[2]);
  }

  // Queue ids, then one pass over the entries.
  const byQid = new Map<number, QueueState>();
  let nextQid = 1;
  for (const { key, value } of dbs.qids.getRange({})) {
    const v = decodeAt(file, codec, 'qids', key, value);
    if (!Array.isArray(v) || v.length !== 4 || typeof v[2] !== 'number') throw shapeError(file, 'qids', key);
    const qs: QueueState = {
      vhost: v[0],
      name: v[1],
      qid: v[2],
      count: 0,
      bytes: 0,
      nextSeq: v[3],
      seqFloor: v[3],
      overlay: undefined,
    };
    byQid.set(qs.qid, qs);
    if (qs.qid >= nextQid) nextQid = qs.qid + 1;
  }

  const drop: Array<{ db: Database<unknown, Key>; key: Key }> = [];
  const orphanQids: number[] = [];
  let scanned = 0;
  let start: Key | undefined;
  scan: for (;;) {
    for (const { key, value: h } of dbs.entriesHead.getRange(start === undefined ? {} : { start })) {
      const k = key as [number, number];
      if (!Array.isArray(k) || k.length !== 2 || typeof k[0] !== 'number' || typeof k[1] !== 'number') {
        throw new StoreError(`store data file ${file}: entries key ${JSON.stringify(key)} is not [qid, seq]`);
      }
      const [qid, seq] = k;
      if (qid >= nextQid) nextQid = qid + 1;
      const qs = byQid.get(qid);
      if (qs === undefined) {
        // Garbage of a removed queue: skip the whole range, delete it later.
        orphanQids.push(qid);
        start = [qid + 1];
        continue scan;
      }
      if (++scanned % PROGRESS_EVERY === 0) logger?.info('store recovery: scanning queue entries', { scanned });
      if (h instanceof Undecodable) {
        const where = JSON.stringify([qs.vhost, qs.name, seq]);
        throw new StoreError(`store data file ${file}: queue entry ${where} cannot be decoded (${h.reason})`);
      }
      if (seq + 1 > qs.nextSeq) qs.nextSeq = seq + 1;
      if (h.transient) {
        drop.push({ db: dbs.entries, key: k }, { db: dbs.delivery, key: k });
        continue;
      }
      qs.count++;
      qs.bytes += h.bodyLength;
    }
    break;
  }
  if (scanned >= PROGRESS_EVERY) logger?.info('store recovery: queue entries scanned', { scanned });

  for (const { key } of dbs.delivery.getRange({})) {
    const k = key as [number, number];
    if (!Array.isArray(k) || k.length !== 2 || typeof k[0] !== 'number') {
      throw new StoreError(`store data file ${file}: delivery key ${JSON.stringify(key)} is not [qid, seq]`);
    }
    if (k[0] >= nextQid) nextQid = k[0] + 1;
    if (!byQid.has(k[0]) || !dbs.entries.doesExist(k)) drop.push({ db: dbs.delivery, key: k });
  }

  return {
    definitions: { vhosts, exchanges, queues: queuesDefs, bindings, retained, records },
    queues: [...byQid.values()],
    nextQid,
    orphanQids,
    drop,
  };
}
