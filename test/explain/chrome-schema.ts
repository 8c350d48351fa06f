/** A small schema of Chrome's trace event format (the parts a viewer needs), shared by the explain tests. */
import assert from 'node:assert/strict';

/** Chrome's trace event format, the parts a viewer needs. */
export function checkSchema(json: string): void {
  const doc = JSON.parse(json) as unknown;
  assert.ok(doc && typeof doc === 'object' && Array.isArray((doc as { traceEvents?: unknown }).traceEvents), '{ traceEvents: [...] }');
  for (const e of (doc as { traceEvents: Array<Record<string, unknown>> }).traceEvents) {
    const where = JSON.stringify(e);
    assert.equal(typeof e.name, 'string', where);
    assert.ok(['X', 'i', 'M'].includes(e.ph as string), where);
    for (const k of ['ts', 'pid', 'tid']) assert.ok(typeof e[k] === 'number' && Number.isFinite(e[k]), `${k}: ${where}`);
    assert.ok((e.ts as number) >= 0, where);
    if (e.ph === 'X') assert.ok(typeof e.dur === 'number' && e.dur >= 0, `dur: ${where}`);
    if (e.ph === 'i') assert.ok(['g', 'p', 't'].includes(e.s as string), `scope: ${where}`);
    if (e.ph === 'M') assert.ok(['process_name', 'thread_name'].includes(e.name as string) && typeof (e.args as { name?: unknown }).name === 'string', where);
  }
}
