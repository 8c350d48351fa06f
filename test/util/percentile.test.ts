import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nearestRank, rank, selectKth } from '../../src/util/percentile.ts';

test('selection gives the same percentiles as a brute-force sort', () => {
  let x = 12345;
  const next = () => { x = (x * 1103515245 + 12345) % 2 ** 31; return x; };
  for (const n of [1, 2, 3, 10, 101, 1000, 65537]) {
    const values = Float64Array.from({ length: n }, () => next() % 1000); // many ties
    const sorted = Float64Array.from(values).sort();
    for (const p of [0, 1, 50, 90, 99, 99.9, 99.99, 100]) {
      assert.equal(selectKth(Float64Array.from(values), rank(n, p)), nearestRank(sorted, p), `n ${n} p ${p}`);
    }
  }
  assert.equal(nearestRank([1, 2, 3, 4], 50), 2);
  assert.equal(nearestRank([1, 2, 3, 4], 51), 3);
  assert.equal(nearestRank([7], 99.99), 7);
});

test('ranks that are whole numbers are not pushed up by floating point', () => {
  assert.equal(rank(16000, 99.9), 15984);
  assert.equal(rank(1000, 99.9), 999);
  assert.equal(rank(100, 50), 50);
  assert.equal(rank(3, 50), 2);
});
