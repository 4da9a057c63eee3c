/**
 * The config reference (docs/config.md) as Markdown, generated from the schema in
 * src/config/schema.ts, so the two cannot drift: `braid config --doc > docs/config.md`
 * regenerates it, and test/unit/config-doc.test.ts fails when the committed file is stale.
 *
 * The tables come out padded the way `biome format` lays Markdown out, so `biome check` passes.
 */
import { parse } from 'yaml';
import { envName } from './env.js';
import { FLAG_KEYS, flagName } from './load.js';
import { type Key, SCHEMA, type Section, validateConfig } from './schema.js';

const EXAMPLE = `listeners:
  mqtt: { port: 1883 }
  mqtts: { port: 8883, cert: /etc/braid/cert.pem, key: /etc/braid/key.pem }
  ws: false
mqtt:
  maxKeepAlive: 300
  maxQos: 1
auth:
  allowAnonymous: false
  users:
    - { name: alice, password: change-me, tags: [administrator] }
    - { name: sensors, passwordHash: "$7$101$c2FsdA==$aGFzaA==", vhost: iot }
storage:
  dataDir: /var/lib/braid
log: { level: info, format: json }
`;

const code = (s: string): string => `\`${s}\``;
const cell = (s: string): string => s.replace(/\|/g, '\\|');

function typeOf(key: Key): string {
  switch (key.kind) {
    case 'int':
      return `integer ${key.min}–${key.max}`;
    case 'number':
      return `number ${key.min}–${key.max}`;
    case 'bool':
      return 'boolean';
    case 'string':
      return 'string';
    case 'enum':
      return `one of ${key.values.map((v) => code(String(v))).join(', ')}`;
    case 'stringList':
      return 'list of strings';
    case 'objectList':
      return 'list of mappings';
    case 'listener':
      return `mapping or ${code('false')}`;
  }
}

function defaultOf(key: Key): string {
  if (key.kind === 'listener') return key.on ? 'on' : code('false');
  if (key.kind === 'stringList' || key.kind === 'objectList') return code('[]');
  if ('default' in key) return code(String(key.default));
  return 'required' in key ? '(required)' : '(unset)';
}

function row(path: readonly string[], key: Key, env: boolean): string[] {
  return [code(path.join('.')), cell(typeOf(key)), defaultOf(key), env ? code(envName(path)) : '', cell(key.doc)];
}

/** A Markdown table with padded columns, as `biome format` lays it out. */
function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(3, h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

export function renderConfigDoc(): string {
  // The example must stay valid, or generating the docs fails.
  validateConfig(parse(EXAMPLE), 'the example in tools/config-doc.ts');
  const out: string[] = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts by tools/config-doc.ts; do not edit by hand. -->',
    '',
    'Braid reads its configuration from four sources; each overrides the ones before it:',
    '',
    '1. the built-in defaults below;',
    `2. the YAML file given by ${code('braid start --config FILE')} (JSON is valid YAML), with camelCase keys;`,
    `3. environment variables: ${code('BRAID_')} and the key path in UPPER_SNAKE case`,
    `   (${code('listeners.mqtt.port')} → ${code('BRAID_LISTENERS_MQTT_PORT')}, ${code('mqtt.maxKeepAlive')} →`,
    `   ${code('BRAID_MQTT_MAX_KEEP_ALIVE')}); booleans are ${code('true/false/1/0')}, lists are JSON, and a`,
    `   listener variable takes ${code('false')}, ${code('true')} or a JSON mapping; an empty value counts as unset;`,
    '4. command-line flags.',
    '',
    'An unknown key, an unknown `BRAID_<SECTION>_...` variable or a bad value stops the start with',
    `a message naming the key and where it came from. ${code('braid config')} prints the resolved config.`,
    '',
    `A listener is a mapping of its settings, or ${code('false')} to turn it off; setting any of its keys`,
    `turns a listener that was off back on with its defaults. TLS listeners need ${code('cert')} and ${code('key')}.`,
    `Lists such as ${code('auth.users')} are replaced whole by a later source, never merged.`,
    '',
    '## Command-line flags',
    '',
  ];
  const flags: string[][] = [];
  for (const [flag, path] of Object.entries(FLAG_KEYS)) {
    const note = path.startsWith('listeners.')
      ? `; ${code('false')} turns the listener off, ${code('0')} picks a free port`
      : '';
    const arg = path.endsWith('.port') ? 'port' : path === 'storage.dataDir' ? 'dir' : path.split('.').pop();
    flags.push([code(`${flagName(flag)} <${arg}>`), `${code(path)}${note}`]);
  }
  flags.push([`${code('--config <file>')}, ${code('-c')}`, 'the YAML or JSON file to read']);
  out.push(...table(['Flag', 'Sets'], flags));

  for (const [name, section] of Object.entries(SCHEMA as Record<string, Section>)) {
    out.push('', `## ${name}`, '', section.doc, '');
    const entries = Object.entries(section.keys);
    if (entries.length === 0) {
      out.push('No settings yet; any key here is an error.');
      continue;
    }
    const rows: string[][] = [];
    for (const [k, key] of entries) {
      rows.push(row([name, k], key, true));
      if (key.kind === 'listener') {
        for (const [sub, subKey] of Object.entries(key.keys)) rows.push(row([name, k, sub], subKey, true));
      } else if (key.kind === 'objectList') {
        // Items come whole, as one JSON variable for the list.
        for (const [sub, subKey] of Object.entries(key.item)) rows.push(row([name, `${k}[]`, sub], subKey, false));
      }
    }
    out.push(...table(['Key', 'Type', 'Default', 'Environment', 'Description'], rows));
  }
  out.push('', '## Example', '', '```yaml', EXAMPLE.trimEnd(), '```', '');
  return out.join('\n');
}
