import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  API_ERROR, ApiError, SERVER_STATE, SETUP_STATE, createApiClient, describeCost, describeLoading, describeServerMode, diagnoseConnection,
  parseHealth, parseSetup,
} from '../../shared/api.js';
import { HARMFUL_CATEGORY as HARMFUL, MISOGYNY_CATEGORY } from './fixtures.js';

const TOKEN = 'A'.repeat(43);
const HEALTH = { status: 'ok', model: 'simclip-tiny/none', mode: 'trained', device: 'cpu', ocr: 'rapidocr', queue_depth: 0, version: '0.1.0' };
const LABELS = { labels: [HARMFUL] }; // /v1/labels as v1 servers send it
const SHA = 'ab'.repeat(32);

const json = (status, body, headers = {}) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
const error = (status, code) => json(status, { error: { code, message: `${code} happened` } });

/** A fake simclip server: checks the token header like the real one. */
function fakeServer({ token = TOKEN, routes = {} } = {}) {
  const calls = [];
  const fetchFn = async (url, init) => {
    calls.push({ url, init });
    if (init.headers['X-Auth-Token'] !== token) return error(401, 'unauthorized');
    const path = new URL(url).pathname;
    const route = routes[path] ?? { '/v1/health': () => json(200, HEALTH), '/v1/labels': () => json(200, LABELS) }[path];
    return route ? route(init) : error(404, 'not_found');
  };
  return { fetchFn, calls };
}

test('sends the token header, no cookies, and the raw bytes to /v1/classify', async () => {
  const server = fakeServer({
    routes: { '/v1/classify': () => json(200, { sha256: SHA, mode: 'trained', scores: { harmful: 0.9, junk: 'x' }, warnings: [], text: 'hi', cached: false }) },
  });
  const client = createApiClient({ serverUrl: 'http://127.0.0.1:9999', token: TOKEN, fetchFn: server.fetchFn });
  const bytes = new Uint8Array([1, 2, 3]);
  const result = await client.classify(bytes);
  assert.deepEqual(result, { sha256: SHA, mode: 'trained', scores: { harmful: 0.9 }, text: 'hi', cached: false, size: null });
  const { url, init } = server.calls[0];
  assert.equal(url, 'http://127.0.0.1:9999/v1/classify');
  assert.equal(init.method, 'POST');
  assert.equal(init.body, bytes);
  assert.equal(init.credentials, 'omit');
  assert.equal(init.headers['Content-Type'], 'application/octet-stream');
});

test('maps error statuses to kinds the worker acts on', async () => {
  const cases = [[401, 'unauthorized', API_ERROR.UNAUTHORIZED], [403, 'forbidden_origin', API_ERROR.FORBIDDEN],
    [413, 'too_large', API_ERROR.REFUSED_IMAGE], [415, 'unsupported_image', API_ERROR.REFUSED_IMAGE],
    [422, 'too_many_pixels', API_ERROR.REFUSED_IMAGE], [503, 'busy', API_ERROR.BUSY], [500, 'internal', API_ERROR.SERVER_ERROR]];
  for (const [status, code, kind] of cases) {
    const client = createApiClient({ serverUrl: 'http://127.0.0.1:1', token: TOKEN, fetchFn: async () => error(status, code) });
    await assert.rejects(client.classify(new Uint8Array([1])), (e) => e instanceof ApiError && e.kind === kind && e.code === code, `${status}`);
  }
});

test('reads Retry-After from a busy answer', async () => {
  const client = createApiClient({ serverUrl: 'http://127.0.0.1:1', token: TOKEN, fetchFn: async () => json(503, { error: { code: 'busy', message: 'm' } }, { 'Retry-After': '2' }) });
  await assert.rejects(client.classify(new Uint8Array([1])), (e) => e.kind === API_ERROR.BUSY && e.retryAfterS === 2);
});

test('a shed answer says when to come back in retry_after_ms, finer than its Retry-After seconds', async () => {
  const body = { error: { code: 'busy', message: 'the server is busy', retry_after_ms: 1500 } };
  const client = createApiClient({ serverUrl: 'http://127.0.0.1:1', token: TOKEN, fetchFn: async () => json(503, body, { 'Retry-After': '2' }) });
  await assert.rejects(client.classify(new Uint8Array([1])), (e) => e.kind === API_ERROR.BUSY && e.code === 'busy' && e.retryAfterS === 1.5);
});

test('refuses a server URL that is not loopback http', () => {
  assert.throws(() => createApiClient({ serverUrl: 'http://example.com:8478', token: TOKEN }), TypeError);
});

test('test connection says the server is not running when nothing listens', async () => {
  const fetchFn = async () => {
    throw new TypeError('Failed to fetch');
  };
  const d = await diagnoseConnection({ serverUrl: 'http://127.0.0.1:8478', token: TOKEN, fetchFn });
  assert.equal(d.ok, false);
  assert.equal(d.kind, API_ERROR.UNREACHABLE);
  assert.match(d.message, /not running/);
});

test('test connection says the token is wrong, or missing, when the server answers 401', async () => {
  const server = fakeServer();
  const wrong = await diagnoseConnection({ serverUrl: 'http://127.0.0.1:8478', token: 'B'.repeat(43), fetchFn: server.fetchFn });
  assert.equal(wrong.kind, API_ERROR.UNAUTHORIZED);
  assert.match(wrong.message, /Wrong token/);
  const missing = await diagnoseConnection({ serverUrl: 'http://127.0.0.1:8478', token: '', fetchFn: server.fetchFn });
  assert.match(missing.message, /No token/);
  const malformed = await diagnoseConnection({ serverUrl: 'http://127.0.0.1:8478', token: 'short', fetchFn: server.fetchFn });
  assert.match(malformed.message, /43 letters/);
});

test('test connection says wrong port when another program answers', async () => {
  for (const answer of [() => new Response('<html>hello</html>', { status: 200 }), () => new Response('nope', { status: 404 }), () => json(200, { hello: 'world' })]) {
    const d = await diagnoseConnection({ serverUrl: 'http://127.0.0.1:3000', token: TOKEN, fetchFn: async () => answer() });
    assert.equal(d.kind, API_ERROR.NOT_SIMCLIP);
    assert.match(d.message, /Wrong port.*not a simclip server/);
  }
});

test('test connection reports mode, model, device and the categories when all is well', async () => {
  const d = await diagnoseConnection({ serverUrl: 'http://localhost:8478', token: TOKEN, fetchFn: fakeServer().fetchFn });
  assert.equal(d.ok, true);
  assert.match(d.message, /trained mode, model simclip-tiny\/none on cpu\. Warns about: Harmful\./);
  assert.deepEqual(d.categories.map((c) => c.id), ['harmful']);
});

test('test connection rejects a non-loopback server URL before any request', async () => {
  let called = false;
  const d = await diagnoseConnection({ serverUrl: 'http://10.0.0.2:8478', token: TOKEN, fetchFn: async () => { called = true; } });
  assert.equal(d.kind, 'bad_url');
  assert.equal(called, false);
});

test('reads the warning categories from /v1/labels under its v1 key `labels`', async () => {
  const client = createApiClient({ serverUrl: 'http://127.0.0.1:9999', token: TOKEN, fetchFn: fakeServer().fetchFn });
  assert.deepEqual(await client.categories(), [HARMFUL]);
});

test('prefers the `categories` key of /v1/labels when a server sends both', async () => {
  const both = { categories: [MISOGYNY_CATEGORY], labels: [HARMFUL] };
  const server = fakeServer({ routes: { '/v1/labels': () => json(200, both) } });
  const client = createApiClient({ serverUrl: 'http://127.0.0.1:9999', token: TOKEN, fetchFn: server.fetchFn });
  assert.deepEqual(await client.categories(), [MISOGYNY_CATEGORY]);
  assert.equal(server.calls[0].url, 'http://127.0.0.1:9999/v1/labels');
  const onlyNew = fakeServer({ routes: { '/v1/labels': () => json(200, { categories: [HARMFUL] }) } });
  assert.deepEqual(await createApiClient({ serverUrl: 'http://127.0.0.1:9999', token: TOKEN, fetchFn: onlyNew.fetchFn }).categories(), [HARMFUL]);
});

test('a /v1/labels answer without a category list is not a simclip server', async () => {
  for (const body of [{}, { categories: 'harmful' }, { labels: [{ id: 'harmful' }] }]) {
    const server = fakeServer({ routes: { '/v1/labels': () => json(200, body) } });
    const client = createApiClient({ serverUrl: 'http://127.0.0.1:9999', token: TOKEN, fetchFn: server.fetchFn });
    await assert.rejects(client.categories(), (e) => e instanceof ApiError && e.kind === API_ERROR.NOT_SIMCLIP);
  }
});

test('an uncalibrated zero-shot server is described as such, a calibrated or older one is not', () => {
  const zeroShot = parseHealth({ ...HEALTH, mode: 'zero-shot', calibrated: false });
  assert.equal(zeroShot.calibrated, false);
  assert.match(describeServerMode(zeroShot), /^zero-shot mode, uncalibrated: scores only rank pictures/);
  assert.equal(describeServerMode(parseHealth({ ...HEALTH, calibrated: true })), 'trained mode');
  // after setup: a trained head, with zero-shot categories left uncalibrated (the summary says which)
  assert.equal(describeServerMode(parseHealth({ ...HEALTH, calibrated: false })), 'trained mode');
  const older = parseHealth(HEALTH); // a server from before the field existed
  assert.equal(older.calibrated, null);
  assert.equal(describeServerMode(older), 'trained mode');
});

// ------------------------------------------------------------ loading, failed, setup (issue 15)

const LOADING = {
  status: 'ok', state: 'loading', model: null, mode: null, calibrated: null, random_weights: null, device: null,
  loading: { stage: 'weights', done: 350, total: 1000, unit: 'bytes', message: 'downloading' }, setup: { state: 'idle', stage: null },
};
const SETUP_RUNNING = {
  state: 'running', stage: 'embed', stages: ['weights', 'dataset', 'embed', 'train', 'calibrate', 'validate'],
  done: 1200, total: 3013, unit: 'memes', eta_s: 720, error: null,
  plan: { device: 'cpu', recipe: { name: 'cpu', augment: 0 }, estimate_s: 1500, download_bytes: 1.2e9, store_bytes: 2e9 },
  summary: null,
};

test('a server still loading its model is a simclip server that says how far it got', () => {
  const h = parseHealth(LOADING);
  assert.equal(h.state, SERVER_STATE.LOADING);
  assert.deepEqual(h.loading, { stage: 'weights', done: 350, total: 1000, unit: 'bytes', message: 'downloading' });
  assert.equal(h.randomWeights, false);
  assert.equal(describeLoading(h), 'Starting: downloading the model, 35%');
  assert.equal(describeLoading(parseHealth({ ...LOADING, loading: { stage: 'model', done: 0, total: null } })), 'Starting: loading the model');
});

test('a ready server reports its random weights, precision, measured cost and setup', () => {
  const h = parseHealth({
    ...HEALTH, state: 'ready', random_weights: true, precision: { served: 'int8', head: 'fp32' },
    cost: { per_picture_ms: 812.4, encode_ms: 700, ocr_ms: 100, device: 'cpu', workers: 2 }, setup: { state: 'running', stage: 'train' },
  });
  assert.equal(h.state, SERVER_STATE.READY);
  assert.equal(h.randomWeights, true);
  assert.deepEqual(h.precision, { served: 'int8', head: 'fp32' });
  assert.deepEqual(h.cost, { perPictureMs: 812.4, encodeMs: 700, ocrMs: 100, device: 'cpu', workers: 2 });
  assert.deepEqual(h.setup, { state: 'running', stage: 'train' });
  assert.equal(describeCost(h), 'about 0.8 s per picture on this CPU');
  assert.equal(describeCost({ ...h, cost: { ...h.cost, perPictureMs: 42, device: 'cuda:0' } }), 'about 40 ms per picture on this GPU');
  assert.equal(describeCost(parseHealth(HEALTH)), ''); // an older server: no cost, no line
});

test('a ready answer without model fields, or an unknown state, is not a simclip server', () => {
  assert.throws(() => parseHealth({ state: 'ready', status: 'ok' }), (e) => e.kind === API_ERROR.NOT_SIMCLIP);
  assert.throws(() => parseHealth({ ...HEALTH, state: 'sleeping' }), (e) => e.kind === API_ERROR.NOT_SIMCLIP);
});

test('test connection while the server loads says paired and starting, not "not running"', async () => {
  const server = fakeServer({ routes: { '/v1/health': () => json(200, LOADING), '/v1/labels': () => error(503, 'loading') } });
  const d = await diagnoseConnection({ serverUrl: 'http://127.0.0.1:8478', token: TOKEN, fetchFn: server.fetchFn });
  assert.equal(d.ok, false);
  assert.equal(d.kind, SERVER_STATE.LOADING);
  assert.match(d.message, /^Paired with simclip-server at http:\/\/127\.0\.0\.1:8478\. Starting: downloading the model, 35%\.$/);
  assert.equal(d.health.loading.done, 350);
  assert.equal(server.calls.length, 1); // the categories are not asked for while loading
});

test('test connection on a server whose model failed to load gives the server\'s reason', async () => {
  const failed = { ...LOADING, state: 'failed', loading: null, error: { code: 'weights_offline', message: 'cannot download the weights: offline; run simclip setup when online' } };
  const d = await diagnoseConnection({ serverUrl: 'http://127.0.0.1:8478', token: TOKEN, fetchFn: fakeServer({ routes: { '/v1/health': () => json(200, failed) } }).fetchFn });
  assert.equal(d.kind, SERVER_STATE.FAILED);
  assert.match(d.message, /could not load its model: cannot download the weights: offline; run simclip setup when online/);
});

test('setup: GET reads the progress, POST starts, DELETE cancels, each with the token and no body', async () => {
  const methods = [];
  const server = fakeServer({
    routes: {
      '/v1/setup': (init) => {
        methods.push(init.method);
        if (init.method === 'POST') return json(202, SETUP_RUNNING);
        if (init.method === 'DELETE') return json(200, { ...SETUP_RUNNING, state: 'cancelled', eta_s: null });
        return json(200, SETUP_RUNNING);
      },
    },
  });
  const client = createApiClient({ serverUrl: 'http://127.0.0.1:9999', token: TOKEN, fetchFn: server.fetchFn });
  const started = await client.startSetup();
  assert.equal(started.state, SETUP_STATE.RUNNING);
  assert.equal(started.stage, 'embed');
  assert.equal(started.etaS, 720);
  assert.deepEqual(started.plan, { device: 'cpu', recipe: 'cpu', estimateS: 1500, downloadBytes: 1.2e9, storeBytes: 2e9 });
  assert.equal((await client.setupStatus()).done, 1200);
  assert.equal((await client.cancelSetup()).state, SETUP_STATE.CANCELLED);
  assert.deepEqual(methods, ['POST', 'GET', 'DELETE']);
  for (const { url, init } of server.calls) {
    assert.equal(url, 'http://127.0.0.1:9999/v1/setup');
    assert.equal(init.body, undefined);
    assert.equal(init.headers['X-Auth-Token'], TOKEN);
  }
});

test('setup: a second start answers 409 setup_running, typed', async () => {
  const client = createApiClient({ serverUrl: 'http://127.0.0.1:1', token: TOKEN, fetchFn: async () => error(409, 'setup_running') });
  await assert.rejects(client.startSetup(), (e) => e instanceof ApiError && e.code === 'setup_running' && e.status === 409);
});

test('setup: the summary says per category what the user has now', () => {
  const done = parseSetup({
    ...SETUP_RUNNING, state: 'done', stage: null, eta_s: 0,
    summary: { categories: [
      { id: 'harmful', name: 'Harmful', status: 'trained', calibrated: true, examples: 3013, val_macro_f1: 0.71, text: 'Harmful: trained on 3,013 HarMeme memes, validation macro-F1 0.71', how_to_improve: null },
      { id: 'misogynous', name: 'Misogyny', status: 'zero-shot', calibrated: false, examples: null, val_macro_f1: null, text: 'Misogyny: zero-shot, uncalibrated', how_to_improve: 'needs MAMI: simclip datasets info mami' },
    ] },
  });
  assert.deepEqual(done.summary.categories.map((c) => [c.id, c.status, c.valMacroF1, c.howToImprove]),
    [['harmful', 'trained', 0.71, null], ['misogynous', 'zero-shot', null, 'needs MAMI: simclip datasets info mami']]);
  assert.equal(done.summary.categories[0].text, 'Harmful: trained on 3,013 HarMeme memes, validation macro-F1 0.71');
});

test('setup: an answer without a known state is not a simclip server', () => {
  for (const body of [{}, { state: 'exploded' }, null, []]) assert.throws(() => parseSetup(body), (e) => e.kind === API_ERROR.NOT_SIMCLIP);
});
