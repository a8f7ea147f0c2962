import assert from 'node:assert/strict';
import { mock, test } from 'node:test';

import { PictureClocks } from '../../content/picture_clocks.js';
import { STATE, createRecord, isHidden } from '../../content/image_state.js';
import { BUSY_REASON, VERDICT } from '../../shared/messages.js';

/** Clocks over a fake page: `clock` is performance.now, timers are node's mocked ones. */
function setUp({ server = null, revealAfterSeconds = 20, keepHiddenWhenDown = false, healthOk = true } = {}) {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  const painted = [];
  const updated = [];
  const tracked = new Set();
  const asker = { waiting: { inFlight: 0, onScreen: 0 }, lastAnswerAt: null, update: (rec) => updated.push(rec.id) };
  const clocks = new PictureClocks({
    getContext: () => ({ settings: { revealAfterSeconds, keepHiddenWhenDown }, healthOk, server }),
    asker, timed: (fn) => fn(), isTracked: (rec) => tracked.has(rec), paint: (rec) => painted.push([rec.id, rec.state]),
    now: () => Date.now(),
  });
  const pending = (id, deadline) => {
    const rec = createRecord({ id, el: {}, kind: 'img', url: `https://a.example/${id}.png` });
    Object.assign(rec, { state: STATE.PENDING, deadline, armedAt: 0, deadlineSetAt: 0 });
    tracked.add(rec);
    return rec;
  };
  return { clocks, asker, painted, updated, tracked, pending, tick: (ms) => mock.timers.tick(ms) };
}

test.afterEach(() => mock.timers.reset());

test("a picture's time limit is the server's cost per picture times those ahead of it, within the user's cap", () => {
  const { clocks, asker } = setUp({ server: { cost: { perPictureMs: 400 }, queueDepth: 4 }, revealAfterSeconds: 20 });
  asker.waiting = { inFlight: 2, onScreen: 3 };
  const ten = clocks.limitMs();
  asker.waiting = { inFlight: 20, onScreen: 30 };
  const many = clocks.limitMs();
  assert.ok(ten > 400 * 10 && ten < 20_000, ten);
  assert.equal(many, 20_000, 'never past the cap');
  assert.equal(clocks.capMs(), 20_000);
});

test('a picture still pending when its time limit ends is shown unchecked, and painted', () => {
  const { clocks, painted, pending, tick } = setUp();
  const rec = pending(1, 5000);
  clocks.arm(rec);
  tick(4999);
  assert.deepEqual(painted, []);
  tick(1);
  assert.deepEqual(painted, [[1, STATE.UNCHECKED]]);
  assert.equal(rec.why, 'timeout');
});

test('kept hidden instead while the server is down and the user asked for that', () => {
  const { clocks, painted, pending, tick } = setUp({ keepHiddenWhenDown: true, healthOk: false });
  const rec = pending(1, 1000);
  clocks.arm(rec);
  tick(1000);
  assert.deepEqual(painted, [[1, STATE.WAITING]]);
  assert.ok(isHidden(rec));
});

test('a verdict the server says is coming is waited on, within the cap; a stopped or dropped clock does nothing', () => {
  const { clocks, asker, painted, pending, tracked, tick } = setUp({ revealAfterSeconds: 10 });
  const coming = pending(1, 2000);
  asker.lastAnswerAt = 1; // the server answered this page since the limit was set: its queue moves
  clocks.arm(coming);
  tick(2000);
  assert.deepEqual(painted, [], 'extended');
  assert.ok(coming.deadline > 2000 && coming.deadline <= 10_000, coming.deadline);
  tick(10_000);
  assert.deepEqual(painted, [[1, STATE.UNCHECKED]], 'never past the cap counted from its start');

  const answered = pending(2, 1000);
  clocks.arm(answered);
  clocks.stop(answered);
  const dropped = pending(3, 1000);
  clocks.arm(dropped);
  tracked.delete(dropped);
  tick(5000);
  assert.deepEqual(painted.map(([id]) => id), [1]);
});

test('"busy, retry later" asks again after its Retry-After, unless the record was decided meanwhile', () => {
  const { clocks, updated, pending, tick } = setUp();
  const busy = pending(1, null);
  busy.verdict = { status: VERDICT.UNAVAILABLE, reason: BUSY_REASON, retryAfterS: 3 };
  busy.asked = true;
  clocks.retryLater(busy);
  tick(2999);
  assert.deepEqual(updated, []);
  tick(1);
  assert.equal(busy.asked, false);
  const decided = pending(2, null);
  decided.verdict = { status: VERDICT.UNAVAILABLE, reason: BUSY_REASON, retryAfterS: 3 };
  clocks.retryLater(decided);
  decided.state = STATE.CLEAN;
  tick(3000);
  assert.deepEqual(updated, [1]);
});

test('after the page was frozen, each picture still hidden with a time limit gets a fresh one from now', () => {
  const { clocks, painted, pending, tick } = setUp({ revealAfterSeconds: 8 });
  tick(60_000); // frozen a minute
  const waiting = pending(1, 1000);
  const shown = pending(2, 1000);
  shown.state = STATE.CLEAN;
  clocks.restart([waiting, shown], isHidden);
  assert.equal(waiting.deadline, 60_000 + clocks.limitMs());
  assert.equal(shown.deadline, 1000, 'a shown picture keeps no clock');
  tick(clocks.limitMs() - 1);
  assert.deepEqual(painted, []);
  tick(1);
  assert.deepEqual(painted, [[1, STATE.UNCHECKED]]);
});
