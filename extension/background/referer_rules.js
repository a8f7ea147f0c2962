/**
 * The worker's Referer rules: the page's Referer on the worker's own fetch of a picture, through
 * `declarativeNetRequest` session rules that change as seldom as they can.
 *
 * Chromium empties the back/forward cache of every tab each time an extension's rules change (its
 * `ClearBackForwardCache`, reported as `CacheFlushed`, `notRestoredReasons` "masked"), so a rule
 * added and removed per picture cost every tab its instant Back while the worker fetched. Here a
 * rule names a picture origin and a Referer (`|https://i.example/`, the Referer a page origin), and
 * it stays once its fetches end: a feed whose pictures come from a few hosts changes the rules a
 * few times, when it first fetches from each, and then never. One origin has one rule at a time (a
 * request matches by its URL alone, so two Referers for one origin cannot both be in place): a
 * fetch that needs another Referer, or none, for an origin whose rule has fetches in flight waits
 * for them to end, then the rule is replaced. Rules beyond MAX_REFERER_RULES are removed, the least
 * recently used idle ones first, in the same update as the rule that is added.
 */

import { createRefererRule } from '../shared/fetch_rules.js';

export const FIRST_REFERER_RULE_ID = 1000; // the guard rules' ids are below (fetch_rules.js)
export const MAX_REFERER_RULES = 200;

/** The origin a Referer rule names (`https://i.example`), or null for a URL with none. */
export function pictureOrigin(url) {
  try {
    const { origin } = new URL(url);
    return origin === 'null' ? null : origin;
  } catch {
    return null;
  }
}

/**
 * Referer rules over `dnr` (`chrome.declarativeNetRequest`) for requests the extension itself
 * (`extensionHost`) makes. `withReferer(url, referrer, fn)` runs `fn` while the rule giving the
 * fetch of `url` the Referer `referrer` (none for '') is in place; `updates` counts the rule
 * changes made (each one empties Chromium's back/forward cache).
 */
export class RefererRules {
  constructor(dnr, extensionHost, { maxRules = MAX_REFERER_RULES } = {}) {
    this.dnr = dnr;
    this.extensionHost = extensionHost;
    this.maxRules = maxRules;
    this.byOrigin = new Map(); // origin -> {referrer, id, inFlight, ready, idle: [resolve]}; in least recently used order
    this.nextId = FIRST_REFERER_RULE_ID;
    this.updates = 0;
    this.lock = Promise.resolve(); // rule changes one at a time, in order
  }

  /**
   * Take over the Referer rules an earlier worker life left in place (session rules outlive the
   * worker; changing them would empty the back/forward cache): each becomes an idle rule of this
   * life. Returns the ids of those it cannot take (not a Referer rule of ours, a second rule for
   * one origin), to remove.
   */
  adoptLeftovers(sessionRules) {
    const stale = [];
    for (const rule of sessionRules) {
      if (!(rule.id >= FIRST_REFERER_RULE_ID)) continue;
      const header = rule.action?.requestHeaders?.[0];
      const origin = pictureOrigin(String(rule.condition?.urlFilter ?? '').replace(/^\|/, ''));
      if (!origin || header?.header !== 'referer' || !header.value || this.byOrigin.has(origin) || this.byOrigin.size >= this.maxRules) {
        stale.push(rule.id);
        continue;
      }
      this.byOrigin.set(origin, { referrer: header.value, id: rule.id, inFlight: 0, idle: [], ready: Promise.resolve(true) });
      if (rule.id >= this.nextId) this.nextId = rule.id + 1;
    }
    return stale;
  }

  async withReferer(url, referrer, fn) {
    const origin = pictureOrigin(url);
    if (!origin || !this.dnr?.updateSessionRules) return fn();
    const state = await this.acquire(origin, referrer || '');
    if (!state) return fn(); // the rule could not be set: no Referer, as a page without one
    try {
      return await fn();
    } finally {
      this.release(state);
    }
  }

  /**
   * Run `fn` under no rule for the origin of `url`, changing no rule: resolves fn's result, or
   * null without running it when the origin has a rule in place or a fetch waits to set one. No
   * rule is set for the origin while `fn` runs (a fetch that needs one waits for it to end).
   */
  async withoutRule(url, fn) {
    const origin = pictureOrigin(url);
    if (!origin || !this.dnr?.updateSessionRules) return fn();
    let state = this.byOrigin.get(origin);
    if (state && (state.referrer || state.idle.length > 0)) return null;
    if (!state) {
      state = { referrer: '', id: null, inFlight: 0, idle: [], ready: Promise.resolve(true) };
      this.byOrigin.set(origin, state);
    }
    state.inFlight += 1;
    try {
      return await fn();
    } finally {
      this.release(state);
      if (state.inFlight === 0 && this.byOrigin.get(origin) === state) this.byOrigin.delete(origin); // no rule to keep
    }
  }

  /** Take the origin's rule for `referrer` (set it first if another is in place); null if that failed. */
  async acquire(origin, referrer) {
    for (;;) {
      const state = this.byOrigin.get(origin);
      if (state && state.referrer === referrer && state.idle.length === 0) { // none waits for another Referer
        state.inFlight += 1;
        this.touch(origin, state);
        const ok = await state.ready;
        if (ok) return state;
        this.release(state);
        return null;
      }
      if (state && state.inFlight > 0) {
        await new Promise((resolve) => state.idle.push(resolve)); // another Referer's fetches end first
        continue;
      }
      return this.replace(origin, state, referrer);
    }
  }

  /** Put the rule for (origin, referrer) in place of `old` (idle, or none), in one update. */
  replace(origin, old, referrer) {
    // every picture of the origin, not one URL
    const rule = referrer ? createRefererRule(this.nextId, `${origin}/`, referrer, this.extensionHost, { prefix: true }) : null;
    if (rule) this.nextId = this.nextId >= 1_000_000 ? FIRST_REFERER_RULE_ID : this.nextId + 1;
    const state = { referrer, id: rule?.id ?? null, inFlight: 1, idle: [], ready: null };
    this.byOrigin.delete(origin);
    this.byOrigin.set(origin, state);
    const removeRuleIds = [];
    if (old?.id) removeRuleIds.push(old.id);
    for (const [other, s] of this.byOrigin) { // beyond the cap: the least recently used idle ones
      if (this.byOrigin.size <= this.maxRules) break;
      if (s.inFlight === 0 && other !== origin) {
        this.byOrigin.delete(other);
        if (s.id) removeRuleIds.push(s.id);
      }
    }
    if (!rule && removeRuleIds.length === 0) {
      state.ready = Promise.resolve(true);
      return state;
    }
    state.ready = this.update({ removeRuleIds, addRules: rule ? [rule] : [] });
    return state.ready.then((ok) => {
      if (ok) return state;
      if (this.byOrigin.get(origin) === state) this.byOrigin.delete(origin);
      this.release(state);
      return null;
    });
  }

  /** One rule change, after the ones before it; resolves true when it was made. */
  update(change) {
    const done = this.lock.then(async () => {
      this.updates += 1;
      await this.dnr.updateSessionRules(change);
      return true;
    }).catch(() => false);
    this.lock = done;
    return done;
  }

  release(state) {
    state.inFlight -= 1;
    if (state.inFlight === 0) for (const resolve of state.idle.splice(0)) resolve();
  }

  touch(origin, state) {
    this.byOrigin.delete(origin);
    this.byOrigin.set(origin, state);
  }
}
