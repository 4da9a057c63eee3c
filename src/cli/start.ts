/**
 * `braid start`: runs the broker in this process until SIGTERM or SIGINT.
 *
 * stdout carries exactly one line, `braid ready mqtt=[::]:1883 ws=[::]:8083/mqtt ...`, printed
 * once every listener is open (the broker's start() resolves only after the store is
 * recovered), whatever the log format; scripts and tests wait for it. Logs go to stderr.
 */
import { Broker } from '../broker.js';
import type { BraidConfig } from '../config/schema.js';
import { createLogger, type Logger } from '../util/log.js';

/** DESIGN.md: a stop must finish within 10 s. */
const STOP_TIMEOUT_MS = 10_000;

/** What the ready line needs of an opened listener (the broker's `addresses`). */
export interface ListenerAddress {
  name: string;
  host: string;
  port: number;
  path?: string;
}

export interface StartOptions {
  /** Defaults to a stderr logger at `config.log`. */
  logger?: Logger;
  /** For the start-up log line. */
  version?: string;
}

/** A start that failed for a reason the user can act on (port in use, ...). */
export class StartError extends Error {
  override readonly name = 'StartError';
}

/** `[::]:1883`, `127.0.0.1:1883`, `[::]:8083/mqtt` */
export function formatAddress(a: ListenerAddress): string {
  return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}${a.path ?? ''}`;
}

/** `braid ready mqtt=[::]:1883 ws=[::]:8083/mqtt http=[::]:15672` */
export function readyLine(addresses: readonly ListenerAddress[]): string {
  return ['braid ready', ...addresses.map((a) => `${a.name}=${formatAddress(a)}`)].join(' ');
}

const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'address not available on this machine',
  EAFNOSUPPORT: 'address family not supported (no IPv6? set host to 0.0.0.0)',
};

/** A listen failure names the listener and its port: `cannot open the mqtt listener on [::]:1883: address already in use`. */
export function describeStartError(err: unknown, config: BraidConfig): string {
  if (!(err instanceof Error)) return `start failed: ${String(err)}`;
  // The broker may wrap the listen error; the errno and port are on the innermost one.
  let e: unknown = err;
  let listener: string | undefined;
  for (let depth = 0; e instanceof Error && depth < 5; depth++, e = e.cause) {
    const x = e as NodeJS.ErrnoException & { port?: unknown; address?: unknown; listener?: unknown };
    if (typeof x.listener === 'string') listener ??= x.listener;
    const why = x.code === undefined ? undefined : LISTEN_ERRORS[x.code];
    if (why === undefined || typeof x.port !== 'number') continue;
    const port = x.port;
    let host = typeof x.address === 'string' ? x.address : undefined;
    if (listener === undefined) {
      for (const [n, l] of Object.entries(config.listeners)) {
        if (l !== false && l.port === port) [listener, host] = [n, host ?? l.host];
      }
    }
    const where = formatAddress({ name: '', host: host ?? '::', port });
    return listener === undefined
      ? `cannot listen on ${where}: ${why}`
      : `cannot open the ${listener} listener on ${where}: ${why}`;
  }
  return `start failed: ${err.message}`;
}

/**
 * Starts the broker and prints the ready line. Resolves once ready; the process then lives
 * until a signal. SIGTERM/SIGINT stop the broker and exit 0; a second signal, a failed stop
 * or a stop longer than 10 s exits 1. Rejects with StartError when the broker cannot start.
 */
export async function runStart(config: BraidConfig, opts: StartOptions = {}): Promise<Broker> {
  const logger = opts.logger ?? createLogger({ level: config.log.level, format: config.log.format });
  const log = logger.child('cli');
  const exit = (code: number): never => process.exit(code);

  process.on('uncaughtException', (err) => {
    log.error('uncaught exception, exiting', { err: err.stack ?? String(err) });
    exit(1);
  });
  process.on('unhandledRejection', (reason) => {
    log.error('unhandled promise rejection, exiting', { err: reason instanceof Error ? reason.stack : String(reason) });
    exit(1);
  });

  log.info('starting', {
    version: opts.version,
    node: process.version,
    pid: process.pid,
    dataDir: config.storage.dataDir,
  });
  const broker = new Broker(config, { logger });
  const started = broker.start();

  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn('second signal, exiting without a clean stop', { signal });
      exit(1);
    }
    stopping = true;
    log.info('stopping', { signal });
    const timer = setTimeout(() => {
      log.error('stop took longer than 10 s, exiting', { signal });
      exit(1);
    }, STOP_TIMEOUT_MS);
    started
      .catch(() => undefined)
      .then(() => broker.stop())
      .then(
        () => {
          clearTimeout(timer);
          log.info('stopped');
          exit(0);
        },
        (err: unknown) => {
          log.error('stop failed', { err: err instanceof Error ? err.message : String(err) });
          exit(1);
        },
      );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  try {
    await started;
  } catch (err) {
    // main() prints the reason as `braid: ...`; the stack is for debugging.
    log.debug('start failed', { err: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    // Close whatever did open, without waiting forever on a half-started broker.
    await Promise.race([broker.stop().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
    throw new StartError(describeStartError(err, config), { cause: err });
  }
  if (stopping) return broker;
  const addresses = broker.addresses;
  process.stdout.write(`${readyLine(addresses)}\n`);
  log.info('ready', { listeners: addresses.map((a) => `${a.name}=${formatAddress(a)}`).join(' ') });
  return broker;
}
