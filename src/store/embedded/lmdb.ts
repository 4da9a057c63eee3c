/**
 * The embedded durable store on LMDB (lmdb-js 3.x). Layout and value formats: format.ts.
 *
 * Durability. The environment is opened with `overlappingSync: false` and without `noSync`, so
 * every LMDB commit writes the data pages, fsyncs, writes the meta page and fsyncs before the
 * write thread reports it, and lmdb-js resolves a write's promise only then. The README of
 * lmdb 3.5.6 on `put`: "The promise will resolve once the transaction has finished committing.
 * [...] Once the promise resolves, the transaction will have been fully written to the physical
 * storage medium (durable commit, guaranteed available in the future as far as the OS/physical
 * storage can permit and confirm, even if there is power loss or system crash)." That sentence
 * holds only without overlapping sync: with lmdb-js's Linux default (`overlappingSync: true`,
 * "Overlapping Sync Options") the promise resolves when the commit is *visible* and the fsync
 * follows later (`db.flushed`). We turn it off, so: a resolved write promise, and hence a
 * `whenDurable` callback without an error, means the writes survive SIGKILL and power loss,
 * as far as the disk honours fsync. Measured cost: ~0.55-0.75 M puts/s either way when
 * batched, so the simpler guarantee is kept.
 *
 * Group commit: lmdb-js's `eventTurnBatching` (default on) puts every `put`/`remove` of one
 * event-loop turn into one transaction; group-commit.ts tracks one promise per transaction.
 *
 * Read-your-writes: reads go to LMDB's committed snapshot, but the core may page a queue in the
 * same turn it wrote to it. Entry writes not yet committed are kept in a per-queue overlay
 * (seq -> pending put/remove/delivery) that `readEntries` merges; a transaction's overlay items
 * are dropped when it commits. Only queue entries need this: definitions are read only at open.
 */

import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Database, open, type RootDatabase } from 'lmdb';
import type { Logger } from '../../util/log.js';
import {
  type BindingRecord,
  type ExchangeRecord,
  type MessageRecord,
  type QueueEntry,
  type QueueRecord,
  type QueueStats,
  type RecoveredDefinitions,
  type Store,
  type StoredValue,
  StoreError,
} from '../store.js';
import {
  CODEC_OPTIONS,
  type Codec,
  canonical,
  checkDataFile,
  DATA_FILE,
  defKey,
  encodeEntry,
  encodeMessage,
  entryEncoders,
  entryHeader,
  FORMAT_VERSION,
  MAGIC,
  READABLE_FORMATS,
  sealedCodec,
  Undecodable,
} from './format.js';
import { GroupCommit, type Txn } from './group-commit.js';
import { type Dbs, decodeAt, type Key, type QueueState, recover } from './recovery.js';

export interface EmbeddedStoreOptions {
  /** Data directory; created (mkdir -p) if missing. The data file is `<dir>/braid.mdb`. */
  readonly dir: string;
  readonly logger?: Logger;
}

const ENV_OPTIONS = {
  noSubdir: true,
  maxDbs: 12,
  // See the header: with overlapping sync a resolved promise would not mean fsync'd.
  overlappingSync: false,
  // Address space, not memory or disk: the file grows as written. Reserving it up front means one
  // mapping for the life of the process; growing it instead left each older, smaller mapping in
  // place (6 mappings of the same file after a 10M-message backlog, each counted in RSS).
  mapSize: 2 ** 38,
  // Not `remapChunks`: it bounds the mapped pages a drain leaves resident (measured, 10M-message
  // backlog: peak VmRSS 0.93 GB instead of 2.9 GB, all of the difference clean file pages), but it
  // is lmdb-js's 32-bit code path, and its chunk cache answers MDB_MAP_FULL when every cached
  // chunk is referenced; the kernel reclaims clean file pages under pressure anyway.
} as const;

/** Entries deleted per turn when a removed queue's range is cleaned up in the background. */
const CLEANUP_CHUNK = 10_000;

const PUT = 0;
const REMOVED = 1;
const DELIVERY = 2;

/** An entry write not yet committed. */
class Pending {
  constructor(
    public kind: typeof PUT | typeof REMOVED | typeof DELIVERY,
    public entry: QueueEntry | undefined,
    public deliveryCount: number,
    public tag: StoredValue | undefined,
  ) {}
}

const EMPTY_STATS: QueueStats = { count: 0, bytes: 0, nextSeq: 0 };

export class EmbeddedStore implements Store {
  readonly dir: string;
  readonly file: string;
  private readonly logger: Logger | undefined;
  private env: RootDatabase | undefined;
  private meta!: RootDatabase;
  private dbs!: Dbs;
  private codec!: Codec;
  /** The codec of the msgpack dbs: values sealed with a CRC-32 (format.ts). */
  private values!: Codec;
  private readonly gc: GroupCommit;
  private readonly queues = new Map<string, Map<string, QueueState>>();
  private nextQid = 1;
  private readonly cleanups = new Set<number>();
  private cleanupRunning: Promise<void> | undefined;
  private closing = false;

  constructor(opts: EmbeddedStoreOptions) {
    this.dir = opts.dir;
    this.file = join(opts.dir, DATA_FILE);
    this.logger = opts.logger;
    this.gc = new GroupCommit(
      (t) => this.committed(t),
      (err) => this.logger?.error('store commit failed; nothing written from now on is acknowledged', { err }),
    );
  }

  // ----------------------------------------------------------------------------------------
  // Open and close

  async open(): Promise<RecoveredDefinitions> {
    if (this.env !== undefined) throw new StoreError(`store in ${this.dir} is already open`);
    try {
      mkdirSync(this.dir, { recursive: true });
    } catch (err) {
      throw new StoreError(`cannot create store directory ${this.dir}: ${(err as Error).message}`);
    }
    this.takeLock();
    if (!existsSync(this.file)) await this.create();
    else {
      const check = checkDataFile(this.file);
      // LMDB has no page checksums and aborts (or faults) on a garbled page: every start reads
      // the whole store once in a child process, so damage is a clear refusal, never a crash loop.
      this.probe(check.ok === 'short' ? { size: check.size, expected: check.expected } : undefined);
    }
    let env: RootDatabase;
    try {
      env = open({ path: this.file, ...ENV_OPTIONS });
    } catch (err) {
      throw new StoreError(`cannot open store data file ${this.file}: ${(err as Error).message}`);
    }
    this.env = env;
    try {
      this.openDbs(env);
      const r = recover(this.file, this.dbs, this.values, this.logger);
      for (const qs of r.queues) this.queueMap(qs.vhost).set(qs.name, qs);
      this.nextQid = r.nextQid;
      for (const d of r.drop) this.gc.track(d.db.remove(d.key));
      for (const qid of r.orphanQids) this.cleanups.add(qid);
      if (r.drop.length > 0) {
        this.logger?.info('store recovery: dropped transient entries', { keys: r.drop.length });
        // Reads go to the committed snapshot: let the drops land before anyone pages in.
        const err = await new Promise<Error | undefined>((resolve) => this.gc.whenDurable(resolve));
        if (err) throw err;
      }
      this.startCleanup();
      return r.definitions;
    } catch (err) {
      this.env = undefined;
      await env.close().catch(() => {});
      if (err instanceof StoreError) throw err;
      throw new StoreError(`cannot read store data file ${this.file}: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {
    const env = this.env;
    if (env === undefined || this.closing) return;
    this.closing = true;
    while (this.cleanupRunning !== undefined) await this.cleanupRunning;
    // Keep seq numbers increasing across restarts even for queues emptied since the last write.
    for (const m of this.queues.values()) {
      for (const qs of m.values()) if (qs.nextSeq > qs.seqFloor) this.writeQid(qs);
    }
    await new Promise<void>((resolve) => this.gc.whenDurable(() => resolve()));
    this.env = undefined;
    this.queues.clear();
    await env.close();
    rmSync(this.lockFile, { force: true });
  }

  /**
   * One broker per data directory: LMDB itself lets a second process open the file, and two
   * brokers recovering and writing the same queues would corrupt each other's state. The lock
   * file names the owner's pid; a lock left by a process that is gone (SIGKILL) is taken over.
   */
  private takeLock(): void {
    const file = this.lockFile;
    try {
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new StoreError(
          `store in ${this.dir} is in use by process ${pid} (${file}); one broker per data directory`,
        );
      }
    } catch (err) {
      if (err instanceof StoreError) throw err;
      // No lock file, or an unreadable one: take it.
    }
    writeFileSync(file, `${process.pid}\n`);
  }

  private get lockFile(): string {
    return join(this.dir, 'braid.pid');
  }

  get pending(): boolean {
    return this.gc.pending;
  }

  whenDurable(cb: (err?: Error) => void): void {
    this.gc.whenDurable(cb);
  }

  /** LMDB's id of the last committed transaction (tests check one turn is one commit). */
  lastTxnId(): number {
    return (this.env!.getStats() as { lastTxnId: number }).lastTxnId;
  }

  /** Resolves once everything written is durable and background range deletes are done; for tests. */
  async idle(): Promise<void> {
    do {
      await new Promise<void>((resolve) => this.gc.whenDurable(() => resolve()));
      while (this.cleanupRunning !== undefined) await this.cleanupRunning;
    } while (this.gc.pending || this.cleanups.size > 0);
  }

  /** Raw number of entry rows on disk (all queues, including removed ones not yet cleaned); for tests. */
  rawEntryCount(): number {
    return this.dbs.entries.getCount({});
  }

  private openDbs(env: RootDatabase): void {
    // The meta db is the one msgpack db lmdb-js encodes for us; its msgpackr instance is also
    // the codec for every other db, which store raw bytes so that decoding errors name the key.
    // It is opened without `create` and checked first, so a foreign LMDB file is not written to.
    let meta: RootDatabase | undefined;
    try {
      meta = env.openDB('meta', { encoder: CODEC_OPTIONS, create: false } as object) as RootDatabase | undefined;
    } catch {
      meta = undefined;
    }
    if (meta === undefined || meta === null) throw this.notBraid();
    this.meta = meta;
    this.codec = (this.meta as unknown as { encoder: Codec }).encoder;
    this.values = sealedCodec(this.codec);
    this.checkMeta();
    const bin = { encoding: 'binary' } as const;
    const enc = entryEncoders(this.codec);
    this.dbs = {
      defs: env.openDB('defs', bin),
      qids: env.openDB('qids', bin),
      entries: env.openDB('entries', { encoder: enc.full } as object),
      entriesHead: env.openDB('entries', { encoder: enc.header } as object),
      delivery: env.openDB('delivery', bin),
      retained: env.openDB('retained', bin),
      records: env.openDB('records', bin),
    };
  }

  private notBraid(): StoreError {
    return new StoreError(
      `store data file ${this.file} is an LMDB file without a Braid format record ` +
        '(not a Braid store, or damaged); move it away to start empty',
    );
  }

  private checkMeta(): void {
    let m: unknown;
    try {
      m = this.meta.get('format');
    } catch (err) {
      throw new StoreError(`store data file ${this.file}: format record cannot be decoded (${(err as Error).message})`);
    }
    const rec = m as { magic?: unknown; format?: unknown } | undefined;
    if (rec === undefined || rec === null || typeof rec !== 'object' || rec.magic !== MAGIC) throw this.notBraid();
    if (typeof rec.format !== 'number' || !READABLE_FORMATS.includes(rec.format)) {
      throw new StoreError(
        `store in ${this.dir} has format version ${String(rec.format)}; ` +
          `this Braid reads versions ${READABLE_FORMATS.join(' and ')}`,
      );
    }
    if (rec.format !== FORMAT_VERSION) {
      this.logger?.info('store format upgraded', { from: rec.format, to: FORMAT_VERSION });
      this.gc.track(this.meta.put('format', { ...rec, format: FORMAT_VERSION }));
    }
  }

  /**
   * A new store is built under a temporary name and renamed into place, so that a `braid.mdb`
   * that exists is always one that was complete: an empty or short one is damage, never "new".
   */
  private async create(): Promise<void> {
    const tmp = `${this.file}.new`;
    rmSync(tmp, { force: true });
    rmSync(`${tmp}-lock`, { force: true });
    try {
      const env = open({ path: tmp, ...ENV_OPTIONS });
      const meta = env.openDB('meta', { encoder: CODEC_OPTIONS } as object);
      await meta.put('format', { magic: MAGIC, format: FORMAT_VERSION, createdAt: Date.now() });
      await env.close();
      const fd = openSync(tmp, 'r+');
      fsyncSync(fd);
      closeSync(fd);
      renameSync(tmp, this.file);
      rmSync(`${tmp}-lock`, { force: true });
      const dfd = openSync(this.dir, 'r');
      try {
        fsyncSync(dfd);
      } catch {
        // Some platforms (Windows) cannot fsync a directory.
      } finally {
        closeSync(dfd);
      }
    } catch (err) {
      throw new StoreError(`cannot create store data file ${this.file}: ${(err as Error).message}`);
    }
  }

  /**
   * The file is shorter than its meta page's last page. That is damage unless the missing pages
   * are free ones LMDB never wrote (mdb.c: "the file may be shorter if the freeDB lists the final
   * pages"); only reading every page tells, and a read past the end is a SIGBUS, so a child
   * process reads the whole store and we look at how it died.
   */
  private probe(short: { size: number; expected: number } | undefined): void {
    if (short !== undefined) {
      this.logger?.warn('store data file is shorter than LMDB says; reading it whole in a child process', {
        file: this.file,
        ...short,
      });
    }
    const script = join(dirname(fileURLToPath(import.meta.url)), 'probe.js');
    const started = Date.now();
    const r = spawnSync(process.execPath, [script, this.file], { encoding: 'utf8', timeout: 600_000 });
    if (r.status === 0) {
      this.logger?.info('store verified', { file: this.file, rows: Number(r.stdout.trim()), ms: Date.now() - started });
      return;
    }
    const how = r.signal ? `killed by ${r.signal}` : `exit ${r.status}: ${(r.stderr ?? '').trim().slice(0, 300)}`;
    const what =
      short !== undefined
        ? `is truncated (${short.size} bytes, LMDB expects ${short.expected}; reading it: ${how})`
        : `is damaged (reading it: ${how})`;
    throw new StoreError(
      `store data file ${this.file} ${what}; move it away to start empty, or restore it from a backup`,
    );
  }

  // ----------------------------------------------------------------------------------------
  // Definitions, retained messages, records

  get isOpen(): boolean {
    return this.env !== undefined && !this.closing;
  }

  private write(db: Database<unknown, Key>, key: Key, value: Buffer | undefined): Txn {
    if (this.env === undefined) throw new StoreError(`store in ${this.dir} is not open`);
    return this.gc.track(value === undefined ? db.remove(key) : db.put(key, value));
  }

  putVhost(vhost: string): void {
    this.write(this.dbs.defs, defKey(['v', vhost]), this.values.encode({ t: 'v', vhost }));
  }

  removeVhost(vhost: string): void {
    this.write(this.dbs.defs, defKey(['v', vhost]), undefined);
  }

  putExchange(x: ExchangeRecord): void {
    this.write(this.dbs.defs, defKey(['x', x.vhost, x.name]), this.values.encode({ t: 'x', r: x }));
  }

  removeExchange(vhost: string, name: string): void {
    this.write(this.dbs.defs, defKey(['x', vhost, name]), undefined);
  }

  putQueue(q: QueueRecord): void {
    this.write(this.dbs.defs, defKey(['q', q.vhost, q.name]), this.values.encode({ t: 'q', r: q }));
  }

  removeQueue(vhost: string, name: string): void {
    this.write(this.dbs.defs, defKey(['q', vhost, name]), undefined);
    const qs = this.queues.get(vhost)?.get(name);
    if (qs === undefined) return;
    // One write removes the queue's entries logically (format.ts); the range goes after commit.
    const t = this.write(this.dbs.qids, defKey([vhost, name]), undefined);
    this.queues.get(vhost)!.delete(name);
    qs.overlay = undefined;
    t.touched.push(this, qs.qid, undefined);
  }

  private bindingKey(b: BindingRecord): string {
    return defKey(['b', b.vhost, b.source, b.destinationKind, b.destination, b.bindingKey, canonical(b.args)]);
  }

  putBinding(b: BindingRecord): void {
    this.write(this.dbs.defs, this.bindingKey(b), this.values.encode({ t: 'b', r: b }));
  }

  removeBinding(b: BindingRecord): void {
    this.write(this.dbs.defs, this.bindingKey(b), undefined);
  }

  putRetained(vhost: string, routingKey: string, message: MessageRecord): void {
    const v = this.values.encode([vhost, routingKey, encodeMessage(message)]);
    this.write(this.dbs.retained, defKey([vhost, routingKey]), v);
  }

  removeRetained(vhost: string, routingKey: string): void {
    this.write(this.dbs.retained, defKey([vhost, routingKey]), undefined);
  }

  putRecord(namespace: string, key: string, value: StoredValue | undefined): void {
    const k = defKey([namespace, key]);
    this.write(this.dbs.records, k, value === undefined ? undefined : this.values.encode([namespace, key, value]));
  }

  // ----------------------------------------------------------------------------------------
  // Queue entries

  private queueMap(vhost: string): Map<string, QueueState> {
    let m = this.queues.get(vhost);
    if (m === undefined) this.queues.set(vhost, (m = new Map()));
    return m;
  }

  private writeQid(qs: QueueState): Txn {
    qs.seqFloor = qs.nextSeq;
    const v = this.values.encode([qs.vhost, qs.name, qs.qid, qs.nextSeq]);
    return this.write(this.dbs.qids, defKey([qs.vhost, qs.name]), v);
  }

  private queueFor(vhost: string, name: string): QueueState {
    const m = this.queueMap(vhost);
    let qs = m.get(name);
    if (qs === undefined) {
      qs = { vhost, name, qid: this.nextQid++, count: 0, bytes: 0, nextSeq: 0, seqFloor: 0, overlay: undefined };
      m.set(name, qs);
      this.writeQid(qs);
    }
    return qs;
  }

  private track(t: Txn, qs: QueueState, seq: number, p: Pending): void {
    if (qs.overlay === undefined) qs.overlay = new Map();
    qs.overlay.set(seq, p);
    t.touched.push(qs, seq, p);
  }

  /** The body length of the entry at seq if it exists (pending writes first), else -1. */
  private entrySize(qs: QueueState, seq: number): number {
    const p = qs.overlay?.get(seq) as Pending | undefined;
    if (p !== undefined && p.kind !== DELIVERY) return p.kind === PUT ? p.entry!.message.body.length : -1;
    const bytes = this.dbs.entries.getBinaryFast([qs.qid, seq]);
    if (bytes === undefined) return -1;
    const h = entryHeader(bytes);
    if (h instanceof Undecodable) {
      throw new StoreError(
        `store data file ${this.file}: queue entry ${JSON.stringify([qs.vhost, qs.name, seq])} cannot be decoded (${h.reason})`,
      );
    }
    return h.bodyLength;
  }

  putEntry(vhost: string, queue: string, entry: QueueEntry): void {
    const qs = this.queueFor(vhost, queue);
    const seq = entry.seq;
    if (seq < qs.nextSeq) {
      // Not an append: an overwrite must not count twice, nor keep an old delivery row.
      const old = this.entrySize(qs, seq);
      if (old >= 0) {
        qs.count--;
        qs.bytes -= old;
      }
      this.write(this.dbs.delivery, [qs.qid, seq], undefined);
    } else qs.nextSeq = seq + 1;
    const t = this.write(this.dbs.entries, [qs.qid, seq], encodeEntry(this.codec, entry));
    qs.count++;
    qs.bytes += entry.message.body.length;
    this.track(t, qs, seq, new Pending(PUT, entry, entry.deliveryCount, entry.tag));
  }

  markDelivered(vhost: string, queue: string, seq: number, deliveryCount: number, tag?: StoredValue): void {
    const qs = this.queues.get(vhost)?.get(queue);
    if (qs === undefined) return;
    const prev = qs.overlay?.get(seq) as Pending | undefined;
    if (prev !== undefined && prev.kind === REMOVED) return;
    const t = this.write(this.dbs.delivery, [qs.qid, seq], this.values.encode([deliveryCount, tag]));
    const p =
      prev !== undefined && prev.kind === PUT
        ? new Pending(PUT, { ...prev.entry!, delivered: true, deliveryCount, tag }, deliveryCount, tag)
        : new Pending(DELIVERY, undefined, deliveryCount, tag);
    this.track(t, qs, seq, p);
  }

  removeEntry(vhost: string, queue: string, seq: number): void {
    const qs = this.queues.get(vhost)?.get(queue);
    if (qs === undefined) return;
    const size = this.entrySize(qs, seq);
    if (size < 0) return;
    qs.count--;
    qs.bytes -= size;
    this.write(this.dbs.delivery, [qs.qid, seq], undefined);
    const t = this.write(this.dbs.entries, [qs.qid, seq], undefined);
    this.track(t, qs, seq, new Pending(REMOVED, undefined, 0, undefined));
  }

  queueStats(vhost: string, queue: string): QueueStats {
    const qs = this.queues.get(vhost)?.get(queue);
    if (qs === undefined) return EMPTY_STATS;
    return { count: qs.count, bytes: qs.bytes, nextSeq: qs.nextSeq };
  }

  readEntries(vhost: string, queue: string, afterSeq: number, limit: number): QueueEntry[] {
    const out: QueueEntry[] = [];
    const qs = this.queues.get(vhost)?.get(queue);
    if (qs === undefined || limit <= 0) return out;
    const qid = qs.qid;
    const overlay = qs.overlay as Map<number, Pending> | undefined;
    // Pending puts after afterSeq, in order (usually none: only this turn's writes are pending).
    let puts: number[] | undefined;
    if (overlay !== undefined && overlay.size > 0) {
      for (const [seq, p] of overlay) if (p.kind === PUT && seq > afterSeq) (puts ??= []).push(seq);
      puts?.sort((a, b) => a - b);
    }
    let pi = 0;
    const takePut = (): void => {
      out.push((overlay!.get(puts![pi++]!) as Pending).entry!);
    };
    // Indexes in `out` of entries read from disk without a pending delivery (merged below).
    const fromDisk: number[] = [];
    for (const { key, value } of this.dbs.entries.getRange({ start: [qid, afterSeq], end: [qid + 1] })) {
      const seq = (key as [number, number])[1];
      if (seq <= afterSeq) continue;
      while (puts !== undefined && pi < puts.length && puts[pi]! < seq && out.length < limit) takePut();
      if (out.length >= limit) break;
      const p = overlay?.get(seq);
      if (p !== undefined && p.kind !== DELIVERY) {
        if (p.kind === PUT) takePut(); // overwritten this turn: puts[pi] === seq
        if (out.length >= limit) break;
        continue;
      }
      if (value instanceof Undecodable) {
        throw new StoreError(
          `store data file ${this.file}: queue entry ${JSON.stringify([vhost, queue, seq])} cannot be decoded (${value.reason})`,
        );
      }
      value.seq = seq;
      let e: QueueEntry = value;
      if (p !== undefined) e = { ...e, delivered: true, deliveryCount: p.deliveryCount, tag: p.tag };
      else fromDisk.push(out.length);
      out.push(e);
      if (out.length >= limit) break;
    }
    while (puts !== undefined && pi < puts.length && out.length < limit) takePut();
    if (fromDisk.length > 0) this.mergeDelivery(qs, out, fromDisk);
    return out;
  }

  /** Applies committed delivery rows to entries read from disk: one range scan, not a get each. */
  private mergeDelivery(qs: QueueState, out: QueueEntry[], fromDisk: number[]): void {
    const first = out[fromDisk[0]!]!.seq;
    const last = out[fromDisk[fromDisk.length - 1]!]!.seq;
    let rows: Map<number, [number, StoredValue | undefined]> | undefined;
    for (const { key, value } of this.dbs.delivery.getRange({ start: [qs.qid, first], end: [qs.qid, last + 1] })) {
      const v = decodeAt(this.file, this.values, 'delivery', key, value);
      if (!Array.isArray(v) || v.length !== 2) {
        throw new StoreError(
          `store data file ${this.file}: delivery row ${JSON.stringify(key)} cannot be decoded (unexpected shape)`,
        );
      }
      (rows ??= new Map()).set((key as [number, number])[1], v as [number, StoredValue | undefined]);
    }
    if (rows === undefined) return;
    for (const i of fromDisk) {
      const e = out[i]!;
      const r = rows.get(e.seq);
      if (r !== undefined) out[i] = { ...e, delivered: true, deliveryCount: r[0], tag: r[1] };
    }
  }

  // ----------------------------------------------------------------------------------------
  // Commit and background work

  private committed(t: Txn): void {
    const a = t.touched;
    for (let i = 0; i < a.length; i += 3) {
      const owner = a[i];
      if (owner === this) {
        // removeQueue committed: its entry range is now garbage.
        this.cleanups.add(a[i + 1] as number);
        this.startCleanup();
        continue;
      }
      const qs = owner as QueueState;
      if (qs.overlay !== undefined && qs.overlay.get(a[i + 1] as number) === a[i + 2]) {
        qs.overlay.delete(a[i + 1] as number);
      }
    }
  }

  private startCleanup(): void {
    if (this.cleanupRunning !== undefined || this.cleanups.size === 0 || this.env === undefined || this.closing) {
      return;
    }
    this.cleanupRunning = this.runCleanup().finally(() => {
      this.cleanupRunning = undefined;
      this.startCleanup();
    });
  }

  /** Deletes removed queues' entry and delivery ranges, CLEANUP_CHUNK rows per turn. */
  private async runCleanup(): Promise<void> {
    for (const qid of this.cleanups) {
      for (const db of [this.dbs.entries, this.dbs.delivery]) {
        for (;;) {
          let n = 0;
          for (const key of db.getKeys({ start: [qid], end: [qid + 1], limit: CLEANUP_CHUNK })) {
            this.gc.track(db.remove(key));
            n++;
          }
          if (n === 0) break;
          // Wait for this chunk to commit: the next getKeys must not see these rows again.
          await new Promise<void>((resolve) => this.gc.whenDurable(() => resolve()));
          if (this.gc.error !== undefined) return;
          if (n < CLEANUP_CHUNK) break;
        }
      }
      this.cleanups.delete(qid);
    }
  }
}

export function createEmbeddedStore(opts: EmbeddedStoreOptions): EmbeddedStore {
  return new EmbeddedStore(opts);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
