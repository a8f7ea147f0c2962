/**
 * ImageFilter decides: it takes the elements DOMWatcher reports, keeps one record per picture an
 * element shows (image_state.js: the state machine): an <img>, an SVG <image>, a CSS background,
 * a `::before` / `::after` picture. It follows where each one is through the browser's own
 * signals, has VerdictAsker ask the worker about them (on screen first), and puts each state into
 * the page (hiding.js), a flagged one with its warning card (warning.js).
 *
 * Where a record is: an IntersectionObserver a screen beyond the viewport (`near`: measured and
 * queued before the user gets there) and one on the viewport itself (`onScreen`: asked first, and
 * its time limit starts). An element without a box (inside display: none, a closed <details>, an
 * inactive tab, a collapsed comment) is watched by a ResizeObserver, which fires the moment the
 * page gives it one, however late; there is no retry counter to run out.
 *
 * A record's verdict is bound to the picture its element paints: whenever the element may paint
 * another one (another source picked, a class, a custom property, a media or container query, an
 * animation: RepaintWatch), what it paints is read again (`consider`), and a picture that differs
 * from the record's is hidden at once and asked about as a new record; the old verdict never
 * covers it, and a cover over a picture that went away is lifted.
 *
 * DOM reads happen when an element is reported; writes are queued and applied by `flush()`, so a
 * batch of new elements costs one style recalculation and one layout, not one per element.
 */
import {
  ANSWER, SEEN, STATE, choosePrimary, countPictures, createRecord, extendDeadline, hasOverlay, hideAgain, holdPending, isComing,
  isHidden, isTooSmallFile, isUnavailable, needsRetry, receiveVerdict, redecide, retryDelayMs, reveal, seeBox, serverBack,
  summaryState, timeLimitMs, timeOut,
} from './image_state.js';
import {
  clearInlineOverrides, clearState, hideBackgroundsEarly, reassertState, restoreLabel, showState, tagTracked, untag, writeState,
} from './hiding.js';
import {
  areInOnePlace, hasInlineUrl, isFaded, isOneSrcset, readBackground, readCoveredBackground, readImage, readPseudo, readSvgImage,
} from './picture_sources.js';
import { RepaintWatch } from './repaint_watch.js';
import { sampleCanvas, snapshotCanvas } from './canvas_pixels.js';
import { describeWarnings } from '../shared/verdict.js';
import { VerdictAsker } from './verdict_asker.js';
import { readVideoSource } from './video_frames.js';

const ENTRY_BUDGET_MS = 8;
const COUNT_INTERVAL_MS = 300;
const PSEUDO_PARTS = ['before', 'after'];
/**
 * How often a <canvas> is looked at (canvas_pixels.js): every frame while it is new or has just
 * changed (a viewer drawing the picture it opened), then at most once a recheckMs; one that changed
 * `animated.changes` times within `animated.withinMs` (a game, a video, an animation) is left shown.
 */
export const CANVAS = Object.freeze({ freshMs: 3000, recheckMs: 1000, animated: { changes: 4, withinMs: 4000 } });
// A covered background is read under our cover (a style invalidation) at most this often when
// RepaintWatch re-reads it: what it may find is a neutral picture to uncover, never one to hide.
const COVERED_READ_MS = 250;
const TAGGED = '[data-simclip-id], [data-simclip-before-id], [data-simclip-after-id]'; // hiding.js tagTracked

export class ImageFilter {
  /**
   * @param {{requestVerdict: (rec, priority) => Promise<object|null>, warnings,
   *          getContext: () => {settings, categories, healthOk, server}, (`server`: the parsed /v1/health, or null)
   *          onCountChange: (n) => void, timed: (fn, kind) => void, forceStyle?: (read) => any}} deps
   */
  constructor({ requestVerdict, warnings, getContext, onCountChange, timed, forceStyle }) {
    this.warnings = warnings;
    this.getContext = getContext;
    this.onCountChange = onCountChange;
    this.timed = timed;
    this.records = new RecordMap();
    this.byKey = new Map(); // a URL or a content hash -> the records showing it (one picture, several elements)
    this.revealedKeys = new Set(); // URLs and hashes of pictures the user chose to show on this page
    this.writes = []; // DOM writes queued by consider*(), applied by flush()
    this.nextId = 1;
    this.lastCount = -1;
    this.countTimer = 0;
    this.shownBefore = new WeakMap(); // <img> -> {url, revealed} of a record dropped while its next source loads
    this.canvases = new WeakMap(); // canvas -> {since, at, key, changes, animated}: when it was looked at, what it showed
    this.asker = new VerdictAsker({
      requestVerdict: (rec, priority) => (rec.kind === 'canvas' ? this.askCanvas(rec, priority, requestVerdict) : requestVerdict(rec, priority)),
      timed,
      onVerdict: (rec, verdict) => this.applyVerdict(rec, verdict),
      findUnavailable: () => this.findUnavailable(),
    });
    const observe = (near) => (entries) => this.timed(() => this.onIntersect(entries, near), 'intersections');
    this.nearIO = new IntersectionObserver(observe(true), { rootMargin: '100% 0px' });
    this.screenIO = new IntersectionObserver(observe(false));
    this.sizeWatch = new ResizeObserver((entries) => this.timed(() => this.onResize(entries), 'resize'));
    this.watchingSize = new Set(); // elements sizeWatch observes
    this.repaints = new RepaintWatch({
      recheck: (el) => this.recheck(el), afterFrame: () => this.applyWrites(), timed, forceStyle, needsFrames: (el) => this.isFreshCanvas(el),
    });
  }

  // ------------------------------------------------------------ elements the watcher reports

  /**
   * An element the watcher reported (found, added, its class changed, a stylesheet arrived, it
   * loaded): whatever picture it shows now is tracked; called again, it only acts on a change.
   */
  consider(el) {
    if (el.tagName === 'IMG') {
      this.considerImage(el);
      return;
    }
    if (el.tagName === 'image') {
      this.considerSource(el, 'svg', readSvgImage(el));
      return;
    }
    if (el.tagName === 'VIDEO') {
      this.considerSource(el, 'video', readVideoSource(el) || el.poster);
      this.later(() => this.holdPlayback(el));
      return;
    }
    if (el.tagName === 'CANVAS') {
      this.considerCanvas(el);
      return;
    }
    this.considerBackground(el);
    for (const part of PSEUDO_PARTS) this.considerSource(el, part, readPseudo(el, part));
  }

  /**
   * RepaintWatch: what `el` paints may have changed. Only the pictures it has records for are read
   * again (finding new ones is the watcher's job), a covered background at most every
   * COVERED_READ_MS.
   */
  recheck(el) {
    if (el.tagName === 'CANVAS') {
      this.considerCanvas(el);
      return;
    }
    const now = performance.now();
    for (const rec of this.records.of(el)) {
      if (rec.kind === 'img') this.considerImage(el);
      else if (rec.kind === 'svg') this.considerSource(el, 'svg', readSvgImage(el));
      else if (rec.kind === 'video') this.consider(el);
      else if (rec.kind !== 'bg') this.considerSource(el, rec.kind, readPseudo(el, rec.kind));
      else if (!(isHidden(rec) || rec.state === STATE.FLAGGED) || now - (rec.coveredReadAt ?? -Infinity) >= COVERED_READ_MS) {
        this.considerBackground(el);
      }
    }
  }

  /**
   * An <img> loaded (or was reported, or may show another source): measure it once its source is
   * known (writes wait for flush). Another source, even another size of one picture (a srcset or
   * <picture> pick at a new width), is another picture: hidden until it is checked. One the
   * browser is still loading (not complete) is hidden now, before it is painted.
   */
  considerImage(img) {
    if (!img.complete) {
      const rec = this.records.get(img);
      if (rec && rec.state !== null) this.later(() => this.hideForNewSource(img)); // the load listener calls again
      return;
    }
    const file = readImage(img);
    this.later(() => {
      const rec = this.records.get(img);
      if (rec && rec.url === file.url) {
        reassertState(rec);
        return;
      }
      // A picture the user chose to show stays their choice at another size of one srcset (the
      // same picture by HTML's rule), once that file is checked too; never across <source>s.
      const shown = rec ?? this.shownBefore.get(img);
      this.shownBefore.delete(img);
      if (rec) this.forget(rec);
      if (isTooSmallFile(file)) {
        writeState(img, STATE.SKIP); // broken, empty or too small to be a meme
        return;
      }
      const next = this.track(img, 'img', file.url);
      if (shown?.revealed && isOneSrcset(img, shown.url, file.url)) next.revealed = true;
    });
  }

  /** A CSS background: hidden at once (before it is measured), re-tracked when its URL changes. */
  considerBackground(el) {
    const rec = this.records.get(el);
    // Hidden, or covered by its warning card: the computed background is ours, read the site's under it.
    // Without a record, one the script of an earlier version covered (lifecycle.js) is read the same way.
    const hidden = rec ? isHidden(rec) || rec.state === STATE.FLAGGED : el.hasAttribute('data-simclip-bg');
    const read = readBackground(el, { hidden });
    const { inline } = read;
    const covered = rec ? rec.kind === 'bg' && !rec.inline : el.hasAttribute('data-simclip-bg');
    const url = read.url === null && covered ? readCoveredBackground(el) : read.url;
    if (rec && read.url === null && covered) rec.coveredReadAt = performance.now();
    if (url === null || (rec && rec.url === url)) return; // unknown while we hide it, or unchanged
    if (!url) {
      if (rec) this.later(() => this.forgetAndShow(rec));
      else if (inline || el.hasAttribute('data-simclip-early')) this.later(() => writeState(el, STATE.SKIP)); // a mask or cursor url
      return;
    }
    // Hidden at once, measured by the IntersectionObserver (no forced layout here): a small
    // element (an icon sprite) gets its background back one frame later.
    this.later(() => {
      const current = this.records.get(el);
      if (current?.url === url) return;
      if (current) this.forget(current);
      this.trackPending(el, 'bg', url);
    });
  }

  /**
   * A <canvas>: its pixels are looked at (bounded by CANVAS), and a drawing that is a picture is
   * tracked under its fingerprint, hidden until checked; another drawing is another picture. One
   * that cannot be read (tainted, blank, small) or keeps changing (animated) is shown, and looked
   * at again (an animated one once a CANVAS.recheckMs, checked once it holds still). `force`: the
   * page just drew on it, look now.
   */
  considerCanvas(canvas, { force = false } = {}) {
    const now = performance.now();
    let look = this.canvases.get(canvas);
    if (!look) {
      look = { since: now, at: -Infinity, key: null, changes: [], animated: false };
      this.canvases.set(canvas, look);
    }
    const due = now - look.at >= CANVAS.recheckMs || (!look.animated && (force || this.isFreshCanvas(canvas)));
    if (!due) return;
    look.at = now;
    const sample = sampleCanvas(canvas);
    const key = sample.key ?? sample.out;
    if (look.key === key) {
      if (!look.animated) return;
      look.animated = false; // it holds still now: checked like any drawing
      look.changes = [];
    } else if (look.key !== null) {
      look.changes = [...look.changes.filter((t) => now - t < CANVAS.animated.withinMs), now];
      look.since = now; // just changed: looked at every frame for a while
      look.animated = look.changes.length >= CANVAS.animated.changes;
    }
    look.key = key;
    const { animated } = look;
    this.later(() => {
      const rec = this.records.get(canvas);
      if (rec?.url === key && !animated) return;
      if (rec) this.forgetAndShow(rec);
      if (sample.key && !animated) {
        this.trackPending(canvas, 'canvas', sample.key);
      } else {
        writeState(canvas, STATE.SKIP);
        this.repaints.watch(canvas); // drawn on later, or holding still: looked at again
      }
    });
  }

  /** True for a canvas found, or changed, within CANVAS.freshMs (looked at every frame). */
  isFreshCanvas(el) {
    const look = el.tagName === 'CANVAS' ? this.canvases.get(el) : undefined;
    return Boolean(look && !look.animated && performance.now() - look.since < CANVAS.freshMs);
  }

  /**
   * Ask about a canvas record: a snapshot of its pixels, sent as bytes (a data: URL), taken only
   * while the canvas still shows the drawing the record holds; otherwise it is looked at again
   * (the record is replaced, and its answer dropped).
   */
  async askCanvas(rec, priority, requestVerdict) {
    const snap = snapshotCanvas(rec.el, rec.url);
    if (!snap.dataUrl) {
      this.asker.forgetAnswer(rec.url);
      this.considerCanvas(rec.el, { force: true });
      this.flush();
      return null;
    }
    return requestVerdict({ id: rec.id, kind: 'canvas', el: rec.el, url: snap.dataUrl }, priority);
  }

  /** A picture read from `el` (an SVG <image>, a pseudo-element `kind`): tracked while it shows `url`. */
  considerSource(el, kind, url) {
    const part = RecordMap.partOf(kind);
    const rec = this.records.get(el, part);
    if ((rec?.url ?? '') === url) return;
    this.later(() => {
      const current = this.records.get(el, part);
      if ((current?.url ?? '') === url) return;
      if (current) this.forgetAndShow(current);
      if (url) this.trackPending(el, kind, url);
    });
  }

  /** Elements the watcher left for later: hide their stylesheet backgrounds until then. */
  holdBack(elements) {
    hideBackgroundsEarly(elements);
  }

  later(write) {
    this.writes.push(write);
  }

  /**
   * Apply the queued DOM writes (end of a mutation batch, slice or load event); the page changed,
   * so what the tracked elements near the viewport paint is read again before the next paint.
   */
  flush() {
    this.applyWrites();
    this.repaints.markDirty();
  }

  applyWrites() {
    const writes = this.writes;
    this.writes = [];
    for (const write of writes) write();
  }

  /** A tracked <img> started loading another source: hidden (the pre-hide rule) until it has loaded and is checked. */
  hideForNewSource(img) {
    const rec = this.records.get(img);
    if (!rec || img.complete) return;
    if (rec.revealed) this.shownBefore.set(img, { url: rec.url, revealed: true });
    this.forget(rec);
    clearState(img);
  }

  /** A watched attribute changed on `el`. */
  onAttribute(el, name) {
    if (name === 'src' || name === 'srcset') {
      this.onSourceChange(el);
      return;
    }
    if (name === 'sizes' || name === 'media') {
      // The browser may pick another candidate: a tracked <img> is read again before the next paint.
      const img = el.tagName === 'SOURCE' ? el.parentElement?.querySelector('img') : el;
      if (img?.tagName === 'IMG') this.repaints.recheckSoon(img);
      return;
    }
    if (el.tagName === 'CANVAS' && (name === 'drawn' || name === 'width' || name === 'height')) {
      // drawn on (shadow_hook.js), or cleared by a new size: looked at now, before the next paint
      this.considerCanvas(el, { force: true });
      this.applyWrites();
      return;
    }
    if (name === 'width' || name === 'height') return;
    if (name === 'href' || name === 'poster') {
      if (el.tagName === 'image' || el.tagName === 'VIDEO') this.consider(el);
      return;
    }
    const rec = this.records.get(el);
    if (name === 'data-simclip') {
      // Usually our own write echoing back; only a value the site changed needs restoring.
      if (rec && rec.state !== null) writeState(el, rec.state);
      return;
    }
    // style: a new inline background (a lazy loader swapping a data: placeholder for the real
    // URL), one removed, or a site fighting our hiding.
    if (rec ? rec.kind === 'bg' : hasInlineUrl(el)) this.considerBackground(el);
    if (rec && this.records.get(el) === rec) this.later(() => reassertState(rec));
  }

  /** An <img> (or a <picture>'s <source>) got a new src or srcset: hidden until the new source is checked. */
  onSourceChange(el) {
    const video = el.tagName === 'VIDEO' ? el : el.tagName === 'SOURCE' && el.parentElement?.tagName === 'VIDEO' ? el.parentElement : null;
    if (video) {
      this.consider(video);
      this.flush();
      return;
    }
    const img = el.tagName === 'SOURCE' ? el.parentElement?.querySelector('img') : el;
    if (!img || img.tagName !== 'IMG') return;
    const rec = this.records.get(img);
    if (rec) this.forget(rec);
    clearState(img);
    this.considerImage(img);
    this.flush();
  }

  // ------------------------------------------------------------ records

  track(el, kind, url) {
    const rec = createRecord({ id: this.nextId++, el, kind, url });
    this.records.set(rec);
    this.rekey(rec, null, url);
    tagTracked(rec);
    this.follow(rec);
    this.repaints.watch(el);
    return rec;
  }

  /** Move `rec` from key `from` to key `to` in the index of pictures (null: none). */
  rekey(rec, from, to) {
    if (from) {
      const set = this.byKey.get(from);
      set?.delete(rec);
      if (set?.size === 0) this.byKey.delete(from);
    }
    if (to) {
      if (!this.byKey.has(to)) this.byKey.set(to, new Set());
      this.byKey.get(to).add(rec);
    }
  }

  /** The records showing `rec`'s picture (same URL or same content) in the same place, `rec` included. */
  groupOf(rec) {
    const group = new Set([rec]);
    for (const key of [rec.url, rec.verdict?.sha256]) {
      for (const other of this.byKey.get(key) ?? []) {
        if (other !== rec && other.el !== rec.el && areInOnePlace(rec.el, other.el)) group.add(other);
      }
    }
    return [...group];
  }

  /** A picture found by its style (a background, an SVG <image>, a pseudo-element): tracked and hidden at once. */
  trackPending(el, kind, url) {
    const rec = this.track(el, kind, url);
    holdPending(rec);
    this.paint(rec);
  }

  /** Follow where the record's element is (both intersection observers report it at once). */
  follow(rec) {
    this.nearIO.observe(rec.el);
    this.screenIO.observe(rec.el);
  }

  /** Stop following a record that needs nothing more, unless another picture of its element does. */
  unfollow(rec) {
    if (this.records.of(rec.el).some((r) => r !== rec && (isHidden(r) || needsRetry(r)))) return;
    this.nearIO.unobserve(rec.el);
    this.screenIO.unobserve(rec.el);
    this.unwatchSize(rec.el);
  }

  watchSize(el) {
    if (this.watchingSize.has(el)) return; // observing again would report the same size again
    this.watchingSize.add(el);
    this.sizeWatch.observe(el);
  }

  unwatchSize(el) {
    if (this.watchingSize.delete(el)) this.sizeWatch.unobserve(el);
  }

  forget(rec) {
    this.asker.drop(rec);
    clearTimeout(rec.timer);
    clearTimeout(rec.retryTimer);
    this.records.delete(rec);
    this.rekey(rec, rec.url, null);
    this.rekey(rec, rec.verdict?.sha256, null);
    this.unfollow(rec);
    if (this.records.of(rec.el).length === 0) this.repaints.unwatch(rec.el);
    this.warnings.remove(rec);
    clearInlineOverrides(rec);
    restoreLabel(rec);
  }

  /** Forget a picture the element no longer shows, and take our marks off it. */
  forgetAndShow(rec) {
    this.forget(rec);
    untag(rec);
  }

  /**
   * The page removed `node`: the records of the pictures in it (tagged elements in its subtree and
   * in the shadow roots under it) are dropped at once, so a feed that removes the posts it scrolled
   * past (a virtualized list) gets their nodes back. One put back later is a new element to us.
   */
  dropRemoved(node) {
    if (this.records.byElement.size === 0) return;
    const found = node.matches(TAGGED) ? [node] : [];
    found.push(...node.querySelectorAll(TAGGED));
    if (node.firstElementChild && this.records.byElement.size > found.length) {
      for (const el of this.records.byElement.keys()) if (!el.isConnected && el.getRootNode() !== el.ownerDocument && node.contains(el.getRootNode().host)) found.push(el);
    }
    for (const el of found) {
      if (el.isConnected) continue;
      for (const rec of this.records.of(el)) this.forget(rec);
    }
  }

  isTracked(rec) {
    return this.records.has(rec);
  }

  /** The records whose element is still in the document (others are dropped). */
  *liveRecords() {
    for (const rec of [...this.records.values()]) {
      if (rec.el.isConnected) yield rec;
      else this.forget(rec);
    }
  }

  /**
   * A video plays only once it is decided and not covered: a pending, waiting or flagged one is
   * paused (and paused again if the page starts it); one we paused resumes when it is shown.
   */
  holdPlayback(video) {
    const rec = this.records.get(video);
    if (!rec || rec.kind !== 'video') return;
    const covered = isHidden(rec) || rec.state === STATE.FLAGGED;
    if (covered && !video.paused) {
      rec.pausedByUs = true;
      video.pause();
    } else if (!covered && rec.pausedByUs) {
      rec.pausedByUs = false;
      video.play()?.catch?.(() => {}); // a page or browser that forbids autoplay keeps it paused
    }
  }

  /**
   * Put the record's state into the page, and its warning. One picture shown by several elements
   * in one place gets one warning, on the member that shows it best (choosePrimary).
   */
  paint(rec) {
    showState(rec);
    if (rec.kind === 'video') this.holdPlayback(rec.el);
    const group = this.groupOf(rec);
    const primary = choosePrimary(group.filter((r) => hasOverlay(r.state)));
    for (const member of group) {
      if (member === primary) this.warnings.sync(member);
      else this.warnings.remove(member);
    }
  }

  // ------------------------------------------------------------ where each record is, and asking

  /** IntersectionObserver entries, handled in slices of ENTRY_BUDGET_MS (a feed reports hundreds at once). */
  onIntersect(entries, near, from = 0) {
    const start = performance.now();
    for (let i = from; i < entries.length; i += 1) {
      if (i > from && performance.now() - start > ENTRY_BUDGET_MS) {
        setTimeout(() => this.timed(() => this.onIntersect(entries, near, i), 'intersections'), 0);
        return;
      }
      for (const rec of this.records.of(entries[i].target)) this.onEntry(rec, entries[i], near);
    }
  }

  onEntry(rec, entry, near) {
    const { width, height } = entry.boundingClientRect;
    const view = near
      ? { width, height, near: entry.isIntersecting, onScreen: entry.isIntersecting && rec.onScreen }
      : { width, height, near: rec.near || entry.isIntersecting, onScreen: entry.isIntersecting };
    this.see(rec, view);
  }

  /** The record's element has box `view`: measure it, arm its time limit, file it for asking. */
  see(rec, view) {
    const { seen, painted, armed } = seeBox(rec, view, { now: performance.now(), limitMs: this.limitMs() });
    if (painted) this.paint(rec);
    if (seen === SEEN.READY) {
      if (rec.faded === null) rec.faded = isFaded(rec.el); // read before we blur it ourselves
      this.unwatchSize(rec.el);
    } else {
      this.watchSize(rec.el); // no box yet, or too small: seen again when its size changes
    }
    if (armed) this.armTimer(rec);
    this.asker.update(rec);
  }

  /** The element got a box (or another size): both observers report it afresh. */
  onResize(entries) {
    for (const entry of entries) {
      const recs = this.records.of(entry.target);
      if (recs.length === 0) {
        this.unwatchSize(entry.target);
        continue;
      }
      const { width, height } = entry.contentRect;
      if (width > 0 && height > 0) {
        this.nearIO.unobserve(entry.target);
        this.screenIO.unobserve(entry.target);
        this.follow(recs[0]);
      }
    }
  }

  /**
   * The time limit for a picture coming on screen now (image_state.js timeLimitMs): the server's
   * measured cost per picture, times the pictures ahead of it (the server's queue as last reported,
   * and this page's own asks open or waiting ahead of it), within the user's cap.
   */
  limitMs() {
    const { server } = this.getContext();
    const asking = this.asker.waiting;
    return timeLimitMs({
      capMs: this.capMs(),
      perPictureMs: server?.cost?.perPictureMs ?? null,
      ahead: (server?.queueDepth ?? 0) + asking.inFlight + asking.onScreen,
    });
  }

  /** The user's cap on any wait: "show an image unchecked if no verdict comes within at most N s". */
  capMs() {
    return this.getContext().settings.revealAfterSeconds * 1000;
  }

  armTimer(rec) {
    clearTimeout(rec.timer);
    rec.timer = setTimeout(() => this.timed(() => this.onTimeout(rec), 'timeout'), Math.max(0, rec.deadline - performance.now()));
  }

  onTimeout(rec) {
    if (!this.isTracked(rec)) return;
    const { settings, healthOk } = this.getContext();
    const now = performance.now();
    if (rec.deadline !== null && now < rec.deadline) {
      this.armTimer(rec); // a timer that fired early
      return;
    }
    // The server says the verdict is coming: wait on, within the user's cap.
    const coming = isComing(rec, this.asker.lastAnswerAt);
    if (extendDeadline(rec, now, { coming, limitMs: this.limitMs(), capMs: this.capMs() })) {
      this.armTimer(rec);
      return;
    }
    if (timeOut(rec, { settings, healthOk }, now)) this.paint(rec);
  }

  applyVerdict(rec, verdict) {
    if (!this.isTracked(rec)) return;
    clearTimeout(rec.timer);
    // A picture the user already chose to show on this page (another element of it, a re-render) stays shown.
    if (this.revealedKeys.has(rec.url) || this.revealedKeys.has(verdict?.sha256)) rec.revealed = true;
    const answer = receiveVerdict(rec, verdict, this.getContext());
    if (answer === ANSWER.DECIDED) {
      this.asker.serverAnswered(performance.now());
      this.rekey(rec, null, verdict.sha256);
    }
    if (answer === ANSWER.RETRY_LATER) this.retryLater(rec);
    if (isHidden(rec) && rec.deadline !== null) this.armTimer(rec); // waiting: the time limit runs on
    this.paint(rec);
    if (answer === ANSWER.UNAVAILABLE || answer === ANSWER.NO_ANSWER || answer === ANSWER.RETRY_LATER) {
      this.asker.forgetAnswer(rec.url); // ask again once the server is back (or after its Retry-After)
    }
    if (answer === ANSWER.UNAVAILABLE) this.asker.scheduleRecovery();
    if (!isHidden(rec) && !needsRetry(rec)) this.unfollow(rec);
    // The element may have switched pictures while this one was asked about: read what it paints
    // now, before this verdict is painted over another picture.
    if (rec.el.isConnected) this.consider(rec.el);
    this.flush();
    this.reportCount();
  }

  /** "Busy" or "loading, retry later": the picture stays hidden and is asked again after its Retry-After. */
  retryLater(rec) {
    clearTimeout(rec.retryTimer);
    rec.retryTimer = setTimeout(() => this.timed(() => {
      if (!this.isTracked(rec) || rec.state !== STATE.PENDING || !needsRetry(rec)) return;
      rec.asked = false;
      this.asker.update(rec);
    }, 'retry'), retryDelayMs(rec.verdict));
  }

  findUnavailable() {
    for (const rec of this.liveRecords()) if (isUnavailable(rec)) return rec;
    return undefined;
  }

  // ------------------------------------------------------------ the user, settings, the server

  /** The user clicked "Show" on a flagged picture: every element showing it is revealed. */
  reveal(rec) {
    for (const member of this.groupOf(rec)) {
      for (const key of [member.url, member.verdict?.sha256]) if (key) this.revealedKeys.add(key);
      if (reveal(member)) this.paint(member);
    }
  }

  /** The flagged record drawn on `el` (its own picture, or a pseudo-element's), for a click on it. */
  findFlagged(el) {
    return this.records.of(el).find((rec) => rec.state === STATE.FLAGGED);
  }

  /** The popup's "Cover again": every picture the user chose to show is covered again. */
  hideAllRevealed() {
    for (const rec of this.liveRecords()) if (rec.state === STATE.REVEALED) this.hide(rec);
  }

  /** The user clicked "Hide again": every element showing the picture is blurred again. */
  hide(rec) {
    for (const member of this.groupOf(rec)) {
      for (const key of [member.url, member.verdict?.sha256]) this.revealedKeys.delete(key);
      if (hideAgain(member)) this.paint(member);
    }
  }

  /** Settings or categories changed: decide every checked image again (no new requests). */
  rerender() {
    const context = this.getContext();
    for (const rec of this.liveRecords()) if (redecide(rec, context)) this.paint(rec);
    this.reportCount();
  }

  /**
   * The page is shown again from the back/forward cache: the clock ran while it was frozen, so the
   * pictures still waiting for a verdict get a fresh time limit (an ask cut off meanwhile is sent
   * again by sendWithRetry).
   */
  restartClocks() {
    const now = performance.now();
    for (const rec of this.liveRecords()) {
      if (!isHidden(rec) || rec.deadline === null) continue;
      rec.deadline = now + this.limitMs();
      this.armTimer(rec);
    }
    this.lastCount = -1; // the frame's count left the badge when it was hidden
    this.reportCount();
  }

  /** The server is back: ask again about images shown or held without a verdict. */
  retryUnavailable() {
    const now = performance.now();
    for (const rec of this.liveRecords()) {
      const wasState = rec.state;
      if (!serverBack(rec, now, this.limitMs())) continue;
      if (rec.state !== wasState) this.paint(rec);
      if (rec.deadline !== null) this.armTimer(rec);
      this.asker.forgetAnswer(rec.url);
      this.asker.update(rec);
    }
  }

  // ------------------------------------------------------------ counts

  /** Flagged pictures: elements that show one picture in one place count once. */
  countFlagged() {
    return countPictures([...this.liveRecords()], (rec) => this.groupOf(rec));
  }

  reportCount() {
    if (this.countTimer) return;
    this.countTimer = setTimeout(() => {
      this.countTimer = 0;
      const n = this.countFlagged();
      if (n !== this.lastCount) {
        this.lastCount = n;
        this.onCountChange(n);
      }
    }, COUNT_INTERVAL_MS);
  }

  /**
   * Every picture this frame tracks, as the extension sees it: its record id (the element's
   * `data-simclip-id`, or `-before-id` / `-after-id`), kind, state (image_state.js STATE, not the
   * page's coarser value), why it is shown without a verdict, and the warning with the scores of
   * the one element that draws its picture's card ('' for the others). For the popup and the
   * tests only: none of it is written into the page.
   */
  listPictures() {
    return [...this.liveRecords()].map((rec) => ({
      id: rec.id, kind: rec.kind, state: rec.state, why: rec.why, warning: this.warnings.hasCard(rec) ? describeWarnings(rec.warnings) : '',
    }));
  }

  /**
   * True when one of `pictures` ({id, url}) is a live record of this frame: tells apart the
   * frames a GET_PAGE_STATE reaches by one URL (several about:blank frames). An <img> record
   * must show `url` too (its currentSrc); other kinds match by id (url null: any).
   */
  holdsAny(pictures) {
    const wanted = new Map(pictures.map((p) => [String(p.id), p.url ?? null]));
    for (const rec of this.liveRecords()) {
      const id = String(rec.id);
      if (!wanted.has(id)) continue;
      const url = wanted.get(id);
      if (url === null || rec.kind !== 'img' || url === rec.url) return true;
    }
    return false;
  }

  /** Counts per state, for the popup and tests. */
  summarize() {
    const byState = {};
    for (const rec of this.liveRecords()) byState[summaryState(rec)] = (byState[summaryState(rec)] ?? 0) + 1;
    return { flagged: this.countFlagged(), revealed: byState[STATE.REVEALED] ?? 0, byState, asking: this.asker.waiting };
  }
}

/** The records, by element and part: an element's own picture ('') and its ::before / ::after ones. */
class RecordMap {
  constructor() {
    this.byElement = new Map(); // el -> Map(part -> rec)
  }

  /** The part of an element a record of `kind` shows. */
  static partOf(kind) {
    return PSEUDO_PARTS.includes(kind) ? kind : '';
  }

  get(el, part = '') {
    return this.byElement.get(el)?.get(part);
  }

  /** Every record of `el`. */
  of(el) {
    const parts = this.byElement.get(el);
    return parts ? [...parts.values()] : [];
  }

  has(rec) {
    return this.get(rec.el, RecordMap.partOf(rec.kind)) === rec;
  }

  set(rec) {
    let parts = this.byElement.get(rec.el);
    if (!parts) {
      parts = new Map();
      this.byElement.set(rec.el, parts);
    }
    parts.set(RecordMap.partOf(rec.kind), rec);
  }

  delete(rec) {
    if (!this.has(rec)) return;
    const parts = this.byElement.get(rec.el);
    parts.delete(RecordMap.partOf(rec.kind));
    if (parts.size === 0) this.byElement.delete(rec.el);
  }

  *values() {
    for (const parts of this.byElement.values()) yield* parts.values();
  }
}
