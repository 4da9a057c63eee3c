/** Resource alarms (src/util/alarms.ts) with fake measurements: thresholds, listeners, logs, alarms by hand. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  type AlarmProbes,
  type AlarmResource,
  type AlarmSettings,
  Alarms,
  cgroupMemoryLimit,
  statusField,
  systemProbes,
} from '../../src/util/alarms.js';
import { createLogger } from '../../src/util/log.js';

const GB = 1024 ** 3;

function setup(settings: Partial<AlarmSettings> = {}) {
  const m = { used: 100, total: 8 * GB, free: 10 * GB, diskError: undefined as Error | undefined };
  const probes: AlarmProbes = {
    memoryUsed: async () => m.used,
    memoryTotal: () => m.total,
    diskFree: async () => {
      if (m.diskError) throw m.diskError;
      return m.free;
    },
  };
  const logs: string[] = [];
  const log = createLogger({ level: 'debug', format: 'json', write: (l) => logs.push(l) });
  const alarms = new Alarms(
    { memoryHighWatermark: 0.4, diskFreeLimit: 50_000_000, dataDir: '/data', checkInterval: 0, ...settings },
    log,
    probes,
  );
  const changes: Array<[boolean, AlarmResource[]]> = [];
  alarms.onChange((blocked, reasons) => changes.push([blocked, [...reasons]]));
  return { m, alarms, logs, changes };
}

describe('resource alarms', () => {
  it('a watermark ≤ 1 is a fraction of total memory, above 1 bytes', () => {
    assert.equal(setup().alarms.memoryLimit(), Math.floor(0.4 * 8 * GB));
    assert.equal(setup({ memoryHighWatermark: 1 }).alarms.memoryLimit(), 8 * GB);
    assert.equal(setup({ memoryHighWatermark: 2 * GB }).alarms.memoryLimit(), 2 * GB);
  });

  it('the memory alarm sets above the watermark and clears below it, logging the numbers', async () => {
    const { m, alarms, logs, changes } = setup();
    await alarms.check();
    assert.equal(alarms.blocked, false);
    assert.deepEqual(changes, []);
    m.used = 4 * GB;
    await alarms.check();
    assert.equal(alarms.blocked, true);
    assert.deepEqual([...alarms.reasons], ['memory']);
    assert.equal(alarms.describe(), 'low on memory');
    assert.deepEqual(changes, [[true, ['memory']]]);
    const set = JSON.parse(logs.at(-1)!);
    assert.equal(set.level, 'warn');
    assert.match(set.msg, /memory resource limit alarm set; publishers will be blocked until this alarm clears/);
    assert.equal(set.used, 4 * GB);
    assert.equal(set.limit, Math.floor(0.4 * 8 * GB));
    await alarms.check();
    assert.equal(changes.length, 1, 'no change, no call');
    m.used = GB;
    await alarms.check();
    assert.equal(alarms.blocked, false);
    assert.deepEqual(changes[1], [false, []]);
    const cleared = JSON.parse(logs.at(-1)!);
    assert.equal(cleared.level, 'info');
    assert.match(cleared.msg, /memory resource limit alarm cleared/);
  });

  it('the disk alarm sets below diskFreeLimit; both together are named in one reason', async () => {
    const { m, alarms, changes } = setup();
    m.free = 1000;
    await alarms.check();
    assert.deepEqual([...alarms.reasons], ['disk']);
    m.used = 8 * GB;
    await alarms.check();
    assert.equal(alarms.describe(), 'low on disk & low on memory');
    m.free = GB;
    await alarms.check();
    assert.deepEqual([...alarms.reasons], ['memory']);
    assert.equal(alarms.blocked, true);
    assert.deepEqual(
      changes.map((c) => c[1]),
      [['disk'], ['disk', 'memory'], ['memory']],
    );
  });

  it('no disk alarm without a data dir or with a limit of 0; a failing statfs is logged once and changes nothing', async () => {
    for (const s of [{ dataDir: undefined }, { diskFreeLimit: 0 }]) {
      const { m, alarms } = setup(s);
      m.free = 0;
      await alarms.check();
      assert.equal(alarms.blocked, false);
    }
    const { m, alarms, logs } = setup();
    m.free = 0;
    await alarms.check();
    assert.equal(alarms.blocked, true);
    m.diskError = new Error('ENOENT');
    await alarms.check();
    await alarms.check();
    assert.equal(alarms.blocked, true, 'an unknown free space keeps the last state');
    assert.equal(logs.filter((l) => l.includes('free disk space unknown')).length, 1);
  });

  it('an alarm raised by hand stays until cleared by hand; then measurements decide again', async () => {
    const { m, alarms, changes } = setup();
    alarms.set('memory', true);
    assert.equal(alarms.blocked, true);
    await alarms.check();
    assert.equal(alarms.blocked, true, 'a low measurement does not clear it');
    alarms.set('memory', false);
    assert.equal(alarms.blocked, false);
    m.used = 8 * GB;
    await alarms.check();
    assert.equal(alarms.blocked, true, 'measured again');
    assert.deepEqual(
      changes.map((c) => c[0]),
      [true, false, true],
    );
  });

  it('a failing listener does not stop the others', () => {
    const { alarms, changes, logs } = setup();
    alarms.onChange(() => {
      throw new Error('boom');
    });
    let after = 0;
    alarms.onChange(() => after++);
    alarms.set('disk', true);
    assert.equal(changes.length, 1);
    assert.equal(after, 1);
    assert.ok(logs.some((l) => l.includes('alarm listener failed')));
  });

  it('reads RssAnon from /proc/self/status and the cgroup limit', () => {
    const status = 'Name:\tnode\nVmRSS:\t  50000 kB\nRssAnon:\t   40000 kB\nRssFile:\t 10000 kB\n';
    assert.equal(statusField(status, 'RssAnon'), 40000 * 1024);
    assert.equal(statusField(status, 'Nope'), undefined);
    const files = (table: Record<string, string>) => (p: string) => {
      const v = table[p];
      if (v === undefined) throw new Error('ENOENT');
      return v;
    };
    assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory.max': '536870912\n' })), 536870912);
    assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory.max': 'max\n' })), undefined);
    assert.equal(
      cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n' })),
      undefined,
    );
    assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '1073741824' })), GB);
    assert.equal(cgroupMemoryLimit(files({})), undefined);
  });

  it('the system probes measure this process and a real directory', async () => {
    const used = await systemProbes.memoryUsed();
    assert.ok(used > 0 && used <= process.memoryUsage.rss() * 2, `memory used ${used}`);
    assert.ok(systemProbes.memoryTotal() > 0);
    const dir = mkdtempSync(path.join(tmpdir(), 'braid-alarms-'));
    try {
      assert.ok((await systemProbes.diskFree(dir)) > 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
