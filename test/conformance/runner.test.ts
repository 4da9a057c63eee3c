/**
 * Broker conformance as data (STYLE.md habit 12, after Mosquitto's test/broker/data/*.json and
 * msg_sequence_test.py): every file in test/conformance/data is one table of hex conversations
 * run against one broker started with the file's `broker` config.
 *
 * A table:
 *   { "comment": "...", "broker": { config overrides }, "connack": { "3": hex, "4": hex, "5": hex },
 *     "tests": [ { "name": "[MQTT-x.y.z-n] ...", "ver": 3 | 4 | 5, "connect": bool,
 *                  "msgs": [ step, ... ], "expect_disconnect": bool (default true),
 *                  "log": "regex" | null } ] }
 *
 * Steps:
 *   { "type": "send", "payload": hex }           bytes written as they are
 *   { "type": "recv", "payload": hex }           exactly these bytes next; "??" matches any byte
 *   { "type": "recv", "prefix": hex }            one whole packet whose first bytes are these
 *   { "type": "recv", "one_of": [hex, ...] }     one whole packet equal to one of these
 *
 * Each entry gets its own socket and a client id of its own (a fresh session). With "connect",
 * the runner first sends a CONNECT of that version (CleanSession 1, keep-alive 60) and expects
 * the table's CONNACK for the version byte for byte. After the last step, an entry that expects
 * a disconnect must see the server close the socket within 3 s with nothing more sent; one that
 * does not must still answer a PINGREQ. Then, after every entry, a client connected since the
 * table started must still get its PINGRESP (bad input disturbs nobody else), and an entry that
 * ends in a close must have left a log line matching "log" (default: "protocol violation").
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { BraidConfigInput } from '../../src/index.js';
import { startBroker, type TestBroker } from '../helpers/broker.js';
import { vbi } from '../helpers/raw-mqtt.js';

type Version = 3 | 4 | 5;

interface Step {
  type: 'send' | 'recv';
  payload?: string;
  prefix?: string;
  one_of?: string[];
  comment?: string;
}

interface Entry {
  name: string;
  ver: Version;
  connect: boolean;
  msgs: Step[];
  expect_disconnect?: boolean;
  log?: string | null;
  comment?: string;
}

interface Table {
  comment?: string;
  broker?: BraidConfigInput;
  connack: Record<string, string>;
  tests: Entry[];
}

const STEP_TIMEOUT_MS = 3000;
const CLOSE_TIMEOUT_MS = 3000;
const DEFAULT_LOG = 'protocol violation';

/** The data lives in the source tree; the compiled test runs from dist/test or .build/x/test. */
function dataDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return join(dir, 'test', 'conformance', 'data');
}

// ---- hex -----------------------------------------------------------------------------------

/** Parses "30 0a 00 05 ..." (any whitespace, case-insensitive); `wild` allows "??" bytes (null). */
function parseHex(text: string, wild: boolean): Array<number | null> {
  const s = text.replace(/\s+/g, '').toLowerCase();
  if (s.length % 2 !== 0) throw new Error(`odd number of hex digits in ${JSON.stringify(text)}`);
  const out: Array<number | null> = [];
  for (let i = 0; i < s.length; i += 2) {
    const pair = s.slice(i, i + 2);
    if (pair === '??' && wild) out.push(null);
    else if (/^[0-9a-f]{2}$/.test(pair)) out.push(Number.parseInt(pair, 16));
    else throw new Error(`bad hex byte ${JSON.stringify(pair)} in ${JSON.stringify(text)}`);
  }
  return out;
}

function bytesOf(text: string): Buffer {
  return Buffer.from(parseHex(text, false) as number[]);
}

const show = (b: Uint8Array): string =>
  Buffer.from(b)
    .toString('hex')
    .replace(/(..)(?=.)/g, '$1 ');

/** The expected pattern written out with the actual byte wherever it has "??". */
function showPattern(pattern: Array<number | null>, actual: Uint8Array): string {
  return pattern
    .map((b, i) => (b === null ? (actual[i] ?? 0).toString(16).padStart(2, '0') : b.toString(16).padStart(2, '0')))
    .join(' ');
}

// ---- a raw MQTT socket ------------------------------------------------------------------------

class RawClient {
  private buf = Buffer.alloc(0);
  private closed = false;
  private wake: (() => void) | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    const onGone = () => {
      this.closed = true;
      this.wake?.();
    };
    socket.on('end', onGone);
    socket.on('close', onGone);
    // ECONNRESET / EPIPE after the server closed: the steps that follow report it.
    socket.on('error', onGone);
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.setNoDelay(true);
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new RawClient(socket));
      });
      socket.once('error', reject);
    });
  }

  write(bytes: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) {
        resolve();
        return;
      }
      this.socket.write(bytes, () => resolve());
    });
  }

  /** Waits until `done()` holds, the peer closes, or the time is up; returns whether it holds. */
  private async until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (this.closed) return done();
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return true;
  }

  private take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  async read(n: number, what: string): Promise<Buffer> {
    if (!(await this.until(() => this.buf.length >= n, STEP_TIMEOUT_MS))) {
      const state = this.closed ? 'the server closed the connection' : `nothing more came in ${STEP_TIMEOUT_MS} ms`;
      assert.fail(`${what}: ${state} after [${show(this.buf)}]; expected ${n} bytes`);
    }
    return this.take(n);
  }

  /** One whole MQTT packet, framed by its Remaining Length. */
  async readPacket(what: string): Promise<Buffer> {
    const headerLength = (): number => {
      for (let i = 1; i < 5; i++) {
        if (this.buf.length <= i) return -1;
        if ((this.buf[i]! & 0x80) === 0) return i + 1;
      }
      return 5; // a broken header: framed as 5 bytes, the comparison then fails
    };
    const total = (): number => {
      const h = headerLength();
      if (h < 0) return -1;
      let len = 0;
      for (let i = h - 1; i >= 1; i--) len = len * 128 + (this.buf[i]! & 0x7f);
      return h + len;
    };
    if (!(await this.until(() => total() >= 0 && this.buf.length >= total(), STEP_TIMEOUT_MS))) {
      const state = this.closed ? 'the server closed the connection' : `nothing more came in ${STEP_TIMEOUT_MS} ms`;
      assert.fail(`${what}: ${state} after [${show(this.buf)}]; expected a whole packet`);
    }
    return this.take(total());
  }

  /** Waits for the server to close; returns whatever it sent before doing so. */
  async expectClose(what: string): Promise<Buffer> {
    if (!(await this.until(() => false, CLOSE_TIMEOUT_MS)) && !this.closed) {
      assert.fail(`${what}: the server did not close the connection within ${CLOSE_TIMEOUT_MS} ms`);
    }
    return this.take(this.buf.length);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

// ---- packets the runner builds itself --------------------------------------------------------

function utf8Field(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

/** CONNECT with CleanSession 1, keep-alive 60 s and no properties, for protocol level `ver`. */
function defaultConnect(ver: Version, clientId: string): Buffer {
  const body = Buffer.concat([
    utf8Field(ver === 3 ? 'MQIsdp' : 'MQTT'),
    Buffer.from([ver, 0x02, 0x00, 0x3c]),
    ver === 5 ? Buffer.from([0x00]) : Buffer.alloc(0),
    utf8Field(clientId),
  ]);
  return Buffer.concat([Buffer.from([0x10]), vbi(body.length), body]);
}

const PINGREQ = Buffer.from([0xc0, 0x00]);
const DISCONNECT = Buffer.from([0xe0, 0x00]);

// ---- the tables --------------------------------------------------------------------------------

const ENTRY_KEYS = new Set(['name', 'ver', 'connect', 'msgs', 'expect_disconnect', 'log', 'comment']);
const STEP_KEYS = new Set(['type', 'payload', 'prefix', 'one_of', 'comment']);

/** Checks the shape of a table so that a typo in the data fails loudly instead of testing less. */
function loadTable(path: string): Table {
  const table = JSON.parse(readFileSync(path, 'utf8')) as Table;
  assert.ok(Array.isArray(table.tests), `${path}: "tests" must be an array`);
  for (const e of table.tests) {
    const where = `${path}: ${JSON.stringify(e.name)}`;
    for (const k of Object.keys(e)) assert.ok(ENTRY_KEYS.has(k), `${where}: unknown key ${k}`);
    assert.ok([3, 4, 5].includes(e.ver), `${where}: ver must be 3, 4 or 5`);
    assert.equal(typeof e.connect, 'boolean', `${where}: connect must be true or false`);
    if (e.connect) assert.ok(table.connack[String(e.ver)], `${where}: no CONNACK for version ${e.ver}`);
    for (const m of e.msgs) {
      for (const k of Object.keys(m)) assert.ok(STEP_KEYS.has(k), `${where}: unknown step key ${k}`);
      const forms = [m.payload, m.prefix, m.one_of].filter((x) => x !== undefined).length;
      assert.equal(forms, 1, `${where}: a step has exactly one of payload, prefix, one_of`);
      if (m.type === 'send') assert.ok(m.payload !== undefined, `${where}: send needs a payload`);
      else assert.equal(m.type, 'recv', `${where}: step type must be send or recv`);
      for (const h of [m.payload, m.prefix, ...(m.one_of ?? [])]) if (h !== undefined) parseHex(h, m.type === 'recv');
    }
  }
  return table;
}

async function runSteps(c: RawClient, e: Entry): Promise<void> {
  for (const [i, m] of e.msgs.entries()) {
    const what = `step ${i + 1} (${m.type}${m.comment ? `: ${m.comment}` : ''})`;
    if (m.type === 'send') {
      await c.write(bytesOf(m.payload!));
    } else if (m.payload !== undefined) {
      const pattern = parseHex(m.payload, true);
      const got = await c.read(pattern.length, what);
      assert.equal(show(got), showPattern(pattern, got), `${what}: wrong bytes`);
    } else if (m.prefix !== undefined) {
      const pattern = parseHex(m.prefix, true);
      const got = await c.readPacket(what);
      assert.ok(got.length >= pattern.length, `${what}: packet [${show(got)}] shorter than the prefix`);
      assert.equal(show(got.subarray(0, pattern.length)), showPattern(pattern, got), `${what}: wrong prefix`);
    } else {
      const got = await c.readPacket(what);
      const options = m.one_of!.map((h) => show(bytesOf(h)));
      assert.ok(options.includes(show(got)), `${what}: got [${show(got)}], expected one of ${options.join(' | ')}`);
    }
  }
}

const dir = dataDir();
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort();

describe('conformance tables', () => {
  it('finds the data files', () => {
    assert.ok(files.length > 0, `no *.json in ${dir}`);
  });
});

for (const file of files) {
  const table = loadTable(join(dir, file));
  const stem = file.replace(/\.json$/, '');

  describe(`conformance ${file}`, () => {
    let tb: TestBroker;
    let bystander: RawClient;

    before(async () => {
      tb = await startBroker(table.broker ?? {});
      // Connected before any entry runs and kept for the whole table.
      bystander = await RawClient.connect(tb.port);
      await bystander.write(defaultConnect(4, `${stem}-bystander`));
      assert.equal(show(await bystander.read(4, 'bystander CONNACK')), '20 02 00 00');
    });

    after(async () => {
      bystander?.destroy();
      await tb?.stop();
    });

    table.tests.forEach((e, index) => {
      it(e.name, { timeout: 20_000 }, async (t) => {
        const expectDisconnect = e.expect_disconnect ?? true;
        const logMark = tb.logs.length;
        const c = await RawClient.connect(tb.port);
        t.after(() => c.destroy());

        if (e.connect) {
          await c.write(defaultConnect(e.ver, `${stem}-${index}`));
          const expected = parseHex(table.connack[String(e.ver)]!, true);
          const got = await c.read(expected.length, 'CONNACK to the default CONNECT');
          assert.equal(show(got), showPattern(expected, got), 'CONNACK to the default CONNECT');
        }

        await runSteps(c, e);

        if (expectDisconnect) {
          const extra = await c.expectClose('after the last step');
          assert.equal(show(extra), '', 'the server sent more than the table expects before closing');
        } else {
          // Still open, and nothing unexpected queued ahead of the PINGRESP.
          await c.write(PINGREQ);
          assert.equal(show(await c.read(2, 'PINGRESP after the last step')), 'd0 00');
          await c.write(DISCONNECT);
        }

        const newLines = (): string[] => tb.logs.slice(logMark);
        if (expectDisconnect && e.log !== null) {
          const re = new RegExp(e.log ?? DEFAULT_LOG, 'i');
          assert.ok(
            newLines().some((l) => re.test(l)),
            `no log line matching /${re.source}/; the broker logged:\n${newLines().join('') || '(nothing)'}`,
          );
        }
        if (!expectDisconnect) {
          const bad = newLines().filter((l) => /protocol violation/i.test(l));
          assert.deepEqual(bad, [], 'a good conversation was logged as a protocol violation');
        }

        await bystander.write(PINGREQ);
        assert.equal(
          show(await bystander.read(2, 'bystander PINGRESP')),
          'd0 00',
          'the bystander client was disturbed',
        );
      });
    });
  });
}
