/**
 * The `braid` command as users run it: `node bin/braid.js ...` in a child process, talking
 * to it only through argv, env, stdout, stderr, signals, exit codes and its HTTP port. Also
 * the HTTP health listener on its own.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { DEFAULTS } from '../../src/config/schema.js';
import { startHttpServer } from '../../src/mgmt/http.js';
import { createLogger } from '../../src/util/log.js';

/** The package root: this file is at <root>/dist/test/integration/cli.test.js. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'braid.js');
const dir = mkdtempSync(join(tmpdir(), 'braid-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const quiet = createLogger({ level: 'silent' });

/** The environment without the caller's BRAID_* settings, plus `extra`. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BRAID_')) env[k] = v;
  return { ...env, ...extra };
}

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function braid(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: cleanEnv(env), stdio: 'pipe' });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = once(child, 'exit').then(
    ([code, signal]) => ({ code, signal }) as { code: number | null; signal: null },
  );
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function finished(run: Run, ms = 15_000) {
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`braid did not exit in ${ms} ms; stderr:\n${run.stderr()}`)), ms).unref(),
  );
  const { code, signal } = await Promise.race([run.exit, timeout]);
  return { code, signal, stdout: run.stdout(), stderr: run.stderr() };
}

/** Resolves with the `braid ready` line; rejects if braid exits or stays silent for 20 s. */
async function ready(run: Run): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const line = run
      .stdout()
      .split('\n')
      .find((l) => l.startsWith('braid ready'));
    if (line !== undefined && run.stdout().includes(`${line}\n`)) return line;
    if (run.child.exitCode !== null || run.child.signalCode !== null || Date.now() > deadline) {
      run.child.kill('SIGKILL');
      throw new Error(`no "braid ready" line; exit ${run.child.exitCode}; stderr:\n${run.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `{ mqtt: { host: '::', port: 1883 }, ws: { ..., path: '/mqtt' } }` from the ready line. */
function listeners(line: string): Record<string, { host: string; port: number; path?: string }> {
  const out: Record<string, { host: string; port: number; path?: string }> = {};
  for (const m of line.matchAll(/ (\w+)=(\[[^\]]+\]|[^\s:]+):(\d+)(\/\S*)?/g)) {
    out[m[1]!] = { host: m[2]!.replace(/^\[|\]$/g, ''), port: Number(m[3]), ...(m[4] && { path: m[4] }) };
  }
  return out;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, path: string, method = 'GET', agent: http.Agent | false = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function writeFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('HTTP health listener', () => {
  it('answers health checks, 404s and 405s in JSON', async () => {
    let health: { ok: boolean; detail?: Record<string, unknown> } = { ok: true };
    const srv = await startHttpServer({ port: 0, host: '127.0.0.1', logger: quiet, health: () => health });
    try {
      assert.equal(srv.address.host, '127.0.0.1');
      assert.ok(srv.address.port > 0);
      for (const path of ['/api/health', '/api/health/ready', '/api/health/', '/api/health?x=1']) {
        const r = await request(srv.address.port, path);
        assert.equal(r.status, 200, path);
        assert.deepEqual(JSON.parse(r.body), { status: 'ok' });
        assert.equal(r.headers['content-type'], 'application/json');
      }
      health = { ok: false, detail: { reason: 'store not recovered' } };
      const failed = await request(srv.address.port, '/api/health/ready');
      assert.equal(failed.status, 503);
      assert.deepEqual(JSON.parse(failed.body), { status: 'failed', reason: 'store not recovered' });
      const head = await request(srv.address.port, '/api/health', 'HEAD');
      assert.equal(head.status, 503);
      assert.equal(head.body, '');
      const missing = await request(srv.address.port, '/api/queues');
      assert.equal(missing.status, 404);
      assert.equal(JSON.parse(missing.body).error, 'not_found');
      assert.equal(typeof JSON.parse(missing.body).reason, 'string');
      const post = await request(srv.address.port, '/api/health', 'POST');
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, 'GET, HEAD');
    } finally {
      await srv.close();
    }
  });

  it('reports a throwing health check as failed', async () => {
    const srv = await startHttpServer({
      port: 0,
      host: '127.0.0.1',
      logger: quiet,
      health: () => {
        throw new Error('boom');
      },
    });
    try {
      const r = await request(srv.address.port, '/api/health');
      assert.equal(r.status, 503);
      assert.deepEqual(JSON.parse(r.body), { status: 'failed', reason: 'boom' });
    } finally {
      await srv.close();
    }
  });

  it('closes promptly with keep-alive connections open', async () => {
    const srv = await startHttpServer({ port: 0, host: '127.0.0.1', logger: quiet, health: () => ({ ok: true }) });
    const agent = new http.Agent({ keepAlive: true });
    try {
      assert.equal((await request(srv.address.port, '/api/health', 'GET', agent)).status, 200);
      const t0 = Date.now();
      await srv.close();
      assert.ok(Date.now() - t0 < 1000, `close took ${Date.now() - t0} ms`);
      await srv.close(); // twice is fine
    } finally {
      agent.destroy();
    }
  });

  it('names the listener and port when the port is taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await assert.rejects(startHttpServer({ port, host: '127.0.0.1', logger: quiet, health: () => ({ ok: true }) }), {
        message: `http listener: cannot listen on 127.0.0.1:${port}: EADDRINUSE`,
        code: 'EADDRINUSE',
      });
    } finally {
      blocker.close();
    }
  });
});

describe('braid command line', () => {
  it('--version and --help', async () => {
    const version = await finished(braid(['--version']));
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\S*\n$/);
    const help = await finished(braid(['--help']));
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: braid/);
    assert.match(help.stdout, /start/);
    const startHelp = await finished(braid(['start', '--help']));
    assert.equal(startHelp.code, 0);
    for (const flag of ['--config', '--data-dir', '--mqtt-port', '--amqp-port', '--ws-port', '--http-port']) {
      assert.ok(startHelp.stdout.includes(flag), flag);
    }
  });

  it('`braid config` prints the resolved config as YAML', async () => {
    const file = writeFile('print.yaml', 'mqtt:\n  maxKeepAlive: 30\n');
    const r = await finished(braid(['config', '--config', file, '--mqtt-port', '1999'], { BRAID_LOG_LEVEL: 'warn' }));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ {2}maxKeepAlive: 30$/m);
    assert.match(r.stdout, /^ {2}mqtt:\n {4}port: 1999$/m);
    assert.match(r.stdout, /^ {2}level: warn$/m);
    const expected = loadConfig({ file, env: { BRAID_LOG_LEVEL: 'warn' }, flags: { mqttPort: '1999' } });
    assert.deepEqual(parse(r.stdout), expected);
  });

  it('usage and config errors exit 2 with `braid: <message>`', async () => {
    const bad = writeFile('bad.yaml', 'listeners:\n  mqtt:\n    port: 1883\nmqtt:\n  maxKeepAlve: 10\n');
    const r = await finished(braid(['start', '--config', bad]));
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^braid: config error: unknown key "mqtt\.maxKeepAlve"/m);
    assert.ok(r.stderr.includes(bad));

    const env = await finished(braid(['start'], { BRAID_MQTT_MAX_KEEP_ALIVE: 'abc' }));
    assert.equal(env.code, 2);
    assert.match(env.stderr, /mqtt\.maxKeepAlive must be an integer .* \(from BRAID_MQTT_MAX_KEEP_ALIVE\)/);

    const flag = await finished(braid(['start', '--mqtt-port', 'x']));
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /^braid: config error: listeners\.mqtt\.port .* \(from --mqtt-port\)$/m);

    const missing = await finished(braid(['start', '--config', join(dir, 'nope.yaml')]));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.yaml/);

    const option = await finished(braid(['start', '--nope']));
    assert.equal(option.code, 2);
    assert.match(option.stderr, /^braid: unknown option '--nope'/m);

    const command = await finished(braid(['stat']));
    assert.equal(command.code, 2);
    assert.match(command.stderr, /^braid: unknown command 'stat'/m);
  });
});

// These start a real broker (src/broker.ts).
describe('braid start', () => {
  it('formats the ready line and names the listener of a failed listen', async () => {
    // Imported here: start.ts loads the broker, which the tests above do not need.
    const { describeStartError, readyLine } = await import('../../src/cli/start.js');
    const addresses = [
      { name: 'mqtt', host: '::', port: 1883 },
      { name: 'ws', host: '::', port: 8083, path: '/mqtt' },
      { name: 'http', host: '0.0.0.0', port: 15672 },
    ];
    assert.equal(readyLine(addresses), 'braid ready mqtt=[::]:1883 ws=[::]:8083/mqtt http=0.0.0.0:15672');
    assert.equal(readyLine([]), 'braid ready');
    const inner = Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE', port: 8083, address: '::' });
    const outer = new Error('cannot open listener ws on port 8083', { cause: inner });
    assert.equal(
      describeStartError(outer, DEFAULTS),
      'cannot open the ws listener on [::]:8083: address already in use',
    );
    const denied = Object.assign(new Error('listen EACCES'), { code: 'EACCES', port: 80, address: '0.0.0.0' });
    assert.match(describeStartError(denied, DEFAULTS), /^cannot listen on 0\.0\.0\.0:80: permission denied/);
    assert.equal(describeStartError(new Error('disk full'), DEFAULTS), 'start failed: disk full');
  });

  it('prints one ready line, serves /api/health, and exits 0 on SIGTERM', async () => {
    const run = braid(['start', '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0', '--amqp-port', 'false'], {
      BRAID_STORAGE_DATA_DIR: join(dir, 'data1'),
      BRAID_LOG_LEVEL: 'warn',
    });
    const line = await ready(run);
    assert.match(line, /^braid ready( \w+=\S+)+$/);
    const ls = listeners(line);
    assert.deepEqual(Object.keys(ls).sort(), ['http', 'mqtt', 'ws']);
    assert.ok(ls.mqtt!.port > 0 && ls.ws!.port > 0 && ls.http!.port > 0);
    assert.equal(ls.ws!.path, '/mqtt');
    const health = await request(ls.http!.port, '/api/health');
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body), { status: 'ok' });
    assert.equal((await request(ls.http!.port, '/api/health/ready')).status, 200);
    // The MQTT port is really open.
    const sock = net.connect(ls.mqtt!.port, '127.0.0.1');
    await once(sock, 'connect');
    sock.destroy();

    const t0 = Date.now();
    run.child.kill('SIGTERM');
    const r = await finished(run, 10_000);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - t0 < 10_000);
    assert.equal(r.stdout, `${line}\n`, 'stdout holds only the ready line');
  });

  it('takes listeners from YAML and the environment, and exits 0 on SIGINT', async () => {
    const file = writeFile(
      'start.yaml',
      [
        'listeners:',
        '  mqtt: { port: 0, host: 127.0.0.1 }',
        '  ws: { port: 0 }',
        '  amqp: false',
        '  http: { port: 0 }',
        `storage: { dataDir: ${JSON.stringify(join(dir, 'data2'))} }`,
        'log: { level: warn, format: json }',
      ].join('\n'),
    );
    const run = braid(['start', '--config', file], { BRAID_LISTENERS_WS: 'false' });
    const line = await ready(run);
    const ls = listeners(line);
    assert.deepEqual(Object.keys(ls).sort(), ['http', 'mqtt']);
    assert.equal(ls.mqtt!.host, '127.0.0.1');
    assert.equal((await request(ls.http!.port, '/api/health')).status, 200);
    run.child.kill('SIGINT');
    const r = await finished(run, 10_000);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${line}\n`);
    // JSON logs: every stderr line is an object.
    for (const l of r.stderr.split('\n').filter(Boolean)) assert.doesNotThrow(() => JSON.parse(l), l);
  });

  it('exits 1 naming the listener and port when the port is in use', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '::', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const run = braid(
        ['start', '--mqtt-port', String(port), '--ws-port', '0', '--http-port', '0', '--amqp-port', 'false'],
        {
          BRAID_STORAGE_DATA_DIR: join(dir, 'data3'),
          BRAID_LOG_LEVEL: 'error',
        },
      );
      const r = await finished(run);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, new RegExp(`^braid: .*mqtt.*${port}`, 'm'));
    } finally {
      blocker.close();
    }
  });
});
