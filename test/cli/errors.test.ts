/**
 * Every error carries its kind from where it is thrown, and the exit code
 * follows the kind: 2 usage, 3 environment, 4 svtrace's own bug.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES, EXIT, SvtraceError, exitCodeOf } from '../../src/errors.ts';
import { ROOT } from '../helpers/cli.ts';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('every code thrown in src/ is in the catalogue with its kind', () => {
  const used = new Set<string>();
  for (const f of sources(join(ROOT, 'src'))) {
    for (const m of readFileSync(f, 'utf8').matchAll(/SvtraceError\(\s*'([A-Z0-9_]+)'/g)) used.add(m[1]!);
  }
  assert.ok(used.size > 50, `found ${used.size} codes`);
  const missing = [...used].filter((c) => !Object.hasOwn(ERROR_CODES, c));
  assert.deepEqual(missing, []);
});

test('exit codes follow the kind: full disk and busy port are the machine (3), bad input 2, a template bug 4', () => {
  const cases: Array<[string, number]> = [
    ['RECORD_DISK_FULL', EXIT.environment], ['CAPTURE_WRITE_FAILED', EXIT.environment], ['METRICS_LISTEN_FAILED', EXIT.environment],
    ['TRACE_NO_BPFTRACE', EXIT.environment], ['CONFIG_INVALID', EXIT.usage], ['TRACE_CONFIG_INVALID', EXIT.usage], ['RECORD_EXISTS', EXIT.usage],
    ['TRACE_TEMPLATE_PARAM', EXIT.internal], ['EXPLAIN_TEMPLATE_MISSING', EXIT.internal],
  ];
  for (const [code, exit] of cases) assert.equal(exitCodeOf(new SvtraceError(code as keyof typeof ERROR_CODES, 'x')), exit, code);
  assert.equal(exitCodeOf(new SvtraceError('SOMETHING_NEW', 'x', { kind: 'environment' })), 3, 'a new code says its kind where it is thrown');
  assert.equal(exitCodeOf(new SvtraceError('RECORD_WRITE_FAILED', 'x', { kind: 'internal' })), 4, 'the thrower can override');
  assert.equal(exitCodeOf(new TypeError('boom')), EXIT.internal, 'anything else is a bug of svtrace');
});
