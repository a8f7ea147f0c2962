import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createTabLoads, listObservedTypes } from '../../background/tab_loads.js';
import { PageLoads } from '../../shared/page_loads.js';
import { PAGE_LOADS_PREFIX } from '../../shared/storage_keys.js';
import { memoryStorage } from './fixtures.js';

const PAGE = 'https://news.example.com/story';
const PIC = 'https://cdn.example.net/meme.png';

const load = (pageLoads, tabId, requestId, type, url) => pageLoads.recordResponse({ requestId, tabId, type, url, ip: '93.184.216.34' });

test('the observers follow documents and the picture types this browser knows', () => {
  assert.deepEqual(listObservedTypes({ MAIN_FRAME: 'main_frame', SUB_FRAME: 'sub_frame', IMAGE: 'image', MEDIA: 'media', SCRIPT: 'script',
    XHR: 'xmlhttprequest' }), ['main_frame', 'sub_frame', 'image', 'media', 'xmlhttprequest']);
  assert.deepEqual(listObservedTypes({ a: 'main_frame', b: 'image', c: 'imageset', d: 'media' }), ['main_frame', 'image', 'imageset', 'media']);
  assert.deepEqual(listObservedTypes(undefined), ['main_frame', 'sub_frame', 'image', 'media', 'xmlhttprequest'], 'a browser that lists none');
});

test('the tabs changed meanwhile are stored together, and a restarted worker reads them back', async () => {
  const storage = memoryStorage();
  const pageLoads = new PageLoads();
  createTabLoads({ pageLoads, storage, storeDelayMs: 0 });
  const stored = storage.nextSet();
  load(pageLoads, 7, 'd', 'main_frame', PAGE);
  load(pageLoads, 7, 'p', 'image', PIC);
  load(pageLoads, 8, 'e', 'main_frame', PAGE);
  const items = await stored;
  assert.deepEqual(Object.keys(items).sort(), [`${PAGE_LOADS_PREFIX}7`, `${PAGE_LOADS_PREFIX}8`]);

  const restarted = new PageLoads();
  const tabLoads = createTabLoads({ pageLoads: restarted, storage });
  assert.deepEqual(restarted.judge(7, PIC, PAGE), { ok: false, reason: 'not_loaded' });
  await tabLoads.loadStoredTab(7);
  assert.deepEqual(restarted.judge(7, PIC, PAGE), { ok: true });
  await tabLoads.loadStoredTab(9); // never stored: nothing to read
  assert.equal(restarted.tabs.has(9), false);
});

test('a tab this worker knows is not read back over, and a closed tab is forgotten in memory and storage', async () => {
  const storage = memoryStorage({ [`${PAGE_LOADS_PREFIX}7`]: { document: null, urls: [[PIC, { ips: [] }]] } });
  const pageLoads = new PageLoads();
  const tabLoads = createTabLoads({ pageLoads, storage, storeDelayMs: 0 });
  load(pageLoads, 7, 'd', 'main_frame', PAGE); // a new page in the tab: the old pictures are gone
  await tabLoads.loadStoredTab(7);
  assert.deepEqual(pageLoads.judge(7, PIC, PAGE), { ok: false, reason: 'not_loaded' });
  tabLoads.forgetTab(7);
  assert.equal(pageLoads.tabs.has(7), false);
  assert.equal(storage.data[`${PAGE_LOADS_PREFIX}7`], undefined);
});

test('a store the storage refuses (over its quota) leaves the memory copy answering', async () => {
  const storage = memoryStorage();
  let refused;
  const refusal = new Promise((resolve) => {
    refused = resolve;
  });
  storage.set = async () => {
    refused();
    throw new Error('QUOTA_BYTES quota exceeded');
  };
  const pageLoads = new PageLoads();
  createTabLoads({ pageLoads, storage, storeDelayMs: 0 });
  load(pageLoads, 7, 'p', 'image', PIC);
  await refusal;
  assert.deepEqual(pageLoads.judge(7, PIC, PAGE), { ok: true });
});
