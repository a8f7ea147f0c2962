/**
 * DOMWatcher: finds the elements that may show an image, now and as the page changes (lazy
 * loading, infinite scroll, scripts swapping `src`). It only *reports* them: found now, found but
 * left for a later time slice, an attribute changed. It never writes to the page; deciding and
 * hiding are ImageFilter's job (with hiding.js). Added subtrees are walked in time slices
 * (shared/slicer.js), so a page inserting hundreds of posts at once does not block the main thread.
 */
import { TimeSlicer } from '../shared/slicer.js';

const SYNC_BUDGET_MS = 12; // our own work per mutation batch
const SKIP_TAGS = new Set(['HTML', 'HEAD', 'BODY', 'SCRIPT', 'STYLE', 'LINK', 'META', 'TITLE', 'NOSCRIPT', 'TEMPLATE', 'BR', 'SOURCE', 'OPTION']);

export class DOMWatcher {
  /**
   * @param {{onElement: (el) => void, onDeferred: (elements) => void, onAttribute: (el, name) => void,
   *          onBatch: () => void, isOwnNode: (node) => boolean, timed: (fn, kind) => void,
   *          forceStyle: (read) => void}} callbacks
   *   `onElement`: an element to consider now; `onDeferred`: elements found in this mutation batch
   *   but left for a later slice (each is reported to onElement then), before the next paint.
   */
  constructor({ onElement, onDeferred, onAttribute, onBatch, isOwnNode, timed, forceStyle }) {
    this.onElement = onElement;
    this.onDeferred = onDeferred;
    this.onAttribute = onAttribute;
    this.onBatch = onBatch;
    this.isOwnNode = isOwnNode;
    this.timed = timed;
    this.forceStyle = forceStyle;
    this.observer = null;
    this.deferred = 0; // elements left to time slices because a mutation batch ran out of budget
    this.slicer = new TimeSlicer((item) => this.visit(item), {
      schedule: (fn) => setTimeout(() => this.timed(() => {
        this.forceStyle(() => document.documentElement && getComputedStyle(document.documentElement).backgroundImage);
        fn();
      }, 'slice'), 0),
      afterSlice: () => this.onBatch(),
    });
  }

  /** What the observer listens to: added nodes anywhere, and the attributes that change an image. */
  static getConfig() {
    return { childList: true, subtree: true, attributes: true, attributeFilter: ['src', 'srcset', 'style', 'data-simclip'] };
  }

  /** Start observing and sweep what is already in the document (idempotent). */
  watch() {
    if (this.observer) return;
    this.observer = new MutationObserver((records) => this.timed(() => this.onRecords(records), 'mutations'));
    this.observer.observe(document, DOMWatcher.getConfig());
    if (document.documentElement) this.slicer.push({ root: document.documentElement });
  }

  /** Stop observing (idempotent); queued work is dropped. */
  unwatch() {
    if (!this.observer) return;
    this.observer.disconnect();
    this.observer = null;
    this.slicer.items = [];
    this.slicer.head = 0;
  }

  onRecords(records) {
    // Added nodes are visited right here, before the next paint (so a CSS background meme from a
    // stylesheet never flashes), up to SYNC_BUDGET_MS of our own work; the rest goes to time
    // slices. The clock starts after one forced style pass: the browser owes that work before the
    // next paint anyway, and after it every style read below is cheap (writes are queued).
    let start = null;
    for (const r of records) {
      if (r.type === 'childList') {
        for (const node of r.addedNodes) {
          if (node.nodeType !== Node.ELEMENT_NODE || this.isOwnNode(node)) continue;
          if (start === null) {
            if (node.isConnected) this.forceStyle(() => getComputedStyle(node).backgroundImage);
            start = performance.now();
          }
          if (this.slicer.pending === 0 && performance.now() - start < SYNC_BUDGET_MS) this.visitTree(node, start);
          else {
            this.deferred += 1;
            this.reportDeferred([node, ...node.getElementsByTagName('*')]);
            this.slicer.push({ root: node });
          }
        }
      } else if (!this.isOwnNode(r.target)) {
        this.onAttribute(r.target, r.attributeName);
      }
    }
    this.onBatch();
  }

  visitTree(root, start) {
    this.visit({ el: root });
    const all = root.firstElementChild ? root.getElementsByTagName('*') : [];
    let i = 0;
    for (; i < all.length && performance.now() - start < SYNC_BUDGET_MS; i += 1) this.visit({ el: all[i] });
    if (i < all.length) {
      this.deferred += all.length - i;
      const rest = [];
      for (; i < all.length; i += 1) rest.push({ el: all[i] });
      this.reportDeferred(rest.map((item) => item.el));
      this.slicer.pushAll(rest);
    }
  }

  reportDeferred(elements) {
    this.onDeferred(elements.filter((el) => !SKIP_TAGS.has(el.tagName)));
  }

  visit({ root, el }) {
    if (root) {
      this.visitTree(root, performance.now());
      return;
    }
    if (!el.isConnected || SKIP_TAGS.has(el.tagName)) return;
    this.onElement(el);
  }

  /** Longest time-slice so far, in ms. */
  get maxSliceMs() {
    return this.slicer.maxSliceMs;
  }
}
