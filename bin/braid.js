#!/usr/bin/env node
// The `braid` command. Plain JavaScript so that `node` runs it without a build step of its
// own; the broker runs in this very process (no child), so SIGTERM reaches it directly.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write(
    'braid: the compiled sources are missing (dist/src/cli/main.js).\n' +
      'Run `npm install` in the braid directory (its prepare script builds them), or `npm run build`.\n',
  );
  process.exit(1);
}
const { main } = await import(entry.href);
await main(process.argv);
