/**
 * Crash test (issue 5): amqplib publishers with publisher confirms put persistent messages into
 * a durable queue as fast as confirms allow; the broker is SIGKILLed at a random moment (seeded:
 * CRASH_SEED repeats a run), restarted on the same data directory, and the queue is consumed.
 * Every message whose confirm arrived must be delivered at least once (lost = 0). Duplicates
 * and delivered-but-unconfirmed messages are allowed and printed.
 *
 * Several rounds share the data directory; after each restart only part of the queue is
 * consumed, so older messages are carried over through several crashes. A consumer that never
 * acks holds some messages at each kill; when one of them comes back after the restart it must
 * have redelivered = true, provided its hand-out was provably durable: a confirm arrived for a
 * message published after the delivery was received (stores commit in order).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import {
  type BraidProcess,
  crashSeed,
  killAllBraids,
  removeDir,
  seededRandom,
  sleep,
  startBraidProcess,
  tempDir,
} from '../helpers/braid-process.js';

const QUEUE = 'crash-q';
const ROUNDS = 4;
const PUBLISHERS = 2;
const WINDOW = 1000;

const seed = crashSeed();
const random = seededRandom(seed);
const root = tempDir('braid-crash-amqp-');
const dataDir = join(root, 'data');
after(async () => {
  await killAllBraids();
  removeDir(root);
});

interface Receipt {
  incarnation: number;
  /** The next sequence number to be published when this delivery arrived. */
  proofSeq: number;
}

/** What the clients saw, over every round. */
class Ledger {
  nextSeq = 1;
  incarnation = 0;
  readonly confirmed = new Set<number>();
  readonly nacked = new Set<number>();
  /** Highest confirmed sequence number per broker incarnation. */
  readonly maxConfirmed = new Map<number, number>();
  readonly deliveries = new Map<number, number>();
  readonly acked = new Map<number, number>();
  readonly lastReceipt = new Map<number, Receipt>();
  /** Deliveries that should have had redelivered = true. */
  readonly missingRedelivered: string[] = [];
  spuriousRedelivered = 0;
  phantoms = 0;

  confirm(seq: number): void {
    this.confirmed.add(seq);
    const m = this.maxConfirmed.get(this.incarnation) ?? 0;
    if (seq > m) this.maxConfirmed.set(this.incarnation, seq);
  }

  /** Records a delivery; returns its sequence number. */
  receive(m: ConsumeMessage, who: string): number {
    const seq = Number(m.content.toString());
    if (!Number.isInteger(seq) || seq <= 0 || seq >= this.nextSeq) {
      this.phantoms++;
      return -1;
    }
    this.deliveries.set(seq, (this.deliveries.get(seq) ?? 0) + 1);
    const prev = this.lastReceipt.get(seq);
    if (prev) {
      const proven =
        prev.incarnation === this.incarnation || (this.maxConfirmed.get(prev.incarnation) ?? 0) >= prev.proofSeq;
      if (proven && !m.fields.redelivered && this.missingRedelivered.length < 1000) {
        this.missingRedelivered.push(
          `${seq} to ${who} in incarnation ${this.incarnation}, delivered before in ${prev.incarnation}`,
        );
      }
    } else if (m.fields.redelivered) {
      this.spuriousRedelivered++;
    }
    this.lastReceipt.set(seq, { incarnation: this.incarnation, proofSeq: this.nextSeq });
    return seq;
  }

  ack(seq: number): void {
    this.acked.set(seq, (this.acked.get(seq) ?? 0) + 1);
  }

  /** Confirmed and not yet consumed with an ack: what the queue must still hold. */
  outstanding(): number {
    let n = 0;
    for (const s of this.confirmed) if (!this.acked.has(s)) n++;
    return n;
  }
}

async function connect(b: BraidProcess): Promise<ChannelModel> {
  const conn = await amqp.connect(b.amqpUrl);
  conn.on('error', () => {});
  return conn;
}

/** Ready messages in the queue, by passive declare. */
async function depth(conn: ChannelModel): Promise<number> {
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  const n = (await ch.checkQueue(QUEUE)).messageCount;
  await ch.close();
  return n;
}

/**
 * Consumes with acks: `limit` messages then closes the channel (the prefetched rest goes back
 * to the queue), or, without a limit, until the queue is empty and quiet.
 */
async function drain(b: BraidProcess, L: Ledger, limit?: number): Promise<number> {
  const conn = await connect(b);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    await ch.prefetch(500);
    let acked = 0;
    let lastDelivery = Date.now();
    const { consumerTag } = await ch.consume(
      QUEUE,
      (m) => {
        if (!m) return;
        lastDelivery = Date.now();
        const seq = L.receive(m, 'the draining consumer');
        if (limit !== undefined && acked >= limit) return; // not acked: back to the queue on close
        ch.ack(m);
        acked++;
        if (seq > 0) L.ack(seq);
      },
      { noAck: false },
    );
    const deadline = Date.now() + 90_000;
    for (;;) {
      await sleep(200);
      if (Date.now() > deadline) throw new Error(`drain: still receiving after 90 s (${acked} acked)`);
      if (limit !== undefined && acked >= limit) break;
      if (Date.now() - lastDelivery < 300) continue;
      if ((await depth(conn)) > 0) continue;
      await sleep(300);
      if (Date.now() - lastDelivery >= 500) break;
    }
    await ch.cancel(consumerTag);
    await ch.close();
    return acked;
  } finally {
    await conn.close().catch(() => {});
  }
}

/** One publisher: persistent messages, at most WINDOW unconfirmed, until `stop()` or the kill. */
async function publisher(b: BraidProcess, L: Ledger): Promise<{ stop: () => void; conn: ChannelModel }> {
  const conn = await connect(b);
  const ch: ConfirmChannel = await conn.createConfirmChannel();
  ch.on('error', () => {});
  let running = true;
  let outstanding = 0;
  let closed = false;
  conn.on('close', () => {
    closed = true;
  });
  const pump = (): void => {
    while (running && !closed && outstanding < WINDOW) {
      const seq = L.nextSeq++;
      outstanding++;
      try {
        ch.publish('', QUEUE, Buffer.from(String(seq)), { persistent: true }, (err) => {
          outstanding--;
          if (err) L.nacked.add(seq);
          else L.confirm(seq);
          pump();
        });
      } catch {
        closed = true;
      }
    }
  };
  pump();
  return {
    conn,
    stop: () => {
      running = false;
    },
  };
}

test('AMQP: nothing confirmed is lost when the broker is SIGKILLed under load', { timeout: 200_000 }, async (t) => {
  t.diagnostic(`seed ${seed} (CRASH_SEED=${seed} repeats this run), data dir ${dataDir}`);
  const L = new Ledger();
  for (let round = 1; round <= ROUNDS + 1; round++) {
    const b = await startBraidProcess({ dataDir });
    L.incarnation++;
    const setup = await connect(b);
    const sch = await setup.createChannel();
    await sch.assertQueue(QUEUE, { durable: true });
    await setup.close();

    if (round > 1) {
      const conn = await connect(b);
      const found = await depth(conn);
      await conn.close();
      const expected = L.outstanding();
      t.diagnostic(`after restart ${round - 1}: the queue holds ${found}; confirmed and not consumed: ${expected}`);
      assert.ok(found >= expected, `the queue lost messages: ${found} < ${expected} confirmed and not consumed`);
      const last = round === ROUNDS + 1;
      const limit = last ? undefined : Math.floor(found / 2);
      const acked = await drain(b, L, limit);
      t.diagnostic(`  consumed ${acked}${last ? ' (everything)' : ' (half, the rest carries over)'}`);
      if (last) {
        await b.stop();
        break;
      }
    }

    // Load: publishers, and a consumer that never acks, until the kill.
    const before = { confirmed: L.confirmed.size, nacked: L.nacked.size, next: L.nextSeq };
    const holder = await connect(b);
    const hch: Channel = await holder.createChannel();
    hch.on('error', () => {});
    await hch.prefetch(100);
    let held = 0;
    await hch.consume(
      QUEUE,
      (m) => {
        if (m && L.receive(m, 'the unacking consumer') > 0) held++;
      },
      { noAck: false },
    );
    const pubs = await Promise.all(Array.from({ length: PUBLISHERS }, () => publisher(b, L)));
    const killAt = 300 + Math.floor(random() * 1200);
    await sleep(killAt);
    await b.kill();
    for (const p of pubs) p.stop();
    await Promise.all([...pubs.map((p) => p.conn), holder].map((c) => c.close().catch(() => {})));
    t.diagnostic(
      `round ${round}: killed at ${killAt} ms; published ${L.nextSeq - before.next}, confirmed ` +
        `${L.confirmed.size - before.confirmed}, nacked/failed ${L.nacked.size - before.nacked}, held unacked ${held}`,
    );
  }

  let lost = 0;
  const lostSample: number[] = [];
  for (const s of L.confirmed) {
    if (!L.acked.has(s)) {
      lost++;
      if (lostSample.length < 10) lostSample.push(s);
    }
  }
  let duplicated = 0;
  for (const n of L.acked.values()) if (n > 1) duplicated++;
  let unconfirmedDelivered = 0;
  for (const s of L.deliveries.keys()) if (!L.confirmed.has(s)) unconfirmedDelivered++;
  let redeliveries = 0;
  for (const n of L.deliveries.values()) redeliveries += n - 1;
  t.diagnostic(
    `total: published ${L.nextSeq - 1}, acknowledged ${L.confirmed.size}, delivered ${L.deliveries.size} ` +
      `(${redeliveries} redeliveries), lost ${lost}, duplicated ${duplicated}, delivered unacknowledged ` +
      `${unconfirmedDelivered}, redelivered flag missing ${L.missingRedelivered.length}, redelivered ` +
      `flag on a first delivery ${L.spuriousRedelivered}, unknown bodies ${L.phantoms}`,
  );
  assert.equal(L.phantoms, 0, 'deliveries whose body is no published sequence number');
  assert.equal(lost, 0, `confirmed messages never delivered, e.g. ${lostSample.join(', ')}`);
  assert.deepEqual(L.missingRedelivered.slice(0, 10), [], 'deliveries handed out before must be redelivered = true');
  assert.ok(L.confirmed.size > 0, 'some messages were confirmed');
});
