import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  DEFAULT_SETTINGS, isCategoryEnabled, isTokenWellFormed, loadSettings, normalizeServerUrl, normalizeSettings, saveSettings,
} from '../../shared/settings.js';

class MemoryArea {
  constructor(data = {}) {
    this.data = structuredClone(data);
  }

  async get(key) {
    return key in this.data ? { [key]: structuredClone(this.data[key]) } : {};
  }

  async set(items) {
    Object.assign(this.data, structuredClone(items));
  }
}

test('missing or garbled settings fall back to the defaults', () => {
  assert.deepEqual(normalizeSettings(undefined), { ...DEFAULT_SETTINGS, categories: {}, allowlist: [] });
  const s = normalizeSettings({ sensitivity: 'high', revealAfterSeconds: -4, keepHiddenWhenDown: 'yes', allowlist: 'x.com', serverUrl: 42 });
  assert.equal(s.sensitivity, 3);
  assert.equal(s.revealAfterSeconds, 3);
  assert.equal(s.keepHiddenWhenDown, false);
  assert.deepEqual(s.allowlist, []);
  assert.equal(s.serverUrl, 'http://127.0.0.1:8478');
});

test('clamps sensitivity and the reveal time limit to their ranges', () => {
  assert.equal(normalizeSettings({ sensitivity: 9 }).sensitivity, 5);
  assert.equal(normalizeSettings({ sensitivity: 0 }).sensitivity, 1);
  assert.equal(normalizeSettings({ revealAfterSeconds: 1000 }).revealAfterSeconds, 120);
});

test('accepts only plain http server URLs on loopback', () => {
  assert.equal(normalizeServerUrl('http://127.0.0.1:9000/'), 'http://127.0.0.1:9000');
  assert.equal(normalizeServerUrl(' http://LOCALHOST:8478 '), 'http://localhost:8478');
  assert.equal(normalizeServerUrl('http://[::1]:8478'), 'http://[::1]:8478');
  for (const bad of ['https://127.0.0.1:8478', 'http://192.168.1.2:8478', 'http://example.com:8478', 'http://u:p@127.0.0.1:1', 'nonsense']) {
    assert.equal(normalizeServerUrl(bad), null, bad);
  }
});

test('a token must be 43 base64url characters', () => {
  assert.equal(isTokenWellFormed('a'.repeat(43)), true);
  assert.equal(isTokenWellFormed('A-_z0'.repeat(8) + 'abc'), true);
  assert.equal(isTokenWellFormed('a'.repeat(42)), false);
  assert.equal(isTokenWellFormed(`${'a'.repeat(42)}=`), false);
});

test('categories are on unless turned off, and the allowlist is normalised', () => {
  const s = normalizeSettings({ categories: { harmful: false, misogynous: true, 'bad id!': false }, allowlist: ['B.com', 'b.com', 'http://a.com/x', '??'] });
  assert.equal(isCategoryEnabled(s, 'harmful'), false);
  assert.equal(isCategoryEnabled(s, 'misogynous'), true);
  assert.equal(isCategoryEnabled(s, 'hateful'), true);
  assert.deepEqual(Object.keys(s.categories), ['harmful', 'misogynous']);
  assert.deepEqual(s.allowlist, ['a.com', 'b.com']);
});

test('saving merges a patch into what is stored', async () => {
  const area = new MemoryArea({ settings: { token: 't', sensitivity: 4 } });
  await saveSettings(area, { sensitivity: 2 });
  const s = await loadSettings(area);
  assert.equal(s.token, 't');
  assert.equal(s.sensitivity, 2);
});
