import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { ENV_VARIABLES, envName, readEnv } from '../../src/config/env.js';
import { loadConfig, mergeConfig } from '../../src/config/load.js';
import {
  type BraidConfig,
  ConfigError,
  DEFAULTS,
  type Key,
  SCHEMA,
  validateConfig,
  walkSchema,
} from '../../src/config/schema.js';

const dir = mkdtempSync(join(tmpdir(), 'braid-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
function file(text: string, ext = 'yaml'): string {
  const path = join(dir, `c${fileNo++}.${ext}`);
  writeFileSync(path, text);
  return path;
}

/** The ConfigError `fn` throws; fails the test when it throws anything else or nothing. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  assert.fail('expected a ConfigError');
}

function rejects(input: unknown, ...parts: Array<string | RegExp>): ConfigError {
  const err = configError(() => validateConfig(input, 'test.yaml'));
  for (const p of parts) {
    if (typeof p === 'string') assert.ok(err.message.includes(p), `"${err.message}" should include "${p}"`);
    else assert.match(err.message, p);
  }
  return err;
}

/** The settings of a listener that must be on. */
function on<T>(listener: T | false): T {
  assert.notEqual(listener, false, 'listener should be on');
  return listener as T;
}

const tls = { cert: '/etc/braid/cert.pem', key: '/etc/braid/key.pem' };

describe('config defaults', () => {
  it('fills every default from an empty input', () => {
    const c = validateConfig({}, 'test');
    assert.deepEqual(c, DEFAULTS);
    assert.deepEqual(c.listeners.mqtt, { port: 1883, host: '::' });
    assert.deepEqual(c.listeners.ws, { port: 8083, host: '::', path: '/mqtt' });
    assert.deepEqual(c.listeners.amqp, { port: 5672, host: '::' });
    assert.deepEqual(c.listeners.http, { port: 15672, host: '::' });
    assert.equal(c.listeners.mqtts, false);
    assert.equal(c.listeners.wss, false);
    assert.equal(c.listeners.amqps, false);
    assert.equal(c.mqtt.maxKeepAlive, 65535);
    assert.equal(c.mqtt.maxPacketSize, 268435455);
    assert.equal(c.mqtt.maxPacketSizeUnauthenticated, 65536);
    assert.equal(c.mqtt.receiveMaximum, 1024);
    assert.equal(c.mqtt.maxInflightMessages, 1000);
    assert.equal(c.mqtt.maxQueuedMessages, 0);
    assert.equal(c.mqtt.maxQos, 2);
    assert.equal(c.mqtt.topicAliasMaximum, 1024);
    assert.equal(c.mqtt.topicExchange, 'amq.topic');
    assert.equal(c.mqtt.vhost, '/');
    assert.equal(c.mqtt.qos0MaxBufferedBytes, 8388608);
    assert.equal(c.mqtt.queueQos0Offline, false);
    assert.equal(c.mqtt.maxSessionExpiryInterval, 4294967295);
    assert.equal(c.mqtt.connectTimeout, 10000);
    assert.equal(c.mqtt.maxClientIdLength, 65535);
    assert.deepEqual(c.auth, { allowAnonymous: 'loopback', users: [], guest: true });
    assert.deepEqual(c.storage, { dataDir: './data', persistence: true });
    assert.deepEqual(c.limits, {
      maxConnections: 0,
      memoryHighWatermark: 0.4,
      diskFreeLimit: 50000000,
      alarmCheckInterval: 1000,
    });
    assert.deepEqual(c.log, { level: 'info', format: 'text' });
    assert.deepEqual(c.amqp, {
      heartbeat: 60,
      frameMax: 131072,
      channelMax: 2047,
      maxMessageSize: 134217728,
      consumerTimeout: 1800000,
      handshakeTimeout: 10000,
    });
    assert.deepEqual(c.cluster, {});
  });

  it('gives fresh objects and keeps DEFAULTS frozen', () => {
    const c = validateConfig(undefined, 'test');
    c.auth.users.push({ name: 'x', password: 'y', tags: [], vhost: '/' });
    assert.deepEqual(DEFAULTS.auth.users, []);
    assert.ok(Object.isFrozen(DEFAULTS.listeners.mqtt));
    assert.throws(() => {
      (DEFAULTS.mqtt as { maxQos: number }).maxQos = 1;
    }, TypeError);
  });

  it('accepts its own output (the Broker validates what loadConfig returns)', () => {
    const c = validateConfig({ listeners: { mqtts: tls }, auth: { users: [{ name: 'a', password: 'b' }] } }, 'x');
    assert.deepEqual(validateConfig(c, 'again'), c);
  });

  it('merges onto a base without touching it', () => {
    const base = validateConfig({ mqtt: { maxQos: 1 }, listeners: { ws: false } }, 'base');
    const merged = mergeConfig(base, { mqtt: { maxKeepAlive: 60 }, listeners: { ws: { port: 9001 } } });
    assert.equal(merged.mqtt.maxQos, 1);
    assert.equal(merged.mqtt.maxKeepAlive, 60);
    assert.deepEqual(merged.listeners.ws, { port: 9001, host: '::', path: '/mqtt' });
    assert.equal(base.listeners.ws, false);
    assert.equal(base.mqtt.maxKeepAlive, 65535);
    const err = configError(() => mergeConfig(base, { mqtt: { maxQos: 3 } }));
    assert.match(err.message, /mqtt\.maxQos must be an integer between 0 and 2, got 3 \(in Broker options\)/);
  });

  it('turns listeners on and off: false, true, a mapping', () => {
    const c = validateConfig({ listeners: { mqtt: false, ws: true, mqtts: { ...tls, port: 0 } } }, 'x');
    assert.equal(c.listeners.mqtt, false);
    assert.deepEqual(c.listeners.ws, { port: 8083, host: '::', path: '/mqtt' });
    assert.deepEqual(c.listeners.mqtts, {
      port: 0,
      host: '::',
      requireClientCert: false,
      minVersion: 'TLSv1.2',
      ...tls,
    });
  });

  it('fills user defaults and keeps allowAnonymous a boolean or "loopback"', () => {
    const c = validateConfig(
      { auth: { allowAnonymous: false, users: [{ name: 'a', passwordHash: '$7$101$abc$def' }] } },
      'x',
    );
    assert.equal(c.auth.allowAnonymous, false);
    assert.deepEqual(c.auth.users, [{ name: 'a', passwordHash: '$7$101$abc$def', tags: [], vhost: '/' }]);
  });
});

describe('config errors name the key and the source', () => {
  it('unknown top-level key', () => {
    const err = rejects({ mqttt: {} }, 'config error: unknown key "mqttt", did you mean "mqtt"? (in test.yaml)');
    assert.deepEqual(err.keyPath, ['mqttt']);
  });
  it('unknown nested key, with a hint', () => {
    rejects({ mqtt: { maxKeepAlve: 1 } }, 'unknown key "mqtt.maxKeepAlve", did you mean "mqtt.maxKeepAlive"?');
  });
  it('unknown key without a close match', () => {
    rejects({ storage: { zzzzzzzz: 1 } }, /^config error: unknown key "storage\.zzzzzzzz" \(in test\.yaml\)$/);
  });
  it('unknown key in an empty section', () => {
    rejects({ cluster: { nodes: 1 } }, 'unknown key "cluster.nodes"; cluster has no settings yet');
  });

  it('an AMQP setting below its minimum', () => {
    rejects({ amqp: { frameMax: 1 } }, 'amqp.frameMax');
    rejects({ cluster: { nodes: [] } }, 'unknown key "cluster.nodes"');
  });
  it('unknown key in a listener and in a user', () => {
    rejects(
      { listeners: { mqtt: { prot: 1 } } },
      'unknown key "listeners.mqtt.prot", did you mean "listeners.mqtt.port"?',
    );
    rejects({ listeners: { amqps: { ...tls, cipher: 'x' } } }, 'unknown key "listeners.amqps.cipher"');
    rejects({ auth: { users: [{ name: 'a', password: 'b', pasword: 'c' }] } }, 'unknown key "auth.users[0].pasword"');
  });
  it('bad integers', () => {
    rejects({ mqtt: { maxKeepAlive: 'abc' } }, 'mqtt.maxKeepAlive must be an integer between 0 and 65535, got "abc"');
    rejects({ mqtt: { maxKeepAlive: 65536 } }, 'mqtt.maxKeepAlive must be an integer between 0 and 65535, got 65536');
    rejects({ mqtt: { receiveMaximum: 0 } }, 'mqtt.receiveMaximum must be an integer between 1 and 65535, got 0');
    rejects({ mqtt: { maxQos: 1.5 } }, 'mqtt.maxQos must be an integer between 0 and 2, got 1.5');
    rejects(
      { listeners: { mqtt: { port: -1 } } },
      'listeners.mqtt.port must be an integer between 0 and 65535, got -1',
    );
    rejects({ mqtt: { connectTimeout: 50 } }, 'mqtt.connectTimeout must be an integer between 100 and 600000');
    rejects({ mqtt: { maxClientIdLength: 22 } }, 'mqtt.maxClientIdLength must be an integer between 23 and 65535');
    rejects({ mqtt: { maxPacketSize: Number.NaN } }, 'got NaN');
  });
  it('bad booleans, strings and enums', () => {
    rejects({ mqtt: { retainAvailable: 'yes' } }, 'mqtt.retainAvailable must be true or false, got "yes"');
    rejects({ storage: { dataDir: '' } }, 'storage.dataDir must be a non-empty string, got ""');
    rejects({ mqtt: { topicExchange: 5 } }, 'mqtt.topicExchange must be a non-empty string, got 5');
    rejects(
      { log: { level: 'verbose' } },
      'log.level must be one of "debug", "info", "warn", "error", "silent", got "verbose"',
    );
    rejects({ log: { format: 'xml' } }, 'log.format must be one of "text", "json"');
    rejects(
      { auth: { allowAnonymous: 'yes' } },
      'auth.allowAnonymous must be one of true, false, "loopback", got "yes"',
    );
    rejects({ listeners: { ws: { path: 'mqtt' } } }, 'listeners.ws.path must start with "/", got "mqtt"');
    rejects({ listeners: { mqtts: { ...tls, minVersion: 'SSLv3' } } }, 'listeners.mqtts.minVersion must be one of');
  });
  it('bad listener values', () => {
    rejects({ listeners: { ws: 'off' } }, 'listeners.ws must be a mapping (port, host, path) or false, got "off"');
    rejects({ listeners: { mqtt: 0 } }, 'listeners.mqtt must be a mapping (port, host) or false, got 0');
    rejects({ listeners: { mqtt: null } }, 'listeners.mqtt must be a mapping');
  });
  it('a TLS listener needs cert and key', () => {
    rejects({ listeners: { mqtts: {} } }, 'listeners.mqtts.cert is required to open this TLS listener');
    rejects({ listeners: { wss: { cert: 'c.pem' } } }, 'listeners.wss.key is required');
    rejects({ listeners: { amqps: true } }, 'listeners.amqps.cert is required');
  });
  it('two listeners on one port', () => {
    rejects({ listeners: { ws: { port: 1883 } } }, 'listeners.ws.port 1883 is also listeners.mqtt.port');
    // Different specific hosts, or port 0, do not clash.
    validateConfig({ listeners: { mqtt: { host: '127.0.0.1', port: 0 }, ws: { host: '127.0.0.1', port: 0 } } }, 'x');
    validateConfig({ listeners: { mqtt: { host: '127.0.0.1' }, ws: { host: '127.0.0.2', port: 1883 } } }, 'x');
  });
  it('bad users', () => {
    rejects({ auth: { users: {} } }, 'auth.users must be a list of mappings, got {}');
    rejects(
      { auth: { users: ['bob'] } },
      'auth.users[0] must be a mapping (name, password, passwordHash, tags, vhost)',
    );
    rejects({ auth: { users: [{ password: 'x' }] } }, 'auth.users[0].name is required');
    rejects({ auth: { users: [{ name: 'a' }] } }, 'auth.users[0] needs exactly one of password and passwordHash');
    rejects(
      { auth: { users: [{ name: 'a', password: 'x', passwordHash: '$7$x' }] } },
      'auth.users[0] needs exactly one of password and passwordHash',
    );
    rejects({ auth: { users: [{ name: 'a', passwordHash: 'plain' }] } }, 'auth.users[0].passwordHash must be a');
    rejects({ auth: { users: [{ name: 'a', password: 'x', tags: 'admin' }] } }, 'auth.users[0].tags must be a list');
    rejects(
      { auth: { users: [{ name: 'a', password: 'x', tags: ['ok', 1] }] } },
      'auth.users[0].tags[1] must be a string',
    );
    rejects(
      {
        auth: {
          users: [
            { name: 'a', password: 'x' },
            { name: 'a', password: 'y' },
          ],
        },
      },
      'auth.users[1].name "a" repeats auth.users[0]',
    );
  });
  it('not a mapping at all', () => {
    rejects(
      [],
      'the config must be a mapping of sections (listeners, mqtt, amqp, auth, storage, limits, log, cluster)',
    );
    rejects('mqtt', 'got "mqtt"');
    rejects({ mqtt: [] }, 'mqtt must be a mapping (maxKeepAlive,');
    rejects({ mqtt: 5 }, 'mqtt must be a mapping');
  });
  it('does not trip over prototype keys', () => {
    rejects(JSON.parse('{"__proto__": {"x": 1}}'), 'unknown key "__proto__"');
    rejects({ constructor: {} }, 'unknown key "constructor"');
    rejects({ mqtt: { toString: 1 } }, 'unknown key "mqtt.toString"');
    rejects({ listeners: { hasOwnProperty: false } }, 'unknown key "listeners.hasOwnProperty"');
  });
});

describe('config file', () => {
  it('loads YAML over the defaults', () => {
    const path = file(
      [
        'listeners:',
        '  mqtt: { port: 1884 }',
        '  ws: false',
        '  mqtts: &tls',
        '    cert: /c.pem',
        '    key: /k.pem',
        '  wss:',
        '    <<: *tls',
        '    path: /ws',
        'mqtt:',
        '  maxKeepAlive: 60',
        'amqp:',
        'auth:',
        '  allowAnonymous: true',
        '  users:',
        '    - name: alice',
        '      password: "123456"',
        '      tags: [administrator]',
      ].join('\n'),
    );
    const c = loadConfig({ file: path });
    assert.deepEqual(c.listeners.mqtt, { port: 1884, host: '::' });
    assert.equal(c.listeners.ws, false);
    assert.equal(on(c.listeners.mqtts).port, 8883);
    assert.equal(on(c.listeners.wss).cert, '/c.pem');
    assert.equal(on(c.listeners.wss).path, '/ws');
    assert.equal(c.mqtt.maxKeepAlive, 60);
    assert.equal(c.mqtt.maxQos, 2);
    assert.equal(c.auth.allowAnonymous, true);
    assert.deepEqual(c.auth.users, [{ name: 'alice', password: '123456', tags: ['administrator'], vhost: '/' }]);
  });

  it('loads JSON, and an empty file gives the defaults', () => {
    const c = loadConfig({ file: file('{"log": {"level": "debug"}, "listeners": {"amqp": false}}', 'json') });
    assert.equal(c.log.level, 'debug');
    assert.equal(c.listeners.amqp, false);
    assert.deepEqual(loadConfig({ file: file('') }), DEFAULTS);
    assert.deepEqual(loadConfig({ file: file('# nothing\n') }), DEFAULTS);
    assert.deepEqual(loadConfig(), DEFAULTS);
  });

  it('names the file and line of a bad key', () => {
    const path = file('listeners:\n  mqtt:\n    port: 1884\nmqtt:\n  maxKeepAlve: 10\n');
    const err = configError(() => loadConfig({ file: path }));
    assert.equal(
      err.message,
      `config error: unknown key "mqtt.maxKeepAlve", did you mean "mqtt.maxKeepAlive"? (in ${path}, line 5)`,
    );
    const bad = file('auth:\n  users:\n    - name: a\n      password: b\n    - name: c\n');
    assert.match(configError(() => loadConfig({ file: bad })).message, /auth\.users\[1\] needs .*line 5\)$/);
    const range = file('listeners:\n  ws:\n    port: 70000\n');
    assert.match(
      configError(() => loadConfig({ file: range })).message,
      /listeners\.ws\.port .* got 70000 .*line 3\)$/,
    );
  });

  it('names the file of YAML syntax errors, a missing file and a wrong top level', () => {
    const broken = file('mqtt:\n  maxQos: [1\n');
    assert.match(
      configError(() => loadConfig({ file: broken })).message,
      new RegExp(`cannot parse YAML: .*\\(in ${broken}, line \\d+\\)`),
    );
    const dup = file('mqtt:\n  maxQos: 1\n  maxQos: 2\n');
    assert.match(configError(() => loadConfig({ file: dup })).message, /Map keys must be unique \(in .*line 3\)/);
    const missing = join(dir, 'nope.yaml');
    assert.equal(
      configError(() => loadConfig({ file: missing })).message,
      `config error: cannot read config file "${missing}": no such file`,
    );
    assert.match(configError(() => loadConfig({ file: dir })).message, /cannot read config file .*: it is a directory/);
    assert.match(
      configError(() => loadConfig({ file: file('- 1\n- 2\n') })).message,
      /must be a mapping of sections .*got \[1,2\]/,
    );
    assert.match(configError(() => loadConfig({ file: file('mqtt: *nope\n') })).message, /cannot (read|parse) YAML/);
  });

  it('reads yes/on as strings (YAML 1.2), so they are reported', () => {
    const path = file('mqtt:\n  retainAvailable: yes\n');
    assert.match(
      configError(() => loadConfig({ file: path })).message,
      /mqtt\.retainAvailable must be true or false, got "yes"/,
    );
  });
});

describe('environment overrides', () => {
  it('maps camelCase keys to UPPER_SNAKE names from the schema', () => {
    assert.equal(envName(['listeners', 'mqtt', 'port']), 'BRAID_LISTENERS_MQTT_PORT');
    assert.equal(envName(['mqtt', 'maxKeepAlive']), 'BRAID_MQTT_MAX_KEEP_ALIVE');
    assert.equal(envName(['mqtt', 'qos0MaxBufferedBytes']), 'BRAID_MQTT_QOS0_MAX_BUFFERED_BYTES');
    assert.equal(envName(['listeners', 'wss', 'requireClientCert']), 'BRAID_LISTENERS_WSS_REQUIRE_CLIENT_CERT');
    const count = Array.from(walkSchema()).length;
    assert.equal(ENV_VARIABLES.size, count, 'one variable per key, no two keys share a name');
    assert.ok(ENV_VARIABLES.has('BRAID_LISTENERS_WS'));
    assert.ok(ENV_VARIABLES.has('BRAID_AUTH_USERS'));
  });

  it('parses values by type', () => {
    const c = loadConfig({
      env: {
        BRAID_LISTENERS_MQTT_PORT: '1884',
        BRAID_MQTT_MAX_KEEP_ALIVE: '60',
        BRAID_LISTENERS_WS: 'false',
        BRAID_MQTT_RETAIN_AVAILABLE: '0',
        BRAID_MQTT_QUEUE_QOS0_OFFLINE: 'TRUE',
        BRAID_AUTH_ALLOW_ANONYMOUS: 'true',
        BRAID_AUTH_USERS: '[{"name":"a","password":"b","tags":["monitoring"]}]',
        BRAID_LOG_LEVEL: 'debug',
        BRAID_STORAGE_DATA_DIR: '/var/lib/braid',
        BRAID_MQTT_VHOST: '', // empty counts as unset
        BRAID_HOME: '/opt/braid', // not config-looking: ignored
        braid_mqtt_max_qos: '5', // lower case: not ours
        PATH: '/bin',
      },
    });
    assert.equal(on(c.listeners.mqtt).port, 1884);
    assert.equal(c.mqtt.maxKeepAlive, 60);
    assert.equal(c.listeners.ws, false);
    assert.equal(c.mqtt.retainAvailable, false);
    assert.equal(c.mqtt.queueQos0Offline, true);
    assert.equal(c.auth.allowAnonymous, true);
    assert.deepEqual(c.auth.users, [{ name: 'a', password: 'b', tags: ['monitoring'], vhost: '/' }]);
    assert.equal(c.log.level, 'debug');
    assert.equal(c.storage.dataDir, '/var/lib/braid');
    assert.equal(c.mqtt.vhost, '/');
    assert.equal(c.mqtt.maxQos, 2);
    assert.equal(loadConfig({ env: { BRAID_AUTH_ALLOW_ANONYMOUS: 'loopback' } }).auth.allowAnonymous, 'loopback');
    assert.equal(loadConfig({ env: { BRAID_AUTH_ALLOW_ANONYMOUS: '0' } }).auth.allowAnonymous, false);
    const whole = loadConfig({ env: { BRAID_LISTENERS_MQTTS: JSON.stringify(tls) } });
    assert.equal(on(whole.listeners.mqtts).port, 8883);
    const cert = loadConfig({ env: { BRAID_LISTENERS_WSS_CERT: 'c.pem', BRAID_LISTENERS_WSS_KEY: 'k.pem' } });
    assert.equal(on(cert.listeners.wss).port, 8084);
  });

  it('names the variable in errors', () => {
    const env = (vars: NodeJS.ProcessEnv) => configError(() => loadConfig({ env: vars })).message;
    assert.equal(
      env({ BRAID_MQTT_MAX_KEEP_ALIVE: 'abc' }),
      'config error: mqtt.maxKeepAlive must be an integer between 0 and 65535, got "abc" (from BRAID_MQTT_MAX_KEEP_ALIVE)',
    );
    assert.match(
      env({ BRAID_MQTT_MAX_KEEPALIVE: '1' }),
      /BRAID_MQTT_MAX_KEEPALIVE is not a config variable, did you mean BRAID_MQTT_MAX_KEEP_ALIVE\?/,
    );
    assert.match(env({ BRAID_LISTENERS_FOO_PORT: '1' }), /BRAID_LISTENERS_FOO_PORT is not a config variable/);
    assert.match(env({ BRAID_LOG: 'debug' }), /BRAID_LOG is not a config variable/);
    assert.match(
      env({ BRAID_MQTT_RETAIN_AVAILABLE: 'yes' }),
      /must be true or false, got "yes" \(from BRAID_MQTT_RETAIN_AVAILABLE\)/,
    );
    assert.match(
      env({ BRAID_LISTENERS_WS: 'off' }),
      /listeners\.ws must be a mapping .* got "off" \(from BRAID_LISTENERS_WS\)/,
    );
    assert.match(env({ BRAID_AUTH_USERS: '[{name:1}]' }), /auth\.users must be JSON .* \(from BRAID_AUTH_USERS\)/);
    assert.match(
      env({ BRAID_AUTH_USERS: '[{"name":"a"}]' }),
      /auth\.users\[0\] needs exactly one .* \(from BRAID_AUTH_USERS\)/,
    );
    assert.match(
      env({ BRAID_LISTENERS_MQTTS_PORT: '8883' }),
      /listeners\.mqtts\.cert is required .* \(from BRAID_LISTENERS_MQTTS_PORT\)/,
    );
    assert.match(
      env({ BRAID_LISTENERS_WS: 'false', BRAID_LISTENERS_WS_PORT: '9000' }),
      /BRAID_LISTENERS_WS=false turns listeners\.ws off, but BRAID_LISTENERS_WS_PORT sets it/,
    );
  });

  it('leaves a layer per variable, in name order', () => {
    const layers = readEnv({ BRAID_MQTT_MAX_QOS: '1', BRAID_LISTENERS_MQTT_PORT: '1' });
    assert.deepEqual(
      layers.map((l) => l.source),
      ['BRAID_LISTENERS_MQTT_PORT', 'BRAID_MQTT_MAX_QOS'],
    );
    assert.deepEqual(layers[1]!.input, { mqtt: { maxQos: 1 } });
  });
});

describe('precedence: defaults < file < env < flags', () => {
  const yaml =
    'listeners:\n  mqtt: { port: 1000 }\n  ws: false\nstorage: { dataDir: /from/file }\nlog: { level: warn }\n';

  it('each layer overrides the one below', () => {
    const path = file(yaml);
    assert.deepEqual(loadConfig({ file: path }).listeners.mqtt, { port: 1000, host: '::' });
    const env = { BRAID_LISTENERS_MQTT_PORT: '2000', BRAID_STORAGE_DATA_DIR: '/from/env' };
    const fromEnv = loadConfig({ file: path, env });
    assert.deepEqual(fromEnv.listeners.mqtt, { port: 2000, host: '::' });
    assert.equal(fromEnv.storage.dataDir, '/from/env');
    assert.equal(fromEnv.log.level, 'warn');
    const fromFlags = loadConfig({
      file: path,
      env,
      flags: { mqttPort: '3000', dataDir: '/from/flags', logLevel: 'error' },
    });
    assert.deepEqual(fromFlags.listeners.mqtt, { port: 3000, host: '::' });
    assert.equal(fromFlags.storage.dataDir, '/from/flags');
    assert.equal(fromFlags.log.level, 'error');
  });

  it('port flags: 0 is ephemeral, false turns the listener off, a port turns it back on', () => {
    const path = file(yaml);
    const c = loadConfig({
      file: path,
      flags: { mqttPort: 'false', wsPort: '0', amqpPort: false, httpPort: 0, logFormat: 'json', config: undefined },
    });
    assert.equal(c.listeners.mqtt, false);
    assert.deepEqual(c.listeners.ws, { port: 0, host: '::', path: '/mqtt' });
    assert.equal(c.listeners.amqp, false);
    assert.deepEqual(c.listeners.http, { port: 0, host: '::' });
    assert.equal(c.log.format, 'json');
  });

  it('names the flag in errors', () => {
    const flags = (f: Record<string, unknown>) => configError(() => loadConfig({ flags: f })).message;
    assert.equal(
      flags({ mqttPort: 'abc' }),
      'config error: listeners.mqtt.port must be an integer between 0 and 65535, got "abc" (from --mqtt-port)',
    );
    assert.match(flags({ httpPort: '99999' }), /listeners\.http\.port .* got 99999 \(from --http-port\)/);
    assert.match(flags({ logLevel: 'loud' }), /log\.level must be one of .* got "loud" \(from --log-level\)/);
    assert.match(
      flags({ wsPort: '1883' }),
      /listeners\.ws\.port 1883 is also listeners\.mqtt\.port.*\(from --ws-port\)/,
    );
    assert.match(flags({ bogus: '1' }), /--bogus is not a config flag/);
  });
});

/** Values that fit `key`, so the fuzz reaches past the first bad key. */
function validValue(key: Key): fc.Arbitrary<unknown> {
  switch (key.kind) {
    case 'int':
      return fc.integer({ min: key.min, max: Math.min(key.max, 2 ** 31 - 1) });
    case 'number':
      return fc.double({ min: key.min, max: Math.min(key.max, 2 ** 31 - 1), noNaN: true });
    case 'bool':
      return fc.boolean();
    case 'string':
      return fc.constantFrom('/x', '$7$1$a$b', 'a', '::', '127.0.0.1');
    case 'enum':
      return fc.constantFrom(...key.values);
    case 'stringList':
      return fc.array(fc.string(), { maxLength: 3 });
    case 'objectList':
      return fc.array(keysArb(key.item), { maxLength: 3 });
    case 'listener':
      return fc.oneof(fc.boolean(), keysArb(key.keys));
  }
}

function keysArb(keys: Readonly<Record<string, Key>>): fc.Arbitrary<Record<string, unknown>> {
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [name, key] of Object.entries(keys))
    model[name] = fc.oneof({ weight: 4, arbitrary: validValue(key) }, fc.anything());
  return fc.record(model, { requiredKeys: [] });
}

const configArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.record(
    Object.fromEntries(
      Object.entries(SCHEMA).map(([name, s]) => [
        name,
        fc.oneof({ weight: 4, arbitrary: keysArb(s.keys) }, fc.anything()),
      ]),
    ),
    { requiredKeys: [] },
  ),
  fc.anything({
    withNullPrototype: true,
    withBigInt: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withTypedArray: true,
    withSparseArray: true,
    withBoxedValues: true,
  }),
  fc.dictionary(fc.constantFrom(...Object.keys(SCHEMA), '__proto__', 'constructor'), fc.anything()),
);

describe('config fuzz', () => {
  it('validateConfig either returns a config that validates again, or throws ConfigError', () => {
    let accepted = 0;
    fc.assert(
      fc.property(configArb, (input) => {
        let config: BraidConfig;
        try {
          config = validateConfig(input, 'fuzz');
        } catch (err) {
          if (err instanceof ConfigError) {
            assert.match(err.message, /^config error: .+ \(in fuzz\)$/s);
            return;
          }
          throw err;
        }
        accepted++;
        assert.deepEqual(validateConfig(config, 'again'), config);
      }),
      { numRuns: 3000 },
    );
    assert.ok(accepted > 0, 'some random configs should be valid');
  });

  it('environment values of any text either load or throw ConfigError', () => {
    const names = [...ENV_VARIABLES.keys()];
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...names, 'BRAID_MQTT_X', 'BRAID_OTHER'), fc.string()), (env) => {
        try {
          loadConfig({ env });
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
        }
      }),
      { numRuns: 1000 },
    );
  });
});
