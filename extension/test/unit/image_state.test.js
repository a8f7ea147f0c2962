import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  ANSWER, Backoff, CARD_BACKGROUND, CHECKING_BACKGROUND, PICTURE_OUT, PRIORITY, choosePrimary, countPictures, RECOVERY_MS, SEEN, STATE, askPriority, createRecord, hasOverlay, hideAgain, holdPending,
  isCountedFlagged, isHidden, isHiddenState, isTooSmallFile, isUnavailable, listInlineOverrides, needsRetry,
  needsStyleCheck, receiveVerdict, redecide, reveal, seeBox, serverBack, summaryState, timeOut, wantsAsk,
  WAIT, extendDeadline, isComing, isRetryingLater, retryDelayMs, timeLimitMs,
} from '../../content/image_state.js';
import { VERDICT } from '../../shared/messages.js';
import { normalizeSettings } from '../../shared/settings.js';
import { CATEGORIES } from './fixtures.js';

const context = (settings = {}) => ({ settings: normalizeSettings(settings), categories: CATEGORIES });
const img = () => createRecord({ id: 1, el: {}, kind: 'img', url: 'https://x.test/a.png' });
const bg = () => createRecord({ id: 2, el: {}, kind: 'bg', url: 'https://x.test/b.png' });
const ok = (scores) => ({ status: VERDICT.OK, sha256: 'ab', scores });
const HARMFUL = ok({ harmful: 0.9, misogynous: 0.1 });
const HARMLESS = ok({ harmful: 0.1, misogynous: 0.1 });
const UNAVAILABLE = { status: VERDICT.UNAVAILABLE, reason: 'unreachable' };
const LIMIT = 15000;
const at = (now) => ({ now, limitMs: LIMIT });
const onScreen = (width = 400, height = 300) => ({ width, height, near: true, onScreen: true });
const up = { settings: normalizeSettings({}), healthOk: true };

/** A record measured on screen at time 0 and waiting for its verdict (its limit runs out at LIMIT). */
function pendingImage() {
  const rec = img();
  seeBox(rec, onScreen(), at(0));
  rec.asked = true;
  return rec;
}

test('a new image has no state yet (the stylesheet hides it), is unmeasured and not asked about', () => {
  const rec = img();
  assert.equal(rec.state, null);
  assert.equal(isHidden(rec), true);
  assert.equal(rec.sized, false);
  assert.equal(rec.asked, false);
  assert.equal(askPriority(rec), null);
  assert.equal(summaryState(rec), 'measuring');
});

test('an image file that is broken, empty or under 100 px is skipped; a large one is checked', () => {
  assert.equal(isTooSmallFile({ url: '', width: 500, height: 500 }), true);
  assert.equal(isTooSmallFile({ url: 'u', width: 0, height: 0 }), true);
  assert.equal(isTooSmallFile({ url: 'u', width: 500, height: 99 }), true);
  assert.equal(isTooSmallFile({ url: 'u', width: 100, height: 100 }), false);
});

test('an image measured on screen becomes pending, hidden until its verdict, and its time limit starts', () => {
  const rec = img();
  assert.deepEqual(seeBox(rec, onScreen(300, 200), at(1000)), { seen: SEEN.READY, painted: true, armed: true });
  assert.equal(rec.state, STATE.PENDING);
  assert.equal(rec.sized, true);
  assert.equal(isHiddenState(rec.state), true);
  assert.equal(rec.deadline, 1000 + LIMIT);
  assert.equal(askPriority(rec), PRIORITY.ON_SCREEN);
});

test('an image measured away from the screen is pending without a time limit, asked by distance', () => {
  const near = img();
  seeBox(near, { width: 300, height: 200, near: true, onScreen: false }, at(0));
  assert.equal(near.state, STATE.PENDING);
  assert.equal(near.deadline, null);
  assert.equal(askPriority(near), PRIORITY.NEAR);
  const far = img();
  seeBox(far, { width: 300, height: 200, near: false, onScreen: false }, at(0));
  assert.equal(askPriority(far), PRIORITY.FAR);
  seeBox(far, onScreen(300, 200), at(5000)); // scrolled to
  assert.equal(far.deadline, 5000 + LIMIT);
  assert.equal(askPriority(far), PRIORITY.ON_SCREEN);
});

test('an image under 64 px on screen is shown unchecked as too small, a background under 100 px too; either is checked if it grows', () => {
  const small = img();
  assert.equal(seeBox(small, onScreen(63, 300), at(0)).seen, SEEN.TOO_SMALL);
  assert.equal(small.state, STATE.SKIP);
  assert.equal(askPriority(small), null);
  assert.equal(seeBox(img(), onScreen(64, 64), at(0)).seen, SEEN.READY);
  const back = bg();
  holdPending(back);
  assert.equal(seeBox(back, onScreen(99, 300), at(0)).seen, SEEN.TOO_SMALL);
  assert.equal(back.state, STATE.SKIP);
  assert.equal(back.sized, false);
  assert.deepEqual(seeBox(small, onScreen(300, 300), at(10)), { seen: SEEN.READY, painted: true, armed: true });
  assert.equal(small.state, STATE.PENDING);
});

test('a list marker or a content picture is checked at any box size: its box says nothing of the picture before it loads', () => {
  for (const kind of ['list-style', 'content']) {
    const rec = createRecord({ id: 1, el: {}, kind, url: 'https://site.test/m.png' });
    holdPending(rec);
    assert.equal(seeBox(rec, onScreen(300, 18), at(0)).seen, SEEN.READY, kind); // a list item's line
    assert.equal(rec.state, STATE.PENDING, kind);
  }
  const border = createRecord({ id: 2, el: {}, kind: 'border-image', url: 'https://site.test/b.png' });
  holdPending(border);
  assert.equal(seeBox(border, onScreen(99, 300), at(0)).seen, SEEN.TOO_SMALL, 'a border image is measured as a background');
});

test('a background hidden as soon as it was found stays pending when it is measured', () => {
  const rec = bg();
  holdPending(rec);
  assert.equal(rec.state, STATE.PENDING);
  assert.equal(seeBox(rec, onScreen(300, 300), at(0)).painted, false);
  assert.equal(rec.state, STATE.PENDING);
});

test('an element without a box is neither measured nor timed, however long it waits; a box later starts both', () => {
  const rec = img();
  for (const t of [0, 1000, 60000, 3600000]) {
    assert.equal(seeBox(rec, { width: 0, height: 0, near: false, onScreen: false }, at(t)).seen, SEEN.NO_BOX);
  }
  assert.equal(rec.state, null);
  assert.equal(rec.deadline, null);
  assert.equal(askPriority(rec), null);
  seeBox(rec, onScreen(), at(3600000));
  assert.equal(rec.state, STATE.PENDING);
  assert.equal(rec.deadline, 3600000 + LIMIT);
});

test('a measured image that loses its box (its tab closed) is no longer on screen or near', () => {
  const rec = pendingImage();
  seeBox(rec, { width: 0, height: 0, near: false, onScreen: false }, at(10));
  assert.equal(rec.onScreen, false);
  assert.equal(rec.near, false);
  assert.equal(rec.state, STATE.PENDING);
});

test('a verdict over a threshold flags the image with its warnings, highest score first', () => {
  const rec = pendingImage();
  assert.equal(receiveVerdict(rec, ok({ harmful: 0.6, misogynous: 0.9 }), context()), ANSWER.DECIDED);
  assert.equal(rec.state, STATE.FLAGGED);
  assert.deepEqual(rec.warnings.map((w) => w.id), ['misogynous', 'harmful']);
  assert.equal(hasOverlay(rec.state), true);
  assert.equal(isCountedFlagged(rec), true);
});

test('a verdict below every threshold shows the image as clean', () => {
  const rec = pendingImage();
  receiveVerdict(rec, HARMLESS, context());
  assert.equal(rec.state, STATE.CLEAN);
  assert.deepEqual(rec.warnings, []);
  assert.equal(hasOverlay(rec.state), false);
  assert.equal(isCountedFlagged(rec), false);
});

test('a warning category the user switched off does not flag the image', () => {
  const rec = pendingImage();
  receiveVerdict(rec, HARMFUL, context({ categories: { harmful: false } }));
  assert.equal(rec.state, STATE.CLEAN);
});

test('a skipped image (private host, not an image) is shown unchecked and never retried', () => {
  const rec = pendingImage();
  assert.equal(receiveVerdict(rec, { status: VERDICT.SKIPPED, reason: 'not_image' }, context()), ANSWER.SKIPPED);
  assert.equal(rec.state, STATE.SKIP);
  assert.equal(isUnavailable(rec), false);
  assert.equal(needsRetry(rec), false);
});

test('an image the server could not check is shown unchecked, and kept waiting if the user keeps images hidden', () => {
  const shown = pendingImage();
  assert.equal(receiveVerdict(shown, UNAVAILABLE, context()), ANSWER.UNAVAILABLE);
  assert.equal(shown.state, STATE.UNCHECKED);
  assert.equal(isHiddenState(shown.state), false);
  const held = pendingImage();
  receiveVerdict(held, UNAVAILABLE, context({ keepHiddenWhenDown: true }));
  assert.equal(held.state, STATE.WAITING);
  assert.equal(isHiddenState(held.state), true);
});

test('a refused message is a failure of this picture, never a server that is down: shown, not held, not retried', () => {
  const rec = pendingImage();
  const refused = { error: 'simclip/classify: field url is missing or invalid' };
  assert.equal(receiveVerdict(rec, refused, context({ keepHiddenWhenDown: true })), ANSWER.FAILED);
  assert.equal(rec.state, STATE.UNCHECKED);
  assert.equal(isUnavailable(rec), false);
  assert.equal(needsRetry(rec), false);
});

test('a picture the worker could not read (fetch failed, HTTP error, too large) is marked unchecked with the reason, never clean', () => {
  const rec = pendingImage();
  assert.equal(receiveVerdict(rec, { status: VERDICT.FAILED, reason: 'http_403' }, context({ keepHiddenWhenDown: true })), ANSWER.FAILED);
  assert.equal(rec.state, STATE.UNCHECKED);
  assert.equal(rec.why, 'http_403');
  assert.equal(needsRetry(rec), false);
});

test('a busy server is not a down server: a pending picture stays hidden and is asked again after its Retry-After', () => {
  const rec = pendingImage();
  const busy = { status: VERDICT.UNAVAILABLE, reason: 'busy', retryAfterS: 3 };
  assert.equal(receiveVerdict(rec, busy, context({ keepHiddenWhenDown: true })), ANSWER.RETRY_LATER);
  assert.equal(rec.state, STATE.PENDING);
  assert.equal(isRetryingLater(rec), true);
  assert.equal(needsRetry(rec), true);
  assert.equal(retryDelayMs(busy), 3000);
  assert.equal(isUnavailable(rec), false); // not recovery's: its own Retry-After asks again
});

test('a busy answer about a picture already shown unchecked leaves it shown, for recovery to ask again', () => {
  const rec = pendingImage();
  timeOut(rec, up, LIMIT);
  rec.asked = true;
  assert.equal(receiveVerdict(rec, { status: VERDICT.UNAVAILABLE, reason: 'busy' }, context({ keepHiddenWhenDown: true })), ANSWER.UNAVAILABLE);
  assert.equal(rec.state, STATE.UNCHECKED);
  assert.equal(isUnavailable(rec), true);
});

test('no answer object at all shows the image unchecked, asked again only once the server is back', () => {
  const rec = pendingImage();
  assert.equal(receiveVerdict(rec, null, context({ keepHiddenWhenDown: true })), ANSWER.NO_ANSWER);
  assert.equal(rec.state, STATE.UNCHECKED);
  assert.equal(isUnavailable(rec), false);
  assert.equal(needsRetry(rec), true);
});

test('an image without a verdict in time is shown unchecked, or kept waiting while the server is known down', () => {
  const shown = pendingImage();
  assert.equal(timeOut(shown, { settings: normalizeSettings({}), healthOk: false }, LIMIT), true);
  assert.equal(shown.state, STATE.UNCHECKED);
  const held = pendingImage();
  timeOut(held, { settings: normalizeSettings({ keepHiddenWhenDown: true }), healthOk: false }, LIMIT);
  assert.equal(held.state, STATE.WAITING);
  const upButSlow = pendingImage();
  timeOut(upButSlow, { settings: normalizeSettings({ keepHiddenWhenDown: true }), healthOk: true }, LIMIT);
  assert.equal(upButSlow.state, STATE.UNCHECKED);
});

test('a timer that fires before the deadline changes nothing', () => {
  const rec = pendingImage();
  assert.equal(timeOut(rec, up, LIMIT - 1), false);
  assert.equal(rec.state, STATE.PENDING);
});

test('a time limit that runs out after the verdict changes nothing', () => {
  const rec = pendingImage();
  receiveVerdict(rec, HARMFUL, context());
  assert.equal(timeOut(rec, { settings: normalizeSettings({}), healthOk: false }, LIMIT), false);
  assert.equal(rec.state, STATE.FLAGGED);
});

test('a verdict arriving after the time limit still decides the image', () => {
  const rec = pendingImage();
  timeOut(rec, up, LIMIT);
  receiveVerdict(rec, HARMFUL, context());
  assert.equal(rec.state, STATE.FLAGGED);
});

test('an image answered "unavailable" is asked again by recovery; one still waiting for its first answer is not', () => {
  const answered = pendingImage();
  receiveVerdict(answered, UNAVAILABLE, context());
  assert.equal(isUnavailable(answered), true);
  assert.equal(needsRetry(answered), true);
  const timedOut = pendingImage();
  timeOut(timedOut, { settings: normalizeSettings({}), healthOk: false }, LIMIT);
  assert.equal(isUnavailable(timedOut), false);
  assert.equal(needsRetry(timedOut), true); // but asked again once the server is back
});

test('when the server is back, a waiting picture is hidden and asked again with a fresh time limit', () => {
  const rec = pendingImage();
  receiveVerdict(rec, UNAVAILABLE, context({ keepHiddenWhenDown: true }));
  assert.equal(rec.state, STATE.WAITING);
  assert.equal(wantsAsk(rec), false);
  assert.equal(serverBack(rec, 90000, LIMIT), true);
  assert.equal(rec.state, STATE.PENDING);
  assert.equal(rec.deadline, 90000 + LIMIT);
  assert.equal(askPriority(rec), PRIORITY.ON_SCREEN);
  assert.equal(timeOut(rec, { settings: normalizeSettings({ keepHiddenWhenDown: true }), healthOk: true }, 90000 + LIMIT), true);
  assert.equal(rec.state, STATE.UNCHECKED);
});

test('a picture held for a down server is released when the user stops keeping pictures hidden', () => {
  const rec = pendingImage();
  receiveVerdict(rec, UNAVAILABLE, context({ keepHiddenWhenDown: true }));
  assert.equal(redecide(rec, context({ keepHiddenWhenDown: false })), true);
  assert.equal(rec.state, STATE.UNCHECKED);
  assert.equal(isHidden(rec), false);
});

test('a decided image is neither unavailable nor retried', () => {
  const rec = pendingImage();
  receiveVerdict(rec, HARMLESS, context());
  assert.equal(isUnavailable(rec), false);
  assert.equal(needsRetry(rec), false);
});

test('showing a flagged image reveals it, hiding it blurs it again', () => {
  const rec = pendingImage();
  receiveVerdict(rec, HARMFUL, context());
  assert.equal(reveal(rec), true);
  assert.equal(rec.state, STATE.REVEALED);
  assert.equal(hasOverlay(rec.state), true); // the "Hide" button
  assert.equal(isCountedFlagged(rec), true); // still counted on the badge
  assert.equal(hideAgain(rec), true);
  assert.equal(rec.state, STATE.FLAGGED);
  assert.equal(hideAgain(rec), false);
});

test('a flagged image the user revealed stays revealed when the same verdict arrives again', () => {
  const rec = pendingImage();
  receiveVerdict(rec, HARMFUL, context());
  reveal(rec);
  receiveVerdict(rec, HARMFUL, context());
  assert.equal(rec.state, STATE.REVEALED);
});

test('a revealed image that a settings change made clean comes back revealed, not blurred, when flagged again', () => {
  const rec = pendingImage();
  receiveVerdict(rec, HARMFUL, context());
  reveal(rec);
  assert.equal(redecide(rec, context({ categories: { harmful: false } })), true);
  assert.equal(rec.state, STATE.CLEAN);
  redecide(rec, context());
  assert.equal(rec.state, STATE.REVEALED);
});

test('revealing or hiding an image that is not flagged changes nothing on screen', () => {
  const rec = pendingImage();
  receiveVerdict(rec, HARMLESS, context());
  assert.equal(reveal(rec), false);
  assert.equal(rec.state, STATE.CLEAN);
  assert.equal(hideAgain(rec), false);
  assert.equal(rec.state, STATE.CLEAN);
});

test('a higher sensitivity flags a clean image from the scores it already has', () => {
  const rec = pendingImage();
  receiveVerdict(rec, ok({ harmful: 0.4 }), context());
  assert.equal(rec.state, STATE.CLEAN);
  redecide(rec, context({ sensitivity: 5 }));
  assert.equal(rec.state, STATE.FLAGGED);
});

test('an image without scores is not decided again when the settings change', () => {
  const rec = pendingImage();
  receiveVerdict(rec, UNAVAILABLE, context());
  assert.equal(redecide(rec, context()), false);
  assert.equal(rec.state, STATE.UNCHECKED);
});

test('a site that put a flagged picture back in its box gets the warning card back inline; a covered one is left alone', () => {
  const rec = pendingImage();
  receiveVerdict(rec, HARMFUL, context());
  assert.equal(needsStyleCheck(rec.state), true);
  assert.deepEqual(listInlineOverrides(rec, { objectPosition: '50% 50%', backgroundColor: 'rgba(0, 0, 0, 0)' }),
    [['object-position', PICTURE_OUT], ['background', CARD_BACKGROUND]]);
  assert.deepEqual(listInlineOverrides(rec, { objectPosition: PICTURE_OUT, backgroundColor: 'rgb(42, 24, 56)' }), []);
  const back = bg();
  holdPending(back);
  receiveVerdict(back, HARMFUL, context());
  assert.deepEqual(listInlineOverrides(back, { backgroundColor: 'rgba(0, 0, 0, 0)' }), [['background', CARD_BACKGROUND]]);
});

test('a site that shows a pending image or background gets its checking placeholder back inline', () => {
  const image = pendingImage();
  assert.deepEqual(listInlineOverrides(image, { objectPosition: '50% 50%', visibility: 'visible' }), [['object-position', PICTURE_OUT]]);
  assert.deepEqual(listInlineOverrides(image, { objectPosition: PICTURE_OUT, visibility: 'visible' }), []);
  const back = bg();
  holdPending(back);
  assert.deepEqual(listInlineOverrides(back, { backgroundImage: 'url("b.png")' }), [['background-image', CHECKING_BACKGROUND]]);
  assert.deepEqual(listInlineOverrides(back, { backgroundImage: CHECKING_BACKGROUND }), []);
});

test('a site that shows a waiting image, video or background gets it hidden again inline', () => {
  const image = pendingImage();
  receiveVerdict(image, UNAVAILABLE, context({ keepHiddenWhenDown: true }));
  assert.equal(image.state, STATE.WAITING);
  assert.deepEqual(listInlineOverrides(image, { visibility: 'visible' }), [['visibility', 'hidden']]);
  assert.deepEqual(listInlineOverrides(image, { visibility: 'hidden' }), []);
  const video = createRecord({ id: 3, el: {}, kind: 'video', url: 'https://x.test/v.mp4' });
  holdPending(video);
  assert.deepEqual(listInlineOverrides(video, { visibility: 'visible' }), [['visibility', 'hidden']]);
  const back = bg();
  holdPending(back);
  receiveVerdict(back, UNAVAILABLE, context({ keepHiddenWhenDown: true }));
  assert.deepEqual(listInlineOverrides(back, { backgroundImage: 'url("b.png")' }), [['background-image', 'none']]);
  assert.deepEqual(listInlineOverrides(back, { backgroundImage: 'none' }), []);
});

test('shown images (clean, revealed, unchecked, skipped) need no style check', () => {
  for (const state of [STATE.CLEAN, STATE.REVEALED, STATE.UNCHECKED, STATE.SKIP]) assert.equal(needsStyleCheck(state), false, state);
  for (const state of [STATE.PENDING, STATE.WAITING, STATE.FLAGGED]) assert.equal(needsStyleCheck(state), true, state);
});

test('recovery waits 2, 4, 8, 16, then every 30 seconds, and starts afresh after a reset', () => {
  const backoff = new Backoff(RECOVERY_MS);
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => backoff.next()), [2000, 4000, 8000, 16000, 30000, 30000]);
  backoff.reset();
  assert.equal(backoff.next(), 2000);
});

test('of the elements showing one picture, the warning goes on one the site neither fades nor blurs, the largest', () => {
  const member = (id, area, faded) => ({ ...createRecord({ id, el: {}, kind: 'img', url: 'u' }), area, faded });
  const invisibleImg = member(1, 43200, true); // X: opacity 0
  const backgroundDiv = member(2, 43200, false);
  assert.equal(choosePrimary([invisibleImg, backgroundDiv]), backgroundDiv);
  const backdrop = member(3, 52000, true); // Reddit: blurred by the site, and larger
  const postImage = member(4, 43200, false);
  assert.equal(choosePrimary([backdrop, postImage]), postImage);
  assert.equal(choosePrimary([member(6, 100, false), member(5, 100, false)]).id, 5);
  assert.equal(choosePrimary([]), undefined);
});

test('a flagged picture shown by two elements counts once; the same meme in two posts counts twice', () => {
  const a = pendingImage();
  const b = { ...pendingImage(), id: 2 };
  const c = { ...pendingImage(), id: 3 };
  for (const rec of [a, b, c]) receiveVerdict(rec, HARMFUL, context());
  const groups = new Map([[a, [a, b]], [b, [a, b]], [c, [c]]]);
  assert.equal(countPictures([a, b, c], (rec) => groups.get(rec)), 2);
});

test('a video is flagged when its poster or any frame is, with each category\'s highest score', async () => {
  const { combineVideoVerdicts } = await import('../../content/image_state.js');
  const isFlagged = (v) => v?.status === VERDICT.OK && v.scores.harmful >= 0.5;
  const poster = { part: 'poster', verdict: ok({ harmful: 0.1 }) };
  const frames = [{ part: 'frames', verdict: ok({ harmful: 0.2 }) }, { part: 'frames', verdict: ok({ harmful: 0.8 }) }];
  assert.deepEqual(combineVideoVerdicts([poster, ...frames], { isFlagged }).scores, { harmful: 0.8 });
  assert.equal(combineVideoVerdicts([poster, frames[0]], { isFlagged }).status, VERDICT.OK); // clean: its frames were checked
  const flaggedPoster = { part: 'poster', verdict: ok({ harmful: 0.9 }) };
  assert.equal(combineVideoVerdicts([flaggedPoster], { isFlagged }).scores.harmful, 0.9);
});

test('a video whose frames could not be read is not called clean for its poster alone', async () => {
  const { combineVideoVerdicts } = await import('../../content/image_state.js');
  const isFlagged = (v) => v?.status === VERDICT.OK && v.scores.harmful >= 0.5;
  const poster = { part: 'poster', verdict: ok({ harmful: 0.1 }) };
  const unreadable = { part: 'frames', verdict: { status: VERDICT.FAILED, reason: 'unsupported_format' } };
  assert.deepEqual(combineVideoVerdicts([poster, unreadable], { isFlagged }), unreadable.verdict);
  // too long to be a meme: the poster decides, and without one it is not checked
  assert.equal(combineVideoVerdicts([poster], { isFlagged, framesNeeded: false }).status, VERDICT.OK);
  assert.equal(combineVideoVerdicts([], { isFlagged, framesNeeded: false }).status, VERDICT.SKIPPED);
});

// ------------------------------------------------------------ the time limit follows the server (issue 15, section 3)

test('without a measured cost the time limit is the old fixed 15 s, within the user cap', () => {
  assert.equal(timeLimitMs({ capMs: 60000 }), WAIT.unknownMs);
  assert.equal(WAIT.unknownMs, 15000);
  assert.equal(timeLimitMs({ capMs: 5000 }), 5000);
  assert.equal(timeLimitMs({ capMs: 60000, perPictureMs: null, ahead: 40 }), 15000);
});

test('a slow server with a queue gets as long as the pictures ahead take, never past the user cap', () => {
  // 2.5 s a picture (ViT-L fp32 on 2 CPU cores), 7 pictures ahead: 1.5 x 2.5 s x 8 + 2 s = 32 s
  assert.equal(timeLimitMs({ capMs: 60000, perPictureMs: 2500, ahead: 7 }), 32000);
  assert.equal(timeLimitMs({ capMs: 20000, perPictureMs: 2500, ahead: 7 }), 20000);
  assert.equal(timeLimitMs({ capMs: 120000, perPictureMs: 2500, ahead: 100 }), 120000);
});

test('a fast server keeps the floor: fetching the bytes has its own 15 s', () => {
  assert.equal(timeLimitMs({ capMs: 60000, perPictureMs: 30, ahead: 3 }), WAIT.floorMs);
  assert.equal(timeLimitMs({ capMs: 60000, perPictureMs: 30, ahead: -4 }), WAIT.floorMs); // nonsense counts as none
});

test('the cold CPU feed of issue 15: the eighth meme on screen waits for its verdict instead of showing unchecked', () => {
  // Eight memes come on screen at once; the server takes 2.5 s each, so the last one's verdict comes at 20 s.
  const capMs = 60000;
  const recs = Array.from({ length: 8 }, (_, i) => {
    const rec = createRecord({ id: i + 1, el: {}, kind: 'img', url: `https://x.test/${i}.png` });
    seeBox(rec, onScreen(), { now: 0, limitMs: timeLimitMs({ capMs, perPictureMs: 2500, ahead: i }) });
    return rec;
  });
  const last = recs[7];
  assert.ok(last.deadline > 20000, `deadline ${last.deadline}`);
  assert.equal(timeOut(last, up, 19999), false);
  receiveVerdict(last, HARMFUL, context());
  assert.equal(last.state, STATE.FLAGGED);
  // The old fixed limit would have shown it unchecked at 15 s.
  const old = createRecord({ id: 9, el: {}, kind: 'img', url: 'https://x.test/old.png' });
  seeBox(old, onScreen(), at(0));
  assert.equal(timeOut(old, up, 15000), true);
  assert.equal(old.state, STATE.UNCHECKED);
});

test('while the server answers the page, a pending picture on screen is not shown unchecked until the cap', () => {
  const capMs = 40000;
  const rec = pendingImage(); // deadline at 15 s
  assert.equal(isComing(rec, 12000), true); // the server answered another picture at 12 s
  assert.equal(extendDeadline(rec, LIMIT, { coming: isComing(rec, 12000), limitMs: LIMIT, capMs }), true);
  assert.equal(rec.deadline, 30000);
  assert.equal(timeOut(rec, up, 30000 - 1), false);
  // No answer since the deadline moved: the server is stuck, the picture is shown.
  assert.equal(isComing(rec, 12000), false);
  assert.equal(extendDeadline(rec, 30000, { coming: isComing(rec, 12000), limitMs: LIMIT, capMs }), false);
  assert.equal(timeOut(rec, up, 30000), true);
  assert.equal(rec.state, STATE.UNCHECKED);
});

test('the cap holds however long the server keeps saying the verdict is coming', () => {
  const capMs = 40000;
  const rec = pendingImage();
  receiveVerdict(rec, { status: VERDICT.UNAVAILABLE, reason: 'loading', retryAfterS: 2 }, context());
  let now = rec.deadline;
  while (extendDeadline(rec, now, { coming: isComing(rec, null), limitMs: LIMIT, capMs })) {
    assert.ok(rec.deadline <= capMs, `deadline ${rec.deadline}`);
    now = rec.deadline;
  }
  assert.equal(now, capMs);
  assert.equal(timeOut(rec, up, now), true);
  assert.equal(rec.state, STATE.UNCHECKED);
});

test('a deadline is not moved before it comes, nor for a picture already decided', () => {
  const early = pendingImage();
  assert.equal(extendDeadline(early, LIMIT - 1, { coming: true, limitMs: LIMIT, capMs: 60000 }), false);
  assert.equal(early.deadline, LIMIT);
  const decided = pendingImage();
  receiveVerdict(decided, HARMLESS, context());
  assert.equal(isComing(decided, LIMIT), false);
});

test('a loading server: the picture stays hidden and is asked again at once when the server is back, its time limit running on', () => {
  const rec = pendingImage();
  assert.equal(receiveVerdict(rec, { status: VERDICT.UNAVAILABLE, reason: 'loading', retryAfterS: 0.01 }, context()), ANSWER.RETRY_LATER);
  assert.equal(retryDelayMs(rec.verdict), 100); // never sooner than the server's shortest Retry-After (100 ms)
  assert.equal(retryDelayMs({ status: VERDICT.UNAVAILABLE, reason: 'busy', retryAfterS: 1.5 }), 1500); // a shed request's retry_after_ms
  assert.equal(retryDelayMs({ retryAfterS: 3600 }), 30000);
  assert.equal(isHidden(rec), true);
  assert.equal(serverBack(rec, 5000, LIMIT), true);
  assert.equal(rec.asked, false);
  assert.equal(rec.state, STATE.PENDING);
  assert.equal(rec.deadline, LIMIT);
  assert.equal(askPriority(rec), PRIORITY.ON_SCREEN);
});

test('a canvas is measured like an image: 64 px on screen is enough, under it is skipped until it grows', () => {
  const canvas = createRecord({ id: 4, el: {}, kind: 'canvas', url: 'canvas:480x360:0badf00d' });
  holdPending(canvas);
  assert.equal(seeBox(canvas, { width: 50, height: 80, near: true, onScreen: true }, { now: 0, limitMs: 1000 }).seen, 'too_small');
  assert.equal(canvas.state, STATE.SKIP);
  assert.equal(seeBox(canvas, { width: 80, height: 80, near: true, onScreen: true }, { now: 0, limitMs: 1000 }).seen, 'ready');
  assert.equal(canvas.state, STATE.PENDING);
});

test('a site that shows a pending canvas or uncovers a flagged one gets it hidden or its card back inline', () => {
  const canvas = createRecord({ id: 5, el: {}, kind: 'canvas', url: 'canvas:480x360:0badf00d' });
  holdPending(canvas);
  assert.deepEqual(listInlineOverrides(canvas, { visibility: 'visible', filter: 'none' }), [['visibility', 'hidden']]);
  assert.deepEqual(listInlineOverrides(canvas, { visibility: 'hidden', filter: 'none' }), []);
  receiveVerdict(canvas, HARMFUL, context());
  assert.equal(canvas.state, STATE.FLAGGED);
  assert.deepEqual(listInlineOverrides(canvas, { objectPosition: '50% 50%', backgroundColor: 'rgba(0, 0, 0, 0)' }),
    [['object-position', PICTURE_OUT], ['background', CARD_BACKGROUND]]); // the card, as an <img>'s
  assert.deepEqual(listInlineOverrides(canvas, { objectPosition: PICTURE_OUT, backgroundColor: 'rgb(42, 24, 56)' }), []);
});
