/**
 * How the worker fetches a picture so that it gets the bytes the user sees, without giving the
 * pages' images more than the page itself did (docs/security.md, "The bytes the user sees"):
 *
 * - Redirects are followed, and every hop is checked by the browser itself: a declarativeNetRequest
 *   session rule blocks the extension's own requests to private hosts (the same rules as
 *   urlsafety.js, for URLs as browsers write them), so a redirect to the user's router is never
 *   requested. Only the local server's API paths on loopback are let through.
 * - The Referer is the page's origin, never more, and only where the page's referrer policy sent
 *   one (set per request by a rule: an extension's fetch cannot name another origin's referrer).
 * - Cookies go only to an image on the page's own site, which received them when the page loaded
 *   it; a third-party image gets none.
 *
 * Pure functions: the worker installs the rules they return.
 */
import { getDomain } from '../vendor/tldts/index.esm.min.js';

// Hosts urlsafety.js refuses, as they appear in a canonical URL (browsers rewrite 2130706433,
// 0x7f.1 and 0177.0.0.1 to 127.0.0.1 before any rule sees them): loopback, private, link-local,
// CGNAT, "this network", benchmarking, multicast and reserved IPv4; every IPv6 literal; localhost
// and the local suffixes; single-label names. One rule each: Chromium refuses a regex whose
// compiled form passes 2 KB.
const PRIVATE_HOSTS = [
  '(0|10|127)\\.[0-9.]+',
  '100\\.(6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\\.[0-9.]+',
  '(169\\.254|172\\.(1[6-9]|2[0-9]|3[01])|192\\.168|192\\.0|198\\.1[89])\\.[0-9.]+',
  '(22[4-9]|2[3-5][0-9])\\.[0-9.]+',
  '\\[[^\\]]*\\]',
  '([^/?#@:]*\\.)?(localhost|local|internal|home\\.arpa|lan|intranet|corp)\\.?',
  '[^/?#@:.]+\\.?',
];
export const PRIVATE_URL_REGEXES = PRIVATE_HOSTS.map((host) => `^https?://([^/?#@]*@)?(${host})(:[0-9]+)?([/?#]|$)`);
// The local simclip-server's API (api.js API_PATHS), the one loopback destination the worker has.
export const SERVER_API_REGEX = '^http://(127\\.0\\.0\\.1|localhost|\\[::1\\]):[0-9]+/v1/(health|labels|classify|setup)$';

export const GUARD_RULE_IDS = Object.freeze({
  allowServer: 1,
  block: PRIVATE_URL_REGEXES.map((_, i) => 10 + i),
});
const WORKER_REQUESTS = ['xmlhttprequest', 'other'];

/** Every id the guard uses (to replace them all at once). */
export const listGuardRuleIds = () => [GUARD_RULE_IDS.allowServer, ...GUARD_RULE_IDS.block];

/** The session rules that check every request (and redirect hop) of the extension itself. */
export function listFetchGuardRules(extensionHost) {
  const condition = { initiatorDomains: [extensionHost], resourceTypes: WORKER_REQUESTS };
  return [
    { id: GUARD_RULE_IDS.allowServer, priority: 2, action: { type: 'allow' }, condition: { ...condition, regexFilter: SERVER_API_REGEX } },
    ...PRIVATE_URL_REGEXES.map((regexFilter, i) => ({
      id: GUARD_RULE_IDS.block[i], priority: 1, action: { type: 'block' }, condition: { ...condition, regexFilter },
    })),
  ];
}

/**
 * The rule that gives the extension's fetches of `url` (of every URL that starts with it, with
 * `prefix`) the Referer `referrer`, or null (a URL a filter cannot name exactly: it has a `*`, or
 * is very long).
 */
export function createRefererRule(id, url, referrer, extensionHost, { prefix = false } = {}) {
  if (!referrer || url.includes('*') || url.length > 2000) return null;
  return {
    id,
    priority: 3,
    action: { type: 'modifyHeaders', requestHeaders: [{ header: 'referer', operation: 'set', value: referrer }] },
    condition: { urlFilter: `|${url}${prefix ? '' : '|'}`, initiatorDomains: [extensionHost], resourceTypes: WORKER_REQUESTS },
  };
}

/**
 * The Referer the page's own request for the image carried, reduced to the page's origin: none
 * for `no-referrer`, none off-origin for `same-origin`, none from https to http unless the policy
 * sends one there anyway (`origin`, `origin-when-cross-origin`, `unsafe-url`).
 */
export function refererFor(pageUrl, imageUrl, policy = '') {
  let page;
  let image;
  try {
    page = new URL(pageUrl);
    image = new URL(imageUrl);
  } catch {
    return '';
  }
  if (page.protocol !== 'http:' && page.protocol !== 'https:') return '';
  const rule = String(policy).toLowerCase() || 'strict-origin-when-cross-origin';
  if (rule === 'no-referrer') return '';
  if (rule === 'same-origin' && page.origin !== image.origin) return '';
  const downgrade = page.protocol === 'https:' && image.protocol === 'http:';
  if (downgrade && !['origin', 'origin-when-cross-origin', 'unsafe-url'].includes(rule)) return '';
  return `${page.origin}/`;
}

/**
 * The registrable domain ("site") of `host`, by the Public Suffix List with its private section,
 * as browsers decide which requests are same-site: "i.redd.it" -> "redd.it", "a.b.co.uk" ->
 * "b.co.uk", "alice.github.io" -> itself (github.io is a public suffix). An IP address, or a
 * name the list does not place (a single label such as "localhost"), stays whole. The list is
 * tldts's (vendor/tldts, the published build of the npm package, pinned in package.json).
 */
export function registrableDomain(host) {
  const h = String(host).toLowerCase().replace(/\.$/, '');
  return getDomain(h, { allowPrivateDomains: true }) ?? h; // null for IP addresses too
}

/** True when the image is on the page's own site (its cookies went with the page's request). */
export function isSameSite(pageUrl, imageUrl) {
  try {
    const page = new URL(pageUrl);
    const image = new URL(imageUrl);
    const secure = (u) => u.protocol === 'https:';
    return registrableDomain(page.hostname) === registrableDomain(image.hostname) && secure(page) === secure(image);
  } catch {
    return false;
  }
}
