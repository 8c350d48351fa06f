/** `svtrace explain` flags: usage errors exit 2 with a hint, before anything is started. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Command } from 'commander';
import { register } from '../../src/cli/explain.ts';

async function run(args: string[]): Promise<{ code: number | string | undefined; stderr: string }> {
  const program = new Command().exitOverride();
  register(program);
  let stderr = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => { stderr += String(chunk); return true; }) as typeof process.stderr.write;
  try {
    await program.parseAsync(['node', 'svtrace', 'explain', ...args]);
  } finally {
    process.stderr.write = write;
  }
  const code = process.exitCode;
  process.exitCode = undefined;
  return { code, stderr };
}

test('bad flags are usage errors with a hint', async () => {
  for (const [args, what] of [
    [['--duration', 'x', '--ingress', 'a', '--vm-port', 'b'], /--duration x is not valid/],
    [['--threshold-us', '-5', '--ingress', 'a', '--vm-port', 'b'], /--threshold-us -5 is not valid/],
    [['--cpus', '1,x', '--ingress', 'a', '--vm-port', 'b'], /EXPLAIN_INVALID_CPU/],
    [['--cpus', '1,', '--ingress', 'a', '--vm-port', 'b'], /EXPLAIN_INVALID_CPU/],
    [['--worst', '1.5', '--ingress', 'a', '--vm-port', 'b'], /--worst 1.5 is not valid/],
    [['--machine', 'toaster'], /neither hypervisor nor vm/],
    [['--engine', 'dtrace', '--ingress', 'a', '--vm-port', 'b'], /--engine dtrace is neither bpftrace nor bpf/],
    [['--config', '/nonexistent/svtrace.toml'], /error/],
  ] as Array<[string[], RegExp]>) {
    const r = await run(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, what);
    assert.match(r.stderr, /hint: /);
  }
});
