/**
 * Hiding: the only code that writes what the pre-hide stylesheet (prehide.css) keys on, and the
 * inline overrides against sites that fight it. DOMWatcher only reports elements and ImageFilter
 * decides; this module puts the decision into the page.
 *
 *   data-simclip="<state>"   an image's state (image_state.js): hidden, blurred or shown
 *   data-simclip-id, -bg     a tracked element (its warning card's rule names it), a CSS background one
 *   data-simclip-before="<state>", data-simclip-after="<state>" (and -before-id, -after-id)
 *                            the state of a ::before / ::after picture
 *   data-simclip-why         why a picture is shown without a verdict: http_403, fetch_failed, timeout, small...
 *   data-simclip-early       a stylesheet background hidden before it could be checked
 *   aria-label="Checking picture"  a pending <img> (its "checking" placeholder); the site's own
 *                            label comes back when the verdict does
 *   <html data-simclip-off>  the extension is paused on this site: every rule off
 */
import { listInlineOverrides, needsStyleCheck } from './image_state.js';

const STATE_ATTR = 'data-simclip';
export const CHECKING_LABEL = 'Checking picture'; // what a screen reader says of a pending <img>
const OVERRIDABLE = ['filter', 'clip-path', 'visibility', 'background-image', 'background', 'object-position'];

/** Write `state` into the element (only when it differs: a write is a style invalidation). */
export function writeState(el, state) {
  if (el.getAttribute(STATE_ATTR) !== state) el.setAttribute(STATE_ATTR, state);
}

/** Drop the element's state: an <img> is hidden again by the stylesheet until it is checked. */
export function clearState(el) {
  if (el.hasAttribute(STATE_ATTR)) el.removeAttribute(STATE_ATTR);
}

const isPseudo = (rec) => rec.kind === 'before' || rec.kind === 'after';
/** The attribute holding the record's state: the element's own, or its pseudo-element's. */
const stateAttrOf = (rec) => (isPseudo(rec) ? `${STATE_ATTR}-${rec.kind}` : STATE_ATTR);

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
  if (rec.state === null) {
    if (rec.el.hasAttribute(attr)) rec.el.removeAttribute(attr);
  } else if (rec.el.getAttribute(attr) !== rec.state) {
    rec.el.setAttribute(attr, rec.state);
  }
  // Why a picture is shown without a verdict (a failed fetch, the time limit, too small...).
  const why = rec.state === 'unchecked' || rec.state === 'skip' ? rec.why : '';
  if (why) {
    if (rec.el.getAttribute(`${attr}-why`) !== why) rec.el.setAttribute(`${attr}-why`, why);
  } else if (rec.el.hasAttribute(`${attr}-why`)) {
    rec.el.removeAttribute(`${attr}-why`);
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
  if (rec.state === null) return;
  writeRecordState(rec);
  if (isPseudo(rec) || !needsStyleCheck(rec.state)) return; // inline styles cannot reach a pseudo-element
  const overrides = listInlineOverrides(rec, getComputedStyle(rec.el));
  for (const [prop, value] of overrides) rec.el.style.setProperty(prop, value, 'important');
  if (overrides.length > 0) rec.inline = true;
}

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
    const bg = getComputedStyle(el).backgroundImage;
    if (bg && bg.includes('url(') && !(el.getAttribute('style') ?? '').includes('url(')) found.push([el, bg]);
  }
  for (const [el, bg] of found) el.setAttribute('data-simclip-early', bg);
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
