/**
 * Loading the config from its sources. Precedence, lowest first; each layer overrides the
 * keys it sets and leaves the rest:
 *
 *   1. DEFAULTS (schema.ts)
 *   2. the YAML file given by `--config` (JSON is valid YAML)
 *   3. environment variables `BRAID_*` (env.ts), one layer per variable
 *   4. command-line flags (`--mqtt-port`, `--data-dir`, ...)
 *
 * Lists (`auth.users`) are replaced whole, never merged item by item. A listener set to
 * `false` by a lower layer comes back on, with its defaults, when a higher layer sets one of
 * its keys (`--mqtt-port 1884` over `listeners.mqtt: false`). Each layer is checked on its own,
 * so an error names the file (and line), the variable or the flag it came from.
 */
import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { nest, parseText, readEnv } from './env.js';
import {
  applyInput,
  type BraidConfig,
  type BraidConfigInput,
  ConfigError,
  checkInput,
  checkResolved,
  DEFAULTS,
  type Key,
  mergeChecked,
  type Provenance,
  walkSchema,
} from './schema.js';

/** Command-line flags (commander's camelCase option names) and the key each one sets. */
export const FLAG_KEYS = {
  mqttPort: 'listeners.mqtt.port',
  wsPort: 'listeners.ws.port',
  amqpPort: 'listeners.amqp.port',
  httpPort: 'listeners.http.port',
  dataDir: 'storage.dataDir',
  logLevel: 'log.level',
  logFormat: 'log.format',
} as const;
export type ConfigFlag = keyof typeof FLAG_KEYS;

const KEYS_BY_PATH = new Map<string, Key>(Array.from(walkSchema(), ({ path, key }) => [path.join('.'), key]));

/** `mqttPort` → `--mqtt-port` */
export function flagName(flag: string): string {
  return `--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

export interface LoadOptions {
  /** YAML or JSON config file. */
  file?: string;
  /** Command-line flags by commander option name (`mqttPort`); see FLAG_KEYS. */
  flags?: Record<string, unknown>;
  /** Defaults to no environment (pass `process.env` to read it). */
  env?: NodeJS.ProcessEnv;
}

/** The resolved config from every source, checked. Throws ConfigError. */
export function loadConfig(opts: LoadOptions = {}): BraidConfig {
  const layers: Array<{ source: string; input: BraidConfigInput }> = [];
  if (opts.file !== undefined) layers.push({ source: opts.file, input: readConfigFile(opts.file) });
  if (opts.env !== undefined) {
    for (const layer of readEnv(opts.env))
      layers.push({ source: layer.source, input: checkInput(layer.input, layer.source) });
  }
  for (const [source, input] of flagLayers(opts.flags ?? {})) layers.push({ source, input: checkInput(input, source) });

  const prov: Provenance = new Map();
  // Fresh objects even with no sources: DEFAULTS itself is frozen.
  let config = applyInput(DEFAULTS, {}, 'defaults', prov);
  for (const layer of layers) config = applyInput(config, layer.input, layer.source, prov);
  checkResolved(config, prov, opts.file ?? 'defaults');
  return config;
}

/**
 * `input` (any part of the config) on top of `base`, checked; `base` is not changed. The
 * embeddable API uses it: `new Broker(mergeConfig(loadConfig(...), { mqtt: { maxQos: 1 } }))`.
 */
export function mergeConfig(base: BraidConfig, input: BraidConfigInput, source = 'Broker options'): BraidConfig {
  return mergeChecked(base, input, source);
}

function flagLayers(flags: Record<string, unknown>): Array<[string, Record<string, unknown>]> {
  const out: Array<[string, Record<string, unknown>]> = [];
  for (const [flag, raw] of Object.entries(flags)) {
    if (raw === undefined) continue;
    const source = flagName(flag);
    const target = Object.hasOwn(FLAG_KEYS, flag) ? FLAG_KEYS[flag as ConfigFlag] : undefined;
    if (target === undefined) throw new ConfigError(`${source} is not a config flag`, source);
    let path = target.split('.');
    let value = typeof raw === 'string' ? parseText(KEYS_BY_PATH.get(target)!, raw, path, source) : raw;
    // A port flag of `false` turns its listener off.
    if (path[0] === 'listeners' && (value === false || value === 'false')) {
      path = path.slice(0, 2);
      value = false;
    }
    out.push([source, nest(path, value)]);
  }
  return out;
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a directory',
};

/** The file parsed and checked; errors name the file and, where they can, the line. */
export function readConfigFile(file: string): BraidConfigInput {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const why = READ_ERRORS[code] ?? (err instanceof Error ? err.message : String(err));
    throw new ConfigError(`cannot read config file "${file}": ${why}`, '');
  }
  const lines = new LineCounter();
  // YAML 1.2 core schema: only true/false are booleans (`on`/`yes` stay strings). Merge keys
  // (`<<: *tls`) let TLS settings be shared between listeners.
  const doc = parseDocument(text, { lineCounter: lines, merge: true, uniqueKeys: true });
  const first = doc.errors[0];
  if (first !== undefined) {
    const at = first.linePos?.[0];
    const why = first.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(`cannot parse YAML: ${why}`, at ? `${file}, line ${at.line}` : file);
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    throw new ConfigError(`cannot read YAML: ${err instanceof Error ? err.message : String(err)}`, file);
  }
  try {
    return checkInput(data, file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const line = lineOf(doc.contents, err.keyPath, lines);
    throw line === undefined ? err : err.withSource(`${file}, line ${line}`);
  }
}

/** The line of the key at `path` in the YAML document (the deepest part of it that exists). */
function lineOf(root: unknown, path: ReadonlyArray<string | number>, lines: LineCounter): number | undefined {
  let node = root as Node | null | undefined;
  let offset: number | undefined;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
      if (pair === undefined) break;
      if (isScalar(pair.key) && pair.key.range) offset = pair.key.range[0];
      node = pair.value as Node | null;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined;
      if (item?.range) offset = item.range[0];
      node = item;
    } else break;
  }
  return offset === undefined ? undefined : lines.linePos(offset).line;
}
