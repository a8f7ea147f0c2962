/**
 * ImageFilter: one state per image element, kept in its `data-simclip` attribute (the pre-hide
 * stylesheet keys on it) and mirrored here.
 *
 *   (no attribute) seen, not measured yet: an <img> stays hidden by the stylesheet
 *   pending          measured, waiting for its verdict: hidden
 *   flagged          over a threshold: blurred, with a badge naming the categories
 *   revealed         flagged, but the user clicked "Show"
 *   clean            checked, below every threshold: shown
 *   skip             not checked (too small, private host, not an image...): shown
 *   unchecked        no verdict in time or server down: shown (fail open)
 *   waiting          server down and the user chose to keep images hidden
 *
 * Images are measured and asked about when they come near the viewport (IntersectionObserver),
 * so visible images go first and a long feed costs nothing until it is scrolled.
 */
import { listCssImageUrls } from '../shared/cssurls.js';
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
const MIN_NATURAL_SIDE = 100; // px of the image file: smaller ones are icons, not memes
const MIN_RENDERED_SIDE = 64; // px on screen: avatars and thumbnails below this are skipped
const MIN_BACKGROUND_SIDE = 100; // px on screen for a CSS background image
const MAX_REMEASURE = 5;
const URL_MEMO_SIZE = 3000;
const BACKLOG_INTERVAL_MS = 400;
const ENTRY_BUDGET_MS = 8;
const BACKGROUND_IN_FLIGHT = 4; // background asks only while fewer verdicts than this are awaited
// While the server is unavailable, one waiting image is asked again after 2, 4, 8, 16, then every
// 30 s: the worker re-probes the server on that ask, and once it is back every waiting image is.
const RECOVERY_FIRST_MS = 2000;
const RECOVERY_MAX_MS = 30000;

export class ImageFilter {
  /**
   * @param {{requestVerdict: (url) => Promise<object|null>, overlay, getContext: () => {settings, labels, healthOk},
   *          onCountChange: (n) => void, timed: (fn) => void}} deps
   */
  constructor({ requestVerdict, overlay, getContext, onCountChange, timed }) {
    this.requestVerdict = requestVerdict;
    this.overlay = overlay;
    this.getContext = getContext;
    this.onCountChange = onCountChange;
    this.timed = timed;
    this.records = new Map(); // element -> record
    this.writes = []; // DOM writes queued by consider*(), applied by flush()
    this.backlog = new Set(); // pending records away from the viewport, asked in the background
    this.backlogTimer = 0;
    this.inFlight = 0; // verdicts this page is waiting for
    this.verdicts = new Map(); // url -> Promise<verdict>: the same image is asked about once
    this.nextId = 1;
    this.lastCount = -1;
    this.recoveryTimer = 0;
    this.recoveryDelay = RECOVERY_FIRST_MS;
    this.io = new IntersectionObserver((entries) => this.timed(() => this.onIntersect(entries), 'intersections'), { rootMargin: '100% 0px' });
  }

  /**
   * An element the watcher reported: an <img>, or maybe an element with a CSS background image.
   * Only reads happen here; writes are queued for `flush()`, so a batch of new elements costs one
   * style recalculation and one layout, not one per element.
   */
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
      if (hasInlineUrl || early !== null) this.later(() => this.mark(el, STATE.SKIP)); // e.g. a mask or cursor url
      return;
    }
    this.later(() => {
      if (this.records.has(el)) return;
      // Hidden at once, measured by the IntersectionObserver (no forced layout here): a small
      // element (an icon sprite) gets its background back one frame later.
      this.setState(this.track(el, 'bg', url), STATE.PENDING);
    });
  }

  /** An <img> loaded (or was reported): measure it once its source is known (writes wait for flush). */
  considerImage(img) {
    if (!img.complete) return; // the document-wide load listener calls again
    const url = img.currentSrc || img.src;
    const width = img.naturalWidth;
    const height = img.naturalHeight;
    this.later(() => {
      const rec = this.records.get(img);
      if (rec && rec.url === url) {
        this.assertState(rec);
        return;
      }
      if (rec) this.forget(rec);
      if (!url || width === 0 || Math.min(width, height) < MIN_NATURAL_SIDE) {
        this.mark(img, STATE.SKIP); // broken, empty or too small to be a meme
        return;
      }
      this.track(img, 'img', url);
    });
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
      const img = el.tagName === 'SOURCE' ? el.parentElement?.querySelector('img') : el;
      if (!img || img.tagName !== 'IMG') return;
      const rec = this.records.get(img);
      if (rec) this.forget(rec);
      if (img.hasAttribute('data-simclip')) img.removeAttribute('data-simclip'); // hidden until the new source is checked
      this.considerImage(img);
      this.flush();
      return;
    }
    const rec = this.records.get(el);
    if (rec && name === 'data-simclip') {
      // Usually our own write echoing back: only a value the site changed needs restoring.
      if (rec.state !== null && el.getAttribute('data-simclip') !== rec.state) el.setAttribute('data-simclip', rec.state);
      return;
    }
    if (!rec) {
      if (name === 'style' && el.tagName !== 'IMG' && (el.getAttribute('style') ?? '').includes('url(') && !el.hasAttribute('data-simclip')) {
        this.consider(el);
      }
      return;
    }
    if (name === 'style' && rec.kind === 'bg') {
      const [url] = listCssImageUrls(el.style.backgroundImage || getComputedStyle(el).backgroundImage, document.baseURI);
      if (url && url !== rec.url) {
        this.forget(rec);
        this.setState(this.track(el, 'bg', url), STATE.PENDING);
        return;
      }
    }
    this.assertState(rec);
  }

  track(el, kind, url) {
    const rec = { id: this.nextId++, el, kind, url, state: null, sized: false, verdict: null, warnings: [], revealed: false, asked: false, timer: 0, measured: 0 };
    this.records.set(el, rec);
    if (el.hasAttribute('data-simclip')) el.removeAttribute('data-simclip'); // e.g. a clone of a checked node
    el.setAttribute('data-simclip-id', String(rec.id));
    if (kind === 'bg') el.setAttribute('data-simclip-bg', '');
    this.io.observe(el);
    return rec;
  }

  forget(rec) {
    clearTimeout(rec.timer);
    this.backlog.delete(rec);
    this.io.unobserve(rec.el);
    this.records.delete(rec.el);
    this.overlay.remove(rec);
    this.clearInlineOverrides(rec);
  }

  /** Mark an element we do not track (skip): shown as is. */
  mark(el, state) {
    if (el.getAttribute('data-simclip') !== state) el.setAttribute('data-simclip', state);
  }

  /** IntersectionObserver entries, handled in slices of ENTRY_BUDGET_MS (a feed reports hundreds at once). */
  onIntersect(entries, from = 0) {
    const start = performance.now();
    for (let i = from; i < entries.length; i += 1) {
      if (i > from && performance.now() - start > ENTRY_BUDGET_MS) {
        setTimeout(() => this.timed(() => this.onIntersect(entries, i), 'intersections'), 0);
        return;
      }
      const entry = entries[i];
      const rec = this.records.get(entry.target);
      if (!rec) continue;
      if (!rec.sized) {
        const { width, height } = entry.boundingClientRect;
        if (width === 0 || height === 0) {
          this.remeasureLater(rec);
          continue;
        }
        const min = rec.kind === 'bg' ? MIN_BACKGROUND_SIDE : MIN_RENDERED_SIDE;
        if (Math.min(width, height) < min) {
          this.forget(rec);
          this.mark(rec.el, STATE.SKIP);
          continue;
        }
        rec.sized = true;
        if (rec.state === null) this.setState(rec, STATE.PENDING);
      }
      if (entry.isIntersecting && !rec.asked) {
        this.io.unobserve(rec.el);
        this.backlog.delete(rec);
        this.ask(rec);
      } else if (!rec.asked) {
        this.backlog.add(rec);
        this.scheduleBacklog();
      }
    }
  }

  /**
   * Images measured away from the viewport (scrolled past, or far below) are asked about in the
   * background, a few at a time and only while nothing visible is waiting, so they are decided
   * before the user scrolls to them without delaying what is on screen.
   */
  scheduleBacklog() {
    if (this.backlogTimer || this.backlog.size === 0) return;
    this.backlogTimer = setTimeout(() => {
      this.backlogTimer = 0;
      this.timed(() => {
        for (const rec of this.backlog) {
          if (this.inFlight >= BACKGROUND_IN_FLIGHT) break;
          this.backlog.delete(rec);
          if (this.records.get(rec.el) === rec && !rec.asked && rec.state === STATE.PENDING) this.ask(rec);
        }
      }, 'backlog');
      this.scheduleBacklog();
    }, BACKLOG_INTERVAL_MS);
  }

  remeasureLater(rec) {
    rec.measured += 1;
    this.io.unobserve(rec.el);
    if (rec.measured > MAX_REMEASURE) return; // never laid out: stays as it is until it changes
    setTimeout(() => {
      if (this.records.get(rec.el) === rec && rec.el.isConnected) this.io.observe(rec.el);
    }, 500 * rec.measured);
  }

  getVerdict(url) {
    let promise = this.verdicts.get(url);
    if (!promise) {
      promise = this.requestVerdict(url);
      this.verdicts.set(url, promise);
      if (this.verdicts.size > URL_MEMO_SIZE) this.verdicts.delete(this.verdicts.keys().next().value);
    }
    return promise;
  }

  ask(rec) {
    rec.asked = true;
    const { settings } = this.getContext();
    clearTimeout(rec.timer);
    rec.timer = setTimeout(() => this.timed(() => this.onTimeout(rec), 'timeout'), settings.revealAfterSeconds * 1000);
    this.inFlight += 1;
    this.getVerdict(rec.url).then((verdict) => {
      this.inFlight -= 1;
      this.timed(() => this.applyVerdict(rec, verdict), 'verdict');
    });
  }

  onTimeout(rec) {
    if (this.records.get(rec.el) !== rec || rec.state !== STATE.PENDING) return;
    const { settings, healthOk } = this.getContext();
    this.setState(rec, settings.keepHiddenWhenDown && !healthOk ? STATE.WAITING : STATE.UNCHECKED);
  }

  applyVerdict(rec, verdict) {
    if (this.records.get(rec.el) !== rec) return;
    clearTimeout(rec.timer);
    rec.verdict = verdict;
    if (verdict?.status === VERDICT.OK) {
      this.recoveryDelay = RECOVERY_FIRST_MS;
      this.render(rec);
    } else if (verdict?.status === VERDICT.SKIPPED) {
      this.setState(rec, STATE.SKIP);
    } else {
      this.verdicts.delete(rec.url); // ask again once the server is back
      const { settings } = this.getContext();
      this.setState(rec, settings.keepHiddenWhenDown ? STATE.WAITING : STATE.UNCHECKED);
      this.scheduleRecovery();
    }
    this.reportCount();
  }

  /**
   * The worker learns that the server is back when it probes it, and it probes on an ask (or on
   * its once-a-minute alarm). A page with images waiting for an unavailable server asks again
   * about one of them, backing off, so a restarted server is noticed within seconds.
   */
  scheduleRecovery() {
    if (this.recoveryTimer) return;
    const delay = this.recoveryDelay;
    this.recoveryDelay = Math.min(delay * 2, RECOVERY_MAX_MS);
    this.recoveryTimer = setTimeout(() => this.timed(() => {
      this.recoveryTimer = 0;
      for (const rec of this.liveRecords()) {
        if (this.isUnavailable(rec)) {
          this.ask(rec); // an unavailable answer schedules the next try
          return;
        }
      }
      this.recoveryDelay = RECOVERY_FIRST_MS; // nothing waits any more
    }, 'recovery'), delay);
  }

  /** Shown unchecked or kept waiting because the last answer was neither scores nor a skip (see applyVerdict). */
  isUnavailable(rec) {
    const status = rec.verdict?.status;
    return (rec.state === STATE.UNCHECKED || rec.state === STATE.WAITING)
      && Boolean(rec.verdict) && status !== VERDICT.OK && status !== VERDICT.SKIPPED;
  }

  /** Decide flagged/clean from the scores with the current settings and labels. */
  render(rec) {
    const { settings, labels } = this.getContext();
    rec.warnings = listActiveWarnings(rec.verdict.scores, labels, settings);
    const state = rec.warnings.length === 0 ? STATE.CLEAN : rec.revealed ? STATE.REVEALED : STATE.FLAGGED;
    this.setState(rec, state);
  }

  setState(rec, state) {
    rec.state = state;
    if (rec.el.getAttribute('data-simclip') !== state) rec.el.setAttribute('data-simclip', state);
    this.clearInlineOverrides(rec);
    if (state === STATE.FLAGGED || state === STATE.REVEALED) this.overlay.sync(rec);
    else this.overlay.remove(rec);
  }

  /**
   * Re-apply a record's state after the site touched the element: restore a removed or changed
   * data-simclip, and beat an inline `!important` style with our own inline `!important`.
   */
  assertState(rec) {
    if (rec.state === null) return;
    if (rec.el.getAttribute('data-simclip') !== rec.state) rec.el.setAttribute('data-simclip', rec.state);
    if (!HIDDEN_STATES.has(rec.state) && rec.state !== STATE.FLAGGED) return;
    const style = getComputedStyle(rec.el);
    if (rec.state === STATE.FLAGGED && !style.filter.includes('blur')) {
      rec.el.style.setProperty('filter', 'blur(28px) saturate(0.5)', 'important');
      rec.el.style.setProperty('clip-path', 'inset(0)', 'important');
      rec.inline = true;
    } else if (HIDDEN_STATES.has(rec.state) && rec.kind === 'img' && style.visibility !== 'hidden') {
      rec.el.style.setProperty('visibility', 'hidden', 'important');
      rec.inline = true;
    } else if (HIDDEN_STATES.has(rec.state) && rec.kind === 'bg' && style.backgroundImage !== 'none') {
      rec.el.style.setProperty('background-image', 'none', 'important');
      rec.inline = true;
    }
  }

  clearInlineOverrides(rec) {
    if (!rec.inline) return;
    rec.inline = false;
    for (const prop of ['filter', 'clip-path', 'visibility', 'background-image']) {
      if (rec.el.style.getPropertyPriority(prop) === 'important') rec.el.style.removeProperty(prop);
    }
  }

  /** The user clicked "Show" on a flagged image. */
  reveal(rec) {
    rec.revealed = true;
    if (rec.state === STATE.FLAGGED) this.setState(rec, STATE.REVEALED);
  }

  /** The user clicked "Hide again". */
  hide(rec) {
    rec.revealed = false;
    if (rec.state === STATE.REVEALED) this.setState(rec, STATE.FLAGGED);
  }

  /** Settings or labels changed: decide every checked image again (no new requests). */
  rerender() {
    for (const rec of this.liveRecords()) {
      if (rec.verdict?.status === VERDICT.OK) this.render(rec);
    }
    this.reportCount();
  }

  /** The server is back: ask again about images shown or held without a verdict. */
  retryUnavailable() {
    for (const rec of this.liveRecords()) {
      if ((rec.state === STATE.UNCHECKED || rec.state === STATE.WAITING) && rec.verdict?.status !== VERDICT.OK) {
        this.verdicts.delete(rec.url);
        this.ask(rec);
      }
    }
  }

  /** The records whose element is still in the document (others are dropped). */
  *liveRecords() {
    for (const [el, rec] of this.records) {
      if (el.isConnected) yield rec;
      else this.forget(rec);
    }
  }

  countFlagged() {
    let n = 0;
    for (const rec of this.liveRecords()) if (rec.warnings.length > 0 && rec.verdict?.status === VERDICT.OK) n += 1;
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
    }, 300);
  }

  /** Counts per state, for the popup and tests. */
  summarize() {
    const byState = {};
    for (const rec of this.liveRecords()) byState[rec.state ?? 'measuring'] = (byState[rec.state ?? 'measuring'] ?? 0) + 1;
    return { flagged: this.countFlagged(), byState };
  }
}
