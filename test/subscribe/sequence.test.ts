import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSequence, observe, summarizeSequence } from '../../src/subscribe/sequence.ts';

function run(counts: number[], wrap?: number) {
  const s = createSequence(wrap);
  const iters = counts.map((c) => observe(s, c));
  return { s: summarizeSequence(s), iters, state: s };
}

test('in-order samples across two wraps', () => {
  const counts = [];
  for (let i = 3990; i < 4000 * 2 + 10; i++) counts.push(i % 4000);
  const { s, iters } = run(counts);
  assert.equal(s.wrap, 4000);
  assert.equal(s.missing, 0);
  assert.equal(s.duplicates, 0);
  assert.equal(s.wraps, 2);
  assert.equal(iters[0], 0);
  assert.equal(iters[10], 1); // smpCnt 0 after 3999
  assert.equal(iters.at(-1), 2);
});

test('the wrap value is learnt (4800 at 60 Hz)', () => {
  const counts = [];
  for (let i = 0; i < 4800 * 2; i++) counts.push(i % 4800);
  const { s } = run(counts);
  assert.equal(s.wrap, 4800);
  assert.equal(s.missing, 0);
  assert.equal(s.wraps, 1);
  assert.equal(s.smpCntMax, 4799);
});

test('gaps are counted and listed, also across a wrap', () => {
  const { s, iters } = run([3995, 3996, 3, 4, 10, 11], 4000);
  assert.equal(s.missing, 6 + 5);
  assert.deepEqual(s.gaps.map((g) => [g.fromSmpCnt, g.toSmpCnt, g.iter, g.missing]), [[3997, 2, 0, 6], [5, 9, 1, 5]]);
  assert.deepEqual(iters, [0, 0, 1, 1, 1, 1]);
});

test('late samples fill gaps; repeats are duplicates', () => {
  const { s, iters } = run([1, 2, 5, 3, 4, 4, 6, 2], 4000);
  assert.equal(s.missing, 0);
  assert.equal(s.outOfOrder, 2);
  assert.equal(s.duplicates, 2);
  assert.equal(s.samples, 6);
  assert.equal(s.gaps.length, 0);
  assert.deepEqual(iters, [0, 0, 0, 0, 0, 0, 0, 0]);
});

test('a late sample from before the wrap keeps its iteration', () => {
  const { s, iters } = run([3998, 0, 3999, 1], 4000);
  assert.deepEqual(iters, [0, 1, 0, 1]);
  assert.equal(s.outOfOrder, 1);
  assert.equal(s.missing, 0);
});

test('confRev changes are counted', () => {
  const st = createSequence(4000);
  observe(st, 0, 1); observe(st, 1, 1); observe(st, 2, 2); observe(st, 3, 2);
  assert.equal(summarizeSequence(st).confRevChanges, 1);
});
