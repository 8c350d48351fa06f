/**
 * The example output in the header of each bpftrace program is what the
 * program prints: every example event line parses with svtrace's own parser.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRecorderLine } from '../../src/explain/events.ts';
import { ROOT } from '../helpers/cli.ts';

function exampleLines(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const start = text.indexOf(' * Example output');
  assert.ok(start > 0, `${file} has an example`);
  const out: string[] = [];
  for (const line of text.slice(start).split('\n').slice(1)) {
    const m = /^ \* {3}(.*)$/.exec(line);
    if (!m) break;
    out.push(m[1]!);
  }
  return out;
}

test('recorder.bt: its example event lines are ones the program prints and svtrace parses', () => {
  const lines = exampleLines('src/explain/recorder.bt').filter((l) => /^[A-Z] /.test(l));
  assert.ok(lines.length >= 4);
  for (const l of lines) assert.ok(parseRecorderLine(l), `example line parses: ${l}`);
  const program = readFileSync(join(ROOT, 'src/explain/recorder.bt'), 'utf8');
  for (const l of lines) assert.ok(program.includes(`printf("${l[0]} `), `the program prints ${l[0]} lines`);
});
