/**
 * Crash test (issue 5): an mqtt.js publisher sends QoS 1 messages as fast as PUBACKs allow; the
 * broker is SIGKILLed at a random moment (seeded: CRASH_SEED repeats a run) and restarted on the
 * same data directory. Every PUBACKed message must reach its durable target at least once:
 *
 * 1. a persistent MQTT session (MQTT 5, Session Expiry Interval 3600) subscribed to `crash/#`
 *    at QoS 1, offline during the load in odd rounds and online (PUBACKing) in even ones, so
 *    that deliveries are in flight at the kill and must be resent after the restart;
 * 2. a durable AMQP queue bound to amq.topic with `crash.#`, consumed with amqplib.
 *
 * Lost (PUBACKed, never received) must be 0; duplicates are allowed and printed.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import amqp from 'amqplib';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
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

const ROUNDS = 3;
/** Unacknowledged QoS 1 publishes at a time (below the broker's Receive Maximum of 1024). */
const WINDOW = 500;
const SUB_ID = 'crash-sub';

const seed = crashSeed();
const random = seededRandom(seed);
const root = tempDir('braid-crash-mqtt-');
after(async () => {
  await killAllBraids();
  removeDir(root);
});

type OnMessage = (topic: string, payload: Buffer, packet: IPublishPacket) => void;

/**
 * Connects; resolves with the client and the CONNACK's session present flag. `onMessage` is
 * attached before the CONNACK: a resumed session's messages arrive in the same read.
 */
function connect(
  url: string,
  opts: IClientOptions,
  onMessage?: OnMessage,
): Promise<{ c: MqttClient; sessionPresent: boolean }> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...opts });
  if (onMessage) c.on('message', onMessage);
  return new Promise((resolve, reject) => {
    c.once('connect', (connack) => {
      c.removeAllListeners('error');
      c.on('error', () => {});
      resolve({ c, sessionPresent: connack.sessionPresent });
    });
    c.once('error', reject);
    c.once('close', () => reject(new Error(`${opts.clientId ?? 'client'}: closed before CONNACK`)));
  });
}

const end = (c: MqttClient | undefined, force = false): Promise<void> =>
  c ? c.endAsync(force).catch(() => {}) : Promise.resolve();

class Ledger {
  nextSeq = 1;
  readonly pubacked = new Set<number>();
  failed = 0;
  readonly received = new Map<number, number>();
  dupOnFirst = 0;
  phantoms = 0;
  /** Deliveries below QoS 1 (published QoS 1, subscribed QoS 1: the session must keep QoS 1). */
  downgraded = 0;
  /** The first sequence number of each round's load. */
  readonly roundStarts: Array<[round: number, first: number]> = [];
  lostRuns = '';

  roundOf(seq: number): number {
    let r = 0;
    for (const [round, first] of this.roundStarts) if (seq >= first) r = round;
    return r;
  }

  receive(payload: Buffer, dup: boolean, qos = 1): void {
    if (qos < 1) this.downgraded++;
    const seq = Number(payload.toString());
    if (!Number.isInteger(seq) || seq <= 0 || seq >= this.nextSeq) {
      this.phantoms++;
      return;
    }
    const n = this.received.get(seq) ?? 0;
    if (n === 0 && dup) this.dupOnFirst++;
    this.received.set(seq, n + 1);
  }

  summary(): { lost: number; sample: number[]; byRound: string; duplicated: number; unacked: number } {
    let lost = 0;
    const sample: number[] = [];
    const perRound = new Map<number, number>();
    for (const s of this.pubacked) {
      if (!this.received.has(s)) {
        lost++;
        if (sample.length < 10) sample.push(s);
        const r = this.roundOf(s);
        perRound.set(r, (perRound.get(r) ?? 0) + 1);
      }
    }
    const byRound = [...perRound].map(([r, n]) => `round ${r}: ${n}`).join(', ');
    // Contiguous runs of lost sequence numbers, and where each round started, for diagnosis.
    const lostSeqs = [...this.pubacked].filter((x) => !this.received.has(x)).sort((x, y) => x - y);
    const runs: string[] = [];
    for (let i = 0; i < lostSeqs.length && runs.length < 8; ) {
      let j = i;
      while (j + 1 < lostSeqs.length && lostSeqs[j + 1]! <= lostSeqs[j]! + 2) j++;
      runs.push(`${lostSeqs[i]}..${lostSeqs[j]}`);
      i = j + 1;
    }
    this.lostRuns = runs.join(' ');
    let duplicated = 0;
    let unacked = 0;
    for (const [s, n] of this.received) {
      if (n > 1) duplicated++;
      if (!this.pubacked.has(s)) unacked++;
    }
    return { lost, sample, byRound, duplicated, unacked };
  }
}

/** Publishes `crash/load` QoS 1 (payload = sequence number) until the kill; returns the client. */
async function load(
  b: BraidProcess,
  L: Ledger,
  clientId: string,
  protocolVersion: 4 | 5,
): Promise<{ c: MqttClient; stop: () => void }> {
  const { c } = await connect(b.mqttUrl, { clientId, protocolVersion, clean: true });
  let running = true;
  let outstanding = 0;
  let closed = false;
  c.on('close', () => {
    closed = true;
  });
  const pump = (): void => {
    while (running && !closed && outstanding < WINDOW) {
      const seq = L.nextSeq++;
      outstanding++;
      c.publish('crash/load', String(seq), { qos: 1 }, (err) => {
        outstanding--;
        if (err) L.failed++;
        else L.pubacked.add(seq);
        pump();
      });
    }
  };
  pump();
  return {
    c,
    stop: () => {
      running = false;
    },
  };
}

/** Loads until a SIGKILL at a random moment; the publisher speaks MQTT 5 in odd rounds, 3.1.1 in even ones. */
async function untilKill(t: { diagnostic: (s: string) => void }, b: BraidProcess, L: Ledger, round: number) {
  const before = { next: L.nextSeq, acked: L.pubacked.size, failed: L.failed };
  L.roundStarts.push([round, L.nextSeq]);
  const version = round % 2 === 1 ? 5 : 4;
  const pub = await load(b, L, `crash-pub-${round}`, version);
  const killAt = 300 + Math.floor(random() * 1200);
  await sleep(killAt);
  await b.kill();
  pub.stop();
  await end(pub.c, true);
  t.diagnostic(
    `round ${round} (MQTT ${version === 5 ? '5.0' : '3.1.1'} publisher): killed at ${killAt} ms; published ${L.nextSeq - before.next}, PUBACKed ` +
      `${L.pubacked.size - before.acked}, failed ${L.failed - before.failed}`,
  );
}

function report(t: { diagnostic: (s: string) => void }, L: Ledger): void {
  const s = L.summary();
  t.diagnostic(
    `total: published ${L.nextSeq - 1}, acknowledged ${L.pubacked.size}, delivered ${L.received.size}, ` +
      `lost ${s.lost}${s.byRound ? ` (${s.byRound})` : ''}, duplicated ${s.duplicated}, delivered unacknowledged ${s.unacked}, DUP on a first ` +
      `delivery ${L.dupOnFirst}, delivered at QoS 0 ${L.downgraded}, unknown payloads ${L.phantoms}`,
  );
  assert.equal(L.downgraded, 0, 'QoS 1 messages delivered at QoS 0 (no PUBACK: lost if the client fails)');
  assert.equal(L.phantoms, 0, 'deliveries whose payload is no published sequence number');
  assert.equal(s.lost, 0, `PUBACKed messages never delivered, e.g. ${s.sample.join(', ')}`);
  assert.ok(L.pubacked.size > 0, 'some messages were PUBACKed');
}

test('MQTT QoS 1 into a persistent session: nothing PUBACKed is lost at SIGKILL', { timeout: 120_000 }, async (t) => {
  const dataDir = join(root, 'session');
  t.diagnostic(`seed ${seed} (CRASH_SEED=${seed} repeats this run)`);
  const L = new Ledger();
  const subOpts: IClientOptions = {
    clientId: SUB_ID,
    protocolVersion: 5,
    clean: false,
    properties: { sessionExpiryInterval: 3600 },
  };
  let sentinels = 0;
  for (let round = 1; round <= ROUNDS + 1; round++) {
    const b = await startBraidProcess({ dataDir });
    let sub: MqttClient | undefined;
    if (round === 1) {
      const first = await connect(b.mqttUrl, subOpts);
      await first.c.subscribeAsync('crash/#', { qos: 1 });
      await end(first.c);
    } else {
      // Reconnect the session; a sentinel published now arrives after everything queued.
      const sentinel = `sentinel-${++sentinels}`;
      let seen = false;
      const before = L.received.size;
      const again = await connect(b.mqttUrl, subOpts, (topic, payload, packet) => {
        if (topic === 'crash/sentinel') {
          if (payload.toString() === sentinel) seen = true;
        } else L.receive(payload, packet.dup, packet.qos);
      });
      sub = again.c;
      assert.ok(again.sessionPresent, `round ${round}: the persistent session did not survive the restart`);
      const p = await connect(b.mqttUrl, { clientId: `crash-sentinel-${round}`, protocolVersion: 4 });
      await p.c.publishAsync('crash/sentinel', sentinel, { qos: 1 });
      await end(p.c);
      const deadline = Date.now() + 60_000;
      while (!seen) {
        if (Date.now() > deadline) assert.fail(`round ${round}: the sentinel did not arrive within 60 s`);
        await sleep(50);
      }
      await sleep(300);
      t.diagnostic(`after restart ${round - 1}: received ${L.received.size - before} new messages`);
      const lostSoFar = L.summary();
      if (lostSoFar.lost > 0) {
        const starts = L.roundStarts.map(([r, first]) => `round ${r} from ${first}`).join(', ');
        t.diagnostic(
          `  PUBACKed and not received so far: ${lostSoFar.lost} (${lostSoFar.byRound}); runs ${L.lostRuns}; ${starts}`,
        );
      }
      if (round === ROUNDS + 1) {
        await end(sub);
        await b.stop();
        break;
      }
      // Odd rounds: offline during the load; even rounds: online, with deliveries in flight.
      if (round % 2 === 1) {
        await end(sub);
        sub = undefined;
      }
    }
    const online = L.received.size;
    await untilKill(t, b, L, round);
    await end(sub, true);
    if (sub) t.diagnostic(`  the subscriber was online during the load and received ${L.received.size - online}`);
  }
  report(t, L);
});

test('MQTT QoS 1 into a durable AMQP queue: nothing PUBACKed is lost at SIGKILL', { timeout: 120_000 }, async (t) => {
  const dataDir = join(root, 'queue');
  const queue = 'crash-mq';
  t.diagnostic(`seed ${seed} (CRASH_SEED=${seed} repeats this run)`);
  const L = new Ledger();
  for (let round = 1; round <= ROUNDS + 1; round++) {
    const b = await startBraidProcess({ dataDir });
    const conn = await amqp.connect(b.amqpUrl);
    conn.on('error', () => {});
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    if (round === 1) {
      await ch.assertQueue(queue, { durable: true });
      await ch.bindQueue(queue, 'amq.topic', 'crash.#');
    } else {
      const found = (await ch.checkQueue(queue)).messageCount;
      let missing = 0;
      for (const s of L.pubacked) if (!L.received.has(s)) missing++;
      t.diagnostic(`after restart ${round - 1}: the queue holds ${found}; PUBACKed and not consumed: ${missing}`);
      await ch.prefetch(500);
      let last = Date.now();
      await ch.consume(
        queue,
        (m) => {
          if (!m) return;
          last = Date.now();
          L.receive(m.content, m.fields.redelivered);
          ch.ack(m);
        },
        { noAck: false },
      );
      const deadline = Date.now() + 60_000;
      for (;;) {
        await sleep(200);
        if (Date.now() > deadline) assert.fail(`round ${round}: still draining after 60 s`);
        if (Date.now() - last < 300) continue;
        const probe = await conn.createChannel();
        const n = (await probe.checkQueue(queue)).messageCount;
        await probe.close();
        if (n === 0 && Date.now() - last >= 300) break;
      }
      if (round === ROUNDS + 1) {
        await conn.close();
        await b.stop();
        break;
      }
    }
    await conn.close().catch(() => {});
    await untilKill(t, b, L, round);
  }
  report(t, L);
});
