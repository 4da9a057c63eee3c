/**
 * The configuration schema as data: every section and key with its type, default and a
 * one-line doc string. Everything else is derived from this tree: the TypeScript types
 * (`BraidConfig`, `BraidConfigInput`), `DEFAULTS`, validation with messages that name the key
 * path and the source, the environment variable names (env.ts) and docs/config.md
 * (tools/config-doc.ts). Adding a key here is the whole job; nothing else lists keys.
 *
 * Config is YAML with camelCase keys, grouped in sections (DESIGN.md "Running it"). An
 * unknown key anywhere is an error, so a typo never silently falls back to a default.
 */

// ---------------------------------------------------------------------------------------------
// Key kinds

interface Documented {
  /** One line for docs/config.md. */
  readonly doc: string;
}
export interface IntKey extends Documented {
  readonly kind: 'int';
  readonly default: number;
  readonly min: number;
  readonly max: number;
}
/** A number that need not be whole (`limits.memoryHighWatermark`: 0.4, or bytes). */
export interface NumberKey extends Documented {
  readonly kind: 'number';
  readonly default: number;
  readonly min: number;
  readonly max: number;
}
export interface BoolKey extends Documented {
  readonly kind: 'bool';
  readonly default: boolean;
}
/** `check` returns what is wrong ("must start with /") or undefined. */
type StringCheck = (value: string) => string | undefined;
export interface StringKey extends Documented {
  readonly kind: 'string';
  readonly default: string;
  readonly check?: StringCheck;
}
/** A string with no default: absent from the resolved config unless set. */
export interface OptionalStringKey extends Documented {
  readonly kind: 'string';
  readonly optional: true;
  readonly check?: StringCheck;
}
/** A string every item of an object list must have (`auth.users[].name`). */
export interface RequiredStringKey extends Documented {
  readonly kind: 'string';
  readonly required: true;
  readonly check?: StringCheck;
}
export interface EnumKey<V extends string | boolean = string | boolean> extends Documented {
  readonly kind: 'enum';
  readonly values: readonly V[];
  readonly default: V;
}
export interface StringListKey extends Documented {
  readonly kind: 'stringList';
  readonly default: readonly string[];
}
/** Problem with one item of an object list: which key (if any) and what is wrong. */
export interface ItemProblem {
  readonly key?: string;
  readonly problem: string;
}
export interface ObjectListKey<I extends Keys = Keys> extends Documented {
  readonly kind: 'objectList';
  readonly item: I;
  /** A key whose value must differ between items. */
  readonly unique?: keyof I & string;
  readonly check?: (item: Readonly<Record<string, unknown>>) => ItemProblem | undefined;
}
/** A listener is a mapping of its settings, or `false` (off). `true` in input means "on". */
export interface ListenerKey<K extends Keys = Keys> extends Documented {
  readonly kind: 'listener';
  /** On when the config does not mention it. */
  readonly on: boolean;
  /** A TLS listener needs `cert` and `key` to open. */
  readonly tls: boolean;
  readonly keys: K;
}
export type Key =
  | IntKey
  | NumberKey
  | BoolKey
  | StringKey
  | OptionalStringKey
  | RequiredStringKey
  | EnumKey
  | StringListKey
  | ObjectListKey
  | ListenerKey;
export type Keys = { readonly [name: string]: Key };
export interface Section<K extends Keys = Keys> extends Documented {
  readonly keys: K;
}

function int(def: number, min: number, max: number, doc: string): IntKey {
  return { kind: 'int', default: def, min, max, doc };
}
function num(def: number, min: number, max: number, doc: string): NumberKey {
  return { kind: 'number', default: def, min, max, doc };
}
function bool(def: boolean, doc: string): BoolKey {
  return { kind: 'bool', default: def, doc };
}
function str(def: string, doc: string, check?: StringCheck): StringKey {
  return { kind: 'string', default: def, doc, check };
}
function optStr(doc: string, check?: StringCheck): OptionalStringKey {
  return { kind: 'string', optional: true, doc, check };
}
function reqStr(doc: string, check?: StringCheck): RequiredStringKey {
  return { kind: 'string', required: true, doc, check };
}
function oneOf<const V extends string | boolean>(values: readonly V[], def: NoInfer<V>, doc: string): EnumKey<V> {
  return { kind: 'enum', values, default: def, doc };
}
function stringList(doc: string): StringListKey {
  return { kind: 'stringList', default: [], doc };
}
function objectList<const I extends Keys>(
  doc: string,
  item: I,
  unique?: keyof I & string,
  check?: ObjectListKey['check'],
): ObjectListKey<I> {
  return { kind: 'objectList', doc, item, unique, check };
}
function listener<const K extends Keys>(on: boolean, tls: boolean, doc: string, keys: K): ListenerKey<K> {
  return { kind: 'listener', on, tls, doc, keys };
}
const section = <const K extends Keys>(doc: string, keys: K): Section<K> => ({ doc, keys });

// ---------------------------------------------------------------------------------------------
// The schema

const U16 = 65535;
const U32 = 4294967295;
const I32 = 2147483647;
/** MQTT's largest Remaining Length, 4-byte variable byte integer [MQTT-1.5.5]. */
const MAX_PACKET = 268435455;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

const startsWithSlash: StringCheck = (v) => (v.startsWith('/') ? undefined : 'must start with "/"');
const port = (def: number): IntKey => int(def, 0, U16, 'TCP port; 0 picks a free port');
const host = (): StringKey => str('::', 'address to bind; "::" is every interface, IPv4 too');
const wsPath = (): StringKey => str('/mqtt', 'HTTP path of the WebSocket endpoint', startsWithSlash);
const tlsKeys = {
  cert: optStr('PEM certificate chain file; the listener opens only with cert and key'),
  key: optStr('PEM private key file'),
  ca: optStr('PEM CA bundle that client certificates are checked against'),
  passphrase: optStr('passphrase of the private key'),
  requireClientCert: bool(false, 'reject clients without a certificate signed by `ca` (mTLS)'),
  crl: optStr('PEM certificate revocation list file'),
  minVersion: oneOf(['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'], 'TLSv1.2', 'lowest TLS version accepted'),
  ciphers: optStr('OpenSSL cipher list for TLS 1.2 and below; Node.js defaults when unset'),
} as const;

export const SCHEMA = {
  listeners: section('Network listeners; each is a mapping of settings, or false to turn it off.', {
    mqtt: listener(true, false, 'MQTT over TCP', { port: port(1883), host: host() }),
    ws: listener(true, false, 'MQTT over WebSocket', { port: port(8083), host: host(), path: wsPath() }),
    mqtts: listener(false, true, 'MQTT over TLS', { port: port(8883), host: host(), ...tlsKeys }),
    wss: listener(false, true, 'MQTT over WebSocket and TLS', {
      port: port(8084),
      host: host(),
      path: wsPath(),
      ...tlsKeys,
    }),
    amqp: listener(true, false, 'AMQP 0-9-1 and 1.0', { port: port(5672), host: host() }),
    amqps: listener(false, true, 'AMQP over TLS', { port: port(5671), host: host(), ...tlsKeys }),
    http: listener(true, false, 'HTTP management API, health checks and metrics', { port: port(15672), host: host() }),
  }),
  mqtt: section('MQTT 3.1.1 and 5.0 protocol settings.', {
    maxKeepAlive: int(U16, 0, U16, 'cap on client keep-alive (s); asking for more, or 0, gets Server Keep Alive (5.0)'),
    maxPacketSize: int(MAX_PACKET, 20, MAX_PACKET, 'largest packet after CONNECT (bytes); sent as Maximum Packet Size'),
    maxPacketSizeUnauthenticated: int(65536, 20, MAX_PACKET, 'largest CONNECT packet accepted (bytes)'),
    // 1024: bounds the QoS 2 state one client can make us hold. Above Mosquitto's 20, EMQX's 32
    // and HiveMQ's 10, because mqtt.js does not honour Receive Maximum and its QoS 2 bursts get
    // 0x93 past it; small enough that a client overrunning it hears so quickly.
    receiveMaximum: int(1024, 1, U16, 'QoS 1/2 publishes a client may have unacknowledged towards the broker'),
    maxInflightMessages: int(1000, 1, U16, 'QoS 1/2 deliveries in flight to a client (and ≤ its Receive Maximum)'),
    maxQueuedMessages: int(0, 0, I32, 'session queue length past which new QoS 1/2 messages drop; 0 = unlimited'),
    maxQos: int(2, 0, 2, 'highest QoS granted; sent as Maximum QoS'),
    retainAvailable: bool(true, 'accept retained messages; sent as Retain Available'),
    wildcardSubscriptionAvailable: bool(true, 'accept wildcard filters; sent as Wildcard Subscription Available'),
    subscriptionIdentifierAvailable: bool(true, 'accept subscription identifiers (MQTT 5)'),
    sharedSubscriptionAvailable: bool(true, 'accept $share/group/filter subscriptions'),
    topicAliasMaximum: int(1024, 0, U16, 'topic aliases a client may use towards the broker; 0 = none'),
    topicExchange: str('amq.topic', 'exchange MQTT publishes go to and subscriptions bind to'),
    vhost: str('/', 'virtual host of MQTT clients that do not name one'),
    qos0MaxBufferedBytes: int(8388608, 1, MAX_SAFE, 'unsent bytes past which QoS 0 deliveries are dropped'),
    queueQos0Offline: bool(false, 'queue QoS 0 for offline sessions (Mosquitto queue_qos0_messages)'),
    maxSessionExpiryInterval: int(U32, 0, U32, 'cap on the Session Expiry Interval a client asks for (s)'),
    connectTimeout: int(10000, 100, 600000, 'a connection that sends no CONNECT within this many ms is closed'),
    // [MQTT-3.1.3-5]: a server must accept client ids of 1 to 23 characters, so the cap starts there.
    maxClientIdLength: int(U16, 23, U16, 'longest client id accepted (characters)'),
  }),
  amqp: section('AMQP 0-9-1 protocol settings (RabbitMQ defaults).', {
    heartbeat: int(60, 0, U16, 'heartbeat interval offered in connection.tune (s); 0 = none'),
    frameMax: int(131072, 4096, I32, 'largest frame offered in connection.tune (bytes)'),
    channelMax: int(2047, 1, U16, 'channels a connection may open, offered in connection.tune'),
    maxMessageSize: int(134217728, 1, 536870912, 'largest message body accepted (bytes); larger closes the channel'),
    consumerTimeout: int(
      1800000,
      0,
      MAX_SAFE,
      'a delivery unacknowledged this long closes its channel (ms); 0 = never',
    ),
    handshakeTimeout: int(10000, 100, 600000, 'a connection that has not opened a vhost within this many ms is closed'),
  }),
  auth: section('Authentication.', {
    allowAnonymous: oneOf(
      [true, false, 'loopback'],
      'loopback',
      'accept clients without a username; or only from loopback',
    ),
    users: objectList(
      'users defined in the config: a list of { name, password | passwordHash, tags, vhost }',
      {
        name: reqStr('user name'),
        password: optStr('clear-text password'),
        passwordHash: optStr('mosquitto_passwd hash (PBKDF2-SHA512, `$7$...`)', (v) =>
          v.startsWith('$7$') ? undefined : 'must be a mosquitto_passwd "$7$" hash',
        ),
        tags: stringList('RabbitMQ-style user tags, such as administrator or monitoring'),
        vhost: str('/', 'virtual host the user belongs to'),
      },
      'name',
      (user) =>
        (user.password === undefined) === (user.passwordHash === undefined)
          ? { problem: 'needs exactly one of password and passwordHash' }
          : undefined,
    ),
    guest: bool(true, 'the built-in guest/guest user, accepted only from loopback'),
    aclFile: optStr('Mosquitto-format ACL file (`user`, `topic [read|write|readwrite|deny]`, `pattern` with %u/%c)'),
  }),
  storage: section('Persistence.', {
    dataDir: str('./data', 'directory of the embedded store, relative to the working directory'),
    persistence: bool(
      true,
      'keep durable state in dataDir; false runs entirely in memory (nothing survives a restart)',
    ),
  }),
  limits: section('Resource limits.', {
    maxConnections: int(0, 0, I32, 'open client connections over all listeners; 0 = unlimited'),
    // RabbitMQ's vm_memory_high_watermark (relative 0.4) and disk_free_limit (50 MB). Memory is
    // the process's anonymous resident memory (RssAnon), so LMDB's file-backed pages do not count.
    memoryHighWatermark: num(
      0.4,
      0,
      MAX_SAFE,
      'publishers are blocked while resident memory (RssAnon: not the LMDB map) is above this: ≤ 1 a fraction of RAM or of the cgroup limit, > 1 bytes',
    ),
    diskFreeLimit: int(
      50000000,
      0,
      MAX_SAFE,
      'publishers are blocked while the storage.dataDir disk has fewer free bytes than this; 0 = no disk alarm',
    ),
    alarmCheckInterval: int(1000, 0, I32, 'how often memory and free disk are measured (ms); 0 = never'),
  }),
  log: section('Logging (to stderr).', {
    level: oneOf(['debug', 'info', 'warn', 'error', 'silent'], 'info', 'lowest level logged'),
    format: oneOf(['text', 'json'], 'text', 'text lines or one JSON object per line'),
  }),
  cluster: section('Clustering over NATS JetStream (none yet).', {}),
} as const satisfies Record<string, Section>;

// ---------------------------------------------------------------------------------------------
// Types derived from the schema

type Simplify<T> = { [P in keyof T]: T[P] } & {};
type ValueOf<S> = S extends IntKey | NumberKey
  ? number
  : S extends BoolKey
    ? boolean
    : S extends EnumKey<infer V>
      ? V
      : S extends StringListKey
        ? string[]
        : S extends ObjectListKey<infer I>
          ? Array<Resolved<I>>
          : S extends ListenerKey<infer K>
            ? false | Resolved<K>
            : S extends { readonly kind: 'string' }
              ? string
              : never;
type OptionalKeys<K> = { [P in keyof K]: K[P] extends { readonly optional: true } ? P : never }[keyof K];
type RequiredKeys<K> = { [P in keyof K]: K[P] extends { readonly required: true } ? P : never }[keyof K];
/** The resolved value of a group of keys: defaults filled, optional strings possibly absent. */
export type Resolved<K> = Simplify<
  { -readonly [P in Exclude<keyof K, OptionalKeys<K>>]: ValueOf<K[P]> } & {
    -readonly [P in OptionalKeys<K>]?: ValueOf<K[P]>;
  }
>;
type InputOf<S> =
  S extends ListenerKey<infer K>
    ? boolean | PartialInput<K>
    : S extends ObjectListKey<infer I>
      ? ReadonlyArray<ItemInput<I>>
      : S extends StringListKey
        ? readonly string[]
        : ValueOf<S>;
type PartialInput<K> = { [P in keyof K]?: InputOf<K[P]> };
type ItemInput<I> = Simplify<
  { [P in RequiredKeys<I>]: InputOf<I[P]> } & { [P in Exclude<keyof I, RequiredKeys<I>>]?: InputOf<I[P]> }
>;
type Schema = typeof SCHEMA;

/** The fully resolved config: every default filled. */
export type BraidConfig = { [S in keyof Schema]: Resolved<Schema[S]['keys']> };
/** What users pass (YAML, env, flags, `new Broker(...)`): any part of the config. */
export type BraidConfigInput = { [S in keyof Schema]?: PartialInput<Schema[S]['keys']> };
export type ListenerName = keyof Schema['listeners']['keys'];
export type MqttConfig = BraidConfig['mqtt'];
export type AuthConfig = BraidConfig['auth'];
export type UserConfig = AuthConfig['users'][number];
/** Settings of any listener when on; TLS keys are present only on TLS listeners. */
export type ListenerConfig = Exclude<BraidConfig['listeners'][ListenerName], false>;
export type TlsListenerConfig = Exclude<BraidConfig['listeners']['mqtts'], false>;

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * A bad config. The message names the key path and where the value came from:
 * `config error: mqtt.maxKeepAlive must be an integer between 0 and 65535, got "abc" (from BRAID_MQTT_MAX_KEEP_ALIVE)`.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** Path to the offending key, e.g. `['auth', 'users', 0, 'name']`; empty for the whole input. */
  readonly keyPath: ReadonlyArray<string | number>;
  /** A file name, an environment variable, a flag, or "Broker options". */
  readonly source: string;
  /** The message without the "config error:" prefix and the source. */
  readonly problem: string;

  constructor(problem: string, source: string, keyPath: ReadonlyArray<string | number> = []) {
    super(`config error: ${problem}${source ? ` (${describeSource(source)})` : ''}`);
    this.problem = problem;
    this.source = source;
    this.keyPath = keyPath;
  }

  /** The same problem, attributed to a more precise source (a YAML line). */
  withSource(source: string): ConfigError {
    return new ConfigError(this.problem, source, this.keyPath);
  }
}

function describeSource(source: string): string {
  if (/^(in|from) /.test(source)) return source;
  return /^(BRAID_|-)/.test(source) ? `from ${source}` : `in ${source}`;
}

/** `auth.users[0].name` */
export function formatPath(path: ReadonlyArray<string | number>): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

/** A value as it appears in an error message: strings quoted, long values cut. */
export function show(value: unknown): string {
  let text: string;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') text = String(value);
  else if (value === undefined) text = 'nothing';
  else if (typeof value === 'symbol' || typeof value === 'function') text = `a ${typeof value}`;
  else {
    try {
      text = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? String(v) : v)) ?? 'an object';
    } catch {
      text = Array.isArray(value) ? 'a list' : 'an object';
    }
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Levenshtein distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/** The candidate closest to `name`, if it is close enough to be a typo. */
export function suggest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const c of candidates) {
    const d = distance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function unknownKey(path: ReadonlyArray<string | number>, known: readonly string[], source: string): ConfigError {
  const name = String(path[path.length - 1]);
  const hint = suggest(name, known);
  let problem = `unknown key "${formatPath(path)}"`;
  if (hint !== undefined) problem += `, did you mean "${formatPath([...path.slice(0, -1), hint])}"?`;
  else if (known.length === 0) problem += `; ${formatPath(path.slice(0, -1))} has no settings yet`;
  return new ConfigError(problem, source, path);
}

// ---------------------------------------------------------------------------------------------
// Checking input

type Path = ReadonlyArray<string | number>;
type Dict = Record<string, unknown>;

export function isPlainObject(value: unknown): value is Dict {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const own = <T>(table: { readonly [k: string]: T }, name: string): T | undefined =>
  Object.hasOwn(table, name) ? table[name] : undefined;

/**
 * Checks a partial config (one source's worth) against the schema: unknown keys, types,
 * ranges. Returns a normalized copy (absent and `undefined` values dropped, empty sections
 * given as `null` treated as absent, `true` listeners as `{}`). Throws ConfigError.
 */
export function checkInput(input: unknown, source: string): BraidConfigInput {
  if (input === undefined || input === null) return {};
  if (!isPlainObject(input)) {
    const names = Object.keys(SCHEMA).join(', ');
    throw new ConfigError(`the config must be a mapping of sections (${names}), got ${show(input)}`, source);
  }
  const out: Dict = {};
  for (const [name, value] of Object.entries(input)) {
    const spec = own<Section>(SCHEMA, name);
    if (spec === undefined) throw unknownKey([name], Object.keys(SCHEMA), source);
    // `mqtt:` with nothing under it is YAML for null: an empty section.
    if (value === undefined || value === null) continue;
    out[name] = checkKeys(spec.keys, value, [name], source);
  }
  return out as BraidConfigInput;
}

function checkKeys(keys: Keys, value: unknown, path: Path, source: string): Dict {
  if (!isPlainObject(value)) {
    const names = Object.keys(keys);
    const what = names.length ? `a mapping (${names.join(', ')})` : 'an empty mapping';
    throw new ConfigError(`${formatPath(path)} must be ${what}, got ${show(value)}`, source, path);
  }
  const out: Dict = {};
  for (const [name, v] of Object.entries(value)) {
    const spec = own(keys, name);
    if (spec === undefined) throw unknownKey([...path, name], Object.keys(keys), source);
    if (v !== undefined) out[name] = checkValue(spec, v, [...path, name], source);
  }
  return out;
}

function checkValue(spec: Key, v: unknown, path: Path, source: string): unknown {
  const fail = (expected: string): never => {
    throw new ConfigError(`${formatPath(path)} must be ${expected}, got ${show(v)}`, source, path);
  };
  switch (spec.kind) {
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < spec.min || v > spec.max) {
        fail(`an integer between ${spec.min} and ${spec.max}`);
      }
      return v;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v) || v < spec.min || v > spec.max) {
        fail(`a number between ${spec.min} and ${spec.max}`);
      }
      return v;
    case 'bool':
      if (typeof v !== 'boolean') fail('true or false');
      return v;
    case 'string': {
      if (typeof v !== 'string' || v === '') fail('a non-empty string');
      const problem = spec.check?.(v as string);
      if (problem !== undefined) {
        throw new ConfigError(`${formatPath(path)} ${problem}, got ${show(v)}`, source, path);
      }
      return v;
    }
    case 'enum':
      if (!(spec.values as readonly unknown[]).includes(v)) fail(`one of ${spec.values.map(show).join(', ')}`);
      return v;
    case 'stringList':
      if (!Array.isArray(v)) fail('a list of strings');
      return (v as unknown[]).map((item, i) => {
        if (typeof item !== 'string') {
          const p = [...path, i];
          throw new ConfigError(`${formatPath(p)} must be a string, got ${show(item)}`, source, p);
        }
        return item;
      });
    case 'objectList':
      return checkObjectList(spec, v, path, source);
    case 'listener':
      if (v === false) return false;
      if (v === true) return {};
      if (!isPlainObject(v)) fail(`a mapping (${Object.keys(spec.keys).join(', ')}) or false`);
      return checkKeys(spec.keys, v, path, source);
  }
}

function checkObjectList(spec: ObjectListKey, v: unknown, path: Path, source: string): Dict[] {
  if (!Array.isArray(v)) {
    throw new ConfigError(`${formatPath(path)} must be a list of mappings, got ${show(v)}`, source, path);
  }
  const seen = new Map<unknown, number>();
  return v.map((raw, i) => {
    const itemPath = [...path, i];
    const item = checkKeys(spec.item, raw, itemPath, source);
    for (const [name, key] of Object.entries(spec.item)) {
      if ('required' in key && item[name] === undefined) {
        const p = [...itemPath, name];
        throw new ConfigError(`${formatPath(p)} is required`, source, p);
      }
    }
    const problem = spec.check?.(item);
    if (problem !== undefined) {
      const p = problem.key === undefined ? itemPath : [...itemPath, problem.key];
      throw new ConfigError(`${formatPath(p)} ${problem.problem}`, source, p);
    }
    if (spec.unique !== undefined) {
      const value = item[spec.unique];
      const first = seen.get(value);
      if (first !== undefined) {
        const p = [...itemPath, spec.unique];
        throw new ConfigError(`${formatPath(p)} ${show(value)} repeats ${formatPath([...path, first])}`, source, p);
      }
      seen.set(value, i);
    }
    return item;
  });
}

// ---------------------------------------------------------------------------------------------
// Defaults and merging

function defaultsOf(keys: Keys): Dict {
  const out: Dict = {};
  for (const [name, spec] of Object.entries(keys)) {
    if (spec.kind === 'listener') out[name] = spec.on ? defaultsOf(spec.keys) : false;
    else if (spec.kind === 'stringList' || spec.kind === 'objectList') out[name] = [];
    else if ('default' in spec) out[name] = spec.default;
  }
  return out;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Which source last set each key path (`listeners.mqtts`), to blame cross-key problems on. */
export type Provenance = Map<string, string>;

function applyKeys(keys: Keys, base: Dict, input: Dict, path: Path, source: string, prov: Provenance): Dict {
  const out: Dict = {};
  for (const [name, spec] of Object.entries(keys)) {
    const p = [...path, name];
    const given = input[name];
    const current = base[name];
    if (given !== undefined) prov.set(formatPath(p), source);
    if (spec.kind === 'listener') {
      // A listener that was off comes back on with its defaults under any setting of it.
      const on = given ?? current ?? spec.on;
      if (on === false) out[name] = false;
      else {
        const from = current === false || current === undefined ? defaultsOf(spec.keys) : (current as Dict);
        out[name] = applyKeys(spec.keys, from, given === undefined ? {} : (given as Dict), p, source, prov);
      }
    } else {
      const value = given === undefined ? current : given;
      if (value === undefined) continue;
      if (spec.kind === 'stringList') out[name] = [...(value as string[])];
      else if (spec.kind === 'objectList') {
        // Lists are replaced whole, so their items need no provenance of their own.
        out[name] = (value as Dict[]).map((item) =>
          applyKeys(spec.item, defaultsOf(spec.item), item, p, source, new Map()),
        );
      } else out[name] = value;
    }
  }
  return out;
}

/**
 * One layer on top of a resolved config: `input` must come from checkInput. Returns new
 * objects; `base` is not touched. Call checkResolved once all layers are applied.
 */
export function applyInput(base: BraidConfig, input: BraidConfigInput, source: string, prov: Provenance): BraidConfig {
  const out: Dict = {};
  for (const [name, spec] of Object.entries(SCHEMA as Record<string, Section>)) {
    const given = (input as Record<string, Dict | undefined>)[name] ?? {};
    out[name] = applyKeys(spec.keys, (base as Record<string, Dict>)[name] ?? {}, given, [name], source, prov);
  }
  return out as BraidConfig;
}

const WILDCARD_HOSTS = new Set(['::', '0.0.0.0', '::0']);

/** Rules that span keys, checked on the resolved config. */
export function checkResolved(config: BraidConfig, prov: Provenance, fallbackSource: string): void {
  const sourceOf = (path: string): string => {
    for (let p = path; p; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
      const s = prov.get(p);
      if (s !== undefined) return s;
    }
    return fallbackSource;
  };
  const opened: Array<{ name: string; host: string; port: number }> = [];
  const listeners = SCHEMA.listeners.keys as Record<string, ListenerKey>;
  for (const [name, spec] of Object.entries(listeners)) {
    const l = (config.listeners as Record<string, false | Dict>)[name];
    if (l === false || l === undefined) continue;
    const path = `listeners.${name}`;
    if (spec.tls) {
      for (const k of ['cert', 'key']) {
        if (l[k] === undefined) {
          const problem = `${path}.${k} is required to open this TLS listener (or set ${path} to false)`;
          throw new ConfigError(problem, sourceOf(path), ['listeners', name, k]);
        }
      }
    }
    const host = l.host as string;
    const port = l.port as number;
    // Port 0 asks the OS for a free port, so it never clashes.
    const clash = opened.find(
      (o) =>
        port !== 0 && o.port === port && (o.host === host || WILDCARD_HOSTS.has(o.host) || WILDCARD_HOSTS.has(host)),
    );
    if (clash) {
      const problem = `${path}.port ${port} is also listeners.${clash.name}.port; give each listener its own port`;
      throw new ConfigError(problem, sourceOf(`${path}.port`), ['listeners', name, 'port']);
    }
    opened.push({ name, host, port });
  }
}

/** Every default filled; frozen, so share it freely. */
export const DEFAULTS: BraidConfig = deepFreeze(
  Object.fromEntries(Object.entries(SCHEMA as Record<string, Section>).map(([name, s]) => [name, defaultsOf(s.keys)])),
) as BraidConfig;

/** `input` merged onto `base` and checked; used by validateConfig and load.ts's mergeConfig. */
export function mergeChecked(base: BraidConfig, input: unknown, source: string): BraidConfig {
  const prov: Provenance = new Map();
  const config = applyInput(base, checkInput(input, source), source, prov);
  checkResolved(config, prov, source);
  return config;
}

/**
 * Validates user input (any part of the config, or a whole resolved config) and returns the
 * resolved config with every default filled. Throws ConfigError naming the key and `source`.
 */
export function validateConfig(input: unknown, source: string): BraidConfig {
  return mergeChecked(DEFAULTS, input, source);
}

/** Every key of the schema in order, with its dotted path, for env.ts and the docs. */
export function* walkSchema(): Generator<{ path: readonly string[]; key: Key }> {
  for (const [name, sec] of Object.entries(SCHEMA as Record<string, Section>)) {
    for (const [k, key] of Object.entries(sec.keys)) {
      yield { path: [name, k], key };
      if (key.kind === 'listener') {
        for (const [sub, subKey] of Object.entries(key.keys)) yield { path: [name, k, sub], key: subKey };
      }
    }
  }
}
