/**
 * Verdicts: a picture's URL or bytes in, a VERDICT (shared/messages.js) out. Pictures wait in
 * one priority queue (on-screen first) for the server; answers are cached by URL and by sha256,
 * both partitioned by the asking tab's top-level site (partitionKey): no site gets a fast answer
 * for a picture another site showed, and an answer the server took from its own cache is held as
 * long as computing it would have taken (paddingMs).
 */
import { API_ERROR, ApiError, SERVER_STATE } from '../shared/api.js';
import { LRUCache } from '../shared/lru.js';
import { BUSY_REASON, LOADING_REASON, VERDICT } from '../shared/messages.js';
import { LOAD_REFUSAL, paddingMs, partitionKey, topLevelSite } from '../shared/page_loads.js';
import { QueueFullError, TaskQueue } from '../shared/queue.js';
import { checkImageUrl } from '../shared/urlsafety.js';
import { UnreadableImage } from './picture_fetch.js';

const RECHECK_WHILE_DOWN_MS = 2000; // a new image may re-probe a down server this often
const LOADING_RETRY_S = 2; // a picture asked about while the server loads is asked again this much later
const BUSY_HOLD_MS = Object.freeze({ min: 100, max: 30000 }); // a shed request's Retry-After, within these
const LOAD_WAIT_MS = 5000; // how long a picture may wait for the observer to report the tab's own load of it
const EXPECTED_MS_UNKNOWN = 1000; // what a picture costs the server before it has measured it

/** base64 -> bytes (the content script checked the alphabet; the router the length). */
export function decodeBase64(base64) {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The classifier. `getClient()` resolves to the API client; `health` is the health watch;
 * `fetcher` the picture fetcher (picture_fetch.js); `pageLoads` what each tab's browser loaded,
 * with `loadStoredTab(tabId)` reading back a tab's record after a worker restart.
 */
const VECTOR_SVG = 'vector_svg'; // the server's code for an SVG that embeds no picture (docs/api.md, SVG)

export function createClassifier({ getClient, health, fetcher, pageLoads, loadStoredTab }) {
  const urlVerdicts = new LRUCache(2000); // site + image URL -> verdict sent to content scripts
  const shaResults = new LRUCache(2000); // site + sha256 of the bytes -> server classification
  const asking = new Map(); // site + key -> Promise<verdict>, from queued until its answer may be given
  const queue = new TaskQueue({ concurrency: 3, maxQueued: 2000 });
  let busyUntil = 0; // Date.now() before which no picture is sent: the server shed one (503 busy)

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
  const expectedServerMs = () => health.current?.server?.cost?.perPictureMs || EXPECTED_MS_UNKNOWN;

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
      // an SVG that embeds no picture is an icon or a logo: nothing to judge, skipped like one
      if (e.kind === API_ERROR.REFUSED_IMAGE && e.code === VECTOR_SVG) return { status: VERDICT.SKIPPED, reason: VECTOR_SVG };
      if (e.kind === API_ERROR.REFUSED_IMAGE) return { status: VERDICT.FAILED, reason: e.code || 'refused' };
      if (e.kind === API_ERROR.BUSY) {
        return { status: VERDICT.UNAVAILABLE, reason: e.code === LOADING_REASON ? LOADING_REASON : BUSY_REASON, retryAfterS: e.retryAfterS };
      }
      if (e.kind === API_ERROR.UNREACHABLE || e.kind === API_ERROR.TIMEOUT) {
        queue.clear(e); // everything waiting would fail the same way: answer now, fail open
      }
      await health.check();
      return { status: VERDICT.UNAVAILABLE, reason: health.current?.state ?? e.kind };
    }
    return { status: VERDICT.FAILED, reason: 'error' };
  }

  /** null when the server is up (probing it again if it was down a while ago), else the UNAVAILABLE verdict. */
  async function checkServerUp() {
    const busy = busyError();
    if (busy) return { status: VERDICT.UNAVAILABLE, reason: BUSY_REASON, retryAfterS: busy.retryAfterS };
    if (health.isUp()) return null;
    if (health.current === null || Date.now() - health.lastCheckAt > RECHECK_WHILE_DOWN_MS) await health.check();
    if (health.isUp()) return null;
    if (health.current?.state === SERVER_STATE.LOADING) return { status: VERDICT.UNAVAILABLE, reason: LOADING_REASON, retryAfterS: LOADING_RETRY_S };
    return { status: VERDICT.UNAVAILABLE, reason: health.current?.state ?? 'unknown' };
  }

  /** null when the tab's browser loaded `url` from an address the worker can vouch for, else the FAILED verdict. */
  async function checkPageLoad(url, page) {
    await loadStoredTab(page.tabId);
    if (!(await pageLoads.waitForLoad(page.tabId, url, LOAD_WAIT_MS))) return { status: VERDICT.FAILED, reason: LOAD_REFUSAL.NOT_LOADED };
    const judged = pageLoads.judge(page.tabId, url, page.topUrl);
    if (!judged.ok) return { status: VERDICT.FAILED, reason: judged.reason };
    if (!(await fetcher.checkResolvedAddress(url, page.topUrl))) return { status: VERDICT.FAILED, reason: LOAD_REFUSAL.PRIVATE_ADDRESS };
    return null;
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
    const expected = pageLoads.representation(page.tabId, check.url); // now: the tab may have moved on by the fetch
    const client = await getClient();
    const down = await checkServerUp();
    if (down) return down;
    return askServer(site, check.url, priority,
      async () => classifyKnownBytes(client, await fetcher.fetchBytes(check.url, page, media, expected), site),
      (verdict) => urlVerdicts.set(partitionKey(site, check.url), verdict));
  }

  /** The verdict for a picture the content script read in the page (data:, blob:); `page` as for classifyUrl. */
  async function classifyPageBytes(base64, priority = 1, page = null) {
    let bytes;
    try {
      bytes = decodeBase64(base64);
    } catch {
      return { status: VERDICT.FAILED, reason: 'not_base64' };
    }
    const client = await getClient();
    const down = await checkServerUp();
    if (down) return down;
    const site = topLevelSite(page?.topUrl);
    return askServer(site, `bytes:${await sha256Hex(bytes)}`, priority, () => classifyKnownBytes(client, bytes, site));
  }

  return {
    classifyUrl,
    classifyPageBytes,
    /** The server's classification of bytes `sha` as cached for the site of `page` (undefined: none). */
    findResult: (page, sha) => shaResults.get(partitionKey(topLevelSite(page?.topUrl), sha)),
    /** Drop every cached verdict: another server, model or head gives other scores. */
    forgetVerdicts() {
      urlVerdicts.clear();
      shaResults.clear();
    },
  };
}
