/**
 * Where each tracked element is, through the browser's own signals: an IntersectionObserver a
 * screen beyond the viewport (`near`: measured and queued before the user gets there) and one on
 * the viewport itself (`onScreen`). An element without a box (inside display: none, a closed
 * <details>, an inactive tab, a collapsed comment) is watched by a ResizeObserver, which fires the
 * moment the page gives it one, however late; there is no retry counter to run out.
 * ImageFilter turns each report into what the record's element shows (`onEntry`).
 */
import { flushStyle } from './perf.js';

const ENTRY_BUDGET_MS = 8;

export class Whereabouts {
  /**
   * @param {{recordsOf: (el) => object[], onEntry: (rec, entry, near: boolean) => void,
   *          timed: (fn, kind) => void, forceStyle?: (read) => any}} deps
   */
  constructor({ recordsOf, onEntry, timed, forceStyle = (read) => read() }) {
    this.recordsOf = recordsOf;
    this.onEntry = onEntry;
    this.timed = timed;
    this.forceStyle = forceStyle;
    const observe = (near) => (entries) => this.timed(() => this.onIntersect(entries, near), 'intersections');
    this.nearIO = new IntersectionObserver(observe(true), { rootMargin: '100% 0px' });
    this.screenIO = new IntersectionObserver(observe(false));
    this.sizeWatch = new ResizeObserver((entries) => this.timed(() => this.onResize(entries), 'resize'));
    this.watchingSize = new Set(); // elements sizeWatch observes
  }

  /** Follow where `el` is (both intersection observers report it at once). */
  follow(el) {
    this.nearIO.observe(el);
    this.screenIO.observe(el);
  }

  /** Stop following `el`. */
  unfollow(el) {
    this.nearIO.unobserve(el);
    this.screenIO.unobserve(el);
    this.unwatchSize(el);
  }

  /** `el` has no box yet, or is too small: seen again when its size changes. */
  watchSize(el) {
    if (this.watchingSize.has(el)) return; // observing again would report the same size again
    this.watchingSize.add(el);
    this.sizeWatch.observe(el);
  }

  unwatchSize(el) {
    if (this.watchingSize.delete(el)) this.sizeWatch.unobserve(el);
  }

  /**
   * IntersectionObserver entries, handled in slices of ENTRY_BUDGET_MS (a feed reports hundreds at
   * once). Each slice starts with one forced style pass, booked apart (perf.js's flushStyle).
   */
  onIntersect(entries, near, from = 0) {
    flushStyle(this.forceStyle);
    const start = performance.now();
    for (let i = from; i < entries.length; i += 1) {
      if (i > from && performance.now() - start > ENTRY_BUDGET_MS) {
        setTimeout(() => this.timed(() => this.onIntersect(entries, near, i), 'intersections'), 0);
        return;
      }
      for (const rec of this.recordsOf(entries[i].target)) this.onEntry(rec, entries[i], near);
    }
  }

  /** The element got a box (or another size): both observers report it afresh. */
  onResize(entries) {
    for (const entry of entries) {
      if (this.recordsOf(entry.target).length === 0) {
        this.unwatchSize(entry.target);
        continue;
      }
      const { width, height } = entry.contentRect;
      if (width > 0 && height > 0) {
        this.nearIO.unobserve(entry.target);
        this.screenIO.unobserve(entry.target);
        this.follow(entry.target);
      }
    }
  }
}
