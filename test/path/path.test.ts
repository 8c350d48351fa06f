import { test } from 'node:test';
import assert from 'node:assert/strict';
import { POINTS, SEGMENTS, ROLE_POINTS, DEFAULT_LIMITS_US, POINT_NAME_RE, lastPoint, orderPoints, pointOrder, roleSegment, segmentsAmong } from '../../src/path/index.ts';

test('the path: T0..T4 in order, segments between points of the path, each role records its own points', () => {
  assert.deepEqual(POINTS.map((p) => p.name), ['T0', 'T1', 'T2', 'T3', 'T4']);
  for (const s of SEGMENTS) assert.ok(pointOrder(s.from)! < pointOrder(s.to)!, `${s.name} runs forward along the path`);
  assert.deepEqual(DEFAULT_LIMITS_US, { Thyp: 100, Tsub: 100, Ttot: 200 });
  assert.deepEqual(roleSegment('hypervisor'), { name: 'Thyp', from: 'T1', to: 'T2' });
  assert.deepEqual(roleSegment('vm'), { name: 'Tsub', from: 'T3', to: 'T4' });
  assert.deepEqual(ROLE_POINTS.publish, ['T0']);
  assert.deepEqual(segmentsAmong(['T3', 'T4']).map((s) => s.name), ['Tsub']);
  assert.deepEqual(segmentsAmong(['T0', 'T1', 'T4']).map((s) => s.name), ['Tnet', 'Tseapath', 'Ttot']);
});

test('order along the path, never the alphabet: T2.5 by its number, Tvhost by its place, unknown points off the path', () => {
  const after = { Tvhost: 'T2', Tovs: 'Tvhost' };
  assert.deepEqual(orderPoints(['T4', 'Tvhost', 'T10', 'Tzzz', 'T2.5', 'T1', 'T2', 'Tovs'], after), ['T1', 'T2', 'Tvhost', 'Tovs', 'T2.5', 'T4', 'T10', 'Tzzz']);
  assert.ok(pointOrder('Tvhost', after)! > 2 && pointOrder('Tvhost', after)! < pointOrder('Tovs', after)! && pointOrder('Tovs', after)! < 2.5);
  assert.equal(pointOrder('Tzzz'), null);
  assert.equal(lastPoint(['T3', 'T4', 'Tvhost'], after), 'T4');
  assert.equal(lastPoint(['T1', 'Tvhost', 'Tzzz'], after), 'Tvhost');
  assert.equal(lastPoint(['Tzzz']), null);
  assert.equal(pointOrder('Ta', { Ta: 'Tb', Tb: 'Ta' }), null, 'a loop of `after` places nothing');
});

test('point names: what users write is allowed, what would break a record or a program is not', () => {
  for (const ok of ['T0', 'T2.5', 'Tvhost', 'T2_ovs', 'T2-tap']) assert.match(ok, POINT_NAME_RE);
  for (const bad of ['', '2T', 'T 1', 'T1,T2', 'T"', 'x'.repeat(33), 'T1\n']) assert.doesNotMatch(bad, POINT_NAME_RE);
});
