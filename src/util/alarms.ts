/**
 * Resource alarms, as RabbitMQ has them (`vm_memory_high_watermark`, `disk_free_limit`): while
 * the broker uses more memory than `limits.memoryHighWatermark` allows, or the disk holding
 * `storage.dataDir` has less free space than `limits.diskFreeLimit`, publishers are blocked
 * (the adapters stop reading connections that publish) and consumers keep draining.
 *
 * Memory is the process's anonymous resident memory (`RssAnon` in /proc/self/status): the
 * heap, buffers and native allocations, but not LMDB's memory-mapped data file, whose pages
 * the kernel can drop at will and which would otherwise count the whole store as "used". Where
 * /proc is absent, `process.memoryUsage.rss()` is used. The watermark, when ≤ 1, is a fraction
 * of total memory: `os.totalmem()`, or the cgroup limit when one is set and lower (a container).
 *
 * Free disk comes from `fs.statfs` (blocks available to unprivileged users) on the data
 * directory; without persistence there is no disk alarm.
 */
import { readFileSync } from 'node:fs';
import { readFile, statfs } from 'node:fs/promises';
import { totalmem } from 'node:os';
import type { Logger } from './log.js';

export type AlarmResource = 'memory' | 'disk';

export interface AlarmSettings {
  /** ≤ 1: a fraction of total memory; > 1: bytes. */
  memoryHighWatermark: number;
  /** Free bytes below which the disk alarm sets; 0 = no disk alarm. */
  diskFreeLimit: number;
  /** The directory whose disk is watched; undefined = no disk alarm (no persistence). */
  dataDir: string | undefined;
  /** ms between measurements; 0 = never (alarms only by hand). */
  checkInterval: number;
}

/** Measurements, replaceable in tests. */
export interface AlarmProbes {
  /** Bytes of memory the process uses. */
  memoryUsed(): Promise<number>;
  /** Bytes of memory there are (the watermark is a fraction of this). */
  memoryTotal(): number;
  /** Bytes free on the disk holding `dir`. */
  diskFree(dir: string): Promise<number>;
}

export type AlarmListener = (blocked: boolean, reasons: ReadonlySet<AlarmResource>) => void;

const REASON_TEXT: Record<AlarmResource, string> = { memory: 'low on memory', disk: 'low on disk' };

export class Alarms {
  private readonly active = new Set<AlarmResource>();
  /** Alarms raised by hand: measurements do not clear them. */
  private readonly forced = new Set<AlarmResource>();
  private readonly listeners: AlarmListener[] = [];
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private diskFailureLogged = false;
  /** The last measurements, for logs and the management API. */
  readonly last = { memoryUsed: 0, memoryLimit: 0, diskFree: Number.NaN, diskLimit: 0 };

  constructor(
    readonly settings: AlarmSettings,
    private readonly log: Logger,
    private readonly probes: AlarmProbes = systemProbes,
  ) {}

  /** True while any alarm is set: publishers are blocked. */
  get blocked(): boolean {
    return this.active.size > 0;
  }

  /** The alarms set now. */
  get reasons(): ReadonlySet<AlarmResource> {
    return this.active;
  }

  /** What AMQP's connection.blocked says, as RabbitMQ words it: "low on memory & low on disk". */
  describe(): string {
    return [...this.active].map((r) => REASON_TEXT[r]).join(' & ');
  }

  /** Called with the new state each time `blocked` or the set of reasons changes. */
  onChange(listener: AlarmListener): void {
    this.listeners.push(listener);
  }

  /** The memory limit in bytes that `memoryHighWatermark` means on this machine. */
  memoryLimit(): number {
    const wm = this.settings.memoryHighWatermark;
    return Math.floor(wm <= 1 ? wm * this.probes.memoryTotal() : wm);
  }

  /**
   * Raises or clears an alarm by hand, for tests and embedding (an application that watches
   * resources of its own). One raised by hand stays until cleared by hand; once cleared, the
   * resource is measured again at the next check.
   */
  set(resource: AlarmResource, on: boolean): void {
    if (on) this.forced.add(resource);
    else this.forced.delete(resource);
    this.update(resource, on, { by: 'hand' });
  }

  /** Measures memory and disk once and sets or clears the alarms. */
  async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const used = await this.probes.memoryUsed();
      const limit = this.memoryLimit();
      this.last.memoryUsed = used;
      this.last.memoryLimit = limit;
      if (!this.forced.has('memory')) this.update('memory', used > limit, { used, limit });
      const dir = this.settings.dataDir;
      const diskLimit = this.settings.diskFreeLimit;
      if (dir !== undefined && diskLimit > 0 && !this.forced.has('disk')) {
        let free: number | undefined;
        try {
          free = await this.probes.diskFree(dir);
          this.diskFailureLogged = false;
        } catch (err) {
          // A data dir that vanished or a filesystem without statfs: say so once, keep the state.
          if (!this.diskFailureLogged) this.log.warn('free disk space unknown', { dir, error: String(err) });
          this.diskFailureLogged = true;
        }
        if (free !== undefined) {
          this.last.diskFree = free;
          this.last.diskLimit = diskLimit;
          this.update('disk', free < diskLimit, { free, limit: diskLimit });
        }
      }
    } catch (err) {
      this.log.warn('resource check failed', { error: String(err) });
    } finally {
      this.checking = false;
    }
  }

  /** Checks now, then every `checkInterval` ms (an unref'd timer: it never keeps the process up). */
  async start(): Promise<void> {
    if (this.timer !== undefined) return;
    await this.check();
    if (this.settings.checkInterval > 0) {
      this.timer = setInterval(() => void this.check(), this.settings.checkInterval).unref();
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private update(resource: AlarmResource, on: boolean, numbers: Record<string, unknown>): void {
    if (on === this.active.has(resource)) return;
    if (on) {
      this.active.add(resource);
      this.log.warn(
        `${resource} resource limit alarm set; publishers will be blocked until this alarm clears`,
        numbers,
      );
    } else {
      this.active.delete(resource);
      this.log.info(`${resource} resource limit alarm cleared`, numbers);
    }
    const blocked = this.blocked;
    for (const l of this.listeners) {
      try {
        l(blocked, this.active);
      } catch (err) {
        this.log.error('alarm listener failed', { error: String(err) });
      }
    }
  }
}

/** Bytes of a `Name:   1234 kB` line of /proc/self/status, or undefined. */
export function statusField(status: string, name: string): number | undefined {
  const m = new RegExp(`^${name}:\\s*(\\d+)\\s*kB`, 'm').exec(status);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** The cgroup memory limit (v2 `memory.max`, else v1 `memory.limit_in_bytes`), when set. */
export function cgroupMemoryLimit(read: (path: string) => string = (p) => readFileSync(p, 'utf8')): number | undefined {
  for (const path of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    let text: string;
    try {
      text = read(path).trim();
    } catch {
      continue;
    }
    // "max" (v2), or a huge page-rounded number (v1): no limit.
    const n = Number(text);
    return Number.isFinite(n) && n > 0 && n < 2 ** 60 ? n : undefined;
  }
  return undefined;
}

let procStatus = true;
let total: number | undefined;

export const systemProbes: AlarmProbes = {
  async memoryUsed() {
    if (procStatus) {
      try {
        const anon = statusField(await readFile('/proc/self/status', 'utf8'), 'RssAnon');
        if (anon !== undefined) return anon;
      } catch {
        // No /proc (macOS, Windows): RSS below.
      }
      procStatus = false;
    }
    return process.memoryUsage.rss();
  },
  memoryTotal() {
    if (total === undefined) {
      const cg = cgroupMemoryLimit();
      total = cg === undefined ? totalmem() : Math.min(cg, totalmem());
    }
    return total;
  },
  async diskFree(dir) {
    const s = await statfs(dir);
    return s.bavail * s.bsize;
  },
};
