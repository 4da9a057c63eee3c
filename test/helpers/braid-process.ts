/**
 * A real `braid start` in a child process, for crash and restart tests: listeners on 127.0.0.1
 * ephemeral ports, a data directory the caller owns, killed with SIGKILL or stopped with SIGTERM,
 * restarted on the same data directory.
 *
 * The broker run is the one compiled next to these tests: `<out>/test/helpers/braid-process.js`
 * starts `<out>/src/cli/main.js` (dist/ in CI, any `tsc --outDir` copy otherwise), the way
 * bin/braid.js does (main(argv) in the process itself, so signals reach the broker directly).
 * BRAID_MAIN overrides the entry module (a path or file: URL).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface BraidProcessOptions {
  dataDir: string;
  /** Config merged (deeply) over the test defaults: listeners, storage.dataDir, log level. */
  config?: Record<string, unknown>;
  /** How long to wait for the `braid ready` line; default 30 s (recovery of a big store). */
  readyTimeoutMs?: number;
}

/** The compiled CLI entry this file belongs with. */
export function braidMain(): string {
  const env = process.env.BRAID_MAIN;
  if (env) return env.startsWith('file:') ? env : pathToFileURL(env).href;
  return new URL('../../src/cli/main.js', import.meta.url).href;
}

const live = new Set<BraidRun>();
process.on('exit', () => {
  for (const r of live) r.kill('SIGKILL');
});

/** Keeps at most the last `max` characters of a growing log. */
const MAX_LOG = 1 << 20;
const tail = (s: string): string => (s.length > MAX_LOG ? s.slice(s.length - MAX_LOG / 2) : s);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = isObject(prev) && isObject(v) ? merge(prev, v) : v;
  }
  return out;
}

/** The environment without the caller's BRAID_* settings. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BRAID_')) env[k] = v;
  return env;
}

/** `{ mqtt: 1883, amqp: 5672 }` from `braid ready mqtt=127.0.0.1:1883 amqp=127.0.0.1:5672`. */
export function readyPorts(line: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of line.matchAll(/ (\w+)=(\[[^\]]+\]|[^\s:]+):(\d+)/g)) out[m[1]!] = Number(m[3]);
  return out;
}

/** One broker process, started or not (yet) ready. */
export class BraidRun {
  stdout = '';
  stderr = '';
  readonly pid: number;
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;
  private readonly configDir: string;
  private readonly child: ReturnType<typeof spawn>;

  constructor(readonly opts: BraidProcessOptions) {
    this.configDir = mkdtempSync(join(tmpdir(), 'braid-proc-'));
    const config = merge(
      {
        listeners: {
          mqtt: { host: '127.0.0.1', port: 0 },
          amqp: { host: '127.0.0.1', port: 0 },
          ws: false,
          http: false,
        },
        storage: { dataDir: opts.dataDir },
        log: { level: process.env.TEST_LOG_LEVEL === 'debug' ? 'debug' : 'info' },
      },
      opts.config ?? {},
    );
    const file = join(this.configDir, 'braid.json');
    writeFileSync(file, JSON.stringify(config, null, 2));
    const script =
      'const m = await import(process.env.BRAID_TEST_MAIN); await m.main([process.argv[0], "braid", ...process.argv.slice(1)]);';
    this.child = spawn(
      process.execPath,
      ['--input-type=module', '-e', script, 'start', '--config', file, '--data-dir', opts.dataDir],
      { env: { ...cleanEnv(), BRAID_TEST_MAIN: braidMain() }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.pid = this.child.pid ?? -1;
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout = tail(this.stdout + d)));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr = tail(this.stderr + d);
      if (process.env.TEST_LOG_LEVEL) process.stderr.write(d);
    });
    live.add(this);
    this.exited = new Promise<Exit>((resolve) => {
      this.child.once('error', (err) => {
        this.stderr += `\nspawn failed: ${err.message}`;
        resolve({ code: null, signal: null });
      });
      this.child.once('close', (code, signal) => resolve({ code, signal }));
    }).then((e) => {
      this.exit = e;
      live.delete(this);
      rmSync(this.configDir, { recursive: true, force: true });
      return e;
    });
  }

  get running(): boolean {
    return this.exit === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last lines of output, for failure messages. */
  describe(lines = 40): string {
    const err = this.stderr.split('\n').slice(-lines).join('\n');
    return `stdout:\n${this.stdout}\nstderr (last ${lines} lines):\n${err}`;
  }

  /** The `braid ready ...` line once printed; fails if the process exits or time runs out. */
  async ready(timeoutMs = this.opts.readyTimeoutMs ?? 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.stdout.split('\n').find((l) => l.startsWith('braid ready'));
      if (line !== undefined && this.stdout.includes(`${line}\n`)) return line;
      if (!this.running) {
        const e = await this.exited;
        throw new Error(`braid exited (${e.code ?? e.signal}) before it was ready; ${this.describe()}`);
      }
      if (Date.now() > deadline) {
        this.kill('SIGKILL');
        throw new Error(`braid was not ready within ${timeoutMs} ms; ${this.describe()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.running) this.child.kill(signal);
  }

  /** Waits for the end, at most `timeoutMs`; undefined if still running then. */
  async waitExit(timeoutMs: number): Promise<Exit | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((r) => {
      timer = setTimeout(() => r(undefined), timeoutMs);
    });
    const r = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    return r;
  }

  /** Resident set size of the process in bytes (VmRSS of /proc/PID/status); undefined once gone. */
  rss(): number | undefined {
    return this.memory()?.VmRSS;
  }

  /** VmRSS, RssAnon (heap and other private memory), RssFile (mapped files: the LMDB map) in bytes. */
  memory(): { VmRSS: number; RssAnon: number; RssFile: number } | undefined {
    let status: string;
    try {
      status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    } catch {
      return undefined;
    }
    const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
    const VmRSS = kb('VmRSS');
    return VmRSS > 0 ? { VmRSS, RssAnon: kb('RssAnon'), RssFile: kb('RssFile') } : undefined;
  }
}

/** A ready broker process. */
export interface BraidProcess {
  run: BraidRun;
  pid: number;
  mqttPort: number;
  amqpPort: number;
  /** mqtt://127.0.0.1:PORT */
  mqttUrl: string;
  /** amqp://guest:guest@127.0.0.1:PORT/ */
  amqpUrl: string;
  /** SIGKILL, then waits for the process to be gone. */
  kill(): Promise<Exit>;
  /** SIGTERM, then waits (at most 15 s) for the exit; throws if it did not exit 0. */
  stop(): Promise<Exit>;
  rss(): number | undefined;
  memory(): ReturnType<BraidRun['memory']>;
}

/** Starts `braid start` on `dataDir` and waits for its ready line. */
export async function startBraidProcess(opts: BraidProcessOptions): Promise<BraidProcess> {
  const run = new BraidRun(opts);
  const line = await run.ready();
  const ports = readyPorts(line);
  const mqttPort = ports.mqtt ?? 0;
  const amqpPort = ports.amqp ?? 0;
  return {
    run,
    pid: run.pid,
    mqttPort,
    amqpPort,
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    amqpUrl: `amqp://guest:guest@127.0.0.1:${amqpPort}/`,
    async kill() {
      run.kill('SIGKILL');
      return run.exited;
    },
    async stop() {
      run.kill('SIGTERM');
      const e = await run.waitExit(15_000);
      if (e === undefined) {
        run.kill('SIGKILL');
        throw new Error(`braid did not stop within 15 s of SIGTERM; ${run.describe()}`);
      }
      if (e.code !== 0) throw new Error(`braid stopped with ${e.code ?? e.signal}; ${run.describe()}`);
      return e;
    },
    rss: () => run.rss(),
    memory: () => run.memory(),
  };
}

/** SIGKILLs every broker process this module started that is still running. */
export async function killAllBraids(): Promise<void> {
  const runs = [...live];
  for (const r of runs) r.kill('SIGKILL');
  await Promise.all(runs.map((r) => r.exited));
}

/** A fresh temporary directory (the caller removes it, e.g. with removeDir in `after`). */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
}

/** Deterministic random numbers (mulberry32) from a seed, for reproducible kill times. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed for crash tests: CRASH_SEED when set, else one from the clock (printed by the test). */
export function crashSeed(): number {
  const env = process.env.CRASH_SEED;
  return env ? Number(env) : Date.now() % 1_000_000_007;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
