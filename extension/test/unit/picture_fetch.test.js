import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';

import { createPictureFetcher } from '../../background/picture_fetch.js';
import { createRefererRule, listFetchGuardRules } from '../../shared/fetch_rules.js';
import { representationOf, sameRepresentation } from '../../shared/page_loads.js';

const PAGE = { url: 'https://feed.example/home', referrerPolicy: '', topUrl: 'https://feed.example/home' };
const MEME = new Uint8Array([137, 80, 78, 71, 1, 2, 3, 4, 5, 6]);
const PLACEHOLDER = new Uint8Array([137, 80, 78, 71, 9]);
const JPEG_OF_MEME = new Uint8Array([255, 216, 255, 1, 2, 3]);
const realFetch = globalThis.fetch;
afterEach(() => { globalThis.fetch = realFetch; });

/**
 * An extension stand-in (declarativeNetRequest session rules, every change counted) and a picture
 * host behind `fetch`: `hotlink` hosts answer a placeholder to a request without the page's Referer.
 */
function world({ hotlink = false, etag = '', negotiate = false, leftRules = [] } = {}) {
  const rules = new Map(leftRules.map((rule) => [rule.id, rule]));
  const changes = [];
  const requests = [];
  const ext = {
    runtime: { getURL: (p) => `chrome-extension://ext-id/${p}` },
    declarativeNetRequest: {
      getSessionRules: async () => [...rules.values()],
      async updateSessionRules({ removeRuleIds = [], addRules = [] }) {
        changes.push({ removeRuleIds, addRules });
        for (const id of removeRuleIds) rules.delete(id);
        for (const rule of addRules) rules.set(rule.id, rule);
      },
    },
  };
  globalThis.fetch = async (url, init = {}) => {
    const rule = [...rules.values()].find((r) => r.action.type === 'modifyHeaders' && url.startsWith(r.condition.urlFilter.slice(1)));
    const referer = rule?.action.requestHeaders[0].value ?? '';
    requests.push({ url, referer });
    const accept = init.headers?.Accept ?? '*/*';
    let body = hotlink && !referer ? PLACEHOLDER : MEME;
    if (negotiate && !accept.includes('image/webp')) body = JPEG_OF_MEME; // an image CDN's format by Accept
    const headers = { 'Content-Type': 'image/png', 'Content-Length': String(body.byteLength) };
    if (etag) headers.ETag = body === MEME ? etag : '"placeholder"';
    return new Response(body, { headers });
  };
  const fetcher = createPictureFetcher(ext);
  const refererRuleChanges = () => changes.filter((c) => c.addRules.some((r) => r.id >= 1000) || c.removeRuleIds.some((id) => id >= 1000)).length;
  return { fetcher, requests, refererRuleChanges, changes };
}

const loaded = (body, extra = []) => representationOf([{ name: 'Content-Length', value: String(body.byteLength) }, ...extra], 200);

test('a picture host that answers the same file without the Referer costs no rule change', async () => {
  const w = world();
  for (let i = 0; i < 5; i += 1) {
    assert.deepEqual(await w.fetcher.fetchBytes(`https://cdn.example/p/${i}.png`, PAGE, 'image', loaded(MEME)), MEME);
  }
  assert.equal(w.refererRuleChanges(), 0);
  assert.deepEqual(w.requests.map((r) => r.referer), ['', '', '', '', '']);
  assert.deepEqual(w.fetcher.trials, { kept: 5, refused: 0 });
});

test('a hotlink-protected host is asked again with the page\'s Referer, and keeps its rule from then on', async () => {
  const w = world({ hotlink: true });
  assert.deepEqual(await w.fetcher.fetchBytes('https://pix.example/a.png', PAGE, 'image', loaded(MEME)), MEME);
  assert.deepEqual(await w.fetcher.fetchBytes('https://pix.example/b.png', PAGE, 'image', loaded(MEME)), MEME);
  assert.deepEqual(w.requests.map((r) => [r.url.slice(-5), r.referer]),
    [['a.png', ''], ['a.png', 'https://feed.example/'], ['b.png', 'https://feed.example/']]);
  assert.equal(w.refererRuleChanges(), 1);
  assert.deepEqual(w.fetcher.trials, { kept: 0, refused: 1 });
});

test('the same ETag decides over the length, and another ETag refuses a file of the same length', async () => {
  const same = world({ hotlink: true, etag: '"m1"' });
  assert.deepEqual(await same.fetcher.fetchBytes('https://pix.example/a.png', PAGE, 'image',
    representationOf([{ name: 'ETag', value: 'W/"m1"' }], 200)), MEME);
  assert.equal(same.requests.length, 2); // the placeholder's ETag differs: asked again with the Referer
  const w = world({ etag: '"m1"' });
  assert.deepEqual(await w.fetcher.fetchBytes('https://cdn.example/a.png', PAGE, 'image', loaded(MEME, [{ name: 'ETag', value: '"m1"' }])), MEME);
  assert.equal(w.requests.length, 1);
  assert.equal(sameRepresentation({ etag: '"m1"', size: 10 }, { etag: '"other"', size: 10 }), false);
});

test('without what the page loaded, or with no Referer to give, the fetch goes as before', async () => {
  const unknown = world({ hotlink: true });
  assert.deepEqual(await unknown.fetcher.fetchBytes('https://pix.example/a.png', PAGE, 'image', null), MEME);
  assert.deepEqual(unknown.requests.map((r) => r.referer), ['https://feed.example/']); // one fetch, with the rule
  const noReferrer = world({ hotlink: true });
  const bytes = await noReferrer.fetcher.fetchBytes('https://pix.example/a.png', { ...PAGE, referrerPolicy: 'no-referrer' }, 'image', loaded(MEME));
  assert.deepEqual(bytes, PLACEHOLDER); // what the page itself got: it sent no Referer either
  assert.equal(noReferrer.refererRuleChanges(), 0);
});

test('what identifies the bytes the page loaded: ETag, length, a range answer\'s total, none when encoded', () => {
  const h = (pairs) => Object.entries(pairs).map(([name, value]) => ({ name, value }));
  assert.deepEqual(representationOf(h({ 'content-length': '1234', etag: '"x"' }), 200), { etag: '"x"', size: 1234 });
  assert.deepEqual(representationOf(h({ 'Content-Length': '100', 'Content-Range': 'bytes 0-99/5000' }), 206), { etag: '', size: 5000 });
  assert.equal(representationOf(h({ 'Content-Length': '100', 'Content-Encoding': 'gzip' }), 200), null);
  assert.equal(representationOf(h({ 'Content-Type': 'image/png' }), 200), null);
  assert.equal(sameRepresentation(null, { etag: '', size: 10 }), false);
  assert.equal(sameRepresentation({ etag: '', size: 10 }, { etag: '"e"', size: 10 }), true);
});

test('a picture is asked for with the formats the browser accepts, so an image CDN answers the file the page got', async () => {
  const w = world({ negotiate: true });
  assert.deepEqual(await w.fetcher.fetchBytes('https://cdn.example/a', PAGE, 'image', loaded(MEME)), MEME);
  assert.equal(w.refererRuleChanges(), 0);
  assert.deepEqual(w.fetcher.trials, { kept: 1, refused: 0 });
});

test('a restarted worker keeps the rules an earlier life left: the guard as it is, its Referer rules taken over', async () => {
  // as Chromium reads them back: the same rules, their keys in another order
  const reordered = (rule) => JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(rule).reverse())));
  const guard = listFetchGuardRules('ext-id').map(reordered);
  const left = createRefererRule(1004, 'https://pix.example/', 'https://feed.example/', 'ext-id', { prefix: true });
  const w = world({ hotlink: true, leftRules: [...guard, left] });
  assert.deepEqual(await w.fetcher.fetchBytes('https://pix.example/a.png', PAGE, 'image', loaded(MEME)), MEME);
  assert.deepEqual(w.changes, [], 'no rule changed (each change empties Chromium\'s back/forward cache)');
  assert.deepEqual(w.requests.map((r) => r.referer), ['https://feed.example/'], 'the rule in place, not a fetch without it');
  // another page's Referer for that origin replaces the taken-over rule, as one of this life's
  await w.fetcher.fetchBytes('https://pix.example/b.png', { ...PAGE, url: 'https://news.example/a' }, 'image', loaded(MEME));
  assert.deepEqual(w.changes.map((c) => c.removeRuleIds), [[1004]]);
  assert.equal(w.requests.at(-1).referer, 'https://news.example/');

  const twice = createRefererRule(1005, 'https://pix.example/', 'https://other.example/', 'ext-id', { prefix: true });
  const stale = world({ leftRules: [...listFetchGuardRules('ext-id'), left, twice] });
  await stale.fetcher.ensureGuard();
  assert.deepEqual(stale.changes, [{ removeRuleIds: [1005], addRules: [] }], 'a second rule for one origin is removed');
  const fresh = world();
  await fresh.fetcher.ensureGuard();
  assert.equal(fresh.changes.length, 1, 'a first life sets the guard');
});
