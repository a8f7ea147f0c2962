import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MSG, classifySender, createMessageRouter, sendWithRetry, validateMessage } from '../../shared/messages.js';

const IDS = { extensionId: 'ourid', extensionOrigin: 'chrome-extension://ourid/' };
const CONTENT = { id: 'ourid', tab: { id: 7 }, url: 'https://site.example/page' };
const PAGE = { id: 'ourid', url: 'chrome-extension://ourid/popup/popup.html' };
const OTHER_EXTENSION = { id: 'otherid', url: 'chrome-extension://otherid/x.html' };

test('accepts well-formed messages and names what is wrong with others', () => {
  assert.equal(validateMessage({ type: MSG.CLASSIFY, url: 'https://x.com/a.png' }), null);
  assert.match(validateMessage({ type: MSG.CLASSIFY }), /url/);
  assert.match(validateMessage({ type: 'nope' }), /unknown message type/);
  assert.match(validateMessage(null), /not an object/);
  assert.match(validateMessage({ type: MSG.PAGE_STATS, flagged: -1 }), /flagged/);
  assert.match(validateMessage({ type: MSG.REPORT, url: 'u', correction: 'maybe', categories: [] }), /correction/);
});

test('tells content scripts, extension pages and strangers apart', () => {
  assert.equal(classifySender(CONTENT, IDS), 'content');
  assert.equal(classifySender(PAGE, IDS), 'page');
  assert.equal(classifySender(OTHER_EXTENSION, IDS), null);
  assert.equal(classifySender({ id: 'ourid' }, IDS), null);
});

test('routes a valid message to its handler and returns the reply', async () => {
  const route = createMessageRouter({ [MSG.CLASSIFY]: async (m, s) => ({ got: m.url, tab: s.tab.id }) }, IDS);
  assert.deepEqual(await route({ type: MSG.CLASSIFY, url: 'https://x.com/a.png' }, CONTENT), { got: 'https://x.com/a.png', tab: 7 });
});

test('refuses messages from other extensions and page-only types from tabs', async () => {
  let called = false;
  const handlers = { [MSG.TEST_CONNECTION]: () => { called = true; }, [MSG.CLASSIFY]: () => { called = true; } };
  const route = createMessageRouter(handlers, IDS);
  assert.match((await route({ type: MSG.TEST_CONNECTION, serverUrl: 'http://127.0.0.1:1', token: '' }, CONTENT)).error, /not accepted/);
  assert.match((await route({ type: MSG.CLASSIFY, url: 'https://x.com/a.png' }, OTHER_EXTENSION)).error, /not accepted/);
  assert.match((await route({ type: MSG.CLASSIFY, url: 'https://x.com/a.png' }, PAGE)).error, /not accepted/);
  assert.equal(called, false);
});

test('a malformed message never reaches a handler', async () => {
  const route = createMessageRouter({ [MSG.CLASSIFY]: () => assert.fail('called') }, IDS);
  assert.match((await route({ type: MSG.CLASSIFY, url: 5 }, CONTENT)).error, /url/);
});

test('retries while the worker is not reachable, then gives up with null', async () => {
  let calls = 0;
  const flaky = async () => {
    calls += 1;
    if (calls < 3) throw new Error('Receiving end does not exist');
    return { ok: true };
  };
  const noSleep = async () => {};
  assert.deepEqual(await sendWithRetry(flaky, {}, { tries: 5, sleep: noSleep }), { ok: true });
  assert.equal(calls, 3);
  assert.equal(await sendWithRetry(async () => { throw new Error('gone'); }, {}, { tries: 2, sleep: noSleep }), null);
});

test('only our own pages may start, follow or cancel the server setup (issue 15), never a tab', async () => {
  const calls = [];
  const handlers = Object.fromEntries([MSG.SETUP_STATUS, MSG.SETUP_START, MSG.SETUP_CANCEL].map((type) => [type, async () => {
    calls.push(type);
    return { setup: { state: 'running' } };
  }]));
  const route = createMessageRouter(handlers, IDS);
  for (const type of [MSG.SETUP_STATUS, MSG.SETUP_START, MSG.SETUP_CANCEL]) {
    assert.match((await route({ type }, CONTENT)).error, /not accepted/, type);
    assert.match((await route({ type }, OTHER_EXTENSION)).error, /not accepted/, type);
    assert.deepEqual(await route({ type }, PAGE), { setup: { state: 'running' } }, type);
  }
  assert.deepEqual(calls, [MSG.SETUP_STATUS, MSG.SETUP_START, MSG.SETUP_CANCEL]);
});
