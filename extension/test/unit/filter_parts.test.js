// The parts content/image_filter.js wires: its record index (record_map.js), when a canvas is
// looked at (canvas_looks.js) and what it reports (picture_counts.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CANVAS, CanvasLooks } from '../../content/canvas_looks.js';
import { STATE } from '../../content/image_state.js';
import { CountReporter, holdsAny, listPictures, summarize } from '../../content/picture_counts.js';
import { PictureIndex, RecordMap } from '../../content/record_map.js';

const el = (name) => ({ name, tagName: 'DIV' });
const rec = (props) => ({ url: null, verdict: null, state: null, ...props });

test('RecordMap keeps an element\'s own picture and its ::before / ::after ones apart', () => {
  const records = new RecordMap();
  const div = el('div');
  const own = rec({ el: div, kind: 'bg' });
  const before = rec({ el: div, kind: 'before' });
  records.set(own);
  records.set(before);
  assert.equal(records.get(div), own);
  assert.equal(records.get(div, 'before'), before);
  assert.deepEqual(records.of(div), [own, before]);
  records.delete(rec({ el: div, kind: 'bg' })); // another record of that part: not this one
  assert.ok(records.has(own));
  records.delete(own);
  records.delete(before);
  assert.deepEqual(records.of(div), []);
  assert.equal(records.byElement.size, 0);
});

test('PictureIndex groups the records of one picture, by URL or content, in one place only', () => {
  const near = new Set(['a', 'b']);
  const index = new PictureIndex({ inOnePlace: (x, y) => near.has(x.name) && near.has(y.name) });
  const a = rec({ el: el('a'), url: 'u1' });
  const b = rec({ el: el('b'), url: 'u2', verdict: { sha256: 'h' } });
  const far = rec({ el: el('far'), url: 'u1' });
  for (const r of [a, far]) index.rekey(r, null, r.url);
  index.rekey(b, null, 'u2');
  assert.deepEqual(index.groupOf(a), [a]); // `far` shows it elsewhere
  index.rekey(a, null, 'h');
  index.rekey(b, null, 'h');
  a.verdict = { sha256: 'h' };
  assert.deepEqual(index.groupOf(a), [a, b]);
  index.rekey(b, 'h', null);
  assert.deepEqual(index.groupOf(a), [a]);
  assert.equal(index.byKey.has('u1'), true);
  index.rekey(a, 'u1', null);
  index.rekey(far, 'u1', null);
  assert.equal(index.byKey.has('u1'), false);
});

test('CanvasLooks: every frame while fresh, then once a recheckMs; a drawing that keeps changing is animated', () => {
  let now = 0;
  let drawing = 'a';
  const looks = new CanvasLooks({ sample: () => ({ key: drawing }), now: () => now });
  const canvas = { tagName: 'CANVAS' };
  assert.deepEqual(looks.look(canvas), { sample: { key: 'a' }, key: 'a', animated: false });
  now = 16;
  assert.equal(looks.look(canvas), null, 'fresh and unchanged: nothing new');
  assert.ok(looks.isFresh(canvas));
  now = CANVAS.freshMs + 10;
  assert.equal(looks.isFresh(canvas), false);
  assert.equal(looks.look(canvas, { force: true }), null, 'the page drew on it: looked at now, the same drawing');
  let last = null;
  for (let i = 0; i < CANVAS.animated.changes; i += 1) {
    now += 100;
    drawing = `frame-${i}`;
    last = looks.look(canvas, { force: true });
  }
  assert.equal(last.animated, true);
  assert.equal(looks.isFresh(canvas), false, 'an animated canvas is not looked at every frame');
  now += 100;
  assert.equal(looks.look(canvas, { force: true }), null, 'animated: at most once a recheckMs');
  now += CANVAS.recheckMs;
  assert.deepEqual(looks.look(canvas), { sample: { key: drawing }, key: drawing, animated: false }, 'it holds still: checked');
});

test('CountReporter sends a changed count once per interval, and again after forget()', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let n = 2;
  const sent = [];
  const counts = new CountReporter({ count: () => n, onChange: (c) => sent.push(c) });
  counts.report();
  counts.report();
  t.mock.timers.tick(300);
  counts.report();
  t.mock.timers.tick(300);
  assert.deepEqual(sent, [2]);
  counts.forget();
  counts.report();
  t.mock.timers.tick(300);
  n = 3;
  counts.report();
  t.mock.timers.tick(300);
  assert.deepEqual(sent, [2, 2, 3]);
});

test('holdsAny matches an <img> by id and URL, other kinds by id; summarize counts per state', () => {
  const records = [
    { id: 1, kind: 'img', url: 'https://a/1.png', state: STATE.FLAGGED, warnings: [] },
    { id: 2, kind: 'bg', url: 'https://a/2.png', state: STATE.REVEALED, warnings: [] },
  ];
  assert.equal(holdsAny(records, [{ id: 1, url: 'https://a/other.png' }]), false);
  assert.equal(holdsAny(records, [{ id: '1', url: 'https://a/1.png' }]), true);
  assert.equal(holdsAny(records, [{ id: 2, url: 'https://a/other.png' }]), true);
  assert.equal(holdsAny(records, [{ id: 3 }]), false);
  assert.deepEqual(listPictures(records, () => false).map((p) => [p.id, p.state, p.warning]),
    [[1, STATE.FLAGGED, ''], [2, STATE.REVEALED, '']]);
  const summary = summarize(records, { flagged: 1, asking: { inFlight: 0 } });
  assert.equal(summary.flagged, 1);
  assert.equal(summary.revealed, 1);
  assert.deepEqual(summary.asking, { inFlight: 0 });
});
