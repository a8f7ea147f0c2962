/**
 * ImageFilter decides: it takes the elements DOMWatcher reports, keeps one record per image
 * element (image_state.js: the state machine), follows where each one is through the browser's
 * own signals, has VerdictAsker ask the worker about them (on screen first), and puts each state
 * into the page (hiding.js) and into the overlay (badges, overlay.js).
 *
 * Where a record is: an IntersectionObserver a screen beyond the viewport (`near`: measured and
 * queued before the user gets there) and one on the viewport itself (`onScreen`: asked first, and
 * its time limit starts). An element without a box (inside display: none, a closed <details>, an
 * inactive tab, a collapsed comment) is watched by a ResizeObserver, which fires the moment the
 * page gives it one, however late; there is no retry counter to run out.
 *
 * DOM reads happen when an element is reported; writes are queued and applied by `flush()`, so a
 * batch of new elements costs one style recalculation and one layout, not one per element.
 */
import { listCssImageUrls } from '../shared/cssurls.js';
import {
  ANSWER, SEEN, STATE, createRecord, hasOverlay, hideAgain, holdPending, isCountedFlagged, isHidden, isTooSmallFile,
  isUnavailable, needsRetry, receiveVerdict, redecide, reveal, seeBox, serverBack, summaryState, timeOut,
} from './image_state.js';
import {
  clearInlineOverrides, clearState, hideBackgroundsEarly, reassertState, showState, tagTracked, writeState,
} from './hiding.js';
import { VerdictAsker } from './verdict_asker.js';

const ENTRY_BUDGET_MS = 8;
const COUNT_INTERVAL_MS = 300;

export class ImageFilter {
  /**
   * @param {{requestVerdict: (url) => Promise<object|null>, overlay, getContext: () => {settings, categories, healthOk},
   *          onCountChange: (n) => void, timed: (fn, kind) => void}} deps
   */
  constructor({ requestVerdict, overlay, getContext, onCountChange, timed }) {
    this.overlay = overlay;
    this.getContext = getContext;
    this.onCountChange = onCountChange;
    this.timed = timed;
    this.records = new Map(); // element -> record
    this.writes = []; // DOM writes queued by consider*(), applied by flush()
    this.nextId = 1;
    this.lastCount = -1;
    this.countTimer = 0;
    this.asker = new VerdictAsker({
      requestVerdict,
      timed,
      onVerdict: (rec, verdict) => this.applyVerdict(rec, verdict),
      findUnavailable: () => this.findUnavailable(),
    });
    const observe = (near) => (entries) => this.timed(() => this.onIntersect(entries, near), 'intersections');
    this.nearIO = new IntersectionObserver(observe(true), { rootMargin: '100% 0px' });
    this.screenIO = new IntersectionObserver(observe(false));
    this.sizeWatch = new ResizeObserver((entries) => this.timed(() => this.onResize(entries), 'resize'));
    this.watchingSize = new Set(); // elements sizeWatch observes
  }

  // ------------------------------------------------------------ elements the watcher reports

  /** An element the watcher reported: an <img>, or maybe an element with a CSS background image. */
  consider(el) {
    if (el.tagName === 'IMG') {
      this.considerImage(el);
      return;
    }
    if (this.records.has(el)) return;
    const inline = el.getAttribute('style');
    const hasInlineUrl = inline !== null && inline.includes('url(');
    const early = el.getAttribute('data-simclip-early'); // the value the loader saw before hiding it
    // Inline and early-hidden backgrounds compute to "none" under the pre-hide rules: read the source.
    const bg = (hasInlineUrl ? el.style.backgroundImage : '') || early || getComputedStyle(el).backgroundImage;
    const [url] = bg && bg !== 'none' ? listCssImageUrls(bg, document.baseURI) : [];
    if (!url) {
      if (hasInlineUrl || early !== null) this.later(() => writeState(el, STATE.SKIP)); // e.g. a mask or cursor url
      return;
    }
    // Hidden at once, measured by the IntersectionObserver (no forced layout here): a small
    // element (an icon sprite) gets its background back one frame later.
    this.later(() => {
      if (!this.records.has(el)) this.trackPending(el, url);
    });
  }

  /** An <img> loaded (or was reported): measure it once its source is known (writes wait for flush). */
  considerImage(img) {
    if (!img.complete) return; // the document-wide load listener calls again
    const file = { url: img.currentSrc || img.src, width: img.naturalWidth, height: img.naturalHeight };
    this.later(() => {
      const rec = this.records.get(img);
      if (rec && rec.url === file.url) {
        reassertState(rec);
        return;
      }
      if (rec) this.forget(rec);
      if (isTooSmallFile(file)) writeState(img, STATE.SKIP); // broken, empty or too small to be a meme
      else this.track(img, 'img', file.url);
    });
  }

  /** Elements the watcher left for later: hide their stylesheet backgrounds until then. */
  holdBack(elements) {
    hideBackgroundsEarly(elements);
  }

  later(write) {
    this.writes.push(write);
  }

  /** Apply the queued DOM writes (end of a mutation batch, slice or load event). */
  flush() {
    const writes = this.writes;
    this.writes = [];
    for (const write of writes) write();
  }

  /** A watched attribute changed on `el`. */
  onAttribute(el, name) {
    if (name === 'src' || name === 'srcset') {
      this.onSourceChange(el);
      return;
    }
    const rec = this.records.get(el);
    if (!rec) {
      if (name === 'style' && isNewInlineBackground(el)) this.consider(el);
      return;
    }
    // data-simclip: usually our own write echoing back; only a value the site changed needs restoring.
    if (name === 'data-simclip') {
      if (rec.state !== null) writeState(el, rec.state);
      return;
    }
    if (name === 'style' && rec.kind === 'bg' && this.onBackgroundChange(rec)) return;
    reassertState(rec);
  }

  /** An <img> (or a <picture>'s <source>) got a new src or srcset: hidden until the new source is checked. */
  onSourceChange(el) {
    const img = el.tagName === 'SOURCE' ? el.parentElement?.querySelector('img') : el;
    if (!img || img.tagName !== 'IMG') return;
    const rec = this.records.get(img);
    if (rec) this.forget(rec);
    clearState(img);
    this.considerImage(img);
    this.flush();
  }

  /** True when the tracked background's URL changed (the element is then tracked afresh). */
  onBackgroundChange(rec) {
    const [url] = listCssImageUrls(rec.el.style.backgroundImage || getComputedStyle(rec.el).backgroundImage, document.baseURI);
    if (!url || url === rec.url) return false;
    this.forget(rec);
    this.trackPending(rec.el, url);
    return true;
  }

  // ------------------------------------------------------------ records

  track(el, kind, url) {
    const rec = createRecord({ id: this.nextId++, el, kind, url });
    this.records.set(el, rec);
    tagTracked(rec);
    this.follow(rec);
    return rec;
  }

  /** Follow where the record's element is (both intersection observers report it at once). */
  follow(rec) {
    this.nearIO.observe(rec.el);
    this.screenIO.observe(rec.el);
  }

  /** Stop following a record that needs nothing more (decided, skipped, unreadable). */
  unfollow(rec) {
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

  /** A background element: tracked and hidden at once, before it is measured. */
  trackPending(el, url) {
    const rec = this.track(el, 'bg', url);
    holdPending(rec);
    this.paint(rec);
  }

  forget(rec) {
    this.asker.drop(rec);
    clearTimeout(rec.timer);
    this.unfollow(rec);
    this.records.delete(rec.el);
    this.overlay.remove(rec);
    clearInlineOverrides(rec);
  }

  isTracked(rec) {
    return this.records.get(rec.el) === rec;
  }

  /** The records whose element is still in the document (others are dropped). */
  *liveRecords() {
    for (const [el, rec] of this.records) {
      if (el.isConnected) yield rec;
      else this.forget(rec);
    }
  }

  /** Put the record's state into the page and the overlay. */
  paint(rec) {
    showState(rec);
    if (hasOverlay(rec.state)) this.overlay.sync(rec);
    else this.overlay.remove(rec);
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
      const rec = this.records.get(entries[i].target);
      if (rec) this.onEntry(rec, entries[i], near);
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
      this.unwatchSize(rec.el);
    } else {
      this.watchSize(rec.el); // no box yet, or too small: seen again when its size changes
      if (seen === SEEN.TOO_SMALL) {
        this.nearIO.unobserve(rec.el);
        this.screenIO.unobserve(rec.el);
      }
    }
    if (armed) this.armTimer(rec);
    this.asker.update(rec);
  }

  /** The element got a box (or another size): both observers report it afresh. */
  onResize(entries) {
    for (const entry of entries) {
      const rec = this.records.get(entry.target);
      if (!rec) {
        this.unwatchSize(entry.target);
        continue;
      }
      const { width, height } = entry.contentRect;
      if (width > 0 && height > 0) {
        this.nearIO.unobserve(rec.el);
        this.screenIO.unobserve(rec.el);
        this.follow(rec);
      }
    }
  }

  limitMs() {
    return this.getContext().settings.revealAfterSeconds * 1000;
  }

  armTimer(rec) {
    clearTimeout(rec.timer);
    rec.timer = setTimeout(() => this.timed(() => this.onTimeout(rec), 'timeout'), Math.max(0, rec.deadline - performance.now()));
  }

  onTimeout(rec) {
    if (!this.isTracked(rec)) return;
    const { settings, healthOk } = this.getContext();
    if (rec.deadline !== null && performance.now() < rec.deadline) {
      this.armTimer(rec); // a timer that fired early
      return;
    }
    if (timeOut(rec, { settings, healthOk }, performance.now())) this.paint(rec);
  }

  applyVerdict(rec, verdict) {
    if (!this.isTracked(rec)) return;
    clearTimeout(rec.timer);
    const answer = receiveVerdict(rec, verdict, this.getContext());
    if (answer === ANSWER.DECIDED) this.asker.serverAnswered();
    if (isHidden(rec) && rec.deadline !== null) this.armTimer(rec); // waiting: the time limit runs on
    this.paint(rec);
    if (answer === ANSWER.UNAVAILABLE || answer === ANSWER.NO_ANSWER) this.asker.forgetAnswer(rec.url); // ask again once the server is back
    if (answer === ANSWER.UNAVAILABLE) this.asker.scheduleRecovery();
    if (!isHidden(rec) && !needsRetry(rec)) this.unfollow(rec);
    this.reportCount();
  }

  findUnavailable() {
    for (const rec of this.liveRecords()) if (isUnavailable(rec)) return rec;
    return undefined;
  }

  // ------------------------------------------------------------ the user, settings, the server

  /** The user clicked "Show" on a flagged image. */
  reveal(rec) {
    if (reveal(rec)) this.paint(rec);
  }

  /** The user clicked "Hide again". */
  hide(rec) {
    if (hideAgain(rec)) this.paint(rec);
  }

  /** Settings or categories changed: decide every checked image again (no new requests). */
  rerender() {
    const context = this.getContext();
    for (const rec of this.liveRecords()) if (redecide(rec, context)) this.paint(rec);
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

  countFlagged() {
    let n = 0;
    for (const rec of this.liveRecords()) if (isCountedFlagged(rec)) n += 1;
    return n;
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

  /** Counts per state, for the popup and tests. */
  summarize() {
    const byState = {};
    for (const rec of this.liveRecords()) byState[summaryState(rec)] = (byState[summaryState(rec)] ?? 0) + 1;
    return { flagged: this.countFlagged(), byState };
  }
}

/** An untracked element whose style just got an inline url() background. */
function isNewInlineBackground(el) {
  return el.tagName !== 'IMG' && (el.getAttribute('style') ?? '').includes('url(') && !el.hasAttribute('data-simclip');
}
