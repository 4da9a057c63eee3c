/**
 * A small structured logger. Lines go to stderr so that stdout carries only the
 * `braid ready` line (DESIGN.md "Running it"). Never call it per message on the hot path.
 */

export const LogLevels = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type LogLevel = keyof typeof LogLevels;
export type LogFormat = 'text' | 'json';

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  isEnabled(level: LogLevel): boolean;
  child(component: string): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  write?: (line: string) => void;
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === 'bigint') return v.toString();
  return JSON.stringify(v) ?? String(v);
}

export function createLogger(opts: LoggerOptions = {}, component = 'braid'): Logger {
  const threshold = LogLevels[opts.level ?? 'info'];
  const format = opts.format ?? 'text';
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (LogLevels[level] < threshold) return;
    const ts = new Date().toISOString();
    if (format === 'json') {
      write(
        `${JSON.stringify({ ts, level, component, msg, ...fields }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`,
      );
      return;
    }
    let line = `${ts} ${level.padEnd(5)} [${component}] ${msg}`;
    if (fields) for (const k of Object.keys(fields)) line += ` ${k}=${formatValue(fields[k])}`;
    write(`${line}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    isEnabled: (level) => LogLevels[level] >= threshold,
    child: (c) => createLogger(opts, `${component}.${c}`),
  };
}
