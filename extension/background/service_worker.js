/**
 * The service worker: the only context that talks HTTP. It fetches image bytes for the content
 * scripts (host_permissions, no cookies), posts them to the local simclip-server with the pairing
 * token, caches verdicts, watches the server's health and keeps the toolbar badge up to date.
 *
 * MV3 kills an idle worker after 30 s: every listener is registered synchronously below, state
 * that must survive (health, warning categories, per-tab counts, reports) lives in chrome.storage
 * (keys in shared/storage_keys.js), and the
 * in-memory caches are only an optimisation.
 */
import {
  API_ERROR, ApiError, MAX_IMAGE_BYTES, SERVER_STATE, SETUP_STATE, createApiClient, diagnoseConnection, explainConnectionError,
} from '../shared/api.js';
import { getBrowser } from '../shared/browser.js';
import { LRUCache } from '../shared/lru.js';
import { BUSY_REASON, CORRECTION, LOADING_REASON, MSG, VERDICT, createMessageRouter, listenForMessages } from '../shared/messages.js';
import { QueueFullError, TaskQueue, createSerialLane } from '../shared/queue.js';
import { addReport, createReport, listReportMenuItems, parseReportMenuClick } from '../shared/reports.js';
import { loadSettings } from '../shared/settings.js';
import { CATEGORIES_KEY, HEALTH_KEY, REPORTS_KEY, SETTINGS_KEY, TAB_COUNTS_KEY, sumTabCount } from '../shared/storage_keys.js';
import { createRefererRule, isSameSite, listFetchGuardRules, listGuardRuleIds, refererFor } from '../shared/fetch_rules.js';
import { checkImageUrl } from '../shared/urlsafety.js';
import { listActiveWarnings } from '../shared/verdict.js';

const ext = getBrowser();

const HEALTH_ALARM = 'simclip-health';
const RECHECK_WHILE_DOWN_MS = 2000; // a new image may re-probe a down server this often
const IMAGE_FETCH_TIMEOUT_MS = 15000;
const BUSY_RETRIES = 2;
const LOADING_RETRY_S = 2; // a picture asked about while the server loads is asked again this much later

const urlVerdicts = new LRUCache(2000); // image URL -> verdict sent to content scripts
const shaResults = new LRUCache(2000); // sha256 of the bytes -> server classification
const queue = new TaskQueue({ concurrency: 3, maxQueued: 2000 });

let runtimePromise = null; // memoised {settings, client}; reset when settings change or on failure
let health = null; // the last health record (mirrors storage.local[HEALTH_KEY])
let healthPromise = null;
let lastHealthCheck = 0;

/** Settings and an API client, built once per worker life (or per settings change). */
function getRuntime() {
  if (!runtimePromise) {
    runtimePromise = (async () => {
      const settings = await loadSettings(ext.storage.local);
      if (health === null) health = (await ext.storage.local.get(HEALTH_KEY))[HEALTH_KEY] ?? null;
      return { settings, client: createApiClient({ serverUrl: settings.serverUrl, token: settings.token }) };
    })();
    runtimePromise.catch(() => {
      runtimePromise = null;
    });
  }
  return runtimePromise;
}

const isUp = () => health?.state === 'ok';
const serverIdentity = (h) => (h?.server ? `${h.server.model}|${h.server.mode}|${h.server.version}` : '');
// What pages and content scripts read from the stored record: a change in any of it is stored.
const healthKey = (h) => JSON.stringify([h?.state, h?.message, serverIdentity(h), h?.server?.cost?.perPictureMs ?? null,
  h?.server?.randomWeights ?? null, h?.server?.setup?.state ?? null]);

async function setHealth(next) {
  const previous = health;
  health = { ...next, checkedAt: Date.now() };
  if (serverIdentity(previous) !== serverIdentity(health) && health.state === 'ok') {
    urlVerdicts.clear(); // another model gives other scores
    shaResults.clear();
  }
  if (healthKey(previous) !== healthKey(health)) {
    await ext.storage.local.set({ [HEALTH_KEY]: health });
    await refreshBadges();
  }
  return health;
}

/** Probe /v1/health and the warning categories (/v1/labels); one probe at a time. */
function checkHealth() {
  if (!healthPromise) {
    healthPromise = (async () => {
      lastHealthCheck = Date.now();
      const { settings } = await getRuntime();
      const d = await diagnoseConnection({
        serverUrl: settings.serverUrl,
        token: settings.token,
        extensionOrigin: ext.runtime.getURL('').replace(/\/$/, ''),
      });
      if (d.ok) await storeCategories(d.categories);
      return setHealth({ state: d.kind, message: d.message, server: d.health ?? null });
    })().finally(() => {
      healthPromise = null;
    });
  }
  return healthPromise;
}

async function storeCategories(categories) {
  const stored = (await ext.storage.local.get(CATEGORIES_KEY))[CATEGORIES_KEY];
  if (JSON.stringify(stored) !== JSON.stringify(categories)) {
    await ext.storage.local.set({ [CATEGORIES_KEY]: categories });
    await createMenus(categories);
  }
}

/** The server's warning categories as last stored (an empty list before the first health check). */
async function loadCategories() {
  return (await ext.storage.local.get(CATEGORIES_KEY))[CATEGORIES_KEY] ?? [];
}

// ---------------------------------------------------------------- image checks

/** A picture that cannot be read (fetch failed, HTTP error, not an image, too large): answered FAILED. */
class UnreadableImage extends Error {
  constructor(reason) {
    super(reason);
    this.reason = reason;
  }
}

const extensionHost = new URL(ext.runtime.getURL('')).host;
let guardPromise = null; // resolves true once the redirect guard's rules are in place
let nextRuleId = 1000; // per-fetch Referer rules

/**
 * Install the rules that check every request of ours, redirect hops included (fetch_rules.js).
 * Without them (no declarativeNetRequest) redirects are refused, as before.
 */
function ensureFetchGuard() {
  if (!guardPromise) {
    guardPromise = (async () => {
      const dnr = ext.declarativeNetRequest;
      if (!dnr?.updateSessionRules) return false;
      await dnr.updateSessionRules({ removeRuleIds: listGuardRuleIds(), addRules: listFetchGuardRules(extensionHost) });
      return true;
    })().catch(() => false);
  }
  return guardPromise;
}

/** Run `fn` with a rule giving this fetch of `url` the page's Referer (none when there is none to give). */
async function withReferer(url, referrer, fn) {
  const rule = createRefererRule(nextRuleId++, url, referrer, extensionHost);
  if (nextRuleId > 1_000_000) nextRuleId = 1000;
  if (!rule) return fn();
  try {
    await ext.declarativeNetRequest.updateSessionRules({ addRules: [rule] });
  } catch {
    return fn(); // no Referer: a hotlink-protected picture then fails or differs, as before
  }
  try {
    return await fn();
  } finally {
    ext.declarativeNetRequest.updateSessionRules({ removeRuleIds: [rule.id] }).catch(() => {});
  }
}

/**
 * The image bytes as the page got them: redirects followed (each hop checked by the guard rules),
 * the page's Referer, and cookies only for an image on the page's own site. Refuses non-images
 * and bodies over the limit. `page`: {url, referrerPolicy} of the page that shows the image.
 */
async function fetchImageBytes(url, page = null, media = 'image') {
  const guarded = await ensureFetchGuard();
  const referrer = page && guarded ? refererFor(page.url, url, page.referrerPolicy) : '';
  const withCookies = Boolean(page) && isSameSite(page.url, url);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), IMAGE_FETCH_TIMEOUT_MS);
  try {
    let response;
    try {
      response = await withReferer(url, referrer, () => fetch(url, {
        credentials: withCookies ? 'include' : 'omit',
        redirect: guarded ? 'follow' : 'manual',
        referrerPolicy: 'no-referrer', // the rule above sets the page's, or none
        cache: 'no-store',
        signal: controller.signal,
      }));
    } catch {
      throw new UnreadableImage(controller.signal.aborted ? 'fetch_timeout' : 'fetch_failed'); // a blocked hop too
    }
    if (response.type === 'opaqueredirect') throw new UnreadableImage('redirect');
    if (response.redirected && !checkImageUrl(response.url).ok) throw new UnreadableImage('redirect_private');
    if (!response.ok) throw new UnreadableImage(`http_${response.status}`);
    const type = response.headers.get('Content-Type') ?? '';
    const accepted = media === 'video' ? /^(video\/(mp4|webm)|application\/octet-stream|binary\/octet-stream)/i
      : /^(image\/|application\/octet-stream|binary\/octet-stream)/i;
    if (type && !accepted.test(type)) throw new UnreadableImage(media === 'video' ? 'not_video' : 'not_image');
    const declared = Number(response.headers.get('Content-Length'));
    if (declared > MAX_IMAGE_BYTES) throw new UnreadableImage('too_large');
    return await readBodyCapped(response.body);
  } finally {
    clearTimeout(timer);
  }
}

/** A response body as bytes, cut off (UnreadableImage) once it passes MAX_IMAGE_BYTES. */
async function readBodyCapped(body) {
  const reader = body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > MAX_IMAGE_BYTES) {
      await reader.cancel();
      throw new UnreadableImage('too_large');
    }
    chunks.push(value);
  }
  if (total === 0) throw new UnreadableImage('empty');
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  return bytes;
}

async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function classifyBytes(client, bytes) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await client.classify(bytes);
    } catch (e) {
      if (!(e instanceof ApiError) || e.kind !== API_ERROR.BUSY || attempt >= BUSY_RETRIES) throw e;
      await new Promise((r) => setTimeout(r, Math.min(Math.max(e.retryAfterS, 0.2), 2) * 1000));
    }
  }
}

async function fetchAndClassify(url, client, page, media) {
  const verdict = await classifyKnownBytes(client, await fetchImageBytes(url, page, media));
  urlVerdicts.set(url, verdict);
  return verdict;
}

/** The verdict for bytes in hand, from the sha256 cache or the server. */
async function classifyKnownBytes(client, bytes) {
  const sha = await sha256Hex(bytes);
  let result = shaResults.get(sha);
  if (!result) {
    result = await classifyBytes(client, bytes);
    shaResults.set(sha, result);
  }
  return { status: VERDICT.OK, sha256: result.sha256, scores: result.scores };
}

async function verdictFromError(e) {
  if (e instanceof UnreadableImage) return { status: VERDICT.FAILED, reason: e.reason };
  if (e instanceof QueueFullError) return { status: VERDICT.UNAVAILABLE, reason: BUSY_REASON };
  if (e instanceof ApiError) {
    if (e.kind === API_ERROR.REFUSED_IMAGE) return { status: VERDICT.FAILED, reason: e.code || 'refused' };
    if (e.kind === API_ERROR.BUSY) {
      return { status: VERDICT.UNAVAILABLE, reason: e.code === LOADING_REASON ? LOADING_REASON : BUSY_REASON, retryAfterS: e.retryAfterS };
    }
    if (e.kind === API_ERROR.UNREACHABLE || e.kind === API_ERROR.TIMEOUT) {
      queue.clear(e); // everything waiting would fail the same way: answer now, fail open
    }
    await checkHealth();
    return { status: VERDICT.UNAVAILABLE, reason: health?.state ?? e.kind };
  }
  return { status: VERDICT.FAILED, reason: 'error' };
}

/** null when the server is up (probing it again if it was down a while ago), else the UNAVAILABLE verdict. */
async function checkServerUp() {
  if (isUp()) return null;
  if (health === null || Date.now() - lastHealthCheck > RECHECK_WHILE_DOWN_MS) await checkHealth();
  if (isUp()) return null;
  if (health?.state === SERVER_STATE.LOADING) return { status: VERDICT.UNAVAILABLE, reason: LOADING_REASON, retryAfterS: LOADING_RETRY_S };
  return { status: VERDICT.UNAVAILABLE, reason: health?.state ?? 'unknown' };
}

/**
 * The verdict for one image URL (see VERDICT in shared/messages.js); `priority` 0 (on screen)
 * goes first; `page` ({url, referrerPolicy}) is the page showing it, when a tab asks; `media`
 * 'video' fetches a video file (MP4, WebM) for the server to decode.
 */
async function classifyUrl(rawUrl, priority = 1, page = null, media = 'image') {
  const check = checkImageUrl(rawUrl);
  if (!check.ok) return { status: VERDICT.SKIPPED, reason: check.reason };
  const cached = urlVerdicts.get(check.url);
  if (cached) return cached;
  const { client } = await getRuntime();
  const down = await checkServerUp();
  if (down) return down;
  try {
    return await queue.run(check.url, () => fetchAndClassify(check.url, client, page, media), { priority });
  } catch (e) {
    return verdictFromError(e);
  }
}

/** base64 -> bytes (the content script checked the alphabet; the router the length). */
function decodeBase64(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The verdict for a picture the content script read in the page (data:, blob:). */
async function classifyPageBytes(base64, priority = 1) {
  let bytes;
  try {
    bytes = decodeBase64(base64);
  } catch {
    return { status: VERDICT.FAILED, reason: 'not_base64' };
  }
  const { client } = await getRuntime();
  const down = await checkServerUp();
  if (down) return down;
  const key = `bytes:${await sha256Hex(bytes)}`;
  try {
    return await queue.run(key, () => classifyKnownBytes(client, bytes), { priority });
  } catch (e) {
    return verdictFromError(e);
  }
}

/** The page a content script runs in, as the browser names it (never a field of the message). */
function pageOf(sender, referrerPolicy = '') {
  // An about:blank or srcdoc frame has its creator's origin.
  const url = [sender.url, sender.origin && `${sender.origin}/`, sender.tab?.url].find((u) => typeof u === 'string' && /^https?:/.test(u));
  return url ? { url, referrerPolicy } : null;
}

// ---------------------------------------------------------------- badge and per-tab counts

async function getTabCounts() {
  return (await ext.storage.session.get(TAB_COUNTS_KEY))[TAB_COUNTS_KEY] ?? {};
}

// Count updates and badge repaints run one at a time, in the order they arrive: two overlapping
// read-modify-writes of the stored counts would lose one, and a slower older update could paint
// over a newer badge.
const badgeLane = createSerialLane();

/**
 * Store and paint a tab's flagged count: each frame (the page, its iframes) reports its own, and
 * the badge shows their sum. `null` forgets a frame (`frameId`) or, without one, a closed or
 * reloaded tab. Every tab that reported is kept (zero too) and repainted on a health change: a
 * tab-specific '' would otherwise hide the global '!' of a down server.
 */
function setTabCount(tabId, flagged, frameId = null) {
  return badgeLane(async () => {
    await getRuntime(); // loads the stored health the badge colour depends on
    const counts = await getTabCounts();
    if (frameId === null) {
      if (flagged === null) delete counts[tabId];
      else counts[tabId] = { 0: flagged };
    } else {
      const frames = typeof counts[tabId] === 'object' && counts[tabId] !== null ? counts[tabId] : {};
      if (flagged === null) delete frames[frameId];
      else frames[frameId] = flagged;
      counts[tabId] = frames;
    }
    await ext.storage.session.set({ [TAB_COUNTS_KEY]: counts });
    if (counts[tabId] !== undefined) await paintBadge(tabId, sumTabCount(counts[tabId]));
  });
}

// A known, failed health check (not one still to come) turns the badge into a red '!'.
const isKnownDown = () => health !== null && !isUp();
const badgeColor = (down) => (down ? '#b3261e' : '#5b2a86');

async function paintBadge(tabId, flagged) {
  const down = isKnownDown();
  const text = down ? '!' : flagged > 0 ? String(flagged) : '';
  try {
    await ext.action.setBadgeText({ tabId, text });
    await ext.action.setBadgeBackgroundColor({ tabId, color: badgeColor(down) });
  } catch {
    // the tab is gone
  }
}

function refreshBadges() {
  return badgeLane(async () => {
    const down = isKnownDown();
    await ext.action.setBadgeText({ text: down ? '!' : '' });
    await ext.action.setBadgeBackgroundColor({ color: badgeColor(down) });
    await ext.action.setTitle({ title: down ? `SimCLIP Meme Shield: ${health.message}` : 'SimCLIP Meme Shield' });
    const counts = await getTabCounts();
    await Promise.all(Object.entries(counts).map(([tabId, frames]) => paintBadge(Number(tabId), sumTabCount(frames))));
  });
}

// ---------------------------------------------------------------- wrong-verdict reports

async function createMenus(categories) {
  if (!ext.contextMenus) return;
  await ext.contextMenus.removeAll();
  for (const item of listReportMenuItems(categories)) ext.contextMenus.create({ ...item, contexts: ['image'] });
}

async function storeReport({ url, correction, categories }) {
  const verdict = await classifyUrl(url);
  const sha = verdict.sha256 ?? '';
  const result = sha ? shaResults.get(sha) : null;
  const report = createReport({
    imageUrl: url,
    sha256: sha,
    correction,
    categories,
    scores: verdict.scores ?? {},
    text: result?.text ?? '',
  });
  const reports = (await ext.storage.local.get(REPORTS_KEY))[REPORTS_KEY] ?? [];
  await ext.storage.local.set({ [REPORTS_KEY]: addReport(reports, report) });
  return report;
}

async function onMenuClicked(info) {
  const click = parseReportMenuClick(info.menuItemId);
  if (!click || !info.srcUrl) return;
  let { categories } = click;
  if (click.correction === CORRECTION.NOT_FLAGGED) {
    // A false alarm names the categories the image was flagged for, with the user's settings.
    const verdict = await classifyUrl(info.srcUrl);
    const { settings } = await getRuntime();
    categories = listActiveWarnings(verdict.scores ?? {}, await loadCategories(), settings).map((w) => w.id);
  }
  await storeReport({ url: info.srcUrl, correction: click.correction, categories });
}

// ---------------------------------------------------------------- setup (the server's background job)

let lastSetupState = null;

/**
 * GET, POST or DELETE /v1/setup for the popup and options page: {setup} or {error}. Starting a
 * job that already runs, or cancelling one that does not, answers the job's progress. When a job
 * has just finished, the server serves its new head: verdicts of the old one are dropped and the
 * health (mode, categories) is read again.
 */
async function callSetup(method) {
  const { settings, client } = await getRuntime();
  try {
    let setup;
    try {
      setup = await client[method]();
    } catch (e) {
      if (!(e instanceof ApiError) || !['setup_running', 'setup_not_running'].includes(e.code)) throw e;
      setup = await client.setupStatus();
    }
    if (setup.state === SETUP_STATE.DONE && lastSetupState !== null && lastSetupState !== SETUP_STATE.DONE) {
      urlVerdicts.clear();
      shaResults.clear();
      await checkHealth();
    }
    lastSetupState = setup.state;
    return { setup };
  } catch (e) {
    const kind = e instanceof ApiError ? e.kind : API_ERROR.SERVER_ERROR;
    const message = e instanceof ApiError && e.status === 404
      ? 'This simclip-server cannot set up protection from the browser: update it, or run "simclip setup".'
      : e?.code === LOADING_REASON ? 'The server is still loading its model: set up protection once it is ready.'
        : explainConnectionError(kind, { base: client.serverUrl, token: settings.token, detail: e?.message });
    return { error: { kind, code: e?.code ?? '', message } };
  }
}

// ---------------------------------------------------------------- listeners (top level, synchronous)

const router = createMessageRouter(
  {
    [MSG.CLASSIFY]: (msg, sender) => classifyUrl(msg.url, msg.priority, pageOf(sender, msg.referrerPolicy), msg.media),
    [MSG.CLASSIFY_BYTES]: (msg) => classifyPageBytes(msg.base64, msg.priority),
    [MSG.PAGE_STATS]: async (msg, sender) => {
      // Queued before any await, so updates from one tab keep the order they were sent in.
      await setTabCount(sender.tab.id, msg.flagged, sender.frameId ?? 0);
      return { ok: true };
    },
    [MSG.REPORT]: async (msg) => ({ ok: true, report: await storeReport(msg) }),
    [MSG.CHECK_HEALTH]: () => checkHealth(),
    [MSG.TEST_CONNECTION]: (msg) => diagnoseConnection({
      serverUrl: msg.serverUrl,
      token: msg.token,
      extensionOrigin: ext.runtime.getURL('').replace(/\/$/, ''),
    }),
    [MSG.SETUP_STATUS]: () => callSetup('setupStatus'),
    [MSG.SETUP_START]: () => callSetup('startSetup'),
    [MSG.SETUP_CANCEL]: () => callSetup('cancelSetup'),
    [MSG.CLEAR_REPORTS]: async () => {
      await ext.storage.local.set({ [REPORTS_KEY]: [] });
      return { ok: true };
    },
  },
  { extensionId: ext.runtime.id, extensionOrigin: ext.runtime.getURL('') },
);
listenForMessages(ext.runtime.onMessage, router);

async function onStart() {
  await ensureFetchGuard();
  await ext.alarms.create(HEALTH_ALARM, { periodInMinutes: 1 });
  await createMenus(await loadCategories());
  await checkHealth();
}

ext.runtime.onInstalled.addListener((details) => {
  onStart();
  if (details.reason === 'install') ext.runtime.openOptionsPage();
});
ext.runtime.onStartup.addListener(onStart);
ext.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === HEALTH_ALARM) checkHealth();
});
ext.contextMenus?.onClicked.addListener(onMenuClicked);
ext.storage.onChanged.addListener((changes, area) => {
  if (area !== 'local' || !changes[SETTINGS_KEY]) return;
  const before = changes[SETTINGS_KEY].oldValue ?? {};
  const after = changes[SETTINGS_KEY].newValue ?? {};
  runtimePromise = null;
  if (before.serverUrl !== after.serverUrl || before.token !== after.token) {
    urlVerdicts.clear();
    shaResults.clear();
    checkHealth();
  }
});
ext.tabs.onRemoved.addListener((tabId) => {
  setTabCount(tabId, null);
});
ext.tabs.onUpdated.addListener((tabId, changeInfo) => {
  if (changeInfo.status === 'loading' && changeInfo.url) setTabCount(tabId, 0);
});
