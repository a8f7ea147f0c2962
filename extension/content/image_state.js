/**
 * The per-image state machine, as pure logic: no DOM, no timers, so it runs (and is tested) in
 * node. A record holds what is known about one image element; each transition below changes the
 * record and says what the page side (image_filter.js) has to do: write the new state into the
 * element (hiding.js), start a timer, ask again. `state` is also the value of the element's
 * `data-simclip` attribute, which the pre-hide stylesheet keys on.
 *
 *   (null)     seen, not measured yet: an <img> stays hidden by the pre-hide stylesheet
 *   pending    measured, waiting for its verdict: hidden
 *   flagged    over a threshold: blurred, with a badge naming the categories
 *   revealed   flagged, but the user clicked "Show"
 *   clean      checked, below every threshold: shown
 *   skip       not checked (too small, private host, not an image...): shown
 *   unchecked  no verdict in time, or the server unavailable: shown (fail open)
 *   waiting    the server unavailable and the user chose to keep images hidden
 *
 *   null -measure-> pending -verdict-> clean | flagged <-show/hide-> revealed
 *                           -skipped-> skip
 *                           -time out, unavailable-> unchecked | waiting -asked again-> ...
 */
import { VERDICT } from '../shared/messages.js';
import { listActiveWarnings } from '../shared/verdict.js';

export const STATE = Object.freeze({
  PENDING: 'pending',
  FLAGGED: 'flagged',
  REVEALED: 'revealed',
  CLEAN: 'clean',
  SKIP: 'skip',
  UNCHECKED: 'unchecked',
  WAITING: 'waiting',
});
const HIDDEN_STATES = new Set([STATE.PENDING, STATE.WAITING]);

export const MIN_SIDE = Object.freeze({
  file: 100, // px of the image file: smaller ones are icons, not memes
  image: 64, // px on screen: avatars and thumbnails below this are skipped
  background: 100, // px on screen for a CSS background image
});
export const MAX_REMEASURE = 5; // an element never laid out is measured this often, then left alone
const REMEASURE_STEP_MS = 500;
// While the server is unavailable, one waiting image is asked again after 2, 4, 8, 16, then every
// 30 s: the worker re-probes the server on that ask, and once it is back every waiting image is.
export const RECOVERY_MS = Object.freeze({ first: 2000, max: 30000 });

/** Hidden until decided: pending, or waiting for a server that is down. */
export const isHiddenState = (state) => HIDDEN_STATES.has(state);
/** Flagged and revealed images carry an overlay box (a badge, or a "Hide" button). */
export const hasOverlay = (state) => state === STATE.FLAGGED || state === STATE.REVEALED;

/**
 * A new record for an element showing `url`; `kind` is 'img' or 'bg' (a CSS background image).
 * `timer` and `inline` belong to the page side (the reveal timer, our inline style overrides).
 */
export function createRecord({ id, el, kind, url }) {
  return {
    id, el, kind, url,
    state: null, sized: false, measured: 0, asked: false,
    verdict: null, warnings: [], revealed: false,
    timer: 0, inline: false,
  };
}

/** True for an <img> file that is broken, empty or too small to be a meme (it is skipped). */
export function isTooSmallFile({ url, width, height }) {
  return !url || width === 0 || Math.min(width, height) < MIN_SIDE.file;
}

/** What measuring an element's box on screen found (see measure). */
export const MEASURED = Object.freeze({
  LATER: 'later', // no box yet (not laid out): measure again later
  TOO_SMALL: 'too_small', // below the minimum size: forget it, show it (skip)
  PENDING: 'pending', // sized, and now pending: hide it until its verdict
  SIZED: 'sized', // sized, already pending (a background is hidden as soon as it is found)
});

/** The first box an element gets on screen decides whether it is checked at all. */
export function measure(rec, { width, height }) {
  if (width === 0 || height === 0) return MEASURED.LATER;
  const min = rec.kind === 'bg' ? MIN_SIDE.background : MIN_SIDE.image;
  if (Math.min(width, height) < min) return MEASURED.TOO_SMALL;
  rec.sized = true;
  if (rec.state !== null) return MEASURED.SIZED;
  rec.state = STATE.PENDING;
  return MEASURED.PENDING;
}

/** ms until an element without a box is measured again, longer each time; null once given up. */
export function nextRemeasureDelay(rec) {
  rec.measured += 1;
  return rec.measured > MAX_REMEASURE ? null : REMEASURE_STEP_MS * rec.measured;
}

/** A background image is hidden as soon as it is found, before it is measured. */
export function holdPending(rec) {
  rec.state = STATE.PENDING;
}

/** True while a record is pending and nobody asked about it yet (the background backlog asks it). */
export const isAwaitingAsk = (rec) => !rec.asked && rec.state === STATE.PENDING;

/**
 * No verdict within the user's time limit: show the image unchecked, or keep it waiting if the
 * user keeps images hidden and the server is known to be down. False when already decided.
 */
export function timeOut(rec, { settings, healthOk }) {
  if (rec.state !== STATE.PENDING) return false;
  rec.state = settings.keepHiddenWhenDown && !healthOk ? STATE.WAITING : STATE.UNCHECKED;
  return true;
}

/** What kind of answer a verdict was (see receiveVerdict). */
export const ANSWER = Object.freeze({ DECIDED: 'decided', SKIPPED: 'skipped', UNAVAILABLE: 'unavailable' });

/**
 * The worker's answer for the record's image: scores (decided with the current settings and
 * categories), a skip, or anything else (unavailable: shown unchecked, or kept waiting if the
 * user keeps images hidden; it is asked again once the server is back).
 */
export function receiveVerdict(rec, verdict, context) {
  rec.verdict = verdict;
  if (verdict?.status === VERDICT.OK) {
    decide(rec, context);
    return ANSWER.DECIDED;
  }
  if (verdict?.status === VERDICT.SKIPPED) {
    rec.state = STATE.SKIP;
    return ANSWER.SKIPPED;
  }
  rec.state = context.settings.keepHiddenWhenDown ? STATE.WAITING : STATE.UNCHECKED;
  return ANSWER.UNAVAILABLE;
}

/** Flagged (or revealed, if the user asked to see it), or clean, from the scores. */
function decide(rec, { settings, categories }) {
  rec.warnings = listActiveWarnings(rec.verdict.scores, categories, settings);
  rec.state = rec.warnings.length === 0 ? STATE.CLEAN : rec.revealed ? STATE.REVEALED : STATE.FLAGGED;
}

/** True once the record has scores from the server. */
export const hasScores = (rec) => rec.verdict?.status === VERDICT.OK;

/** Settings or categories changed: decide again from the same scores. False without scores. */
export function redecide(rec, context) {
  if (!hasScores(rec)) return false;
  decide(rec, context);
  return true;
}

/** The user clicked "Show": remembered, so a later verdict does not blur it again. True when shown now. */
export function reveal(rec) {
  rec.revealed = true;
  if (rec.state !== STATE.FLAGGED) return false;
  rec.state = STATE.REVEALED;
  return true;
}

/** The user clicked "Hide again". True when blurred again now. */
export function hideAgain(rec) {
  rec.revealed = false;
  if (rec.state !== STATE.REVEALED) return false;
  rec.state = STATE.FLAGGED;
  return true;
}

/** Shown unchecked or kept waiting because the last answer was neither scores nor a skip (recovery asks these). */
export function isUnavailable(rec) {
  const status = rec.verdict?.status;
  return (rec.state === STATE.UNCHECKED || rec.state === STATE.WAITING)
    && Boolean(rec.verdict) && status !== VERDICT.OK && status !== VERDICT.SKIPPED;
}

/** Shown or held without scores (timed out or unavailable): asked again when the server is back. */
export function needsRetry(rec) {
  return (rec.state === STATE.UNCHECKED || rec.state === STATE.WAITING) && !hasScores(rec);
}

/** Counted on the badge: decided from scores and over a threshold (revealed ones too). */
export const isCountedFlagged = (rec) => rec.warnings.length > 0 && hasScores(rec);

/** The record's state for the popup's and tests' counts ('measuring' before it has one). */
export const summaryState = (rec) => rec.state ?? 'measuring';

/** True when the state depends on styles a site could override (hidden or blurred). */
export const needsStyleCheck = (state) => isHiddenState(state) || state === STATE.FLAGGED;

/**
 * The inline `!important` properties that put the record's state back after a site overrode it
 * (`computed`: the element's computed style); an empty list when the state shows as it should.
 */
export function listInlineOverrides(rec, computed) {
  if (rec.state === STATE.FLAGGED && !computed.filter.includes('blur')) {
    return [['filter', 'blur(28px) saturate(0.5)'], ['clip-path', 'inset(0)']];
  }
  if (isHiddenState(rec.state) && rec.kind === 'img' && computed.visibility !== 'hidden') {
    return [['visibility', 'hidden']];
  }
  if (isHiddenState(rec.state) && rec.kind === 'bg' && computed.backgroundImage !== 'none') {
    return [['background-image', 'none']];
  }
  return [];
}

/** Delays that double from `first` up to `max`, back to `first` on reset. */
export class Backoff {
  constructor({ first, max }) {
    this.first = first;
    this.max = max;
    this.delay = first;
  }

  /** The delay to wait now; the next call waits twice as long (at most `max`). */
  next() {
    const delay = this.delay;
    this.delay = Math.min(delay * 2, this.max);
    return delay;
  }

  reset() {
    this.delay = this.first;
  }
}
