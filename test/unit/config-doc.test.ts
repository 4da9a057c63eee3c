import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderConfigDoc } from '../../src/config/doc.js';
import { projectRoot } from '../helpers/paths.js';

test('docs/config.md is generated from the schema and up to date (`braid config --doc > docs/config.md`)', () => {
  const committed = readFileSync(join(projectRoot(), 'docs/config.md'), 'utf8');
  assert.equal(committed, renderConfigDoc());
});
