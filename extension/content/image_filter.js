/**
 * ImageFilter wires the parts that decide: it takes the elements DOMWatcher reports, keeps one
 * record per picture an element shows (image_state.js, the state machine, decides every change):
 * an <img>, an SVG <image>, a CSS background, a `::before` / `::after` picture, a video, a canvas.
 * Its parts: record_map.js (the records by element and by picture), picture_clocks.js (the time
 * limits of the pictures waiting for a verdict), whereabouts.js (where each
 * element is: near the viewport, on screen, or without a box yet), VerdictAsker (asks the worker,
 * on screen first), painter.js (puts each state into the page through hiding.js, a flagged one
 * with its warning card), canvas_looks.js (when a canvas is looked at), picture_counts.js (the
 * badge count and the popup's lists). A record on screen is asked first, and its time limit starts.
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
  ANSWER, SEEN, STATE, countPictures, createRecord, hideAgain, holdPending, isHidden, isTooSmallFile,
  isUnavailable, needsRetry, receiveVerdict, redecide, reveal, seeBox, serverBack,
} from './image_state.js';
import {
  clearInlineOverrides, clearState, hideBackgroundsEarly, reassertState, restoreLabel, tagTracked, untag, writeState,
} from './hiding.js';
import {
  hasInlineUrl, isFaded, isOneSrcset, readBackground, readCoveredBackground, readImage, readPseudo, readSvgImage,
} from './picture_sources.js';
import { CanvasLooks } from './canvas_looks.js';
import { CountReporter, holdsAny, listPictures, summarize } from './picture_counts.js';
import { Painter } from './painter.js';
import { PictureClocks } from './picture_clocks.js';
import { PSEUDO_PARTS, PictureIndex, RecordMap } from './record_map.js';
import { RepaintWatch } from './repaint_watch.js';
import { snapshotCanvas } from './canvas_pixels.js';
import { VerdictAsker } from './verdict_asker.js';
import { readVideoSource } from './video_frames.js';
import { Whereabouts } from './whereabouts.js';
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
    this.pictures = new PictureIndex(); // a URL or a content hash -> the records showing it (one picture, several elements)
    this.revealedKeys = new Set(); // URLs and hashes of pictures the user chose to show on this page
    this.writes = []; // DOM writes queued by consider*(), applied by flush()
    this.nextId = 1;
    this.counts = new CountReporter({ count: () => this.countFlagged(), onChange: (n) => this.onCountChange(n) });
    this.shownBefore = new WeakMap(); // <img> -> {url, revealed} of a record dropped while its next source loads
    this.canvases = new CanvasLooks(); // when each canvas was looked at, what it showed
    this.painter = new Painter({ warnings, groupOf: (rec) => this.groupOf(rec), recordOf: (el) => this.records.get(el) });
    this.asker = new VerdictAsker({
      requestVerdict: (rec, priority) => (rec.kind === 'canvas' ? this.askCanvas(rec, priority, requestVerdict) : requestVerdict(rec, priority)),
      timed,
      onVerdict: (rec, verdict) => this.applyVerdict(rec, verdict),
      findUnavailable: () => this.findUnavailable(),
    });
    this.clocks = new PictureClocks({
      getContext, asker: this.asker, timed, isTracked: (rec) => this.isTracked(rec), paint: (rec) => this.paint(rec),
    });
    this.where = new Whereabouts({
      recordsOf: (el) => this.records.of(el), onEntry: (rec, entry, near) => this.onEntry(rec, entry, near), timed,
    });
    this.repaints = new RepaintWatch({
      recheck: (el) => this.recheck(el), afterFrame: () => this.applyWrites(), timed, forceStyle, needsFrames: (el) => this.canvases.isFresh(el),
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
   * A <canvas>: its pixels are looked at (canvas_looks.js, bounded by CANVAS), and a drawing that is a picture is
   * tracked under its fingerprint, hidden until checked; another drawing is another picture. One
   * that cannot be read (tainted, blank, small) or keeps changing (animated) is shown, and looked
   * at again (an animated one once a CANVAS.recheckMs, checked once it holds still). `force`: the
   * page just drew on it, look now.
   */
  considerCanvas(canvas, { force = false } = {}) {
    const seen = this.canvases.look(canvas, { force });
    if (!seen) return;
    const { sample, key, animated } = seen;
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
    this.pictures.rekey(rec, from, to);
  }

  /** The records showing `rec`'s picture (same URL or same content) in the same place, `rec` included. */
  groupOf(rec) {
    return this.pictures.groupOf(rec);
  }

  /** A picture found by its style (a background, an SVG <image>, a pseudo-element): tracked and hidden at once. */
  trackPending(el, kind, url) {
    const rec = this.track(el, kind, url);
    holdPending(rec);
    this.paint(rec);
  }

  /** Follow where the record's element is (whereabouts.js: both intersection observers report it at once). */
  follow(rec) {
    this.where.follow(rec.el);
  }

  /** Stop following a record that needs nothing more, unless another picture of its element does. */
  unfollow(rec) {
    if (this.records.of(rec.el).some((r) => r !== rec && (isHidden(r) || needsRetry(r)))) return;
    this.where.unfollow(rec.el);
  }

  forget(rec) {
    this.asker.drop(rec);
    this.clocks.drop(rec);
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

  /** A video plays only once it is decided and not covered (painter.js). */
  holdPlayback(video) {
    this.painter.holdPlayback(video);
  }

  /** Put the record's state into the page, and its warning (painter.js). */
  paint(rec) {
    this.painter.paint(rec);
  }

  // ------------------------------------------------------------ where each record is, and asking

  /** Whereabouts reported where the record's element is (near the viewport, or on screen). */
  onEntry(rec, entry, near) {
    const { width, height } = entry.boundingClientRect;
    const view = near
      ? { width, height, near: entry.isIntersecting, onScreen: entry.isIntersecting && rec.onScreen }
      : { width, height, near: rec.near || entry.isIntersecting, onScreen: entry.isIntersecting };
    this.see(rec, view);
  }

  /** The record's element has box `view`: measure it, arm its time limit, file it for asking. */
  see(rec, view) {
    const { seen, painted, armed } = seeBox(rec, view, { now: performance.now(), limitMs: this.clocks.limitMs() });
    if (painted) this.paint(rec);
    if (seen === SEEN.READY) {
      if (rec.faded === null) rec.faded = isFaded(rec.el); // read before we blur it ourselves
      this.where.unwatchSize(rec.el);
    } else {
      this.where.watchSize(rec.el); // no box yet, or too small: seen again when its size changes
    }
    if (armed) this.clocks.arm(rec);
    this.asker.update(rec);
  }

  applyVerdict(rec, verdict) {
    if (!this.isTracked(rec)) return;
    this.clocks.stop(rec);
    // A picture the user already chose to show on this page (another element of it, a re-render) stays shown.
    if (this.revealedKeys.has(rec.url) || this.revealedKeys.has(verdict?.sha256)) rec.revealed = true;
    const answer = receiveVerdict(rec, verdict, this.getContext());
    if (answer === ANSWER.DECIDED) {
      this.asker.serverAnswered(performance.now());
      this.rekey(rec, null, verdict.sha256);
    }
    if (answer === ANSWER.RETRY_LATER) this.clocks.retryLater(rec);
    if (isHidden(rec) && rec.deadline !== null) this.clocks.arm(rec); // waiting: the time limit runs on
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
    this.clocks.restart(this.liveRecords(), isHidden);
    this.counts.forget(); // the frame's count left the badge when it was hidden
    this.reportCount();
  }

  /** The server is back: ask again about images shown or held without a verdict. */
  retryUnavailable() {
    const now = performance.now();
    for (const rec of this.liveRecords()) {
      const wasState = rec.state;
      if (!serverBack(rec, now, this.clocks.limitMs())) continue;
      if (rec.state !== wasState) this.paint(rec);
      if (rec.deadline !== null) this.clocks.arm(rec);
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
    this.counts.report();
  }

  /** Every picture this frame tracks, as the extension sees it (picture_counts.js): for the popup and the tests only. */
  listPictures() {
    return listPictures([...this.liveRecords()], (rec) => this.warnings.hasCard(rec));
  }

  /**
   * True when one of `pictures` ({id, url}) is a live record of this frame: tells apart the
   * frames a GET_PAGE_STATE reaches by one URL (several about:blank frames).
   */
  holdsAny(pictures) {
    return holdsAny(this.liveRecords(), pictures);
  }

  /** Counts per state, for the popup and tests. */
  summarize() {
    const records = [...this.liveRecords()];
    return summarize(records, { flagged: this.countFlagged(), asking: this.asker.waiting });
  }
}
