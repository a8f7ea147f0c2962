import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createSerialLane, QueueFullError, TaskQueue } from '../../shared/queue.js';

const deferred = () => {
  let resolve;
  const promise = new Promise((r) => {
    resolve = r;
  });
  return { promise, resolve };
};
const tick = () => new Promise((r) => setImmediate(r));

test('never runs more tasks at once than its concurrency', async () => {
  const q = new TaskQueue({ concurrency: 2 });
  let running = 0;
  let peak = 0;
  const gates = Array.from({ length: 5 }, deferred);
  const results = gates.map((g, i) => q.run(`k${i}`, async () => {
    running += 1;
    peak = Math.max(peak, running);
    await g.promise;
    running -= 1;
    return i;
  }));
  await tick();
  assert.equal(running, 2);
  assert.equal(q.pending, 3);
  gates.forEach((g) => g.resolve());
  assert.deepEqual(await Promise.all(results), [0, 1, 2, 3, 4]);
  assert.equal(peak, 2);
});

test('runs a key that is already in flight only once and shares its result', async () => {
  const q = new TaskQueue({ concurrency: 1 });
  let calls = 0;
  const gate = deferred();
  const a = q.run('same', async () => {
    calls += 1;
    await gate.promise;
    return 'v';
  });
  const b = q.run('same', async () => {
    calls += 1;
    return 'other';
  });
  assert.equal(a, b);
  gate.resolve();
  assert.deepEqual(await Promise.all([a, b]), ['v', 'v']);
  assert.equal(calls, 1);
  assert.equal(await q.run('same', async () => 'again'), 'again'); // done keys run again
});

test('a failing task rejects its callers and does not stop the queue', async () => {
  const q = new TaskQueue({ concurrency: 1 });
  const bad = q.run('bad', async () => {
    throw new Error('boom');
  });
  const good = q.run('good', async () => 'ok');
  await assert.rejects(bad, /boom/);
  assert.equal(await good, 'ok');
});

test('rejects new work when too many tasks are waiting', async () => {
  const q = new TaskQueue({ concurrency: 1, maxQueued: 1 });
  const gate = deferred();
  q.run('a', () => gate.promise);
  q.run('b', async () => 1);
  await assert.rejects(q.run('c', async () => 1), QueueFullError);
  gate.resolve();
});

test('clear rejects the waiting tasks but lets the running one finish', async () => {
  const q = new TaskQueue({ concurrency: 1 });
  const gate = deferred();
  const running = q.run('a', () => gate.promise);
  const waiting = q.run('b', async () => 'never');
  await tick();
  assert.equal(q.clear(new Error('server down')), 1);
  await assert.rejects(waiting, /server down/);
  gate.resolve('done');
  assert.equal(await running, 'done');
});

test('a serial lane runs in call order even when an earlier call is slower', async () => {
  const lane = createSerialLane();
  const painted = [];
  const slow = deferred();
  const first = lane(async () => {
    await slow.promise;
    painted.push(164);
  });
  const second = lane(async () => {
    painted.push(168);
  });
  await tick();
  assert.deepEqual(painted, []); // the second waits for the first
  slow.resolve();
  await Promise.all([first, second]);
  assert.deepEqual(painted, [164, 168]);
});

test('a failing call in a serial lane rejects alone and the lane goes on', async () => {
  const lane = createSerialLane();
  const failed = lane(async () => {
    throw new Error('tab gone');
  });
  const next = lane(async () => 'painted');
  await assert.rejects(failed, /tab gone/);
  assert.equal(await next, 'painted');
});

test('starts waiting tasks by priority, in arrival order within one, and moves a key asked for again more urgently', async () => {
  const q = new TaskQueue({ concurrency: 1 });
  const started = [];
  const gate = deferred();
  const task = (name) => async () => {
    started.push(name);
    if (name === 'running') await gate.promise;
  };
  q.run('running', task('running'), { priority: 0 });
  q.run('far', task('far'), { priority: 2 });
  q.run('near-1', task('near-1'), { priority: 1 });
  q.run('near-2', task('near-2'), { priority: 1 });
  q.run('later-on-screen', task('later-on-screen'), { priority: 2 });
  q.run('later-on-screen', task('later-on-screen'), { priority: 0 });
  gate.resolve();
  for (let i = 0; i < 10; i += 1) await tick();
  assert.deepEqual(started, ['running', 'later-on-screen', 'near-1', 'near-2', 'far']);
});
