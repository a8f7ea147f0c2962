/**
 * The service worker: the only context that talks HTTP. It fetches image bytes for the content
 * scripts (host_permissions, no cookies), posts them to the local simclip-server with the pairing
 * token, caches verdicts, watches the server's health and keeps the toolbar badge up to date.
 *
 * What a page can learn through it (docs/security.md, "Extension: what a page can learn"): it
 * fetches only pictures the tab's own browser loaded, from addresses it can vouch for (webRequest
 * observers, shared/page_loads.js); its verdict caches are partitioned by the tab's top-level
 * site, and an answer the server took from its own cache is held as long as computing it would
 * have taken, the first time a site asks; the reasons a picture could not be read go to the
 * content script's own world only.
 *
 * MV3 kills an idle worker after 30 s: every listener is registered synchronously below, state
 * that must survive (health, warning categories, per-tab counts and loads, reports) lives in
 * chrome.storage (keys in shared/storage_keys.js), and the in-memory caches are only an
 * optimisation.
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
import {
  CATEGORIES_KEY, EXIF_FORMATS_KEY, HEALTH_KEY, PAGE_LOADS_PREFIX, REPORTS_KEY, SETTINGS_KEY, TAB_COUNTS_KEY, sumTabCount,
} from '../shared/storage_keys.js';
import { createRefererRule, isSameSite, listFetchGuardRules, listGuardRuleIds, refererFor } from '../shared/fetch_rules.js';
import { PageLoads, judgeAddresses, paddingMs, partitionKey, topLevelSite } from '../shared/page_loads.js';
import { checkImageUrl } from '../shared/urlsafety.js';
import { injectIntoOpenTabs } from './open_tabs.js';
import { listActiveWarnings } from '../shared/verdict.js';
import { createExifFormatsSource } from './orientation.js';

const ext = getBrowser();

const HEALTH_ALARM = 'simclip-health';
const RECHECK_WHILE_DOWN_MS = 2000; // a new image may re-probe a down server this often
const IMAGE_FETCH_TIMEOUT_MS = 15000;
const LOADING_RETRY_S = 2; // a picture asked about while the server loads is asked again this much later
const BUSY_HOLD_MS = Object.freeze({ min: 100, max: 30000 }); // a shed request's Retry-After, within these
const LOAD_WAIT_MS = 5000; // how long a picture may wait for the observer to report the tab's own load of it
const OWN_LOAD_WAIT_MS = 2000; // how long a fetch of ours may wait for the observer to report its address
const EXPECTED_MS_UNKNOWN = 1000; // what a picture costs the server before it has measured it

// Both caches are partitioned by the asking tab's top-level site (partitionKey): no site gets a
// fast answer for a picture another site showed.
const urlVerdicts = new LRUCache(2000); // site + image URL -> verdict sent to content scripts
const shaResults = new LRUCache(2000); // site + sha256 of the bytes -> server classification
const asking = new Map(); // site + key -> Promise<verdict>, from queued until its answer may be given
const queue = new TaskQueue({ concurrency: 3, maxQueued: 2000 });
const pageLoads = new PageLoads(); // what each tab's browser loaded, and from which addresses
let busyUntil = 0; // Date.now() before which no picture is sent: the server shed one (503 busy)

let runtimePromise = null; // memoised {settings, client}; reset when settings change or on failure
// the formats this browser turns by EXIF orientation, sent with every picture (orientation.js)
const getExifFormats = createExifFormatsSource({ storage: ext.storage.session, key: EXIF_FORMATS_KEY });
let health = null; // the last health record (mirrors storage.local[HEALTH_KEY])
let healthPromise = null;
let lastHealthCheck = 0;

/** Settings and an API client, built once per worker life (or per settings change). */
function getRuntime() {
  if (!runtimePromise) {
    runtimePromise = (async () => {
      const settings = await loadSettings(ext.storage.local);
      if (health === null) health = (await ext.storage.local.get(HEALTH_KEY))[HEALTH_KEY] ?? null;
      const exifFormats = await getExifFormats();
      return { settings, client: createApiClient({ serverUrl: settings.serverUrl, token: settings.token, exifFormats }) };
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
      if (d.kind === API_ERROR.BUSY && health !== null) return health; // it answered: up, only busy
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
  const own = watchOwnFetch(url);
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
    if (page?.topUrl && !(await isOwnFetchVouched(own, page.topUrl))) {
      await response.body?.cancel();
      throw new UnreadableImage('private_address'); // rebound between the page's load and ours
    }
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
    own.done();
  }
}

// ---------------------------------------------------------------- the addresses our own fetches reach

const ownFetches = new Map(); // URL -> [entry]: our fetches in flight, entry {ips, seen, waiters}
const ownRequests = new Map(); // webRequest requestId -> the entry of the fetch it is
let seesOwnFetches = false; // the browser reports the extension's own requests to its observers

/** Follow the addresses our fetch of `url` reaches (redirect hops included), as the observer reports them. */
function watchOwnFetch(url) {
  const entry = { ips: [], seen: false, claimed: false, waiters: new Set() };
  ownFetches.set(url, [...(ownFetches.get(url) ?? []), entry]);
  return {
    entry,
    done: () => {
      const left = (ownFetches.get(url) ?? []).filter((e) => e !== entry);
      if (left.length > 0) ownFetches.set(url, left);
      else ownFetches.delete(url);
    },
  };
}

/**
 * True unless our own fetch reached a private address for a page whose top-level site is public:
 * a name can resolve to one address for the page and to another for us (DNS rebinding). Where
 * the browser reports the extension's own requests to its observers (seesOwnFetches), the report
 * is awaited; where it does not, the page's own load and checkResolvedAddress were the checks.
 */
async function isOwnFetchVouched({ entry }, topUrl) {
  if (!entry.seen && seesOwnFetches) {
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, OWN_LOAD_WAIT_MS);
      entry.waiters.add(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  return judgeAddresses(entry.ips, topUrl).ok;
}

/** An observer's report of one of our own requests: a redirect hop (`final` false) or the response. */
function recordOwnFetch(details, final) {
  const origin = ext.runtime.getURL('').replace(/\/$/, '');
  const from = String(details.initiator ?? details.originUrl ?? details.documentUrl ?? '');
  if (details.tabId >= 0 || !from.startsWith(origin)) return;
  seesOwnFetches = true;
  let entry = ownRequests.get(details.requestId);
  if (!entry) {
    entry = (ownFetches.get(details.url) ?? []).find((e) => !e.claimed);
    if (!entry) return; // a call to the local server, or a fetch already done
    entry.claimed = true;
    ownRequests.set(details.requestId, entry);
    if (ownRequests.size > 1000) ownRequests.delete(ownRequests.keys().next().value);
  }
  if (details.ip && !details.fromCache) entry.ips.push(details.ip);
  if (final) {
    ownRequests.delete(details.requestId);
    entry.seen = true;
    for (const wake of entry.waiters) wake();
  }
}

/**
 * Firefox only (browser.dns): false when the host of `url` resolves to a private address while
 * the page's top-level site is public. Chromium has no DNS API for extensions; there the observer's
 * report of the address each request reached is the check (recordOwnFetch).
 */
async function checkResolvedAddress(url, topUrl) {
  if (!ext.dns?.resolve) return true;
  try {
    const { addresses } = await ext.dns.resolve(new URL(url).hostname);
    return judgeAddresses(addresses ?? [], topUrl).ok;
  } catch {
    return true; // does not resolve: the fetch fails on its own
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

/** The 503 `busy` error to answer while the server's last Retry-After runs (nothing is sent meanwhile). */
function busyError() {
  const left = busyUntil - Date.now();
  if (left <= 0) return null;
  return new ApiError(API_ERROR.BUSY, 'the server shed a request: waiting for its Retry-After', { status: 503, code: BUSY_REASON, retryAfterS: left / 1000 });
}

/**
 * POST the bytes. A shed request (503 `busy`) holds every further one until its Retry-After, and
 * is answered UNAVAILABLE `busy` at once, without retrying here: the tabs ask again after the
 * delay, pictures on screen first, so a retry never holds one of the queue's slots.
 */
async function classifyBytes(client, bytes) {
  const busy = busyError();
  if (busy) throw busy;
  try {
    return await client.classify(bytes);
  } catch (e) {
    if (e instanceof ApiError && e.kind === API_ERROR.BUSY && e.code === BUSY_REASON) {
      const holdMs = Math.min(BUSY_HOLD_MS.max, Math.max(BUSY_HOLD_MS.min, e.retryAfterS * 1000 || 0));
      busyUntil = Math.max(busyUntil, Date.now() + holdMs);
    }
    throw e;
  }
}

/** What a picture costs the server (ms), as it measured itself; a guess until it has. */
const expectedServerMs = () => health?.server?.cost?.perPictureMs || EXPECTED_MS_UNKNOWN;

/**
 * The verdict for bytes in hand, from this site's sha256 cache or the server: `{verdict, result,
 * sha, holdMs}`. A server answer from its own cache is held `holdMs` (paddingMs) before anyone
 * sees it: this site had not seen the picture, so its answer must not come faster than a new one.
 */
async function classifyKnownBytes(client, bytes, site) {
  const sha = await sha256Hex(bytes);
  let result = shaResults.get(partitionKey(site, sha));
  let holdMs = 0;
  if (!result) {
    const start = Date.now();
    result = await classifyBytes(client, bytes);
    holdMs = paddingMs({ cached: result.cached, elapsedMs: Date.now() - start, expectedMs: expectedServerMs() });
  }
  return { verdict: { status: VERDICT.OK, sha256: result.sha256, scores: result.scores }, result, sha, holdMs };
}

/**
 * Run `task` (-> classifyKnownBytes's answer) in the queue under this site's `key`, hold its
 * answer as long as it says, then cache it for this site. Until then, the same site asking again
 * waits on the same promise (no fast answer from a cache filled while the answer was held).
 */
function askServer(site, key, priority, task, onAnswer = () => {}) {
  const pkey = partitionKey(site, key);
  const open = asking.get(pkey);
  if (open) {
    queue.raise(pkey, priority);
    return open;
  }
  const promise = (async () => {
    try {
      const { verdict, result, sha, holdMs } = await queue.run(pkey, task, { priority });
      if (holdMs > 0) await new Promise((r) => setTimeout(r, holdMs));
      shaResults.set(partitionKey(site, sha), result);
      onAnswer(verdict);
      return verdict;
    } catch (e) {
      return verdictFromError(e);
    }
  })().finally(() => asking.delete(pkey));
  asking.set(pkey, promise);
  return promise;
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
  const busy = busyError();
  if (busy) return { status: VERDICT.UNAVAILABLE, reason: BUSY_REASON, retryAfterS: busy.retryAfterS };
  if (isUp()) return null;
  if (health === null || Date.now() - lastHealthCheck > RECHECK_WHILE_DOWN_MS) await checkHealth();
  if (isUp()) return null;
  if (health?.state === SERVER_STATE.LOADING) return { status: VERDICT.UNAVAILABLE, reason: LOADING_REASON, retryAfterS: LOADING_RETRY_S };
  return { status: VERDICT.UNAVAILABLE, reason: health?.state ?? 'unknown' };
}

/**
 * The verdict for one image URL (see VERDICT in shared/messages.js); `priority` 0 (on screen)
 * goes first; `page` ({url, referrerPolicy, tabId, topUrl}) is the page showing it (see pageOf);
 * `media` 'video' fetches a video file (MP4, WebM) for the server to decode. A URL the tab's
 * browser did not load, or loaded from an address the worker cannot vouch for, is never fetched.
 */
async function classifyUrl(rawUrl, priority = 1, page = null, media = 'image') {
  const check = checkImageUrl(rawUrl);
  if (!check.ok) return { status: VERDICT.SKIPPED, reason: check.reason };
  if (!page) return { status: VERDICT.FAILED, reason: 'no_page' };
  const site = topLevelSite(page.topUrl);
  const cached = urlVerdicts.get(partitionKey(site, check.url));
  if (cached) return cached;
  const refused = await checkPageLoad(check.url, page);
  if (refused) return refused;
  const { client } = await getRuntime();
  const down = await checkServerUp();
  if (down) return down;
  return askServer(site, check.url, priority,
    async () => classifyKnownBytes(client, await fetchImageBytes(check.url, page, media), site),
    (verdict) => urlVerdicts.set(partitionKey(site, check.url), verdict));
}

/** null when the tab's browser loaded `url` from an address the worker can vouch for, else the FAILED verdict. */
async function checkPageLoad(url, page) {
  await loadStoredTab(page.tabId);
  if (!(await pageLoads.waitForLoad(page.tabId, url, LOAD_WAIT_MS))) return { status: VERDICT.FAILED, reason: 'not_loaded' };
  const judged = pageLoads.judge(page.tabId, url, page.topUrl);
  if (!judged.ok) return { status: VERDICT.FAILED, reason: judged.reason };
  if (!(await checkResolvedAddress(url, page.topUrl))) return { status: VERDICT.FAILED, reason: 'private_address' };
  return null;
}

/** base64 -> bytes (the content script checked the alphabet; the router the length). */
function decodeBase64(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The verdict for a picture the content script read in the page (data:, blob:); `page` as for classifyUrl. */
async function classifyPageBytes(base64, priority = 1, page = null) {
  let bytes;
  try {
    bytes = decodeBase64(base64);
  } catch {
    return { status: VERDICT.FAILED, reason: 'not_base64' };
  }
  const { client } = await getRuntime();
  const down = await checkServerUp();
  if (down) return down;
  const site = topLevelSite(page?.topUrl);
  return askServer(site, `bytes:${await sha256Hex(bytes)}`, priority, () => classifyKnownBytes(client, bytes, site));
}

/**
 * The page a content script runs in, as the browser names it (never a field of the message):
 * {url, referrerPolicy, tabId, topUrl}, `topUrl` the tab's top-level document (the partition).
 */
function pageOf(sender, referrerPolicy = '') {
  // An about:blank or srcdoc frame has its creator's origin.
  const url = [sender.url, sender.origin && `${sender.origin}/`, sender.tab?.url].find((u) => typeof u === 'string' && /^https?:/.test(u));
  if (!url || !(sender.tab?.id >= 0)) return null;
  return { url, referrerPolicy, tabId: sender.tab.id, topUrl: sender.tab.url ?? url };
}

// ---------------------------------------------------------------- what each tab's browser loaded

let storeTimer = 0;
const changedTabs = new Set();

/** Store the changed tabs' loads (storage.session: a restarted worker still knows them), once a second at most. */
function storeLoadsSoon(tabId) {
  changedTabs.add(tabId);
  if (storeTimer) return;
  storeTimer = setTimeout(() => {
    storeTimer = 0;
    const items = Object.fromEntries([...changedTabs].map((id) => [`${PAGE_LOADS_PREFIX}${id}`, pageLoads.exportTab(id)]));
    changedTabs.clear();
    ext.storage.session.set(items).catch(() => {}); // over the quota: the memory copy still answers
  }, 1000);
}
pageLoads.onChange = storeLoadsSoon;

/** A restarted worker reads back what the tab loaded before. */
async function loadStoredTab(tabId) {
  if (pageLoads.tabs.has(tabId)) return;
  const key = `${PAGE_LOADS_PREFIX}${tabId}`;
  pageLoads.importTab(tabId, (await ext.storage.session.get(key))[key]);
}

/** The request types the observers follow: documents (the top-level site) and pictures. */
function listObservedTypes() {
  const known = new Set(Object.values(ext.webRequest?.ResourceType ?? {}));
  const wanted = ['main_frame', 'image', 'imageset', 'media'];
  return known.size > 0 ? wanted.filter((t) => known.has(t)) : ['main_frame', 'image', 'media'];
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

async function storeReport({ url, correction, categories, page = null }) {
  const verdict = await classifyUrl(url, 1, page);
  const sha = verdict.sha256 ?? '';
  const result = sha ? shaResults.get(partitionKey(topLevelSite(page?.topUrl), sha)) : null;
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

async function onMenuClicked(info, tab) {
  const click = parseReportMenuClick(info.menuItemId);
  if (!click || !info.srcUrl) return;
  let { categories } = click;
  const page = tab?.id >= 0 && /^https?:/.test(tab.url ?? '') ? { url: info.frameUrl ?? tab.url, referrerPolicy: '', tabId: tab.id, topUrl: tab.url } : null;
  if (click.correction === CORRECTION.NOT_FLAGGED) {
    // A false alarm names the categories the image was flagged for, with the user's settings.
    const verdict = await classifyUrl(info.srcUrl, 1, page);
    const { settings } = await getRuntime();
    categories = listActiveWarnings(verdict.scores ?? {}, await loadCategories(), settings).map((w) => w.id);
  }
  await storeReport({ url: info.srcUrl, correction: click.correction, categories, page });
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
    [MSG.CLASSIFY_BYTES]: (msg, sender) => classifyPageBytes(msg.base64, msg.priority, pageOf(sender)),
    [MSG.PAGE_STATS]: async (msg, sender) => {
      // Queued before any await, so updates from one tab keep the order they were sent in.
      await setTabCount(sender.tab.id, msg.flagged, sender.frameId ?? 0);
      return { ok: true };
    },
    [MSG.REPORT]: async (msg, sender) => ({ ok: true, report: await storeReport({ ...msg, page: pageOf(sender) }) }),
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

// Tabs open before this version started (an install, update, reload or enable) get the content
// scripts now (open_tabs.js): once per worker life, whichever of these comes first.
let openTabsPromise = null;
const adoptOpenTabs = () => {
  openTabsPromise ??= injectIntoOpenTabs(ext).catch(() => 0);
  return openTabsPromise;
};
globalThis.addEventListener?.('install', () => adoptOpenTabs()); // Chromium registers the worker again on enable too
ext.runtime.onInstalled.addListener((details) => {
  onStart();
  adoptOpenTabs();
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
  pageLoads.forgetTab(tabId);
  ext.storage.session.remove(`${PAGE_LOADS_PREFIX}${tabId}`).catch(() => {});
});
// What each tab's browser loads (non-blocking observers: they see, never change, a request), and
// the addresses our own fetches reach.
if (ext.webRequest) {
  const urls = ['http://*/*', 'https://*/*'];
  const pageFilter = { urls, types: listObservedTypes() };
  const ownFilter = { urls, tabId: -1 };
  ext.webRequest.onBeforeRedirect.addListener((d) => pageLoads.recordRedirect(d), pageFilter);
  ext.webRequest.onResponseStarted.addListener((d) => pageLoads.recordResponse(d), pageFilter);
  ext.webRequest.onBeforeRedirect.addListener((d) => recordOwnFetch(d, false), ownFilter);
  ext.webRequest.onResponseStarted.addListener((d) => recordOwnFetch(d, true), ownFilter);
}
ext.tabs.onUpdated.addListener((tabId, changeInfo) => {
  if (!(changeInfo.status === 'loading' && changeInfo.url)) return;
  setTabCount(tabId, 0);
  // A page shown again from the back/forward cache may have reported its count before this
  // event: ask its top frame again (a new page's script is not there yet, or counts 0).
  ext.tabs.sendMessage(tabId, { type: MSG.GET_PAGE_STATE }, { frameId: 0 })
    .then((state) => {
      if (Number.isInteger(state?.flagged) && state.flagged > 0) setTabCount(tabId, state.flagged, 0);
    })
    .catch(() => {}); // no content script in the tab (yet)
});
