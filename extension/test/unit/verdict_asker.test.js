import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createRecord, seeBox } from '../../content/image_state.js';
import { FAR_IN_FLIGHT, IN_FLIGHT, VerdictAsker } from '../../content/verdict_asker.js';
import { VERDICT } from '../../shared/messages.js';

const settle = () => new Promise((resolve) => setImmediate(resolve));
const VIEW = {
  screen: { width: 400, height: 300, near: true, onScreen: true },
  near: { width: 400, height: 300, near: true, onScreen: false },
  far: { width: 400, height: 300, near: false, onScreen: false },
};

/** An asker whose requests stay open until the test answers them. */
function createAsker() {
  const open = []; // {rec, resolve}
  const answered = [];
  const asker = new VerdictAsker({
    requestVerdict: (rec) => new Promise((resolve) => open.push({ rec, resolve })),
    onVerdict: (rec, verdict) => answered.push([rec.id, verdict.status]),
    findUnavailable: () => undefined,
    timers: { set: () => 0, clear: () => {} },
  });
  return { asker, open, answered };
}

let nextId = 1;
function record(view, url = `https://x.test/${nextId}.png`) {
  const rec = createRecord({ id: nextId++, el: {}, kind: 'img', url });
  seeBox(rec, VIEW[view], { now: 0, limitMs: 15000 });
  return rec;
}

test('keeps only a few requests open, and asks about pictures on screen before near and far ones', async () => {
  const { asker, open } = createAsker();
  const far = Array.from({ length: 3 }, () => record('far'));
  const near = Array.from({ length: 3 }, () => record('near'));
  const onScreen = Array.from({ length: 3 }, () => record('screen'));
  for (const rec of [...far, ...near, ...onScreen]) asker.update(rec);
  await settle();
  assert.equal(open.length, IN_FLIGHT);
  assert.deepEqual(open.map((o) => o.rec), [...onScreen, near[0]]);
  assert.deepEqual(asker.waiting, { onScreen: 0, near: 2, far: 3, inFlight: IN_FLIGHT });
});

test('a picture scrolled onto the screen overtakes those left behind; one scrolled far away waits behind the rest', async () => {
  const { asker, open } = createAsker();
  const busy = Array.from({ length: IN_FLIGHT }, () => record('screen'));
  const left = record('near');
  const arriving = record('near');
  for (const rec of [...busy, left, arriving]) asker.update(rec);
  await settle();
  seeBox(arriving, VIEW.screen, { now: 10, limitMs: 15000 });
  asker.update(arriving);
  seeBox(left, VIEW.far, { now: 10, limitMs: 15000 });
  asker.update(left);
  open[0].resolve({ status: VERDICT.OK, scores: {} });
  await settle();
  assert.equal(open[IN_FLIGHT].rec, arriving);
  assert.equal(open.length, IN_FLIGHT + 1); // the far one waits: far asks start below FAR_IN_FLIGHT open requests
  assert.ok(FAR_IN_FLIGHT < IN_FLIGHT);
});

test('a record removed from the page is never asked about', async () => {
  const { asker, open } = createAsker();
  const busy = Array.from({ length: IN_FLIGHT }, () => record('screen'));
  const removed = record('screen');
  for (const rec of [...busy, removed]) asker.update(rec);
  await settle();
  asker.drop(removed);
  for (const o of open.splice(0)) o.resolve({ status: VERDICT.OK, scores: {} });
  await settle();
  assert.deepEqual(open, []);
  assert.equal(removed.asked, false);
});

test('records showing the same URL share one request and each gets the answer', async () => {
  const { asker, open, answered } = createAsker();
  const a = record('screen', 'https://x.test/same.png');
  const b = record('near', 'https://x.test/same.png');
  asker.update(a);
  asker.update(b);
  await settle();
  assert.equal(open.length, 1);
  open[0].resolve({ status: VERDICT.OK, scores: {} });
  await settle();
  assert.deepEqual(answered.map(([id]) => id).sort(), [a.id, b.id].sort());
});
