import assert from 'node:assert/strict';
import { test } from 'node:test';

import { normalizeSettings } from '../../shared/settings.js';
import { describeCategories, describeWarnings, listActiveWarnings, thresholdFor } from '../../shared/verdict.js';
import { CATEGORIES } from './fixtures.js';


test('normal sensitivity keeps the server threshold', () => {
  assert.ok(Math.abs(thresholdFor(0.5, 3) - 0.5) < 1e-9);
  assert.ok(Math.abs(thresholdFor(0.42, 3) - 0.42) < 1e-9);
});

test('higher sensitivity lowers the threshold, lower raises it, staying inside (0, 1)', () => {
  const levels = [1, 2, 3, 4, 5].map((s) => thresholdFor(0.5, s));
  for (let i = 1; i < levels.length; i += 1) assert.ok(levels[i] < levels[i - 1]);
  for (const base of [0, 0.001, 0.999, 1]) {
    for (const s of [1, 5]) {
      const t = thresholdFor(base, s);
      assert.ok(t > 0 && t < 1, `${base}@${s} -> ${t}`);
    }
  }
});

test('flags the enabled categories whose score reaches the threshold, highest first', () => {
  const s = normalizeSettings({});
  const w = listActiveWarnings({ harmful: 0.91, misogynous: 0.6 }, CATEGORIES, s);
  assert.deepEqual(w.map((x) => x.id), ['harmful', 'misogynous']);
  assert.equal(describeWarnings(w), 'Harmful 91% · Misogyny 60%');
  assert.deepEqual(listActiveWarnings({ harmful: 0.49, misogynous: 0.1 }, CATEGORIES, s), []);
});

test('a category the user turned off is never flagged', () => {
  const s = normalizeSettings({ categories: { harmful: false } });
  assert.deepEqual(listActiveWarnings({ harmful: 0.99 }, CATEGORIES, s), []);
});

test('sensitivity changes which scores are flagged', () => {
  assert.equal(listActiveWarnings({ harmful: 0.4 }, CATEGORIES, normalizeSettings({ sensitivity: 3 })).length, 0);
  assert.equal(listActiveWarnings({ harmful: 0.4 }, CATEGORIES, normalizeSettings({ sensitivity: 5 })).length, 1);
  assert.equal(listActiveWarnings({ harmful: 0.6 }, CATEGORIES, normalizeSettings({ sensitivity: 1 })).length, 0);
});

test('scores for categories the server does not list are ignored', () => {
  assert.deepEqual(listActiveWarnings({ offensive: 0.99 }, CATEGORIES, normalizeSettings({})), []);
});

test('a warning card in the page names the categories, never the scores', () => {
  assert.equal(describeCategories([{ name: 'Harmful', score: 0.91 }, { name: 'Misogyny', score: 0.6 }]), 'Harmful · Misogyny');
});
