import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CORRECTION } from '../../shared/messages.js';
import { MAX_REPORTS, addReport, createReport, listReportMenuItems, parseReportMenuClick, reportsToJsonl } from '../../shared/reports.js';

const NOW = new Date('2025-01-02T03:04:05Z');

test('a false-alarm report carries the fields training reads', () => {
  const r = createReport({ imageUrl: 'https://x.com/a.png', sha256: 'ab', correction: CORRECTION.NOT_FLAGGED, categories: ['harmful'], scores: { harmful: 0.8 }, now: NOW });
  assert.deepEqual(r, {
    image_url: 'https://x.com/a.png', sha256: 'ab', correction: 'not_flagged', categories: ['harmful'],
    labels: ['not harmful'], scores: { harmful: 0.8 }, text: '', timestamp: '2025-01-02T03:04:05.000Z',
  });
});

test('a missed-meme report labels the image with the category', () => {
  const r = createReport({ imageUrl: 'u', correction: CORRECTION.FLAGGED, categories: ['misogynous'], now: NOW });
  assert.deepEqual(r.labels, ['misogynous']);
  assert.throws(() => createReport({ imageUrl: 'u', correction: 'unsure' }), TypeError);
});

test('reporting the same image twice keeps the latest report only, and the list is bounded', () => {
  const a = createReport({ imageUrl: 'u', sha256: 's', correction: CORRECTION.NOT_FLAGGED, now: NOW });
  const b = { ...a, timestamp: 'later' };
  assert.deepEqual(addReport([a], b), [b]);
  let list = [];
  for (let i = 0; i < MAX_REPORTS + 3; i += 1) list = addReport(list, { ...a, sha256: String(i) });
  assert.equal(list.length, MAX_REPORTS);
  assert.equal(list.at(-1).sha256, String(MAX_REPORTS + 2));
});

test('exports one JSON object per line', () => {
  const a = createReport({ imageUrl: 'u1', correction: CORRECTION.NOT_FLAGGED, now: NOW });
  const b = createReport({ imageUrl: 'u2', correction: CORRECTION.FLAGGED, categories: ['harmful'], now: NOW });
  const text = reportsToJsonl([a, b]);
  assert.ok(text.endsWith('\n'));
  assert.deepEqual(text.trim().split('\n').map((l) => JSON.parse(l).image_url), ['u1', 'u2']);
  assert.equal(reportsToJsonl([]), '');
});

test('the report menu has a false-alarm entry and one "should be flagged" entry per server category', () => {
  const items = listReportMenuItems([{ id: 'harmful', name: 'Harmful' }, { id: 'misogynous', name: 'Misogyny' }]);
  assert.deepEqual(items.map((i) => i.title), [
    'Report a wrong verdict', 'Should not be flagged (false alarm)', 'Should be flagged: Harmful', 'Should be flagged: Misogyny',
  ]);
  assert.ok(items.slice(1).every((i) => i.parentId === items[0].id));
  assert.equal(new Set(items.map((i) => i.id)).size, items.length);
  assert.equal(listReportMenuItems(undefined).length, 2); // before the server's categories are known
});

test('a menu click maps to the correction it reports, and other menus are ignored', () => {
  const [, notFlagged, harmful] = listReportMenuItems([{ id: 'harmful', name: 'Harmful' }]);
  assert.deepEqual(parseReportMenuClick(notFlagged.id), { correction: CORRECTION.NOT_FLAGGED });
  assert.deepEqual(parseReportMenuClick(harmful.id), { correction: CORRECTION.FLAGGED, categories: ['harmful'] });
  for (const other of ['simclip-report', 'simclip-report:flag:', 'another-extension-item', 42, undefined]) {
    assert.equal(parseReportMenuClick(other), null, String(other));
  }
});
