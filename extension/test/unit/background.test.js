import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BADGE_COLOR, badgeText, createBadges, updateTabCounts } from '../../background/badges.js';
import { createClassifier, decodeBase64 } from '../../background/classify.js';
import { healthKey, serverIdentity } from '../../background/health.js';
import { UnreadableImage, readBodyCapped } from '../../background/picture_fetch.js';
import { createOpenTabsAdoption } from '../../background/open_tabs.js';
import { pageOfMenuClick, pageOfSender } from '../../background/page_of.js';
import { createReportMenu } from '../../background/report_menu.js';
import { API_ERROR, ApiError } from '../../shared/api.js';
import { MSG, VERDICT } from '../../shared/messages.js';
import { REPORTS_KEY, TAB_COUNTS_KEY } from '../../shared/storage_keys.js';
import { memoryStorage } from './fixtures.js';

const streamOf = (chunks) => new ReadableStream({
  start(controller) {
    for (const c of chunks) controller.enqueue(new Uint8Array(c));
    controller.close();
  },
});

test('reads a body in chunks into one array', async () => {
  assert.deepEqual([...await readBodyCapped(streamOf([[1, 2], [3], [4, 5]]), 5)], [1, 2, 3, 4, 5]);
});

test('cuts a body off once it passes the cap, and refuses an empty one', async () => {
  let cancelled = false;
  const body = new ReadableStream({
    pull(controller) {
      controller.enqueue(new Uint8Array(4)); // never ends by itself
    },
    cancel() {
      cancelled = true;
    },
  });
  await assert.rejects(readBodyCapped(body, 10), (e) => e instanceof UnreadableImage && e.reason === 'too_large');
  assert.ok(cancelled, 'the rest of the body is not read');
  await assert.rejects(readBodyCapped(streamOf([]), 10), (e) => e instanceof UnreadableImage && e.reason === 'empty');
});

test('the badge shows the count, nothing for none, and "!" while the server is down', () => {
  assert.equal(badgeText(false, 3), '3');
  assert.equal(badgeText(false, 0), '');
  assert.equal(badgeText(true, 3), '!');
  assert.equal(badgeText(true, 0), '!');
});

test('tab counts: a frame reports its own, null forgets a frame or the tab', () => {
  const counts = {};
  updateTabCounts(counts, 7, 2, 0);
  updateTabCounts(counts, 7, 1, 3);
  assert.deepEqual(counts, { 7: { 0: 2, 3: 1 } });
  updateTabCounts(counts, 7, null, 3);
  assert.deepEqual(counts, { 7: { 0: 2 } });
  updateTabCounts(counts, 7, 0); // a reload: the frames are replaced
  assert.deepEqual(counts, { 7: { 0: 0 } });
  updateTabCounts(counts, 8, 4, 1);
  updateTabCounts(counts, 7, null);
  assert.deepEqual(counts, { 8: { 1: 4 } });
  assert.deepEqual(updateTabCounts({ 5: 3 }, 5, 1, 2), { 5: { 2: 1 } }, 'an old number entry is replaced by frames');
});

/** A browser whose storage.session and action record what the badges do. */
function fakeExt() {
  const session = {};
  const painted = [];
  return {
    session,
    painted,
    storage: {
      session: {
        get: async (key) => ({ [key]: structuredClone(session[key]) }),
        set: async (items) => Object.assign(session, structuredClone(items)),
      },
    },
    action: {
      setBadgeText: async (d) => painted.push(['text', d.tabId ?? null, d.text]),
      setBadgeBackgroundColor: async (d) => painted.push(['color', d.tabId ?? null, d.color]),
      setTitle: async (d) => painted.push(['title', null, d.title]),
    },
  };
}

test('overlapping count updates keep every frame, in the order they came', async () => {
  const ext = fakeExt();
  const badges = createBadges({ ext, ready: async () => {}, health: { isKnownDown: () => false, current: null } });
  await Promise.all([badges.setTabCount(1, 2, 0), badges.setTabCount(1, 3, 1), badges.setTabCount(2, 1, 0)]);
  assert.deepEqual(ext.session[TAB_COUNTS_KEY], { 1: { 0: 2, 1: 3 }, 2: { 0: 1 } });
  assert.deepEqual(ext.painted.filter(([what, tab]) => what === 'text' && tab === 1).map(([, , text]) => text), ['2', '5']);
});

test('a known-down server paints "!" in red on the toolbar and every counted tab, with its message', async () => {
  const ext = fakeExt();
  const health = { isKnownDown: () => false, current: null };
  const badges = createBadges({ ext, ready: async () => {}, health });
  await badges.setTabCount(4, 2, 0);
  Object.assign(health, { isKnownDown: () => true, current: { state: 'unreachable', message: 'no server' } });
  ext.painted.length = 0;
  await badges.refresh();
  assert.deepEqual(ext.painted, [
    ['text', null, '!'], ['color', null, BADGE_COLOR.down], ['title', null, 'SimCLIP Meme Shield: no server'],
    ['text', 4, '!'], ['color', 4, BADGE_COLOR.down],
  ]);
});

test('the stored health changes when anything a page reads of it does', () => {
  const up = { state: 'ok', message: '', server: { model: 'm', mode: 'head', version: '1', cost: { perPictureMs: 80 } } };
  assert.equal(serverIdentity(up), 'm|head|1');
  assert.equal(serverIdentity(null), '');
  assert.equal(healthKey(up), healthKey({ ...up, checkedAt: 5 }), 'the time of the check alone is not a change');
  assert.notEqual(healthKey(up), healthKey({ ...up, server: { ...up.server, cost: { perPictureMs: 90 } } }));
  assert.notEqual(healthKey(up), healthKey({ ...up, server: { ...up.server, setup: { state: 'running' } } }));
  assert.notEqual(healthKey(up), healthKey({ ...up, state: 'unreachable' }));
});

test('a context-menu click names its page on the web only', () => {
  const tab = { id: 3, url: 'https://a.example/post' };
  assert.deepEqual(pageOfMenuClick({ frameUrl: 'https://b.example/frame' }, tab),
    { url: 'https://b.example/frame', referrerPolicy: '', tabId: 3, topUrl: 'https://a.example/post' });
  assert.deepEqual(pageOfMenuClick({}, tab), { url: tab.url, referrerPolicy: '', tabId: 3, topUrl: tab.url });
  assert.equal(pageOfMenuClick({}, { id: 3, url: 'chrome://newtab/' }), null);
  assert.equal(pageOfMenuClick({}, { id: -1, url: tab.url }), null);
  assert.equal(pageOfMenuClick({}, undefined), null);
});

test('a message names its sender\'s page: the frame, or its creator for about:blank, in a web tab only', () => {
  const tab = { id: 3, url: 'https://a.example/post' };
  assert.deepEqual(pageOfSender({ url: 'https://b.example/frame', tab }, 'no-referrer'),
    { url: 'https://b.example/frame', referrerPolicy: 'no-referrer', tabId: 3, topUrl: 'https://a.example/post' });
  assert.deepEqual(pageOfSender({ url: 'about:blank', origin: 'https://c.example', tab }),
    { url: 'https://c.example/', referrerPolicy: '', tabId: 3, topUrl: tab.url });
  assert.deepEqual(pageOfSender({ url: 'about:srcdoc', origin: 'null', tab }), { url: tab.url, referrerPolicy: '', tabId: 3, topUrl: tab.url });
  assert.equal(pageOfSender({ url: 'chrome-extension://x/popup.html' }), null, 'not in a tab');
  assert.equal(pageOfSender({ url: 'https://b.example/', tab: { id: -1 } }), null);
  assert.equal(pageOfSender({ url: 'file:///x.html', tab: { id: 3, url: 'file:///x.html' } }), null);
});

test('a tab loading another page counts 0, or what its page answers from the back/forward cache', async () => {
  const ext = fakeExt();
  const asked = [];
  const answers = { 1: { flagged: 4 }, 2: { flagged: 0 } };
  ext.tabs = {
    sendMessage: async (tabId, msg, options) => {
      asked.push([tabId, msg.type, options.frameId]);
      if (!answers[tabId]) throw new Error('Could not establish connection. Receiving end does not exist.');
      return answers[tabId];
    },
  };
  const badges = createBadges({ ext, ready: async () => {}, health: { isKnownDown: () => false, current: null } });
  await badges.setTabCount(1, 2, 5);
  await Promise.all([badges.pageLoading(1), badges.pageLoading(2), badges.pageLoading(3)]);
  assert.deepEqual(ext.session[TAB_COUNTS_KEY], { 1: { 0: 4 }, 2: { 0: 0 }, 3: { 0: 0 } });
  assert.deepEqual(asked, [1, 2, 3].map((tabId) => [tabId, MSG.GET_PAGE_STATE, 0]), 'the top frame only');
});

test('clearing the reports empties the stored list', async () => {
  const local = memoryStorage({ [REPORTS_KEY]: [{ imageUrl: 'https://a.example/x.png' }] });
  const reports = createReportMenu({ ext: { storage: { local } } });
  await reports.clearReports();
  assert.deepEqual(local.data[REPORTS_KEY], []);
});

test('the open tabs are adopted once per worker life, whichever start event asks first', async () => {
  let queries = 0;
  const ext = {
    tabs: {
      query: async () => {
        queries++;
        return [{ id: 1 }];
      },
    },
    scripting: { executeScript: async ({ func }) => [{ frameId: 0, result: func ? { running: false, stamped: false } : undefined }], insertCSS: async () => {} },
  };
  const adopt = createOpenTabsAdoption(ext);
  assert.deepEqual(await Promise.all([adopt(), adopt()]), [1, 1]);
  assert.equal(await adopt(), 1);
  assert.equal(queries, 1);
  const failing = createOpenTabsAdoption({ tabs: { query: async () => Promise.reject(new Error('no tabs')) }, scripting: ext.scripting });
  assert.equal(await failing(), 0, 'a failed injection counts none');
});

test('decodes base64 to bytes, and throws on what is not base64', () => {
  assert.deepEqual([...decodeBase64('AQID')], [1, 2, 3]);
  assert.throws(() => decodeBase64('not base64!'));
});

test('an SVG the server calls vector_svg is skipped; any other refused picture is unchecked', async () => {
  const refusing = (code) => createClassifier({
    getClient: async () => ({
      classify: async () => {
        throw new ApiError(API_ERROR.REFUSED_IMAGE, 'refused', { status: 415, code });
      },
    }),
    health: { isUp: () => true, current: {}, check: async () => {} },
    fetcher: {},
    pageLoads: {},
    loadStoredTab: async () => {},
  });
  const page = { topUrl: 'https://example.com/', tabId: 1 };
  assert.deepEqual(await refusing('vector_svg').classifyPageBytes('PHN2Zy8+', 0, page), { status: VERDICT.SKIPPED, reason: 'vector_svg' });
  assert.deepEqual(await refusing('unsupported_format').classifyPageBytes('PHN2Zy8+', 0, page), { status: VERDICT.FAILED, reason: 'unsupported_format' });
});
