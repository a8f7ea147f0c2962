/**
 * ImageFilter decides: it takes the elements DOMWatcher reports, keeps one record per image
 * element (image_state.js: the state machine), measures them when they come near the viewport
 * (IntersectionObserver, so visible images go first and a long feed costs nothing until it is
 * scrolled), has VerdictAsker ask the worker about them, and puts each state into the page
 * (hiding.js) and into the overlay (badges, overlay.js).
 *
 * DOM reads happen when an element is reported; writes are queued and applied by `flush()`, so a
 * batch of new elements costs one style recalculation and one layout, not one per element.
 */
import { listCssImageUrls } from '../shared/cssurls.js';
import {
  ANSWER, MEASURED, STATE, createRecord, hasOverlay, hideAgain, holdPending, isAwaitingAsk, isCountedFlagged,
  isTooSmallFile, isUnavailable, measure, needsRetry, nextRemeasureDelay, receiveVerdict, redecide, reveal,
  summaryState, timeOut,
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
      revealAfterMs: () => this.getContext().settings.revealAfterSeconds * 1000,
      onVerdict: (rec, verdict) => this.applyVerdict(rec, verdict),
      onTimeout: (rec) => this.onTimeout(rec),
      isAskable: (rec) => this.isTracked(rec) && isAwaitingAsk(rec),
      findUnavailable: () => this.findUnavailable(),
    });
    this.io = new IntersectionObserver((entries) => this.timed(() => this.onIntersect(entries), 'intersections'), { rootMargin: '100% 0px' });
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
    this.io.observe(el);
    return rec;
  }

  /** A background element: tracked and hidden at once, before it is measured. */
  trackPending(el, url) {
    const rec = this.track(el, 'bg', url);
    holdPending(rec);
    this.paint(rec);
  }

  forget(rec) {
    this.asker.drop(rec);
    this.io.unobserve(rec.el);
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

  // ------------------------------------------------------------ measuring and asking

  /** IntersectionObserver entries, handled in slices of ENTRY_BUDGET_MS (a feed reports hundreds at once). */
  onIntersect(entries, from = 0) {
    const start = performance.now();
    for (let i = from; i < entries.length; i += 1) {
      if (i > from && performance.now() - start > ENTRY_BUDGET_MS) {
        setTimeout(() => this.timed(() => this.onIntersect(entries, i), 'intersections'), 0);
        return;
      }
      const rec = this.records.get(entries[i].target);
      if (rec) this.onEntry(rec, entries[i]);
    }
  }

  onEntry(rec, entry) {
    if (!rec.sized && !this.measureEntry(rec, entry.boundingClientRect)) return;
    if (rec.asked) return;
    if (entry.isIntersecting) {
      this.io.unobserve(rec.el);
      this.asker.askVisible(rec);
    } else {
      this.asker.askInBackground(rec);
    }
  }

  /** False when the record is not ready to be asked about (no box yet, or too small and forgotten). */
  measureEntry(rec, box) {
    const outcome = measure(rec, box);
    if (outcome === MEASURED.LATER) {
      this.remeasureLater(rec);
      return false;
    }
    if (outcome === MEASURED.TOO_SMALL) {
      this.forget(rec);
      writeState(rec.el, STATE.SKIP);
      return false;
    }
    if (outcome === MEASURED.PENDING) this.paint(rec);
    return true;
  }

  remeasureLater(rec) {
    const delay = nextRemeasureDelay(rec);
    this.io.unobserve(rec.el);
    if (delay === null) return; // never laid out: stays as it is until it changes
    setTimeout(() => {
      if (this.isTracked(rec) && rec.el.isConnected) this.io.observe(rec.el);
    }, delay);
  }

  onTimeout(rec) {
    if (!this.isTracked(rec)) return;
    const { settings, healthOk } = this.getContext();
    if (timeOut(rec, { settings, healthOk })) this.paint(rec);
  }

  applyVerdict(rec, verdict) {
    if (!this.isTracked(rec)) return;
    this.asker.stopTimer(rec);
    const answer = receiveVerdict(rec, verdict, this.getContext());
    if (answer === ANSWER.DECIDED) this.asker.serverAnswered();
    this.paint(rec);
    if (answer === ANSWER.UNAVAILABLE) {
      this.asker.forgetAnswer(rec.url); // ask again once the server is back
      this.asker.scheduleRecovery();
    }
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
    for (const rec of this.liveRecords()) if (needsRetry(rec)) this.asker.askAgain(rec);
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
