/**
 * ImageFilter wires the parts that decide: it takes the elements DOMWatcher reports, keeps one
 * record per picture an element shows (image_state.js, the state machine, decides every change):
 * an <img>, an SVG <image>, a CSS background, a `::before` / `::after` picture, a video, a canvas.
 * Its parts: picture_reader.js (which picture each element shows, read again whenever it may
 * paint another one, and the queue of DOM writes), record_map.js (the records by element and by
 * picture), picture_clocks.js (the time limits of the pictures waiting for a verdict),
 * whereabouts.js (where each element is: near the viewport, on screen, or without a box yet),
 * VerdictAsker (asks the worker, on screen first), painter.js (puts each state into the page
 * through hiding.js, a flagged one with its warning card), canvas_looks.js (when a canvas is
 * looked at), picture_counts.js (the badge count and the popup's lists). A record on screen is
 * asked first, and its time limit starts.
 */
import {
  ANSWER, SEEN, STATE, countPictures, createRecord, hideAgain, holdPending, isHidden, isUnavailable, needsRetry,
  receiveVerdict, redecide, reveal, seeBox, serverBack,
} from './image_state.js';
import { clearInlineOverrides, restoreLabel, tagTracked } from './hiding.js';
import { isFaded } from './picture_sources.js';
import { CanvasLooks } from './canvas_looks.js';
import { CountReporter, holdsAny, listPictures, summarize } from './picture_counts.js';
import { Painter } from './painter.js';
import { PictureClocks } from './picture_clocks.js';
import { PictureReader } from './picture_reader.js';
import { PARTS, PictureIndex, RecordMap } from './record_map.js';
import { RepaintWatch } from './repaint_watch.js';
import { snapshotCanvas } from './canvas_pixels.js';
import { VerdictAsker } from './verdict_asker.js';
import { Whereabouts } from './whereabouts.js';

// hiding.js tagTracked: an element's own record, and each part's (record_map.js PARTS)
const TAGGED = ['[data-simclip-id]', ...PARTS.map((part) => `[data-simclip-${part}-id]`)].join(', ');

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
    this.nextId = 1;
    this.counts = new CountReporter({ count: () => this.countFlagged(), onChange: (n) => this.onCountChange(n) });
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
      forceStyle,
    });
    this.repaints = new RepaintWatch({
      recheck: (el) => this.reader.recheck(el), afterFrame: () => this.reader.applyWrites(), timed, forceStyle,
      needsFrames: (el) => this.canvases.isFresh(el),
    });
    this.reader = new PictureReader({
      records: this.records, canvases: this.canvases, repaints: this.repaints,
      track: (el, kind, url) => this.track(el, kind, url), trackPending: (el, kind, url) => this.trackPending(el, kind, url),
      forget: (rec) => this.forget(rec), holdPlayback: (video) => this.painter.holdPlayback(video),
    });
  }

  // ------------------------------------------------------------ elements the watcher reports (picture_reader.js)

  /** An element the watcher reported: whatever picture it shows now is tracked. */
  consider(el) {
    this.reader.consider(el);
  }

  /** A watched attribute changed on `el`. */
  onAttribute(el, name) {
    this.reader.onAttribute(el, name);
  }

  /**
   * Apply the queued DOM writes, and read what the elements near the viewport paint again (those
   * under `changed`, the elements the page changed, in this frame whatever its budget).
   */
  flush(changed = null) {
    this.reader.flush(changed);
  }

  // ------------------------------------------------------------ records

  track(el, kind, url) {
    const rec = createRecord({ id: this.nextId++, el, kind, url });
    this.records.set(rec);
    this.pictures.rekey(rec, null, url);
    tagTracked(rec);
    this.where.follow(el); // both intersection observers report it at once
    this.repaints.watch(el);
    return rec;
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

  /** Stop following a record that needs nothing more, unless another picture of its element does. */
  unfollow(rec) {
    if (this.records.of(rec.el).some((r) => r !== rec && (isHidden(r) || needsRetry(r)))) return;
    this.where.unfollow(rec.el);
  }

  forget(rec) {
    this.asker.drop(rec);
    this.clocks.drop(rec);
    this.records.delete(rec);
    this.pictures.rekey(rec, rec.url, null);
    this.pictures.rekey(rec, rec.verdict?.sha256, null);
    this.unfollow(rec);
    if (this.records.of(rec.el).length === 0) this.repaints.unwatch(rec.el);
    this.warnings.remove(rec);
    clearInlineOverrides(rec);
    restoreLabel(rec);
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
      this.pictures.rekey(rec, null, verdict.sha256);
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
    if (rec.el.isConnected) this.reader.consider(rec.el);
    this.flush();
    this.reportCount();
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
      this.reader.considerCanvas(rec.el, { force: true });
      this.flush();
      return null;
    }
    return requestVerdict({ id: rec.id, kind: 'canvas', el: rec.el, url: snap.dataUrl }, priority);
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
