/**
 * The `braid` command line. bin/braid.js imports this module and calls main() in the same
 * process, so a signal to `braid` reaches the broker.
 *
 * Exit codes: 0 ok; 1 the broker could not start (port in use, ...) or failed later;
 * 2 usage or config errors. Every error is one line `braid: <message>` on stderr.
 */

import { Command, CommanderError } from 'commander';
import { stringify } from 'yaml';
import { loadConfig } from '../config/load.js';
import { ConfigError, SCHEMA } from '../config/schema.js';
import { packageVersion } from '../util/version.js';

const EXIT_START_FAILED = 1;
const EXIT_USAGE = 2;

export { packageVersion };

interface ConfigOptions {
  config?: string;
  [flag: string]: unknown;
}

function withConfigOptions(cmd: Command): Command {
  const log = SCHEMA.log.keys;
  return cmd
    .option('-c, --config <file>', 'YAML (or JSON) config file')
    .option('--data-dir <dir>', 'data directory (storage.dataDir)')
    .option('--mqtt-port <port>', 'MQTT port; 0 picks a free port, false turns the listener off')
    .option('--amqp-port <port>', 'AMQP port; 0 picks a free port, false turns the listener off')
    .option('--ws-port <port>', 'MQTT over WebSocket port; 0 picks a free port, false turns it off')
    .option('--http-port <port>', 'HTTP management port; 0 picks a free port, false turns it off')
    .option('--log-level <level>', `log level: ${log.level.values.join(', ')}`)
    .option('--log-format <format>', `log format: ${log.format.values.join(', ')}`);
}

/** Flags win over BRAID_* variables, which win over the file, which wins over the defaults. */
function configFrom(opts: ConfigOptions) {
  const { config: file, ...flags } = opts;
  return loadConfig({ file, flags, env: process.env });
}

function fail(message: string, code: number): never {
  process.stderr.write(`braid: ${message}\n`);
  process.exit(code);
}

export function buildProgram(version: string): Command {
  const program = new Command('braid')
    .description('One message broker for MQTT 3.1.1/5.0 and AMQP 0-9-1/1.0.')
    .version(version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print this help')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`braid: ${text.replace(/^error: /, '')}`) })
    .addHelpText(
      'after',
      '\nEvery config key can also be set from the environment, e.g. BRAID_LISTENERS_MQTT_PORT=1884;\n' +
        'see docs/config.md. Precedence: flags, then BRAID_* variables, then --config, then defaults.',
    );

  withConfigOptions(program.command('start').description('run the broker until SIGTERM or SIGINT')).action(
    async (opts: ConfigOptions) => {
      const config = configFrom(opts);
      const { runStart, StartError } = await import('./start.js');
      try {
        await runStart(config, { version });
      } catch (err) {
        if (err instanceof StartError) fail(err.message, EXIT_START_FAILED);
        throw err;
      }
    },
  );

  withConfigOptions(
    program
      .command('config')
      .description('print the resolved config (defaults, file, environment, flags) as YAML')
      .option('--doc', 'print the config reference (docs/config.md) instead'),
  ).action(async (opts: ConfigOptions & { doc?: boolean }) => {
    if (opts.doc) {
      const { renderConfigDoc } = await import('../config/doc.js');
      process.stdout.write(renderConfigDoc());
      return;
    }
    process.stdout.write(stringify(configFrom(opts)));
  });

  return program;
}

/** Runs `braid` with `argv` as node gives it (`[node, script, ...args]`). */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  const program = buildProgram(packageVersion());
  try {
    await program.parseAsync([...argv]);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed help, the version or the error already.
      process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
    }
    if (err instanceof ConfigError) fail(err.message, EXIT_USAGE);
    const message = err instanceof Error ? err.message : String(err);
    fail(message, EXIT_START_FAILED);
  }
}
