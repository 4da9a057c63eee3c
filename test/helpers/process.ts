/** A child process for interop tests: output kept for assertions, killed when the test ends. */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import type { TestContext } from 'node:test';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export const WAIT_MS = 10_000;

export class ChildRun {
  out = '';
  readonly exited: Promise<Exit>;
  protected readonly proc: ChildProcess;

  constructor(t: TestContext, bin: string, args: string[]) {
    this.proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => (this.out += d));
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.out += d));
    this.exited = new Promise((resolve) => {
      this.proc.once('error', (err) => {
        this.out += `\nspawn failed: ${err.message}`;
        resolve({ code: null, signal: null });
      });
      this.proc.once('close', (code, signal) => resolve({ code, signal }));
    });
    t.after(() => this.kill('SIGKILL'));
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.proc.kill(signal);
  }

  /** Waits until the output matches `re`; fails if the process exits or time runs out first. */
  async waitFor(re: RegExp, what: string, timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.out)) {
      if (!this.running) {
        await this.exited;
        if (re.test(this.out)) return;
        assert.fail(`${what}: the process exited without printing ${re}; it printed:\n${this.out}`);
      }
      if (Date.now() > deadline) assert.fail(`${what}: no ${re} within ${timeoutMs} ms; it printed:\n${this.out}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Waits for the process to end, at most `timeoutMs`, and returns how it ended. */
  async exit(what: string, timeoutMs = WAIT_MS): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), timeoutMs);
    });
    const r = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (r === 'timeout') assert.fail(`${what}: still running after ${timeoutMs} ms; it printed:\n${this.out}`);
    return r;
  }

  /** Waits for a clean exit (status 0). */
  async success(what: string): Promise<void> {
    const r = await this.exit(what);
    assert.equal(r.code, 0, `${what}: exit ${r.code ?? r.signal}; it printed:\n${this.out}`);
  }
}
