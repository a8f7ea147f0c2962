/**
 * Picture bytes as the page got them: redirects followed, each hop checked by session rules
 * (declarativeNetRequest, shared/fetch_rules.js), the page's Referer given by a rule per picture
 * origin where the host answers another file without it (fetchBytes), cookies only for a picture
 * on the page's own site, and the body read up to MAX_IMAGE_BYTES.
 * The addresses our own fetch reaches are followed through the webRequest observers, so that a
 * name that resolves to a private address for us but not for the page (DNS rebinding) is refused.
 */
import { MAX_IMAGE_BYTES } from '../shared/api.js';
import { isSameSite, listFetchGuardRules, listGuardRuleIds, refererFor } from '../shared/fetch_rules.js';
import { RefererRules, pictureOrigin } from './referer_rules.js';
import { LRUCache } from '../shared/lru.js';
import { judgeAddresses, sameRepresentation } from '../shared/page_loads.js';
import { checkImageUrl } from '../shared/urlsafety.js';

const IMAGE_FETCH_TIMEOUT_MS = 15000;
const OWN_LOAD_WAIT_MS = 2000; // how long a fetch of ours may wait for the observer to report its address
// What the browsers' own picture requests accept (Chromium's value; Firefox's names the same
// formats): a host that picks a format by it (an image CDN's AVIF or WebP) answers the worker the
// file it answered the page, not a JPEG of it.
export const IMAGE_ACCEPT = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';
const REFERER_ORIGINS_KEPT = 500; // picture origins known to answer otherwise without the page's Referer

/** `value` as JSON with every object's keys sorted (rules read back may list them in another order). */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** True when the rules `a` and `b` are the same set (by id, whatever their order). */
export function sameRules(a, b) {
  const key = (rules) => rules.map(canonical).sort().join('\n');
  return a.length === b.length && key(a) === key(b);
}

/** A picture that cannot be read (fetch failed, HTTP error, not an image, too large): answered FAILED. */
export class UnreadableImage extends Error {
  constructor(reason) {
    super(reason);
    this.reason = reason;
  }
}

/** A response body as bytes, cut off (UnreadableImage) once it passes `maxBytes`. */
export async function readBodyCapped(body, maxBytes = MAX_IMAGE_BYTES) {
  const reader = body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
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

/**
 * The picture fetcher: `fetchBytes(url, page, media, expected)`, `ensureGuard()` (install the redirect
 * guard's rules), `recordOwnFetch(details, final)` (the webRequest observers' reports of our own
 * requests), `checkResolvedAddress(url, topUrl)` (Firefox's DNS check) and `trials` (counts of
 * fetches without a Referer kept and asked again).
 */
export function createPictureFetcher(ext) {
  const extensionHost = new URL(ext.runtime.getURL('')).host;
  let guardPromise = null; // resolves true once the redirect guard's rules are in place
  const refererRules = new RefererRules(ext.declarativeNetRequest, extensionHost);
  const ownFetches = new Map(); // URL -> [entry]: our fetches in flight, entry {ips, seen, waiters}
  const ownRequests = new Map(); // webRequest requestId -> the entry of the fetch it is
  let seesOwnFetches = false; // the browser reports the extension's own requests to its observers
  const refererOrigins = new LRUCache(REFERER_ORIGINS_KEPT); // origin -> true: answered another file without the Referer
  const trials = { kept: 0, refused: 0 }; // fetches without a Referer kept, and asked again with it

  /**
   * Install the rules that check every request of ours, redirect hops included (fetch_rules.js).
   * Without them (no declarativeNetRequest) redirects are refused, as before.
   */
  function ensureGuard() {
    if (!guardPromise) {
      guardPromise = (async () => {
        const dnr = ext.declarativeNetRequest;
        if (!dnr?.updateSessionRules) return false;
        // Session rules outlive the worker, and each change empties Chromium's back/forward cache:
        // a restarted worker keeps the guard rules in place as they are, and takes over the
        // earlier life's Referer rules.
        const inPlace = await dnr.getSessionRules?.() ?? [];
        const stale = refererRules.adoptLeftovers(inPlace);
        const guard = listFetchGuardRules(extensionHost);
        const guardIds = new Set(listGuardRuleIds());
        if (!sameRules(inPlace.filter((rule) => guardIds.has(rule.id)), guard)) {
          await dnr.updateSessionRules({ removeRuleIds: [...guardIds, ...stale], addRules: guard });
        } else if (stale.length > 0) {
          await dnr.updateSessionRules({ removeRuleIds: stale });
        }
        return true;
      })().catch(() => false);
    }
    return guardPromise;
  }

  /**
   * Run `fn` with the rule giving this fetch of `url` the page's Referer in place (none when there
   * is none to give; referer_rules.js). A rule that cannot be set leaves the fetch without one: a
   * hotlink-protected picture then fails or differs.
   */
  const withReferer = (url, referrer, fn) => refererRules.withReferer(url, referrer, fn);

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

  /**
   * One fetch of `url`, every check made: redirects followed (each hop checked by the guard rules),
   * the addresses reached vouched for, cookies only for an image on the page's own site, non-images
   * and bodies over the limit refused (UnreadableImage). `referrer`: the Referer its rule gives
   * ('' none), or null for a fetch that sets no rule (the origin's rule in place, if any, applies).
   * Resolves {bytes, etag}.
   */
  async function fetchOnce(url, page, media, guarded, referrer) {
    const own = watchOwnFetch(url);
    const withCookies = Boolean(page) && isSameSite(page.url, url);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), IMAGE_FETCH_TIMEOUT_MS);
    const request = () => fetch(url, {
      headers: media === 'image' ? { Accept: IMAGE_ACCEPT } : {},
      credentials: withCookies ? 'include' : 'omit',
      redirect: guarded ? 'follow' : 'manual',
      referrerPolicy: 'no-referrer', // a rule sets the page's, or none
      cache: 'no-store',
      signal: controller.signal,
    });
    try {
      let response;
      try {
        response = await (referrer === null ? request() : withReferer(url, referrer, request));
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
      return { bytes: await readBodyCapped(response.body), etag: response.headers.get('ETag') ?? '' };
    } finally {
      clearTimeout(timer);
      own.done();
    }
  }

  /**
   * The image bytes as the page got them (fetchOnce), with the page's Referer. Setting the Referer
   * takes a rule, and adding one empties Chromium's back/forward cache (referer_rules.js): the
   * first fetch from a picture origin of a page just opened would cost the page the user left its
   * instant Back. So where no rule of the origin is in place, the picture is fetched first without
   * a Referer, and kept when it is the file the page loaded (`expected`: what identified the
   * page's bytes, page_loads.js representationOf; the same ETag, else the same length); a host
   * that answers otherwise (hotlink protection: a placeholder or an error) is asked again with the
   * Referer, and its origin takes the rule from then on (REFERER_ORIGINS_KEPT remembered). No rule
   * of the origin is set while such a fetch runs (RefererRules.withoutRule), so it never carries
   * another page's Referer.
   * `page`: {url, referrerPolicy, topUrl} of the page that shows the image.
   */
  async function fetchBytes(url, page = null, media = 'image', expected = null) {
    const guarded = await ensureGuard();
    const referrer = page && guarded ? refererFor(page.url, url, page.referrerPolicy) : '';
    const origin = pictureOrigin(url);
    if (referrer && expected && origin && !refererOrigins.has(origin)) {
      const refused = (e) => { // refused without the Referer: asked again with it
        if (!(e instanceof UnreadableImage) || e.reason === 'fetch_timeout') throw e;
        return { bytes: null, etag: '' };
      };
      const tried = await refererRules.withoutRule(url, () => fetchOnce(url, page, media, guarded, null).catch(refused));
      if (tried?.bytes && sameRepresentation(expected, { etag: tried.etag, size: tried.bytes.byteLength })) {
        trials.kept += 1;
        return tried.bytes;
      }
      if (tried) { // null: not tried (the origin has a rule, or a fetch waits to set one)
        trials.refused += 1;
        refererOrigins.set(origin, true);
      }
    }
    return (await fetchOnce(url, page, media, guarded, referrer)).bytes;
  }

  return { ensureGuard, fetchBytes, recordOwnFetch, checkResolvedAddress, trials };
}
