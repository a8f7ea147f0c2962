/**
 * Content script entry: wires DOMWatcher (reports elements) to ImageFilter (decides; hiding.js
 * hides, and draws the warning cards with WarningPainter), keeps the user's settings and the server's warning
 * categories and health in sync from storage, and answers the popup. Its own main-thread time is
 * measured by perf.js. All HTTP goes through the service worker.
 */
import { isHostAllowlisted } from '../shared/allowlist.js';
import { getBrowser } from '../shared/browser.js';
import { LOAD_REFUSAL, MAX_URL_CHARS, MSG, VERDICT, CORRECTION, sendWithRetry } from '../shared/messages.js';
import { normalizeSettings } from '../shared/settings.js';
import { listActiveWarnings } from '../shared/verdict.js';
import { CATEGORIES_KEY, HEALTH_KEY, SETTINGS_KEY } from '../shared/storage_keys.js';
import { DOMWatcher } from './dom_watcher.js';
import { hideBackgroundsEarly, setPausedFlag } from './hiding.js';
import { ImageFilter } from './image_filter.js';
import { combineVideoVerdicts } from './image_state.js';
import { isPageOnlyUrl, readPageBytes, readShownImage } from './page_bytes.js';
import { NO_FRAMES, captureFrames, readVideoSource } from './video_frames.js';
import { createLifecycle } from './lifecycle.js';
import { createPerf } from './perf.js';
import { WarningPainter } from './warning.js';

/**
 * @param {{stopEarlyWatch?: () => void, shadow?: object, startedLate?: boolean}} options
 *   `stopEarlyWatch` ends the loader's stop-gap observer once the real watcher runs; `shadow` is
 *   the loader's helper for shadow roots (finding closed ones, adopting the pre-hide rules,
 *   switching them off); `startedLate`: the loader ran in a page already parsed (lifecycle.js).
 */
export async function start({ stopEarlyWatch = () => {}, shadow, startedLate = false } = {}) {
  const ext = getBrowser();
  let parts = null;
  const measured = createPerf();
  // Every piece of work checks first that the extension is still there (lifecycle.js).
  const life = createLifecycle({ ext, timed: measured.timed, onRetire: () => parts?.watcher.unwatch(), startedLate });
  const perf = { ...measured, timed: life.timed };
  const page = await loadPage(ext);
  const { send, sendOpenAgain } = createSender(ext, life);
  parts = createParts({ page, perf, send, shadow, life });
  // a declarative root the loader's recheck finds from now on (loader.js recheckHosts)
  if (shadow) shadow.onLateRoot = (root) => perf.timed(() => parts.watcher.watchRoot(root), 'shadow');
  const applyPause = () => switchPause(page, parts, send, shadow);
  listenForStorage(ext, { page, filter: parts.filter, applyPause, timed: perf.timed });
  answerPageState(ext, { page, parts, perf });
  applyPause();
  stopEarlyWatch();
  // A frame that goes away (an iframe removed, a navigation) takes its count off the tab's badge.
  // Nothing else is done on the way out: no unload handler, no port, so the browser may keep the
  // page in its back/forward cache; shown again from there, it puts its count back and asks again
  // about the pictures still waiting (an answer sent while it was frozen did not reach it).
  addEventListener('pagehide', () => send({ type: MSG.PAGE_STATS, flagged: 0 }));
  addEventListener('pageshow', (e) => {
    if (!e.persisted) return;
    life.restored();
    sendOpenAgain();
    if (!page.paused) perf.timed(() => parts.filter.restartClocks(), 'pageshow');
  });
}

/**
 * `send(message)` -> the worker's reply (null when it did not answer), retried while the worker
 * starts; an orphan's never settles (lifecycle.js). The browser closes the message channels of a
 * page it puts in its back/forward cache, and a question cut off that way gets no answer:
 * `sendOpenAgain()` (the page is shown again) asks every open one again, the first reply wins
 * (a picture asked by URL is loaded again first: the worker forgot the tab's loads meanwhile).
 */
function createSender(ext, life) {
  const open = new Set(); // {message, resolve} without a reply yet
  // A dropped entry sends no more tries (sendWithRetry stops at a null reply).
  const attempt = (entry) => sendWithRetry((m) => (open.has(entry) ? life.send((x) => ext.runtime.sendMessage(x), m) : null), entry.message)
    .then((reply) => {
      if (open.delete(entry)) entry.resolve(reply);
    });
  return {
    send: (message) => new Promise((resolve) => {
      const entry = { message, resolve };
      open.add(entry);
      attempt(entry);
    }),
    sendOpenAgain: () => {
      for (const entry of open) {
        const { type, url, referrerPolicy } = entry.message;
        if (type === MSG.PAGE_STATS) { // the count sent on pagehide is stale: the page reports its count afresh
          open.delete(entry);
          entry.resolve(null);
        } else if (type === MSG.CLASSIFY) loadAsPage(url, referrerPolicy, { again: true }).then(() => attempt(entry));
        else attempt(entry);
      }
    },
  };
}

/** What the content script knows about this page; `paused` is null until first decided. */
async function loadPage(ext) {
  const stored = await ext.storage.local.get([SETTINGS_KEY, CATEGORIES_KEY, HEALTH_KEY]);
  return {
    host: location.hostname || hostOfOrigin(), // about:blank and srcdoc frames: their creator's
    settings: normalizeSettings(stored[SETTINGS_KEY]),
    categories: stored[CATEGORIES_KEY] ?? [],
    health: stored[HEALTH_KEY] ?? null,
    paused: null,
  };
}

function hostOfOrigin() {
  try {
    return new URL(globalThis.origin).hostname;
  } catch {
    return '';
  }
}

function createParts({ page, perf, send, shadow, life }) {
  const { timed } = perf;
  const warnings = new WarningPainter({
    onReveal: (rec) => filter.reveal(rec),
    onReport: (rec) => {
      send({ type: MSG.REPORT, url: rec.url, correction: CORRECTION.NOT_FLAGGED, categories: rec.warnings.map((w) => w.id) });
      filter.reveal(rec);
    },
    findRecord: (el) => filter.findFlagged(el),
    timed,
  });
  const filter = new ImageFilter({
    requestVerdict: (rec, priority) => {
      const again = life.wasThereBefore(rec.el);
      return rec.kind === 'video'
        ? askAboutVideo(send, rec.el, priority, (verdict) => isFlaggedNow(page, verdict), { again })
        : askAboutPicture(send, rec.url, rec.el, priority, { loadFirst: rec.kind !== 'img', again });
    },
    warnings,
    getContext: () => ({
      settings: page.settings, categories: page.categories, healthOk: page.health?.state === 'ok', server: page.health?.server ?? null,
    }),
    onCountChange: (flagged) => send({ type: MSG.PAGE_STATS, flagged }),
    timed,
    forceStyle: perf.forceStyle,
  });
  const watcher = createWatcher({ filter, warnings, perf, shadow });
  return { warnings, filter, watcher };
}

/**
 * The worker's verdict for the picture at `url` shown by `el`: by URL, or, for a picture only the
 * page can read (data:, blob:), by its bytes. `media` 'video' asks the worker to fetch a video
 * (the server decodes it). `loadFirst`: a picture we hid before the browser loaded it (a CSS
 * background, a pseudo-element's, an SVG <image>) is loaded in the page first, as the page would
 * have loaded it: the worker fetches only what the tab's own browser loaded. `again`: a picture
 * the page loaded before this script's extension was updated or reloaded (lifecycle.js) is loaded
 * once more, as a new request the new worker sees. null when the worker did not answer at all.
 */
async function askAboutPicture(send, url, el, priority, { media, loadFirst = false, again = false } = {}) {
  if (isPageOnlyUrl(url)) {
    const read = await readPageBytes(url, el);
    if (read.status) return read; // could not be read here: FAILED, no message
    return send({ type: MSG.CLASSIFY_BYTES, base64: read.base64, mime: read.mime, priority });
  }
  if (url.length > MAX_URL_CHARS) return { status: VERDICT.FAILED, reason: 'url_too_long' };
  let loaded = loadFirst || again ? await loadAsPage(url, referrerPolicyOf(el), { again }) : null;
  const ask = () => send({ type: MSG.CLASSIFY, url, priority, referrerPolicy: referrerPolicyOf(el), ...(media ? { media } : {}) });
  const controlled = isControlledByServiceWorker();
  // A service worker of the site answers this page's requests, and Chromium tells the extension's
  // observers nothing of its answers: a picture the page has loaded is requested once more, as the
  // page's, before asking (Chromium's content scripts bypass the page's service worker; Firefox
  // reports the request handed to it, shared/page_loads.js), not after the worker's wait for it.
  if (controlled && !again && pageLoadedIt(el, url, loaded)) loaded = await loadAsPage(url, referrerPolicyOf(el), { again: true });
  // Refused by the network: the service worker made the picture up. Only the page has it.
  if (controlled && loaded === false) return askAboutShown(send, el, url, priority, ask);
  const reply = await ask();
  if (controlled && reply?.status === VERDICT.FAILED) return askAboutShown(send, el, url, priority, () => reply);
  if (!isUnseenLoad(reply) || !pageLoadedIt(el, url, loaded)) return reply;
  // The worker did not see the tab load it: it started after the page had (Firefox runs a new
  // version's content scripts in open tabs while its background may still be loading), so the
  // picture is loaded once more, as a request of the page the worker now sees, and asked again.
  await loadAsPage(url, referrerPolicyOf(el), { again: true });
  return ask();
}

/**
 * The verdict on the picture an <img> `el` shows at `url`, read in the page (page_bytes.js
 * readShownImage: the file through the page's own fetch where it can, else its painting), for a
 * page a service worker controls whose picture no request of the worker could fetch (made up by
 * the service worker, or not where the network says). `otherwise()` answers when it cannot be
 * read there (a cross-origin picture without CORS, another element).
 */
async function askAboutShown(send, el, url, priority, otherwise) {
  if (el.localName !== 'img' || el.currentSrc !== url) return otherwise();
  const read = await readShownImage(el, url);
  if (read.status) return otherwise();
  return send({ type: MSG.CLASSIFY_BYTES, base64: read.base64, mime: read.mime, priority });
}

/** True when a service worker controls this document (`navigator.serviceWorker` throws where storage is refused). */
function isControlledByServiceWorker() {
  try {
    return Boolean(globalThis.navigator?.serviceWorker?.controller);
  } catch {
    return false;
  }
}

/** True for the worker's answer "the tab never loaded this URL" (background/classify.js checkPageLoad). */
const isUnseenLoad = (reply) => reply?.status === VERDICT.FAILED && reply.reason === LOAD_REFUSAL.NOT_LOADED;

/**
 * True when the page has `url` loaded: its <img> or <video> shows it, or `loaded` (loadAsPage's
 * answer) says the page loaded it just now. Only such a picture is requested once more for a
 * worker that missed the load: one the page failed to load (a 404, or refused by its content
 * security policy or a blocker) is not requested again outside the page's own rules.
 */
function pageLoadedIt(el, url, loaded) {
  if (el.localName === 'img' && el.currentSrc === url) return el.complete && el.naturalWidth > 0;
  if (el.localName === 'video' && el.currentSrc === url) return el.readyState > 0;
  return loaded === true;
}

const LOAD_AS_PAGE_MS = 15000;

/**
 * Load `url` as a picture of this page (its cookies, Referer, content security policy and
 * local-network rules apply, as to the site's own picture), so the browser has loaded it before
 * the worker is asked. `again`: the page loaded it before the worker could see it (an update, a
 * page shown again from the back/forward cache), and the page's list of loaded images would
 * answer an <img> without a request: it is requested once more with the page's `fetch` in
 * no-cors mode (the page's credentials, from the HTTP cache where it is fresh), which needs no
 * CORS headers from a picture host and reaches the worker's observers as a picture or video
 * response (shared/page_loads.js); only the response's start is waited for, the body is not
 * read. Resolves when it loaded (true: a picture, or a response to the request again, unless
 * its status is an HTTP error the page may see), failed (false), or after LOAD_AS_PAGE_MS (false).
 */
function loadAsPage(url, referrerPolicy, { again = false } = {}) {
  if (again) return requestAgain(url, referrerPolicy);
  return new Promise((resolve) => {
    const img = new Image();
    const done = (loaded) => {
      clearTimeout(timer);
      resolve(loaded);
    };
    const timer = setTimeout(() => done(false), LOAD_AS_PAGE_MS);
    img.onload = () => done(true);
    img.onerror = () => done(false);
    if (referrerPolicy) img.referrerPolicy = referrerPolicy;
    img.src = url;
  });
}

/** The page's own `fetch` (Firefox: `content.fetch`, the page's principal; Chromium: the content script's, as the page). */
const pageFetch = (...args) => (globalThis.content?.fetch ?? fetch)(...args);

// The Referrer Policy tokens fetch() accepts (a page's legacy <meta> values such as "never" are not).
const REFERRER_POLICIES = new Set(['no-referrer', 'no-referrer-when-downgrade', 'same-origin', 'origin', 'strict-origin',
  'origin-when-cross-origin', 'strict-origin-when-cross-origin', 'unsafe-url']);

async function requestAgain(url, referrerPolicy) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), LOAD_AS_PAGE_MS);
  const policy = referrerPolicy?.toLowerCase();
  try {
    const response = await pageFetch(url, {
      mode: 'no-cors', credentials: 'include', cache: 'force-cache', signal: controller.signal,
      ...(REFERRER_POLICIES.has(policy) ? { referrerPolicy: policy } : {}),
    });
    return response.type === 'opaque' || response.ok; // a cross-origin answer is opaque: its status unknown
  } catch {
    return false; // refused or cut off: the worker says not_loaded, as before
  } finally {
    clearTimeout(timer);
    controller.abort(); // the response has started: its body is not wanted
  }
}

/**
 * A video's verdict: its poster first (a flagged poster decides), then frames captured in the page
 * (video_frames.js), or, where the canvas would be tainted or nothing decodes, the video itself by
 * URL for the server to decode. A video over VIDEO_BOUNDS.seconds is judged by its poster alone.
 * `again`: the page loaded the video before this script's extension was updated or before it was
 * shown again from the back/forward cache: its poster and its file are requested once more.
 */
async function askAboutVideo(send, video, priority, isFlagged, { again = false } = {}) {
  const answers = [];
  if (video.poster) {
    answers.push({ part: 'poster', verdict: await askAboutPicture(send, video.poster, video, priority, { loadFirst: true, again }) });
    if (isFlagged(answers[0].verdict)) return combineVideoVerdicts(answers, { isFlagged });
  }
  const frames = await captureFrames(video);
  if (Array.isArray(frames)) {
    for (const frame of frames) {
      const verdict = await send({ type: MSG.CLASSIFY_BYTES, base64: frame.base64, mime: frame.mime, priority });
      answers.push({ part: 'frames', verdict });
      if (isFlagged(verdict)) break;
    }
  } else if (frames.reason !== NO_FRAMES.TOO_LONG) {
    const src = readVideoSource(video);
    const verdict = src && !isPageOnlyUrl(src)
      ? await askAboutPicture(send, src, video, priority, { media: 'video', again })
      : { status: VERDICT.FAILED, reason: `video_${frames.reason}` };
    answers.push({ part: 'frames', verdict });
  }
  return combineVideoVerdicts(answers, { isFlagged, framesNeeded: frames.reason !== NO_FRAMES.TOO_LONG });
}

/** True when `verdict` flags its picture under the user's settings now. */
function isFlaggedNow(page, verdict) {
  return verdict?.status === VERDICT.OK && listActiveWarnings(verdict.scores, page.categories, page.settings).length > 0;
}

/** The referrer policy the page loaded the picture under: the element's own, else the page's <meta>. */
function referrerPolicyOf(el) {
  const own = el.getAttribute?.('referrerpolicy');
  if (own) return own.slice(0, 40);
  return (document.querySelector('meta[name="referrer" i]')?.getAttribute('content') ?? '').trim().slice(0, 40);
}

function createWatcher({ filter, warnings, perf, shadow }) {
  return new DOMWatcher({
    onElement: (el) => filter.consider(el),
    onDeferred: (elements) => hideBackgroundsEarly(elements), // left for later: their stylesheet backgrounds hidden until then
    onAttribute: (el, name) => filter.onAttribute(el, name),
    // load does not bubble: the watcher listens in the capture phase (lazy loads, srcset switches).
    onLoad: (el) => {
      filter.consider(el);
      filter.flush();
    },
    shadow,
    onRoot: (root) => warnings.adoptInto(root),
    onRemoved: (node) => filter.dropRemoved(node),
    onBatch: (changed) => filter.flush(changed),
    timed: perf.timed,
    forceStyle: perf.forceStyle,
  });
}

/** Pause on an allowlisted site (every pre-hide rule off, no watching), resume when it leaves the list. */
function switchPause(page, { warnings, filter, watcher }, send, shadow) {
  const paused = isHostAllowlisted(page.host, page.settings.allowlist);
  if (paused === page.paused) return;
  page.paused = paused;
  setPausedFlag(paused);
  shadow?.setDisabled(paused);
  warnings.setHidden(paused);
  if (paused) {
    watcher.unwatch();
    send({ type: MSG.PAGE_STATS, flagged: 0 });
  } else {
    watcher.watch();
    filter.rerender();
  }
}

function listenForStorage(ext, { page, filter, applyPause, timed }) {
  ext.storage.onChanged.addListener((changes, area) => {
    if (area !== 'local') return;
    timed(() => {
      takeStorageChanges(page, changes, filter);
      applyPause();
      if (!page.paused && (changes[SETTINGS_KEY] || changes[CATEGORIES_KEY])) filter.rerender();
    }, 'settings');
  });
}

/** Settings, categories and health from a storage change; a server back up retries what waits for it. */
function takeStorageChanges(page, changes, filter) {
  if (changes[SETTINGS_KEY]) page.settings = normalizeSettings(changes[SETTINGS_KEY].newValue);
  if (changes[CATEGORIES_KEY]) page.categories = changes[CATEGORIES_KEY].newValue ?? [];
  if (changes[HEALTH_KEY]) {
    const wasOk = page.health?.state === 'ok';
    page.health = changes[HEALTH_KEY].newValue ?? null;
    if (!wasOk && page.health?.state === 'ok' && !page.paused) filter.retryUnavailable();
  }
}

/**
 * GET_PAGE_STATE from the popup (and the tests): counts, our own timing, and each picture's state
 * and reason, which stay in the extension's world (the page cannot read them); HIDE_REVEALED from
 * the popup: cover again every flagged picture the user chose to show in this frame.
 */
function answerPageState(ext, { page, parts, perf }) {
  ext.runtime.onMessage.addListener((message, sender, sendResponse) => {
    if (sender.id !== ext.runtime.id) return false;
    if (message?.type === MSG.HIDE_REVEALED) {
      perf.timed(() => parts.filter.hideAllRevealed(), 'click');
      return false;
    }
    if (message?.type !== MSG.GET_PAGE_STATE) return false;
    if (typeof message.frameUrl === 'string' && message.frameUrl !== location.href) return false; // another frame's
    // frames at one URL (about:blank): only the one holding these records ({id, url}) answers
    if (Array.isArray(message.holds) && !parts.filter.holdsAny(message.holds)) return false;
    if (message.picturesOnly === true) { // the pictures alone: no counts (they read layout), for a caller that polls
      sendResponse({ frame: location.href, pictures: page.paused ? [] : parts.filter.listPictures() });
      return false;
    }
    const summary = parts.filter.summarize();
    sendResponse({
      host: page.host,
      paused: page.paused,
      flagged: page.paused ? 0 : summary.flagged,
      revealed: page.paused ? 0 : summary.revealed,
      byState: summary.byState,
      asking: summary.asking,
      stats: { ...perf.snapshot(), deferred: parts.watcher.deferred, slicesPending: parts.watcher.slicer.pending,
        inheritVisits: parts.watcher.inheritVisits, repaintReads: parts.filter.repaints.reads },
      // this frame's pictures with their reasons (never written into the page)
      frame: location.href,
      pictures: page.paused ? [] : parts.filter.listPictures(),
    });
    return false;
  });
}
