/**
 * What the browser itself loaded for each tab, and from which address, so that the worker fetches
 * only pictures the page's own browser loaded and never one whose address it cannot vouch for
 * (docs/security.md, "Extension: what a page can learn"). The worker fills it from non-blocking
 * webRequest observers (onBeforeRedirect, onResponseStarted: `details.ip`, the address the
 * browser connected to) and asks it before each fetch:
 *
 * - a URL the tab's browser did not load (named only in a data attribute, in a CSS rule that never
 *   applied, or in a forged message) is refused `not_loaded`: extensions are exempt from the
 *   browser's local-network protections, the page's own loads are not;
 * - a URL the browser reached (itself or through a redirect hop) at a loopback, private or
 *   link-local address while the tab's top-level site is public is refused `private_address`: a
 *   public name resolving to a private address is the DNS-rebinding case the name checks of
 *   urlsafety.js cannot see. A site that is itself local (a private name or address, or a
 *   special-use name such as *.test) may show pictures from the local network.
 *
 * Also the partition of the verdict caches: the top-level site, as browsers partition their HTTP
 * cache, so an answer cached for one site is never a fast answer on another.
 *
 * Pure: no browser API, the clock and timers injected.
 */
import { registrableDomain } from './fetch_rules.js';
import { LOAD_REFUSAL } from './messages.js';
import { isNonPublicIPv4, isNonPublicIPv6, isUnsafeHost, parseIPv4, parseIPv6 } from './urlsafety.js';

/** Refusal reasons of judge() (shared/messages.js: the content script reads them too). */
export { LOAD_REFUSAL };

// RFC 6761 / 6762 special-use names: never resolved by the public DNS, so a site under them is the
// user's own (a developer's *.test, a printer's *.local), not a public one.
const SPECIAL_USE_TLDS = new Set(['test', 'example', 'invalid', 'localhost', 'local', 'onion', 'home.arpa', 'internal']);

/** The schemeful site of `url` ("https://example.com"), as browsers key cache partitions; null if not http(s). */
export function topLevelSite(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  return `${u.protocol}//${registrableDomain(u.hostname)}`;
}

/** True when the site of `url` is on the public internet by its name (not private, local or special-use). */
export function isPublicSite(url) {
  let host;
  try {
    host = new URL(url).hostname.toLowerCase().replace(/\.$/, '');
  } catch {
    return false;
  }
  if (isUnsafeHost(host)) return false;
  const labels = host.split('.');
  const tld = labels.at(-1);
  return !SPECIAL_USE_TLDS.has(tld) && !SPECIAL_USE_TLDS.has(labels.slice(-2).join('.'));
}

/** True for an address (as webRequest's `details.ip` gives it) that is loopback, private, link-local or reserved. */
export function isPrivateAddress(ip) {
  const text = String(ip ?? '');
  if (!text) return false;
  const v6 = parseIPv6(text);
  if (v6) return isNonPublicIPv6(v6);
  const v4 = parseIPv4(text);
  return v4 ? isNonPublicIPv4(v4) : false;
}

const PICTURE_TYPE = /^\s*(image|video)\//i;
// The untyped bytes some hosts serve pictures as (the worker's fetch takes them too,
// background/picture_fetch.js): a fetch of the page answered so counts as a fetch, not a picture.
const UNTYPED = /^\s*(application|binary)\/octet-stream\s*(;|$)/i;

// The picture requests of a page recorded when its service worker takes them (recordRedirect).
const HANDED_OVER_TYPES = new Set(['image', 'imageset', 'media']);
// How many fetches of a page each tab remembers whose answer may be a picture but says not so
// (handed to its service worker: its type unknown; or untyped bytes): kept apart from its
// pictures, only for the content script's request again of a picture (main.js) that the worker
// is asked about next, so a feed's API calls never crowd the pictures out.
const UNSURE_FETCHES = 64;

/** True when webRequest's `responseHeaders` name a Content-Type `pattern` matches. */
function isTyped(headers, pattern) {
  return (headers ?? []).some((h) => h.name?.toLowerCase() === 'content-type' && pattern.test(h.value ?? ''));
}

/** The value of response header `name` (lower case) in webRequest's `responseHeaders`, or ''. */
function headerOf(headers, name) {
  return String((headers ?? []).find((h) => h.name?.toLowerCase() === name)?.value ?? '').trim();
}

/**
 * What identifies a response's bytes, from webRequest's `responseHeaders` and `statusCode`:
 * `{etag, size}`, `etag` the ETag ('' when none), `size` the whole file's length in bytes (a 206
 * answer's Content-Range total, a 200 answer's Content-Length; null when the body was sent encoded
 * or no length was given). null when neither is known.
 */
export function representationOf(headers, statusCode) {
  const etag = headerOf(headers, 'etag');
  const encoding = headerOf(headers, 'content-encoding').toLowerCase();
  let size = null;
  if (!encoding || encoding === 'identity') {
    const total = /\/(\d+)\s*$/.exec(headerOf(headers, 'content-range'));
    const length = headerOf(headers, 'content-length');
    if (statusCode === 206 && total) size = Number(total[1]);
    else if ((statusCode === 200 || statusCode === undefined) && /^\d+$/.test(length)) size = Number(length);
  }
  return etag || size > 0 ? { etag, size: size > 0 ? size : null } : null;
}

/**
 * True when the bytes `got` ({etag, size}: a fetch's ETag and body length) are the file the page
 * loaded (`expected`, representationOf): the same ETag where both have one (W/ ignored: a
 * compressing proxy weakens it), else the same length. A host that answers a request without the
 * page's Referer with another picture (hotlink protection: a placeholder) fails it.
 */
export function sameRepresentation(expected, got) {
  const strip = (etag) => etag.replace(/^W\//, '');
  if (expected?.etag && got?.etag) return strip(expected.etag) === strip(got.etag);
  return Boolean(expected?.size) && expected.size === got?.size;
}

/** The URL as a key: no fragment (the browser never sends it). */
function keyOf(url) {
  try {
    const u = new URL(url);
    u.hash = '';
    return u.href;
  } catch {
    return null;
  }
}

export const PAGE_LOADS_LIMITS = Object.freeze({ urlsPerTab: 4000, tabs: 200 });

/**
 * Per tab: the top-level document's URL and address, and every picture URL the tab's browser
 * loaded with the addresses it reached on the way (redirect hops included; null: from the cache)
 * and what identified its bytes (representationOf).
 */
export class PageLoads {
  /** @param {{timers?: {set, clear}, limits?: {urlsPerTab, tabs}}} [options] */
  constructor({ timers, limits = PAGE_LOADS_LIMITS } = {}) {
    this.timers = timers ?? { set: (fn, ms) => setTimeout(fn, ms), clear: (id) => clearTimeout(id) };
    this.limits = limits;
    this.tabs = new Map(); // tabId -> {document: {url, ip}|null, urls: Map(url -> {ips: string[], representation})}
    this.hops = new Map(); // requestId -> [{url, ip}] redirect hops so far
    this.waiters = new Map(); // `${tabId} ${url}` -> Set(resolve)
    this.onChange = null; // called with a tabId after a change (the worker stores it)
  }

  tab(tabId) {
    let tab = this.tabs.get(tabId);
    if (!tab) {
      tab = { document: null, urls: new Map(), fetches: new Map() };
      this.tabs.set(tabId, tab);
      if (this.tabs.size > this.limits.tabs) this.tabs.delete(this.tabs.keys().next().value);
    }
    return tab;
  }

  /**
   * webRequest.onBeforeRedirect: a hop of request `requestId`, reached at `ip`. A redirect with
   * no HTTP status to the request's own URL is Firefox handing a request of a page to the page's
   * service worker: no response event follows when the service worker answers it, so a picture
   * handed over is recorded at once as a load of the tab, with no address (one the service worker
   * passes on to the network gets its response event later, with its address), and a fetch of
   * the page among the tab's last few fetches that may be pictures (recordUnsureFetch). Chromium
   * reports nothing of a request its service worker answers (main.js).
   */
  recordRedirect({ requestId, tabId, type, url, ip, redirectUrl, statusCode }) {
    if (!(statusCode > 0) && redirectUrl !== undefined && keyOf(redirectUrl) === keyOf(url)) {
      if (!(tabId >= 0)) return;
      if (HANDED_OVER_TYPES.has(type)) {
        this.recordUrl(tabId, url, [], null, { keepRepresentation: true });
        this.onChange?.(tabId);
      } else if (type === 'xmlhttprequest') {
        this.recordUnsureFetch(tabId, url, []);
      }
      return;
    }
    const hops = this.hops.get(requestId) ?? [];
    hops.push({ url, ip: ip || null });
    this.hops.set(requestId, hops);
    if (this.hops.size > 1000) this.hops.delete(this.hops.keys().next().value);
  }

  /**
   * webRequest.onResponseStarted of a tab's request: a top-level document (`type` main_frame)
   * starts the tab afresh; a picture is recorded under its own URL and every hop that led to it,
   * and so is a document (top-level or a frame's) that is a picture or a video itself (a meme
   * opened in its own tab, or shown in an <iframe>: the browser's image document paints it).
   * A fetch of the page (`xmlhttprequest`: the content script asks the page's browser again for
   * a picture it loaded before, main.js) counts only when it answers with a picture or a video
   * (`responseHeaders`' Content-Type; one answered with untyped bytes, as the worker's fetch
   * takes them, among the tab's last few such fetches), so a feed's API calls do not crowd the
   * tab's pictures out.
   */
  recordResponse({ requestId, tabId, type, url, ip, fromCache, responseHeaders, statusCode }) {
    const hops = this.hops.get(requestId) ?? [];
    this.hops.delete(requestId);
    if (!(tabId >= 0)) return;
    const picture = isTyped(responseHeaders, PICTURE_TYPE);
    const address = fromCache ? null : ip || null;
    const ips = [...hops.map((h) => h.ip), address].filter(Boolean);
    if (type === 'xmlhttprequest' && !picture) {
      if (isTyped(responseHeaders, UNTYPED)) this.recordUnsureFetch(tabId, url, ips);
      return;
    }
    if (type === 'main_frame') {
      this.tabs.delete(tabId);
      this.tab(tabId).document = { url, ip: address };
      if (!picture) {
        this.onChange?.(tabId);
        return;
      }
      // a picture or a video opened as the page itself (its image document): the tab loaded it
    } else if (type === 'sub_frame' && !picture) {
      return; // a frame's document; a picture shown as a frame's document is recorded below
    }
    const representation = representationOf(responseHeaders, statusCode);
    for (const u of [...hops.map((h) => h.url), url]) this.recordUrl(tabId, u, ips, representation);
    this.onChange?.(tabId);
  }

  /**
   * Records `url` as loaded by tab `tabId`, reached at `ips`, its bytes identified by
   * `representation` (representationOf); `keepRepresentation`: a load that tells nothing of the
   * bytes (a service worker's answer) keeps what an earlier response of the network told.
   */
  recordUrl(tabId, url, ips, representation = null, { keepRepresentation = false } = {}) {
    const key = keyOf(url);
    if (!key) return;
    const { urls } = this.tab(tabId);
    const seen = urls.get(key);
    urls.delete(key); // most recent last
    const kept = keepRepresentation ? seen?.representation ?? null : representation;
    urls.set(key, { ips: [...new Set([...(seen?.ips ?? []), ...ips])], representation: kept });
    if (urls.size > this.limits.urlsPerTab) urls.delete(urls.keys().next().value);
    this.wake(tabId, key);
  }

  /**
   * A fetch of the page that may have been a picture, reached at `ips`: handed to its service
   * worker (recordRedirect), or answered with untyped bytes. Kept apart, the last UNSURE_FETCHES
   * a tab.
   */
  recordUnsureFetch(tabId, url, ips) {
    const key = keyOf(url);
    if (!key) return;
    const { fetches } = this.tab(tabId);
    const seen = fetches.get(key) ?? [];
    fetches.delete(key);
    fetches.set(key, [...new Set([...seen, ...ips])]);
    if (fetches.size > UNSURE_FETCHES) fetches.delete(fetches.keys().next().value);
    this.wake(tabId, key);
  }

  /** True when tab `tabId` loaded `key`, or fetched it (recordUnsureFetch). */
  hasLoad(tabId, key) {
    const tab = this.tabs.get(tabId);
    return Boolean(tab && (tab.urls.has(key) || tab.fetches.has(key)));
  }

  wake(tabId, key) {
    for (const resolve of this.waiters.get(`${tabId} ${key}`) ?? []) resolve(true);
    this.waiters.delete(`${tabId} ${key}`);
  }

  /** What identified the bytes of `url` when the tab's browser last loaded it (representationOf), or null. */
  representation(tabId, url) {
    return this.tabs.get(tabId)?.urls.get(keyOf(url))?.representation ?? null;
  }

  /** The tab closed: forget it. */
  forgetTab(tabId) {
    this.tabs.delete(tabId);
  }

  /**
   * Resolves true once the tab's browser has loaded `url` (at once if it has), false after
   * `timeoutMs`: the observer's event and the content script's message race each other.
   */
  waitForLoad(tabId, url, timeoutMs) {
    const key = keyOf(url);
    if (!key) return Promise.resolve(false);
    if (this.hasLoad(tabId, key)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const id = `${tabId} ${key}`;
      const done = (loaded) => {
        this.timers.clear(timer);
        this.waiters.get(id)?.delete(done);
        if (this.waiters.get(id)?.size === 0) this.waiters.delete(id);
        resolve(loaded);
      };
      const timer = this.timers.set(() => done(false), timeoutMs);
      if (!this.waiters.has(id)) this.waiters.set(id, new Set());
      this.waiters.get(id).add(done);
    });
  }

  /**
   * May the worker fetch `url` for a page of tab `tabId` whose top-level URL is `topUrl`?
   * `{ok: true}`, or `{ok: false, reason}` (LOAD_REFUSAL).
   */
  judge(tabId, url, topUrl) {
    const key = keyOf(url);
    const tab = this.tabs.get(tabId);
    const ips = tab?.urls.get(key)?.ips ?? tab?.fetches.get(key);
    if (!ips) return { ok: false, reason: LOAD_REFUSAL.NOT_LOADED };
    return judgeAddresses(ips, topUrl);
  }

  /** The tab's records as plain data (storage.session keeps them across the worker's restarts). */
  exportTab(tabId) {
    const tab = this.tabs.get(tabId);
    return tab ? { document: tab.document, urls: [...tab.urls] } : null;
  }

  /**
   * Records stored by exportTab, read back by a restarted worker: what it saw of the tab already
   * (a picture's load, a fetch) is kept, as newer; nothing is read back once it saw a document of
   * the tab start (its records are the new document's).
   */
  importTab(tabId, data) {
    if (!data || this.tabs.get(tabId)?.document) return; // this worker saw the tab's document start: the stored ones are older
    const tab = this.tab(tabId);
    tab.document = data.document ?? null;
    // A load this worker saw already (before reading the stored ones back) is newer: it stays last.
    const newer = [...tab.urls];
    tab.urls.clear();
    for (const [url, entry] of (data.urls ?? []).slice(-this.limits.urlsPerTab)) tab.urls.set(url, { ips: entry.ips ?? [], representation: entry.representation ?? null });
    for (const [url, entry] of newer) {
      tab.urls.delete(url);
      tab.urls.set(url, entry);
    }
    while (tab.urls.size > this.limits.urlsPerTab) tab.urls.delete(tab.urls.keys().next().value);
  }
}

/**
 * `{ok: true}` unless one of `ips` (the addresses a load reached) is private while the top-level
 * site (`topUrl`) is public: then `{ok: false, reason: 'private_address'}`.
 */
export function judgeAddresses(ips, topUrl) {
  if (isPublicSite(topUrl) && ips.some(isPrivateAddress)) return { ok: false, reason: LOAD_REFUSAL.PRIVATE_ADDRESS };
  return { ok: true };
}

/** The key of a verdict cached for top-level site `site`: no answer crosses sites. */
export const partitionKey = (site, key) => `${site ?? 'none'} ${key}`;

/**
 * How long to hold an answer the server took from its own cache, for a picture this partition
 * has not seen: until about the time computing it would have taken (`expectedMs`, the server's
 * measured cost per picture), so its speed does not tell the page the user saw it on another site.
 */
export function paddingMs({ cached, elapsedMs, expectedMs }) {
  if (!cached || !(expectedMs > 0)) return 0;
  return Math.max(0, Math.round(expectedMs - elapsedMs));
}
