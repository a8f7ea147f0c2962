import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createPerf, flushStyle } from '../../content/perf.js';

/** A clock the test moves by hand. */
function fakeClock() {
  const clock = { t: 0, now: () => clock.t, advance: (ms) => { clock.t += ms; } };
  return clock;
}

test('every timed task is counted, with the longest per kind of work', () => {
  const clock = fakeClock();
  const perf = createPerf(clock.now);
  perf.timed(() => clock.advance(3), 'mutations');
  perf.timed(() => clock.advance(7.25), 'mutations');
  perf.timed(() => clock.advance(2), 'verdict');
  const s = perf.snapshot();
  assert.equal(s.tasks, 3);
  assert.equal(s.maxTaskMs, 7.25);
  assert.deepEqual(s.maxByKind, { mutations: 7.3, verdict: 2 });
  assert.equal(s.over50, 0);
});

test('a task over 50 ms counts as a long task, and the five slowest over 16 ms are listed', () => {
  const clock = fakeClock();
  const perf = createPerf(clock.now);
  for (const ms of [10, 17, 60, 20, 30, 40, 51, 18]) perf.timed(() => clock.advance(ms), `k${ms}`);
  const s = perf.snapshot();
  assert.equal(s.over50, 2);
  assert.deepEqual(s.slowest.map((x) => x.ms), [60, 51, 40, 30, 20]);
  assert.equal(s.slowest[0].kind, 'k60');
});

test('style forced inside a task is booked apart, not as the task\'s own time', () => {
  const clock = fakeClock();
  const perf = createPerf(clock.now);
  const value = perf.timed(() => {
    clock.advance(5);
    const read = perf.forceStyle(() => {
      clock.advance(40);
      return 'url(a)';
    });
    clock.advance(5);
    return read;
  }, 'slice');
  assert.equal(value, 'url(a)');
  const s = perf.snapshot();
  assert.equal(s.maxTaskMs, 10);
  assert.equal(s.maxForcedMs, 40);
  assert.equal(s.over50, 0);
});

test('a nested task keeps its forced style time apart from the outer task\'s', () => {
  const clock = fakeClock();
  const perf = createPerf(clock.now);
  perf.timed(() => {
    perf.forceStyle(() => clock.advance(4));
    perf.timed(() => {
      clock.advance(2);
      perf.forceStyle(() => clock.advance(9));
    }, 'inner');
    clock.advance(1);
  }, 'outer');
  const s = perf.snapshot();
  assert.equal(s.maxByKind.inner, 2);
  assert.equal(s.maxByKind.outer, 12); // 16 in all, less its own 4 forced (the inner task's 9 count as its work)
  assert.equal(s.maxForcedMs, 9);
});

test('a task that throws is still counted', () => {
  const clock = fakeClock();
  const perf = createPerf(clock.now);
  assert.throws(() => perf.timed(() => {
    clock.advance(3);
    throw new Error('boom');
  }));
  assert.equal(perf.snapshot().tasks, 1);
});

test('flushStyle reads the root element\'s computed style through forceStyle, and nothing without a root', () => {
  const clock = fakeClock();
  const perf = createPerf(clock.now);
  const root = { id: 'html' };
  const read = [];
  const win = { document: { documentElement: root }, getComputedStyle: (el) => { read.push(el); clock.advance(30); return { backgroundImage: 'none' }; } };
  perf.timed(() => { flushStyle(perf.forceStyle, win); clock.advance(2); }, 'slice');
  assert.deepEqual(read, [root]);
  assert.equal(perf.snapshot().maxByKind.slice, 2);
  assert.equal(perf.snapshot().maxForcedMs, 30);
  flushStyle(perf.forceStyle, { document: null, getComputedStyle: () => assert.fail('read without a root') });
});
