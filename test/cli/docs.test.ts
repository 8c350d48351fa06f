/** Every file the README and the docs point a reader to exists in the repository; package.json's entry points are built. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/cli.ts';

const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).map((f) => join('docs', f)), 'src/record/FORMAT.md', 'src/analyze/ANALYSIS.md'];

test('every repository path named in the README and docs exists', () => {
  const missing: string[] = [];
  for (const doc of DOCS) {
    const text = readFileSync(join(ROOT, doc), 'utf8');
    for (const m of text.matchAll(/\b((?:src|native|test|bench|scripts|docs|examples)\/[A-Za-z0-9_./-]*[A-Za-z0-9_])/g)) {
      if (!existsSync(join(ROOT, m[1]!))) missing.push(`${doc}: ${m[1]}`);
    }
  }
  assert.deepEqual(missing, []);
  assert.doesNotMatch(readFileSync(join(ROOT, 'README.md'), 'utf8'), /DESIGN\.md/, 'DESIGN.md is not in this repository');
});

test('package.json main, types and bin point at files the build makes', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { main: string; types: string; bin: Record<string, string> };
  for (const f of [pkg.main, pkg.types, ...Object.values(pkg.bin)]) assert.ok(existsSync(join(ROOT, f)), `${f} exists (run npm run build first: npm test does)`);
});
