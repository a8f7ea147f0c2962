/**
 * The per-image state machine, as pure logic: no DOM, no timers, so it runs (and is tested) in
 * node. A record holds what is known about one image element; each transition below changes the
 * record and says what the page side (image_filter.js) has to do: write the new state into the
 * element (hiding.js), arm the time limit, ask, ask again. `state` is also the value of the
 * element's `data-simclip` attribute, which the pre-hide stylesheet keys on.
 *
 *   (null)     seen, not measured yet: an <img> stays hidden by the pre-hide stylesheet
 *   pending    measured, waiting for its verdict: hidden (an <img> or a background shows a quiet
 *              "checking" placeholder in its own box); a server that answers "busy" or "loading,
 *              retry later" keeps it pending
 *   flagged    over a threshold: blurred, with a warning naming the categories
 *   revealed   flagged, but the user clicked "Show"
 *   clean      checked, below every threshold: shown
 *   skip       not checked by rule (too small, private host, not http): shown
 *   unchecked  no verdict in time, the server unavailable, or the picture could not be read
 *              (`why` says which): shown (fail open)
 *   waiting    the server is down and the user chose to keep images hidden
 *
 *   null -box-> pending -verdict-> clean | flagged <-show/hide-> revealed
 *                       -skipped-> skip
 *                       -time limit, unavailable, unreadable-> unchecked | waiting -server back-> ...
 *
 * Never stuck: an element without a box (display: none, a closed <details>, an inactive tab) is
 * neither measured nor timed; the browser tells the page side when it gets one (ResizeObserver,
 * IntersectionObserver), with no retry counter to run out. The time limit starts when a hidden
 * picture is on screen (`rec.deadline`), however late that is. It follows the server (timeLimitMs):
 * as long as the server's measured cost per picture says the pictures ahead of this one take,
 * and longer while the server says the verdict is coming (extendDeadline), never past the user's
 * cap; only "keep images hidden while the server is down", with the server down, holds a
 * picture past it.
 */
import { VERDICT, isServerComing, isServerDown } from '../shared/messages.js';
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
// While the server is unavailable, one waiting image is asked again after 2, 4, 8, 16, then every
// 30 s: the worker re-probes the server on that ask, and once it is back every waiting image is.
export const RECOVERY_MS = Object.freeze({ first: 2000, max: 30000 });

/**
 * The time limit of a picture on screen (timeLimitMs). The server measures its own cost per
 * picture at start (/v1/health `cost.per_picture_ms`), on an idle machine and for one picture,
 * hence the slack; the floor covers fetching the picture's bytes (the worker gives that 15 s).
 */
export const WAIT = Object.freeze({
  floorMs: 15000, // never less (unless the user's cap is less)
  unknownMs: 15000, // a server that reports no cost (older, or not measured yet)
  slack: 1.5, // times the measured cost per picture
  marginMs: 2000, // plus this, for the messages and the worker's fetch
});
/** A "busy" or "loading" answer is asked again after its Retry-After, within these bounds. */
export const RETRY_AFTER_MS = Object.freeze({ min: 100, max: 30000 }); // the server's shed answers say >= 100 ms

/** How soon a picture is wanted: on screen, near it (about a screen away), or far. */
export const PRIORITY = Object.freeze({ ON_SCREEN: 0, NEAR: 1, FAR: 2 });

// Kinds whose element is the picture (a replaced element): measured as an image (MIN_SIDE.image).
const REPLACED_KINDS = new Set(['img', 'svg', 'input', 'video', 'canvas']);
// Kinds whose element's box says nothing of the picture's size before it has loaded (a list
// marker sits beside its item's box; an element sized by its `content` picture grows when it
// loads): no size is too small, each is checked (a small bullet or icon is hidden until then).
const UNSIZED_KINDS = new Set(['list-style', 'content']);

/** True for a kind whose box says nothing of its picture's size (UNSIZED_KINDS): its file is measured instead. */
export const isUnsizedKind = (kind) => UNSIZED_KINDS.has(kind);

/** The smallest side, in px on screen, of a box whose picture of `kind` is checked. */
const minSideOf = (kind) => (UNSIZED_KINDS.has(kind) ? 0 : REPLACED_KINDS.has(kind) ? MIN_SIDE.image : MIN_SIDE.background);

/** Hidden until decided: pending, or waiting for a server that is down. */
export const isHiddenState = (state) => HIDDEN_STATES.has(state);
/** Flagged and revealed images carry a warning (a label, or a way to hide it again). */
export const hasOverlay = (state) => state === STATE.FLAGGED || state === STATE.REVEALED;

/**
 * A new record for an element showing `url`; `kind` is 'img', 'bg' (a CSS background image),
 * 'svg' (an SVG <image>), 'input' (an `<input type=image>`), 'before' / 'after' (the element's
 * pseudo-element's picture), 'content' / 'list-style' / 'border-image' (a style part's picture,
 * picture_sources.js STYLE_PARTS), 'video'
 * (a poster or frames) or 'canvas' (its pixels; `url` is their fingerprint, canvas_pixels.js). `timer`, `retryTimer`, `inline` and `pausedByUs` belong to the page side
 * (the time-limit timer, the ask after a Retry-After, our inline style overrides, a video we paused).
 */
export function createRecord({ id, el, kind, url }) {
  return {
    id, el, kind, url,
    state: null, sized: false, asked: false,
    near: false, onScreen: false, deadline: null, armedAt: null, deadlineSetAt: null, area: 0, faded: null,
    verdict: null, warnings: [], revealed: false, why: '',
    timer: 0, retryTimer: 0, inline: false, pausedByUs: false, ownLabel: undefined,
  };
}

/** True while the element hides its picture: not decided yet (null, pending) or waiting for the server. */
export const isHidden = (rec) => rec.state === null || isHiddenState(rec.state);

/** True for an <img> file that is broken, empty or too small to be a meme (it is skipped). */
export function isTooSmallFile({ url, width, height }) {
  return !url || width === 0 || Math.min(width, height) < MIN_SIDE.file;
}

/** What seeing an element's box found (see seeBox). */
export const SEEN = Object.freeze({
  NO_BOX: 'no_box', // no box (not laid out): wait until the browser gives it one
  TOO_SMALL: 'too_small', // below the minimum size: shown (skip); checked if it grows
  READY: 'ready', // sized and tracked: ask by askPriority
});

/**
 * The element's box and where it is: `near` within about a screen of the viewport, `onScreen` in
 * it. The first box big enough makes a new record pending (hidden until its verdict); a hidden
 * record on screen gets its time limit (`rec.deadline`, ms on the `now` clock) if it has none.
 *
 * @returns {{seen: string, painted: boolean, armed: boolean}} `painted`: the state changed, write
 *   it; `armed`: a deadline was set now, start its timer.
 */
export function seeBox(rec, { width, height, near, onScreen }, { now, limitMs }) {
  if (!(width > 0 && height > 0)) {
    rec.near = false;
    rec.onScreen = false;
    return { seen: SEEN.NO_BOX, painted: false, armed: false };
  }
  let painted = false;
  if (!rec.sized) {
    if (Math.min(width, height) < minSideOf(rec.kind)) {
      painted = rec.state !== STATE.SKIP;
      rec.state = STATE.SKIP;
      rec.why = 'small';
      return { seen: SEEN.TOO_SMALL, painted, armed: false };
    }
    rec.sized = true;
    if (rec.state === null || rec.state === STATE.SKIP) {
      rec.state = STATE.PENDING;
      rec.why = '';
      painted = true;
    }
  }
  rec.onScreen = Boolean(onScreen);
  rec.near = Boolean(near) || rec.onScreen;
  rec.area = width * height;
  return { seen: SEEN.READY, painted, armed: armDeadline(rec, now, limitMs) };
}

/** Start the time limit of a hidden record that is on screen and has none. True when set now. */
export function armDeadline(rec, now, limitMs) {
  if (!rec.onScreen || !rec.sized || !isHidden(rec) || rec.deadline !== null) return false;
  rec.deadline = now + limitMs;
  rec.armedAt = now;
  rec.deadlineSetAt = now;
  return true;
}

/**
 * How long a picture coming on screen may wait hidden for its verdict (ms): what the server says
 * the pictures ahead of it and it take (`perPictureMs` × (`ahead` + 1), with WAIT's slack), never
 * less than WAIT.floorMs and never more than the user's `capMs`. Without a measured cost,
 * WAIT.unknownMs (within the cap).
 *
 * @param {{capMs: number, perPictureMs?: number|null, ahead?: number}} load `ahead`: the pictures
 *   the server has queued plus those this page has asked about or will ask about first
 */
export function timeLimitMs({ capMs, perPictureMs = null, ahead = 0 }) {
  const expected = perPictureMs > 0 ? WAIT.slack * perPictureMs * (Math.max(0, ahead) + 1) + WAIT.marginMs : WAIT.unknownMs;
  return Math.min(capMs, Math.max(WAIT.floorMs, expected));
}

/**
 * True while the server says the record's verdict is coming: it is still pending and either its
 * last answer was "busy" or "loading, retry later", or the server answered this page since the
 * record's deadline was set (`lastAnswerAt`, on the same clock), so the queue ahead of it moves.
 */
export function isComing(rec, lastAnswerAt) {
  if (rec.state !== STATE.PENDING || rec.deadline === null) return false;
  return isServerComing(rec.verdict) || (lastAnswerAt !== null && lastAnswerAt > rec.deadlineSetAt);
}

/**
 * The deadline came while the verdict is coming (`coming`, see isComing): it moves on by a fresh
 * `limitMs`, but never past the user's `capMs` counted from when the limit started. True when it
 * moved (start its timer again); false when the time limit is really up (timeOut decides).
 */
export function extendDeadline(rec, now, { coming, limitMs, capMs }) {
  if (!coming || rec.deadline === null || now < rec.deadline) return false;
  const end = Math.min(rec.armedAt + capMs, now + limitMs);
  if (end <= now) return false;
  rec.deadline = end;
  rec.deadlineSetAt = now;
  return true;
}

/** A background image is hidden as soon as it is found, before it is measured. */
export function holdPending(rec) {
  rec.state = STATE.PENDING;
}

/** True while a measured record waits for its first ask, or for another one after the server came back. */
export const wantsAsk = (rec) => !rec.asked && rec.sized && (rec.state === STATE.PENDING || needsRetry(rec));

/** The priority to ask about `rec` with (PRIORITY), or null when it needs no ask now. */
export function askPriority(rec) {
  if (!wantsAsk(rec)) return null;
  return rec.onScreen ? PRIORITY.ON_SCREEN : rec.near ? PRIORITY.NEAR : PRIORITY.FAR;
}

/**
 * The time limit ran out (`now` >= `rec.deadline`): show the picture unchecked, or keep it
 * waiting if the user keeps images hidden and the server is known to be down. A waiting picture
 * whose server is back (or whose user no longer keeps pictures hidden) is released. False when
 * nothing changed (decided already, or a stale timer).
 */
export function timeOut(rec, { settings, healthOk }, now) {
  if (rec.deadline === null || now < rec.deadline) return false;
  rec.deadline = null;
  const holdBack = settings.keepHiddenWhenDown && !healthOk;
  if (rec.state === STATE.PENDING || (rec.state === STATE.WAITING && !holdBack)) {
    rec.state = holdBack ? STATE.WAITING : STATE.UNCHECKED;
    rec.why = holdBack ? 'server_down' : 'timeout';
    return true;
  }
  return false;
}

/** What kind of answer a verdict was (see receiveVerdict). */
export const ANSWER = Object.freeze({
  DECIDED: 'decided', // scores
  SKIPPED: 'skipped', // not checked by rule
  FAILED: 'failed', // this picture could not be read, or the message was refused: never "server down"
  UNAVAILABLE: 'unavailable', // the server is down, unpaired or busy: recovery asks again
  NO_ANSWER: 'no_answer', // the worker did not answer at all: asked again when the server is back
  RETRY_LATER: 'retry_later', // busy or loading: still hidden, asked again after `retryDelayMs`
});

/** When to ask again after a "busy" or "loading" answer: its Retry-After, within RETRY_AFTER_MS. */
export function retryDelayMs(verdict) {
  const ms = Number(verdict?.retryAfterS) * 1000;
  return Math.min(RETRY_AFTER_MS.max, Math.max(RETRY_AFTER_MS.min, Number.isFinite(ms) ? ms : 0));
}

/**
 * The worker's answer for the record's image: scores (decided with the current settings and
 * categories), a skip, a picture that could not be read (shown unchecked, `why` says why), the
 * server unavailable (shown unchecked; a picture still hidden is kept waiting if the user keeps
 * images hidden and the server is down, not merely busy), or anything else: a refused message or
 * no answer, which are never taken for a server that is down. A pending picture the server
 * answers "busy" or "loading" about stays pending, to be asked again (RETRY_LATER). The time
 * limit keeps running: a pending or waiting picture is released when it runs out unless the
 * server is known down then.
 */
export function receiveVerdict(rec, verdict, context) {
  rec.verdict = verdict;
  const status = verdict?.status;
  if (rec.state === STATE.PENDING && isServerComing(verdict)) {
    rec.why = String(verdict.reason);
    return ANSWER.RETRY_LATER;
  }
  if (status === VERDICT.OK) {
    decide(rec, context);
    return ANSWER.DECIDED;
  }
  if (status === VERDICT.SKIPPED) {
    rec.state = STATE.SKIP;
    rec.why = String(verdict.reason ?? 'skipped');
    return ANSWER.SKIPPED;
  }
  if (status === VERDICT.UNAVAILABLE) {
    const holdBack = context.settings.keepHiddenWhenDown && isServerDown(verdict) && isHidden(rec);
    rec.state = holdBack ? STATE.WAITING : STATE.UNCHECKED;
    rec.why = String(verdict.reason ?? 'unavailable');
    return ANSWER.UNAVAILABLE;
  }
  rec.state = STATE.UNCHECKED;
  if (verdict) {
    rec.why = String(verdict.reason ?? verdict.error ?? 'failed');
    return ANSWER.FAILED;
  }
  rec.why = 'no_answer';
  return ANSWER.NO_ANSWER;
}

/** Flagged (or revealed, if the user asked to see it), or clean, from the scores. */
function decide(rec, { settings, categories }) {
  rec.warnings = listActiveWarnings(rec.verdict.scores, categories, settings);
  rec.state = rec.warnings.length === 0 ? STATE.CLEAN : rec.revealed ? STATE.REVEALED : STATE.FLAGGED;
  rec.why = '';
}

/** True once the record has scores from the server. */
export const hasScores = (rec) => rec.verdict?.status === VERDICT.OK;

/**
 * Settings or categories changed: decide again from the same scores (no new request); a picture
 * held back for a down server is released when the user no longer keeps pictures hidden. False
 * when nothing changed.
 */
export function redecide(rec, context) {
  if (hasScores(rec)) {
    decide(rec, context);
    return true;
  }
  if (rec.state === STATE.WAITING && !context.settings.keepHiddenWhenDown) {
    rec.state = STATE.UNCHECKED;
    return true;
  }
  return false;
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

/** Shown unchecked or kept waiting because the server was unavailable (recovery asks these again). */
export function isUnavailable(rec) {
  return (rec.state === STATE.UNCHECKED || rec.state === STATE.WAITING) && rec.verdict?.status === VERDICT.UNAVAILABLE;
}

/** Pending after a "busy" or "loading" answer: asked again after its Retry-After, or at once when the server is back. */
export const isRetryingLater = (rec) => rec.state === STATE.PENDING && isServerComing(rec.verdict);

/**
 * Shown or held without scores because of the server (timed out, unavailable, no answer): asked
 * again when the server is back. A picture that could not be read is not.
 */
export function needsRetry(rec) {
  if (isRetryingLater(rec)) return true;
  if (rec.state !== STATE.UNCHECKED && rec.state !== STATE.WAITING) return false;
  return rec.verdict === null || rec.verdict.status === VERDICT.UNAVAILABLE;
}

/**
 * The server is back: a record that needs a retry is to be asked again (true); a waiting one
 * gets a fresh time limit from `now` if it is on screen (else when it comes on screen).
 */
export function serverBack(rec, now, limitMs) {
  if (!needsRetry(rec)) return false;
  rec.asked = false;
  if (rec.state === STATE.WAITING) {
    rec.state = STATE.PENDING;
    rec.deadline = null;
    armDeadline(rec, now, limitMs);
  }
  return true;
}

/**
 * One verdict for a video from the answers about its parts (`[{part, verdict}]`, part 'poster' or
 * 'frames'; frames captured in the page, or the video itself sent by URL): flagged as soon as any
 * part is (`isFlagged`), with each category's highest score; otherwise decided only when its
 * frames were checked, or when it is too long to be a meme (`framesNeeded` false) and its poster
 * was. A video whose frames could not be read is not called clean for its poster alone: the
 * frames' failure is the answer (shown unchecked, with the reason).
 */
export function combineVideoVerdicts(answers, { isFlagged, framesNeeded = true }) {
  const ok = answers.filter((a) => a.verdict?.status === VERDICT.OK);
  const merged = () => {
    const scores = {};
    for (const { verdict } of ok) {
      for (const [id, s] of Object.entries(verdict.scores ?? {})) scores[id] = Math.max(scores[id] ?? 0, s);
    }
    return { status: VERDICT.OK, sha256: ok[0].verdict.sha256, scores, parts: ok.length };
  };
  if (ok.some((a) => isFlagged(a.verdict))) return merged();
  if (!framesNeeded) return ok.length > 0 ? merged() : { status: VERDICT.SKIPPED, reason: 'long_video' };
  if (ok.some((a) => a.part === 'frames')) return merged();
  const failure = answers.filter((a) => a.part === 'frames').pop() ?? answers[answers.length - 1];
  return failure?.verdict ?? null;
}

/** Counted on the badge: decided from scores and over a threshold (revealed ones too). */
export const isCountedFlagged = (rec) => rec.warnings.length > 0 && hasScores(rec);

/**
 * Of the records showing one picture in one place (X's background <div> and its invisible <img>,
 * Reddit's blurred backdrop and the post image), the one that carries the warning: a member the
 * site does not fade or blur (`faded`), then the largest on screen, then the oldest.
 */
export function choosePrimary(members) {
  return [...members].sort((a, b) => Number(Boolean(a.faded)) - Number(Boolean(b.faded)) || b.area - a.area || a.id - b.id)[0];
}

/** Each picture counted once: `groupOf(rec)` lists the records showing the same picture in the same place. */
export function countPictures(records, groupOf) {
  let n = 0;
  for (const rec of records) {
    if (!isCountedFlagged(rec)) continue;
    if (groupOf(rec).some((other) => other !== rec && isCountedFlagged(other) && other.id < rec.id)) continue;
    n += 1;
  }
  return n;
}

/** The record's state for the popup's and tests' counts ('measuring' before it has one). */
export const summaryState = (rec) => rec.state ?? 'measuring';

/** True when the state depends on styles a site could override (hidden or blurred). */
export const needsStyleCheck = (state) => isHiddenState(state) || state === STATE.FLAGGED;

/** How prehide.css draws a flagged picture's card (repeated inline when a site overrides it). */
export const CARD_BACKGROUND = 'var(--simclip-card, none) center / 100% 100% no-repeat, #2a1838';
export const PICTURE_OUT = '-100000px -100000px'; // object-position that moves an <img>'s picture out of its box
/** How prehide.css tints a pending background (its "checking" placeholder; repeated inline when a site overrides it). */
export const CHECKING_BACKGROUND = 'linear-gradient(rgba(128, 128, 128, 0.16), rgba(128, 128, 128, 0.16))';
const CARD_COLOR = 'rgb(42, 24, 56)'; // #2a1838, as computed styles give it

/**
 * The inline `!important` properties that put the record's state back after a site overrode it
 * (`computed`: the element's computed style); an empty list when the state shows as it should.
 */
export function listInlineOverrides(rec, computed) {
  if (rec.state === STATE.FLAGGED) {
    if (rec.kind === 'img' || rec.kind === 'video' || rec.kind === 'canvas') {
      return computed.objectPosition === PICTURE_OUT && computed.backgroundColor === CARD_COLOR
        ? [] : [['object-position', PICTURE_OUT], ['background', CARD_BACKGROUND]];
    }
    if (rec.kind === 'bg') return computed.backgroundColor === CARD_COLOR ? [] : [['background', CARD_BACKGROUND]];
    if ((rec.kind === 'svg' || rec.kind === 'input') && !computed.filter.includes('blur')) {
      return [['filter', 'blur(28px) saturate(0.5)'], ['clip-path', 'inset(0)']];
    }
    return [];
  }
  if (rec.state === STATE.PENDING && rec.kind === 'img') {
    // The "checking" placeholder: the picture out of its box (the tint is only decoration).
    return computed.objectPosition === PICTURE_OUT ? [] : [['object-position', PICTURE_OUT]];
  }
  if (isHiddenState(rec.state) && ['img', 'svg', 'input', 'video', 'canvas'].includes(rec.kind) && computed.visibility !== 'hidden') {
    return [['visibility', 'hidden']];
  }
  if (rec.state === STATE.PENDING && rec.kind === 'bg' && computed.backgroundImage.includes('url(')) {
    return [['background-image', CHECKING_BACKGROUND]];
  }
  if (rec.state === STATE.WAITING && rec.kind === 'bg' && computed.backgroundImage !== 'none') {
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
