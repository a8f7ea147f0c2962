/**
 * Hiding: the only code that writes what the pre-hide stylesheet (prehide.css) keys on, and the
 * inline overrides against sites that fight it. DOMWatcher only reports elements and ImageFilter
 * decides; this module puts the decision into the page.
 *
 * Everything written here is readable by the page's own scripts, so it says no more than the
 * stylesheet needs (docs/security.md, "Extension: what a page can learn"): whether a picture is
 * hidden, covered by a warning, or shown; never why a picture is shown unchecked (a failed fetch,
 * an HTTP status, the time limit), nor whether a shown picture was checked at all. The reasons
 * stay in the content script's own world (ImageFilter.listPictures, for the popup and the tests).
 *
 *   data-simclip="<page state>"  pageStateOf(state): pending, waiting, flagged, revealed, or
 *                            shown (clean, skipped and unchecked alike)
 *   data-simclip-id, -bg     a tracked element (its warning card's rule names it), a CSS background one
 *   data-simclip-before="<state>", data-simclip-after="<state>" (and -before-id, -after-id)
 *                            the state of a ::before / ::after picture; data-simclip-content,
 *                            -list-style, -border-image (and -id) that of a style part's
 *                            (picture_sources.js STYLE_PARTS)
 *   data-simclip-early       a stylesheet background hidden before it could be checked
 *   data-simclip-early-<part>  the same for a part's picture: ::before, ::after (loader.js), a
 *                            style part (loader.js, hideBackgroundsEarly)
 *   data-simclip-card="<n>"  the number of the shared warning card a flagged element draws
 *                            (written by warning.js, which keeps one rule per distinct card)
 *   aria-label="Checking picture"  a pending <img> (its "checking" placeholder); the site's own
 *                            label comes back when the verdict does
 *   <html data-simclip-off>  the extension is paused on this site: every rule off
 */
import { STATE, listInlineOverrides, needsStyleCheck } from './image_state.js';
import { RecordMap } from './record_map.js';
import { STYLE_PARTS, readStylePart } from './picture_sources.js';

const STATE_ATTR = 'data-simclip';
/** What the page may see of each state: the shown ones are one value (SHOWN). */
export const SHOWN = 'shown';
const PAGE_STATES = new Set([STATE.PENDING, STATE.WAITING, STATE.FLAGGED, STATE.REVEALED]);

/** The `data-simclip` value for an internal state (image_state.js STATE): SHOWN for clean, skip and unchecked. */
export const pageStateOf = (state) => (state === null ? null : PAGE_STATES.has(state) ? state : SHOWN);
export const CHECKING_LABEL = 'Checking picture'; // what a screen reader says of a pending <img>
const OVERRIDABLE = ['filter', 'clip-path', 'visibility', 'background-image', 'background', 'object-position'];

/** Write `state`'s page value into the element (only when it differs: a write is a style invalidation). */
export function writeState(el, state) {
  const value = pageStateOf(state);
  if (el.getAttribute(STATE_ATTR) !== value) el.setAttribute(STATE_ATTR, value);
}

/** Drop the element's state: an <img> is hidden again by the stylesheet until it is checked. */
export function clearState(el) {
  if (el.hasAttribute(STATE_ATTR)) el.removeAttribute(STATE_ATTR);
}

const isPart = (rec) => RecordMap.partOf(rec.kind) !== '';
/** The attribute holding the record's state: the element's own, or its part's (a pseudo-element, a style part). */
const stateAttrOf = (rec) => (isPart(rec) ? `${STATE_ATTR}-${rec.kind}` : STATE_ATTR);

/** Mark a new record's element as tracked (a clone of a checked node loses the state it copied). */
export function tagTracked(rec) {
  const attr = stateAttrOf(rec);
  if (rec.el.hasAttribute(attr)) rec.el.removeAttribute(attr);
  rec.el.setAttribute(`${attr}-id`, String(rec.id));
  if (rec.kind === 'bg') rec.el.setAttribute('data-simclip-bg', '');
}

/** Take a forgotten record's marks off its element (it no longer shows that picture). */
export function untag(rec) {
  const attr = stateAttrOf(rec);
  for (const name of [attr, `${attr}-id`, ...(rec.kind === 'bg' ? ['data-simclip-bg'] : [])]) {
    if (rec.el.hasAttribute(name)) rec.el.removeAttribute(name);
  }
}

function writeRecordState(rec) {
  const attr = stateAttrOf(rec);
  const value = pageStateOf(rec.state);
  if (value === null) {
    if (rec.el.hasAttribute(attr)) rec.el.removeAttribute(attr);
  } else if (rec.el.getAttribute(attr) !== value) {
    rec.el.setAttribute(attr, value);
  }
}

/**
 * A pending <img> shows its "checking" placeholder (prehide.css) and is named so; any other state
 * gets the element's own aria-label back (`rec.ownLabel`: kept while ours is on; null: it had none).
 */
function writeCheckingLabel(rec) {
  if (rec.state === 'pending' && rec.kind === 'img') {
    if (rec.ownLabel === undefined) rec.ownLabel = rec.el.getAttribute('aria-label');
    if (rec.el.getAttribute('aria-label') !== CHECKING_LABEL) rec.el.setAttribute('aria-label', CHECKING_LABEL);
  } else {
    restoreLabel(rec);
  }
}

/** Give the element its own aria-label back (the record leaves pending, or is forgotten). */
export function restoreLabel(rec) {
  if (rec.ownLabel === undefined) return;
  if (rec.ownLabel === null) rec.el.removeAttribute('aria-label');
  else rec.el.setAttribute('aria-label', rec.ownLabel);
  rec.ownLabel = undefined;
}

/** Show the record's state: its attribute, its placeholder's name, and none of our inline overrides. */
export function showState(rec) {
  writeRecordState(rec);
  writeCheckingLabel(rec);
  clearInlineOverrides(rec);
}

/**
 * Re-apply a record's state after the site touched the element: restore a removed or changed
 * data-simclip, and beat an inline `!important` style with our own inline `!important`.
 */
export function reassertState(rec) {
  if (rec.state === null || isOff()) return;
  writeRecordState(rec);
  // inline styles cannot reach a pseudo-element; a style part is hidden by prehide.css alone
  if (isPart(rec) || !needsStyleCheck(rec.state)) return;
  const overrides = listInlineOverrides(rec, getComputedStyle(rec.el));
  for (const [prop, value] of overrides) rec.el.style.setProperty(prop, value, 'important');
  if (overrides.length > 0) rec.inline = true;
}

/** True while every rule is off on this page (paused on this site): no state to put back. */
const isOff = () => globalThis.document?.documentElement?.hasAttribute('data-simclip-off') ?? false;

/** Remove the inline overrides reassertState added. */
export function clearInlineOverrides(rec) {
  if (!rec.inline) return;
  rec.inline = false;
  for (const prop of OVERRIDABLE) {
    if (rec.el.style.getPropertyPriority(prop) === 'important') rec.el.style.removeProperty(prop);
  }
}

/**
 * Elements left for a later time slice could paint a stylesheet background meme before they are
 * visited. Like the loader's stop-gap observer, mark the ones whose computed background has a
 * url() with data-simclip-early (the pre-hide stylesheet then hides that background until it is
 * decided). All reads come before all writes, so style is computed once; reads are cheap after
 * the style pass the caller forced.
 */
export function hideBackgroundsEarly(elements) {
  const found = [];
  for (const el of elements) {
    if (el.tagName === 'IMG' || el.hasAttribute(STATE_ATTR)) continue;
    const computed = getComputedStyle(el);
    const bg = computed.backgroundImage;
    if (bg && bg.includes('url(') && !(el.getAttribute('style') ?? '').includes('url(')) found.push([el, 'data-simclip-early', bg]);
    for (const part of STYLE_PARTS) {
      if (readStylePart(el, part, computed) && !el.hasAttribute(`${STATE_ATTR}-${part}`)) found.push([el, `data-simclip-early-${part}`, '']);
    }
  }
  for (const [el, name, value] of found) el.setAttribute(name, value);
}

/** True when the element's `part` (record_map.js PARTS) was hidden before the content script read it. */
export const hasEarlyMark = (el, part) => el.hasAttribute(`data-simclip-early-${part}`);

/** The loader's early mark off `part` of `el`: what the content script read there is no picture to check. */
export function dropEarlyMark(el, part) {
  if (hasEarlyMark(el, part)) el.removeAttribute(`data-simclip-early-${part}`);
}

/** Switch every pre-hide rule off (paused on this site) or on again. */
export function setPausedFlag(paused) {
  const apply = () => {
    const root = document.documentElement;
    if (paused) root.setAttribute('data-simclip-off', 'paused');
    else root.removeAttribute('data-simclip-off');
  };
  if (document.documentElement) apply();
  else document.addEventListener('readystatechange', apply, { once: true });
}
