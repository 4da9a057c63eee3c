/**
 * Environment overrides. Every key of the schema has a variable: `BRAID_` + its path in
 * UPPER_SNAKE (`listeners.mqtt.port` → `BRAID_LISTENERS_MQTT_PORT`, `mqtt.maxKeepAlive` →
 * `BRAID_MQTT_MAX_KEEP_ALIVE`), and each listener has one of its own (`BRAID_LISTENERS_WS=false`
 * turns it off). Names are found by walking the schema, never guessed, so a variable that
 * looks like a config key (it starts with `BRAID_<SECTION>`) but names none is an error.
 *
 * Values are parsed by the key's type: integers, booleans `true/false/1/0`, enums as written
 * (`true`/`false` become booleans where the enum holds booleans), lists as JSON, listeners as
 * `true`/`false`/JSON. An empty value counts as unset, the way `${VAR}` in a compose file is.
 */
import { ConfigError, type Key, SCHEMA, suggest, walkSchema } from './schema.js';

/** `BRAID_` variables that are not config keys even though they look like one. */
export const NON_CONFIG_ENV: ReadonlySet<string> = new Set<string>([]);

export interface EnvVariable {
  readonly name: string;
  readonly path: readonly string[];
  readonly key: Key;
}

/** `maxKeepAlive` → `MAX_KEEP_ALIVE`, `qos0MaxBufferedBytes` → `QOS0_MAX_BUFFERED_BYTES`. */
export function upperSnake(camel: string): string {
  return camel.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

export function envName(path: readonly string[]): string {
  return `BRAID_${path.map(upperSnake).join('_')}`;
}

function buildTable(): ReadonlyMap<string, EnvVariable> {
  const table = new Map<string, EnvVariable>();
  for (const { path, key } of walkSchema()) {
    const name = envName(path);
    // Two keys with one name would make an override ambiguous; the schema must not allow it.
    if (table.has(name))
      throw new Error(`config schema: ${path.join('.')} and ${table.get(name)!.path.join('.')} share ${name}`);
    table.set(name, { name, path, key });
  }
  return table;
}

/** Every config variable, by name. */
export const ENV_VARIABLES: ReadonlyMap<string, EnvVariable> = buildTable();

const SECTION_PREFIXES = Object.keys(SCHEMA).map((s) => `BRAID_${upperSnake(s)}`);

function looksLikeConfig(name: string): boolean {
  return SECTION_PREFIXES.some((p) => name === p || name.startsWith(`${p}_`));
}

const TRUE = new Set(['true', '1']);
const FALSE = new Set(['false', '0']);

function parseBool(raw: string): boolean | string {
  const v = raw.trim().toLowerCase();
  return TRUE.has(v) ? true : FALSE.has(v) ? false : raw;
}

function parseJson(raw: string, what: string, path: readonly string[], source: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ConfigError(`${path.join('.')} must be JSON (${what}): ${why}`, source, path);
  }
}

/**
 * A string (from the environment or a command-line flag) turned into the key's type. A
 * value that does not parse is returned as the raw string, so the schema check reports it
 * in the usual words: `must be an integer between 0 and 65535, got "abc"`.
 */
export function parseText(key: Key, raw: string, path: readonly string[], source: string): unknown {
  switch (key.kind) {
    case 'int':
      return /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : raw;
    case 'number':
      return /^\s*-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(raw) ? Number(raw) : raw;
    case 'bool':
      return parseBool(raw);
    case 'enum': {
      if (key.values.some((v) => typeof v === 'boolean')) {
        const b = parseBool(raw);
        if (typeof b === 'boolean') return b;
      }
      return raw;
    }
    case 'string':
      return raw;
    case 'stringList':
      return parseJson(raw, 'a list of strings such as ["a","b"]', path, source);
    case 'objectList':
      return parseJson(raw, 'a list of mappings such as [{"name":"a"}]', path, source);
    case 'listener': {
      const b = parseBool(raw);
      if (typeof b === 'boolean') return b;
      return raw.trim().startsWith('{') ? parseJson(raw, 'a mapping of listener settings', path, source) : raw;
    }
  }
}

/** `{ a: { b: value } }` for path `['a', 'b']`. */
export function nest(path: readonly string[], value: unknown): Record<string, unknown> {
  let out: unknown = value;
  for (let i = path.length - 1; i >= 0; i--) out = { [path[i]!]: out };
  return out as Record<string, unknown>;
}

/** One variable's worth of config, with the variable as its source. */
export interface EnvLayer {
  readonly source: string;
  readonly input: Record<string, unknown>;
}

/**
 * The config overrides in `env`, one layer per variable, in name order (so
 * `BRAID_LISTENERS_WS` comes before `BRAID_LISTENERS_WS_PORT`). Throws ConfigError for an
 * unknown config-looking variable, a value that does not parse, or a listener turned off
 * while another variable sets one of its keys.
 */
export function readEnv(env: NodeJS.ProcessEnv): EnvLayer[] {
  const layers: EnvLayer[] = [];
  const names = Object.keys(env)
    .filter((n) => n.startsWith('BRAID_'))
    .sort();
  for (const name of names) {
    const raw = env[name];
    if (raw === undefined || raw === '' || NON_CONFIG_ENV.has(name)) continue;
    const variable = ENV_VARIABLES.get(name);
    if (variable === undefined) {
      if (!looksLikeConfig(name)) continue;
      const hint = suggest(name, ENV_VARIABLES.keys());
      const problem = `${name} is not a config variable${hint ? `, did you mean ${hint}?` : ''}`;
      throw new ConfigError(problem, 'in the environment');
    }
    const value = parseText(variable.key, raw, variable.path, name);
    if (variable.key.kind === 'listener' && value === false) {
      const inner = names.find((n) => n.startsWith(`${name}_`) && ENV_VARIABLES.has(n) && env[n] !== '');
      if (inner !== undefined) {
        throw new ConfigError(`${name}=${raw} turns ${variable.path.join('.')} off, but ${inner} sets it`, name);
      }
    }
    layers.push({ source: name, input: nest(variable.path, value) });
  }
  return layers;
}
