import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  LOAD_REFUSAL, PageLoads, isPrivateAddress, isPublicSite, judgeAddresses, paddingMs, partitionKey, topLevelSite,
} from '../../shared/page_loads.js';

const PAGE = 'https://news.example.com/story';
const PIC = 'https://cdn.example.net/meme.png';

/** Timers that fire only when the test says so. */
function fakeTimers() {
  const due = new Map();
  let next = 1;
  return {
    set: (fn) => {
      due.set(next, fn);
      return next++;
    },
    clear: (id) => due.delete(id),
    fireAll: () => {
      for (const [id, fn] of [...due]) {
        due.delete(id);
        fn();
      }
    },
  };
}

function loadedTab(ips = ['93.184.216.34']) {
  const loads = new PageLoads();
  loads.recordResponse({ requestId: 'd', tabId: 7, type: 'main_frame', url: PAGE, ip: '93.184.216.34' });
  loads.recordResponse({ requestId: 'p', tabId: 7, type: 'image', url: PIC, ip: ips[0] });
  return loads;
}

test('a picture the tab\'s browser loaded from a public address may be fetched, without its fragment', () => {
  assert.deepEqual(loadedTab().judge(7, `${PIC}#x`, PAGE), { ok: true });
});

test('a fetch of the page counts as a load only when it answers with a picture or a video', () => {
  const loads = loadedTab();
  const fetched = (requestId, url, type) => loads.recordResponse({
    requestId, tabId: 7, type: 'xmlhttprequest', url, ip: '93.184.216.34',
    responseHeaders: type === null ? [] : [{ name: 'Date', value: 'x' }, { name: 'Content-Type', value: type }],
  });
  fetched('a', 'https://cdn.example.net/again.jpg', 'image/jpeg');
  fetched('b', 'https://cdn.example.net/clip.mp4', 'Video/MP4');
  fetched('o', 'https://cdn.example.net/untyped.bin', 'application/octet-stream'); // a host serving pictures untyped
  fetched('c', 'https://api.example.com/timeline.json', 'application/json');
  fetched('d', 'https://cdn.example.net/untyped', null);
  loads.recordResponse({ requestId: 'e', tabId: 7, type: 'xmlhttprequest', url: 'https://cdn.example.net/no-headers.png', ip: '93.184.216.34' });
  assert.deepEqual(loads.judge(7, 'https://cdn.example.net/again.jpg', PAGE), { ok: true });
  assert.deepEqual(loads.judge(7, 'https://cdn.example.net/clip.mp4', PAGE), { ok: true });
  assert.deepEqual(loads.judge(7, 'https://cdn.example.net/untyped.bin', PAGE), { ok: true });
  for (const url of ['https://api.example.com/timeline.json', 'https://cdn.example.net/untyped', 'https://cdn.example.net/no-headers.png']) {
    assert.deepEqual(loads.judge(7, url, PAGE), { ok: false, reason: LOAD_REFUSAL.NOT_LOADED }, url);
  }
  loads.recordResponse({ requestId: 'g', tabId: 7, type: 'xmlhttprequest', url: 'https://rebind.example.com/x.png', ip: '10.0.0.2',
    responseHeaders: [{ name: 'content-type', value: 'image/png' }] });
  assert.deepEqual(loads.judge(7, 'https://rebind.example.com/x.png', PAGE), { ok: false, reason: LOAD_REFUSAL.PRIVATE_ADDRESS });
});

test('a picture or a video opened as the page itself, or as a frame\'s document, is a load of the tab; other documents are not', () => {
  const loads = new PageLoads();
  const typed = (value) => [{ name: 'Content-Type', value }];
  const meme = 'https://i.example.net/meme.jpg';
  loads.recordResponse({ requestId: 'r', tabId: 7, type: 'main_frame', url: 'https://example.net/m', ip: '93.184.216.34' });
  loads.recordRedirect({ requestId: 'd', url: 'https://example.net/m', ip: '93.184.216.34' }); // a link that redirects to the picture
  loads.recordResponse({ requestId: 'd', tabId: 7, type: 'main_frame', url: meme, ip: '93.184.216.35', responseHeaders: typed('image/jpeg') });
  assert.deepEqual(loads.judge(7, meme, meme), { ok: true });
  assert.equal(loads.exportTab(7).document.url, meme, 'the picture is the tab\'s document too');
  assert.deepEqual(loads.judge(7, 'https://example.net/m', meme), { ok: true }, 'the hop that led to it');
  const frames = [['f1', 'https://i.example.net/in-a-frame.webp', 'image/webp'], ['f2', 'https://v.example.net/clip.mp4', 'video/mp4'],
    ['f3', 'https://embed.example.org/player.html', 'text/html; charset=utf-8'], ['f4', 'https://embed.example.org/untyped', null]];
  for (const [requestId, url, type] of frames) {
    loads.recordResponse({ requestId, tabId: 7, type: 'sub_frame', url, ip: '93.184.216.36', responseHeaders: type ? typed(type) : [] });
  }
  assert.deepEqual(loads.judge(7, frames[0][1], meme), { ok: true });
  assert.deepEqual(loads.judge(7, frames[1][1], meme), { ok: true });
  for (const [, url] of frames.slice(2)) assert.deepEqual(loads.judge(7, url, meme), { ok: false, reason: LOAD_REFUSAL.NOT_LOADED }, url);
  loads.recordResponse({ requestId: 'n', tabId: 7, type: 'main_frame', url: 'https://example.com/', ip: '93.184.216.34', responseHeaders: typed('text/html') });
  assert.deepEqual(loads.judge(7, meme, 'https://example.com/'), { ok: false, reason: LOAD_REFUSAL.NOT_LOADED }, 'a new page starts the tab afresh');
});

test('a URL the tab\'s browser never loaded is refused, as is one loaded by another tab', () => {
  const loads = loadedTab();
  assert.deepEqual(loads.judge(7, 'https://cdn.example.net/named-in-a-data-attribute.png', PAGE), { ok: false, reason: LOAD_REFUSAL.NOT_LOADED });
  assert.deepEqual(loads.judge(8, PIC, PAGE), { ok: false, reason: LOAD_REFUSAL.NOT_LOADED });
});

test('a public page\'s picture reached at a loopback, private or link-local address is refused (DNS rebinding)', () => {
  for (const ip of ['127.0.0.1', '10.1.2.3', '192.168.1.1', '169.254.169.254', '::1', 'fe80::1', '::ffff:127.0.0.1']) {
    assert.deepEqual(loadedTab([ip]).judge(7, PIC, PAGE), { ok: false, reason: LOAD_REFUSAL.PRIVATE_ADDRESS }, ip);
  }
});

test('a local site (a private or special-use name) may show pictures from the local network', () => {
  for (const top of ['http://192.168.1.10/', 'http://nas.local/', 'http://feed.test:8000/', 'http://router/', 'http://localhost:3000/']) {
    assert.deepEqual(judgeAddresses(['192.168.1.20'], top), { ok: true }, top);
  }
});

test('a redirect hop to a private address taints the URL the page named and the one it reached', () => {
  const loads = new PageLoads();
  loads.recordRedirect({ requestId: 'r', url: PIC, ip: '192.168.1.1' });
  loads.recordResponse({ requestId: 'r', tabId: 7, type: 'image', url: 'https://cdn2.example.net/final.png', ip: '93.184.216.34' });
  assert.equal(loads.judge(7, PIC, PAGE).reason, LOAD_REFUSAL.PRIVATE_ADDRESS);
  assert.equal(loads.judge(7, 'https://cdn2.example.net/final.png', PAGE).reason, LOAD_REFUSAL.PRIVATE_ADDRESS);
});

test('a picture served from the cache has no address: its load counts, the name checks stand', () => {
  const loads = new PageLoads();
  loads.recordResponse({ requestId: 'c', tabId: 7, type: 'image', url: PIC, ip: '127.0.0.1', fromCache: true });
  assert.deepEqual(loads.judge(7, PIC, PAGE), { ok: true });
});

test('a new top-level document starts the tab afresh', () => {
  const loads = loadedTab();
  loads.recordResponse({ requestId: 'd2', tabId: 7, type: 'main_frame', url: 'https://other.example.org/', ip: '93.184.216.35' });
  assert.equal(loads.judge(7, PIC, PAGE).reason, LOAD_REFUSAL.NOT_LOADED);
});

test('waiting for a load resolves when the observer reports it, or false at the time limit', async () => {
  const timers = fakeTimers();
  const loads = new PageLoads({ timers });
  const coming = loads.waitForLoad(7, PIC, 5000);
  loads.recordResponse({ requestId: 'p', tabId: 7, type: 'image', url: PIC, ip: '93.184.216.34' });
  assert.equal(await coming, true);
  const never = loads.waitForLoad(7, 'https://cdn.example.net/never.png', 5000);
  timers.fireAll();
  assert.equal(await never, false);
  assert.equal(loads.waiters.size, 0);
});

test('a tab keeps a bounded number of URLs, the oldest dropped first', () => {
  const loads = new PageLoads({ limits: { urlsPerTab: 2, tabs: 10 } });
  for (const n of [1, 2, 3]) loads.recordResponse({ requestId: `${n}`, tabId: 1, type: 'image', url: `https://a.example.com/${n}.png`, ip: '1.1.1.1' });
  assert.equal(loads.judge(1, 'https://a.example.com/1.png', PAGE).reason, LOAD_REFUSAL.NOT_LOADED);
  assert.deepEqual(loads.judge(1, 'https://a.example.com/3.png', PAGE), { ok: true });
});

test('a restarted worker reads back what a tab loaded', () => {
  const stored = JSON.parse(JSON.stringify(loadedTab().exportTab(7)));
  const fresh = new PageLoads();
  fresh.importTab(7, stored);
  assert.deepEqual(fresh.judge(7, PIC, PAGE), { ok: true });
});

test('the cache partition is the schemeful top-level site, as browsers key their HTTP cache', () => {
  assert.equal(topLevelSite('https://www.bbc.co.uk/news'), 'https://bbc.co.uk');
  assert.equal(topLevelSite('http://www.bbc.co.uk/news'), 'http://bbc.co.uk');
  assert.equal(topLevelSite('https://alice.github.io/'), 'https://alice.github.io');
  assert.equal(topLevelSite('chrome://settings'), null);
  assert.notEqual(partitionKey(topLevelSite('https://a.com/'), 'x'), partitionKey(topLevelSite('https://b.com/'), 'x'));
});

test('public sites by name, and addresses by range', () => {
  assert.equal(isPublicSite('https://memes.example.net/'), true);
  for (const url of ['http://feed.test/', 'http://printer.local/', 'http://10.0.0.1/', 'http://intranet/', 'http://a.localhost/']) {
    assert.equal(isPublicSite(url), false, url);
  }
  assert.equal(isPrivateAddress('8.8.8.8'), false);
  assert.equal(isPrivateAddress('2606:4700::1111'), false);
  assert.equal(isPrivateAddress('172.16.0.1'), true);
  assert.equal(isPrivateAddress(''), false);
});

test('a server answer from its own cache is held until a new picture\'s time; a computed one is not', () => {
  assert.equal(paddingMs({ cached: true, elapsedMs: 10, expectedMs: 800 }), 790);
  assert.equal(paddingMs({ cached: true, elapsedMs: 900, expectedMs: 800 }), 0);
  assert.equal(paddingMs({ cached: false, elapsedMs: 10, expectedMs: 800 }), 0);
});

test('what identified a picture\'s bytes is kept with its load, through redirect hops and a worker restart', () => {
  const loads = new PageLoads();
  loads.recordResponse({ requestId: 'd', tabId: 7, type: 'main_frame', url: PAGE, ip: '93.184.216.34' });
  loads.recordRedirect({ requestId: 'p', url: 'https://short.example/x', ip: '93.184.216.35' });
  loads.recordResponse({ requestId: 'p', tabId: 7, type: 'image', url: PIC, ip: '93.184.216.34', statusCode: 200,
    responseHeaders: [{ name: 'Content-Type', value: 'image/png' }, { name: 'Content-Length', value: '4321' }, { name: 'ETag', value: '"abc"' }] });
  const expected = { etag: '"abc"', size: 4321 };
  assert.deepEqual(loads.representation(7, PIC), expected);
  assert.deepEqual(loads.representation(7, 'https://short.example/x'), expected);
  assert.equal(loads.representation(7, 'https://cdn.example.net/other.png'), null);
  const restarted = new PageLoads();
  restarted.importTab(7, JSON.parse(JSON.stringify(loads.exportTab(7))));
  assert.deepEqual(restarted.representation(7, PIC), expected);
  // loaded again without headers that identify it: the earlier record no longer speaks for it
  loads.recordResponse({ requestId: 'q', tabId: 7, type: 'image', url: PIC, ip: '93.184.216.34', statusCode: 200, responseHeaders: [] });
  assert.equal(loads.representation(7, PIC), null);
});

test('a request the page\'s service worker takes (Firefox: a redirect to itself, no status) is a load of the tab at once', async () => {
  const timers = fakeTimers();
  const loads = new PageLoads({ timers });
  loads.recordResponse({ requestId: 'd', tabId: 7, type: 'main_frame', url: PAGE, ip: '93.184.216.34' });
  const waiting = loads.waitForLoad(7, PIC, 5000);
  const handOver = (requestId, type, url, extra = {}) => loads.recordRedirect({ requestId, tabId: 7, type, url, redirectUrl: url, statusCode: 0, ...extra });
  handOver('p', 'image', PIC); // the service worker answers it: no response event follows
  assert.equal(await waiting, true, 'the waiting ask is answered without the timeout');
  assert.deepEqual(loads.judge(7, PIC, PAGE), { ok: true });
  handOver('f', 'xmlhttprequest', 'https://cdn.example.net/again.png'); // the content script's request again
  assert.deepEqual(loads.judge(7, 'https://cdn.example.net/again.png', PAGE), { ok: true });
  assert.equal(loads.exportTab(7).urls.some(([u]) => u.endsWith('again.png')), false, 'a fetch is kept apart from the pictures');
  // The page's own fetches (a feed's API calls) never crowd its pictures out: only the last 64 are kept.
  for (let i = 0; i < 64; i += 1) handOver(`api${i}`, 'xmlhttprequest', `https://api.example.com/timeline?page=${i}`);
  assert.deepEqual(loads.judge(7, 'https://cdn.example.net/again.png', PAGE), { ok: false, reason: LOAD_REFUSAL.NOT_LOADED });
  assert.deepEqual(loads.judge(7, PIC, PAGE), { ok: true });
  // A picture handed over keeps what the network told of its bytes before (the hotlink check needs it).
  loads.recordResponse({ requestId: 'e', tabId: 7, type: 'image', url: 'https://cdn.example.net/e.png', ip: '93.184.216.34',
    responseHeaders: [{ name: 'ETag', value: '"v1"' }], statusCode: 200 });
  handOver('e2', 'image', 'https://cdn.example.net/e.png');
  assert.deepEqual(loads.representation(7, 'https://cdn.example.net/e.png'), { etag: '"v1"', size: null });
  // Not a hand-over: a document, a script, another tab's request, a redirect with a status or to another URL.
  handOver('s', 'script', 'https://cdn.example.net/app.js');
  handOver('m', 'main_frame', 'https://example.com/next');
  loads.recordRedirect({ requestId: 'o', tabId: -1, type: 'image', url: 'https://cdn.example.net/sw.png', redirectUrl: 'https://cdn.example.net/sw.png', statusCode: 0 });
  loads.recordRedirect({ requestId: 'r', tabId: 7, type: 'image', url: 'https://cdn.example.net/r.png', redirectUrl: 'https://cdn.example.net/r.png', statusCode: 302 });
  loads.recordRedirect({ requestId: 'h', tabId: 7, type: 'image', url: 'http://cdn.example.net/h.png', redirectUrl: 'https://cdn.example.net/h.png', statusCode: 0 });
  for (const url of ['https://cdn.example.net/app.js', 'https://example.com/next', 'https://cdn.example.net/sw.png', 'https://cdn.example.net/r.png', 'http://cdn.example.net/h.png']) {
    assert.deepEqual(loads.judge(7, url, PAGE), { ok: false, reason: LOAD_REFUSAL.NOT_LOADED }, url);
  }
  assert.deepEqual(loads.exportTab(7).document, { url: PAGE, ip: '93.184.216.34' }, 'a hand-over never starts the tab afresh');
  // One the service worker passes on to the network gets its response, with the address it reached.
  handOver('n', 'image', 'https://rebind.example.com/x.png');
  loads.recordResponse({ requestId: 'n', tabId: 7, type: 'image', url: 'https://rebind.example.com/x.png', ip: '10.0.0.2' });
  assert.deepEqual(loads.judge(7, 'https://rebind.example.com/x.png', PAGE), { ok: false, reason: LOAD_REFUSAL.PRIVATE_ADDRESS });
  // The 302's hop is still followed: its response records the hop and the picture it led to.
  loads.recordResponse({ requestId: 'r', tabId: 7, type: 'image', url: 'https://cdn.example.net/r2.png', ip: '93.184.216.34' });
  assert.deepEqual(loads.judge(7, 'https://cdn.example.net/r.png', PAGE), { ok: true });
  timers.fireAll();
});

test('a fetch answered with untyped bytes counts only among the tab\'s last fetches, with its address judged', () => {
  const loads = loadedTab();
  const untyped = (requestId, url, ip) => loads.recordResponse({ requestId, tabId: 7, type: 'xmlhttprequest', url, ip,
    responseHeaders: [{ name: 'Content-Type', value: 'application/octet-stream' }] });
  untyped('u', 'https://cdn.example.net/pic', '93.184.216.34');
  untyped('v', 'https://rebind.example.com/pic', '10.0.0.2');
  assert.deepEqual(loads.judge(7, 'https://cdn.example.net/pic', PAGE), { ok: true });
  assert.deepEqual(loads.judge(7, 'https://rebind.example.com/pic', PAGE), { ok: false, reason: LOAD_REFUSAL.PRIVATE_ADDRESS });
  assert.deepEqual(loads.exportTab(7).urls.map(([u]) => u), [PIC], 'kept apart from the tab\'s pictures');
  loads.recordResponse({ requestId: 'w', tabId: 7, type: 'xmlhttprequest', url: 'https://api.example.com/feed.pb', ip: '93.184.216.34',
    responseHeaders: [{ name: 'Content-Type', value: 'application/octet-stream-not' }] });
  assert.deepEqual(loads.judge(7, 'https://api.example.com/feed.pb', PAGE), { ok: false, reason: LOAD_REFUSAL.NOT_LOADED });
});

test('a restarted worker reads back the tab\'s stored loads behind what it saw itself, never over a new document', () => {
  const before = loadedTab();
  const stored = JSON.parse(JSON.stringify(before.exportTab(7)));
  const restarted = new PageLoads();
  restarted.recordResponse({ requestId: 'n', tabId: 7, type: 'image', url: 'https://cdn.example.net/new.png', ip: '93.184.216.34' });
  restarted.importTab(7, stored);
  assert.deepEqual(restarted.judge(7, PIC, PAGE), { ok: true }, 'the stored load is back');
  assert.deepEqual(restarted.exportTab(7).urls.map(([u]) => u).at(-1), 'https://cdn.example.net/new.png', 'its own load stays the newest');
  assert.equal(restarted.exportTab(7).document.url, PAGE);
  const navigated = new PageLoads();
  navigated.recordResponse({ requestId: 'd2', tabId: 7, type: 'main_frame', url: 'https://other.example.org/', ip: '93.184.216.40' });
  navigated.importTab(7, stored);
  assert.deepEqual(navigated.judge(7, PIC, 'https://other.example.org/'), { ok: false, reason: LOAD_REFUSAL.NOT_LOADED });
});
