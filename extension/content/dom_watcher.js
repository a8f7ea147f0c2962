/**
 * DOMWatcher: finds the elements that may show an image, now and as the page changes (lazy
 * loading, infinite scroll, scripts swapping `src`), in the document and in every shadow root
 * under it: open ones, closed ones (announced by shadow_hook.js in the page's main world and read
 * through the extension's openOrClosedShadowRoot) and declarative ones (met when their host is
 * visited). It only *reports* them: found now, found but left for a later time slice, an
 * attribute changed, a picture loaded. It never writes to the page's elements; deciding and
 * hiding are ImageFilter's job (with hiding.js). The one thing it puts into a shadow root is the
 * pre-hide sheet (loader.js `shadow.adopt`), because the document's stylesheet does not reach
 * there. Added subtrees are walked in time slices (shared/slicer.js), so a page inserting hundreds
 * of posts at once does not block the main thread.
 */
import { isPlainValue, listPictureSelectors, listStyleQueryProperties, newStyleRead, readStyleRules, selectPictureRules } from '../shared/cssurls.js';
import { TimeSlicer } from '../shared/slicer.js';
import {
  CANVAS_DRAWN_EVENT, PICTURE_RULES_EVENT, SHADOW_ROOT_EVENT, STATE_CHANGED_EVENT, STYLESHEETS_CHANGED_EVENT,
} from '../shared/page_events.js';
import { flushStyle } from './perf.js';

const SYNC_BUDGET_MS = 12; // our own work per mutation batch
const SKIP_TAGS = new Set(['HTML', 'HEAD', 'BODY', 'SCRIPT', 'STYLE', 'LINK', 'META', 'TITLE', 'NOSCRIPT', 'TEMPLATE', 'BR', 'SOURCE', 'OPTION']);
const LOAD_EVENTS = ['load', 'error', 'loadeddata', 'play']; // play: a video started while it is covered
// An animation or a transition may paint another picture on any element (a background, a ::before).
const STYLE_EVENTS = ['animationstart', 'animationiteration', 'transitionrun'];
// prehide.css's pulse on a picture waiting for its verdict: ours, it paints no other picture.
export const CHECKING_ANIMATION = 'simclip-checking';
// Ours, every one (the pulse, the gap rules loader.js adopts): they paint no other picture.
export const OWN_ANIMATIONS = 'simclip-';
const RESWEEP_MIN_INTERVAL_MS = 1000; // a stylesheet added or loaded: everything is looked at again, at most this often
const MAX_PICTURE_SELECTORS = 2000; // past this many picture rules, deferred elements are read one by one

const INLINE_VAR = '[style*="var("]'; // an inline picture may come from an inherited custom property

/** The custom properties the style attribute text `text` sets, name -> value; `probe`: an element out of the document. */
export function customProperties(probe, text) {
  probe.setAttribute('style', text ?? '');
  const found = new Map();
  for (let i = 0; i < probe.style.length; i += 1) {
    const name = probe.style[i];
    if (name.startsWith('--')) found.set(name, probe.style.getPropertyValue(name));
  }
  return found;
}

/** `root` itself, when it is an element `selector` names, then every element under it that it names ('' or null: none). */
function namedBy(root, selector) {
  if (!selector) return [];
  const found = root.matches?.(selector) ? [root] : [];
  for (const el of root.querySelectorAll(selector)) found.push(el);
  return found;
}

/** Adds to `found` every element of `root` (a document or a shadow root) that one of `selectors` names; a selector this browser does not know names none. */
function addMatches(found, root, selectors) {
  for (const selector of selectors) {
    try {
      for (const el of root.querySelectorAll(selector)) found.add(el);
    } catch {
      // a selector this browser does not know
    }
  }
}

/** Without the loader's helper (node tests), only open roots are found and nothing is adopted. */
const NO_SHADOW = { getRoot: (el) => el.shadowRoot ?? null, adopt: () => {}, roots: new Set() };

export class DOMWatcher {
  /**
   * @param {{onElement: (el) => void, onDeferred: (elements) => void, onAttribute: (el, name) => void,
   *          onLoad: (el) => void, onRoot: (root) => void, onBatch: (changed?: Set<Element>) => void,
   *          timed: (fn, kind) => void, forceStyle: (read) => void, shadow?: object}} callbacks
   *   `onElement`: an element to consider now; `onDeferred`: elements found in this mutation batch
   *   but left for a later slice (each is reported to onElement then), before the next paint;
   *   `onAttribute`: also (el, 'drawn') for a canvas the page drew on (shadow_hook.js);
   *   `onLoad`: an <img>, SVG <image> or <video> loaded (or failed), or an element started an
   *   animation or a transition (it may paint another picture); `onRoot`: a shadow root is now
   *   observed; `onRemoved`: an element the page took out of the document (still out at the end
   *   of the mutation batch: a moved one is not reported); `shadow`: loader.js's helper.
   */
  constructor({ onElement, onDeferred, onAttribute, onLoad, onRoot = () => {}, onRemoved = () => {}, onBatch, timed, forceStyle, shadow }) {
    Object.assign(this, { onElement, onDeferred, onAttribute, onLoad, onRoot, onRemoved, onBatch, timed, forceStyle });
    this.shadow = shadow ?? NO_SHADOW;
    this.observer = null;
    this.roots = new Set(); // shadow roots observed
    this.deferred = 0; // elements left to time slices because a mutation batch ran out of budget
    this.inheritVisits = 0; // custom property changes that made the elements under them be read again
    this.slicer = new TimeSlicer((item) => this.visit(item), {
      schedule: (fn) => setTimeout(() => this.timed(() => {
        flushStyle(this.forceStyle);
        fn();
      }, 'slice'), 0),
      afterSlice: () => this.onBatch(),
    });
    this.onShadowEvent = (e) => {
      if (this.observer) this.timed(() => this.watchHost(e.target), 'shadow');
    };
    this.onLoadEvent = (e) => {
      const el = e.target;
      if (!this.observer) return;
      if (el.tagName === 'IMG' || el.tagName === 'image' || el.tagName === 'VIDEO') this.timed(() => this.onLoad(el), 'load');
      else if (el.tagName === 'LINK') this.timed(() => this.onStylesheet(el), 'stylesheet'); // backgrounds may have changed
    };
    this.onCanvasEvent = (e) => {
      if (this.observer && e.target.tagName === 'CANVAS') this.timed(() => this.onAttribute(e.target, 'drawn'), 'canvas');
    };
    this.onSheetsEvent = (e) => {
      if (this.observer && e.target === document) this.timed(() => this.onSheetsChanged(), 'stylesheet');
    };
    this.onPictureRulesEvent = (e) => {
      if (!this.observer || e.target !== document) return;
      let selectors = null;
      try {
        selectors = typeof e.detail === 'string' ? (e.detail ? JSON.parse(e.detail) : []) : null;
      } catch {
        // not ours: the sweep the stylesheet event scheduled finds them
      }
      if (!Array.isArray(selectors)) return;
      // '' : too many rules to list (a CSS-in-JS library's first styles): every picture rule of the document's sheets
      this.timed(() => this.onPictureRules(e.detail ? selectors.filter((x) => typeof x === 'string') : null), 'stylesheet');
    };
    this.onStateEvent = (e) => {
      if (this.observer && e.target === document) this.timed(() => this.onBatch(new Set([document.documentElement])), 'state');
    };
    this.onStyleEvent = (e) => {
      if (e.animationName?.startsWith(OWN_ANIMATIONS)) return;
      if (this.observer && e.target.nodeType === Node.ELEMENT_NODE && !SKIP_TAGS.has(e.target.tagName)) {
        this.timed(() => this.onLoad(e.target), 'animation');
      }
    };
    this.resweepTimer = 0;
    this.lastResweep = 0;
    this.pictureSelector = undefined; // the document's picture rules as one selector list; null: unknown
    // A new viewport size applies media and container queries: the elements the document's
    // picture rules name are looked at in the frame it is laid out in (the root's ResizeObserver
    // runs after that layout, before that paint), as a new stylesheet's are.
    this.viewportSize = '';
    this.viewport = typeof ResizeObserver === 'function'
      ? new ResizeObserver(() => this.timed(() => this.onViewport(), 'viewport')) : null;
    this.listenOn(document);
  }

  /** What the observer listens to: added nodes anywhere, and the attributes that change an image. */
  static getConfig() {
    return {
      childList: true,
      subtree: true,
      attributes: true,
      attributeFilter: ['src', 'srcset', 'sizes', 'media', 'style', 'class', 'data-simclip', 'href', 'poster', 'width', 'height'],
      attributeOldValue: true, // a style attribute's custom properties before the change
    };
  }

  /** Start observing and sweep what is already in the document (idempotent). */
  watch() {
    if (this.observer) return;
    this.observer = new MutationObserver((records) => this.timed(() => this.onRecords(records), 'mutations'));
    this.observer.observe(document, DOMWatcher.getConfig());
    if (document.documentElement) this.viewport?.observe(document.documentElement);
    for (const root of this.shadow.roots) this.watchRoot(root); // found by the loader before we ran
    if (document.documentElement) this.slicer.push({ root: document.documentElement });
  }

  /** Stop observing (idempotent); queued work is dropped. */
  unwatch() {
    if (!this.observer) return;
    this.observer.disconnect();
    this.observer = null;
    this.viewport?.disconnect();
    this.viewportSize = '';
    this.roots.clear();
    this.slicer.items = [];
    this.slicer.head = 0;
  }

  /** The root changed size: on a new viewport size, the elements picture rules name are visited now. */
  onViewport() {
    const size = `${innerWidth}x${innerHeight}`;
    if (size === this.viewportSize) return;
    const first = this.viewportSize === '';
    this.viewportSize = size;
    if (first || !this.observer) return; // the first report: the sweep of watch() looks at everything
    const selector = this.getPictureSelector();
    if (selector === null) {
      this.scheduleResweep();
      return;
    }
    let start = null;
    for (const el of namedBy(document, selector)) start = this.visitAdded(el, start, { subtree: false });
    this.onBatch();
  }

  /**
   * True when the style attribute text `before` and `after` of `el` set different custom
   * properties (`--name: value`, read with the browser's own CSS parser) that may change a
   * picture: one of them holds something else than a color, a number, a length or a keyword
   * before or after, or the rules that reach `el`'s subtree choose by its value (a style query
   * that names it, listStyleQueryProperties: in the document's sheets, or a shadow root's under
   * `el` or around it), or they cannot be read, or it was set or removed. A page that sets
   * `--scroll-y: 120px` on every frame costs no visit.
   */
  customPropertiesChanged(before, after, el) {
    if (before === after || !(before ?? '').includes('--') && !(after ?? '').includes('--')) return false;
    this.styleProbe ??= document.createElement('div'); // never in the document
    const was = customProperties(this.styleProbe, before);
    const is = customProperties(this.styleProbe, after);
    const changed = [...new Set([...was.keys(), ...is.keys()])].filter((name) => was.get(name) !== is.get(name));
    if (changed.length === 0) return false;
    // set or removed: the element's pictures may take a var() fallback or an ancestor's value now
    if (changed.some((name) => !was.has(name) || !is.has(name) || !isPlainValue(was.get(name)) || !isPlainValue(is.get(name)))) return true;
    if (this.getPictureSelector() === null) return true;
    const reads = (queried) => queried.has('*') || changed.some((name) => queried.has(name));
    if (reads(this.queriedProperties)) return true;
    const around = el?.getRootNode();
    if (around && around !== document && reads(this.getRootQueried(around))) return true;
    for (const root of this.roots) {
      if (root.host && el?.contains(root.host) && reads(this.getRootQueried(root))) return true;
    }
    return false;
  }

  /**
   * The custom properties a sheet of shadow root `root` (its <style>s, <link>s and adopted sheets)
   * chooses by (listStyleQueryProperties; '*' when a sheet cannot be read), kept until the root's
   * list of sheets changes (a <style> rewritten gets a new sheet).
   */
  getRootQueried(root) {
    const sheets = [...(root.styleSheets ?? []), ...(root.adoptedStyleSheets ?? [])];
    this.rootQueried ??= new WeakMap();
    const known = this.rootQueried.get(root);
    if (known && known.sheets.length === sheets.length && known.sheets.every((sheet, i) => sheet === sheets[i])) return known.names;
    const names = new Set();
    try {
      for (const sheet of sheets) listStyleQueryProperties(sheet.cssRules, names);
    } catch {
      names.add('*'); // a cross-origin <link> in the root: its rules are unknown
    }
    this.rootQueried.set(root, { sheets, names });
    return names;
  }

  /**
   * `el` set other custom properties: every element under it inherits them, and one whose picture
   * is `var(--name)` may paint another picture now. The elements a picture rule or an inline
   * `var()` names, under `el` and in the shadow trees below it, are visited now (within the
   * batch budget, as an added subtree; the rest before the next paint is hidden and left to
   * slices). Every element under it, when the rules cannot be read. Returns the batch clock.
   */
  visitInheriting(el, start) {
    this.inheritVisits += 1;
    const selector = el.getRootNode() === document ? this.getPictureSelector() : null;
    if (selector === null) start = this.visitAdded(el, start);
    else for (const found of namedBy(el, selector)) start = this.visitAdded(found, start, { subtree: false });
    for (const found of el.querySelectorAll(INLINE_VAR)) start = this.visitAdded(found, start, { subtree: false });
    for (const root of this.roots) {
      if (root.host && el.contains(root.host)) start = this.visitAdded(root, start);
    }
    return start;
  }

  /** Load and shadow-root events do not leave a shadow tree: listen on the document and on each root. */
  listenOn(target) {
    target.addEventListener(SHADOW_ROOT_EVENT, this.onShadowEvent, true);
    target.addEventListener(CANVAS_DRAWN_EVENT, this.onCanvasEvent, true);
    if (target === document) {
      target.addEventListener(STYLESHEETS_CHANGED_EVENT, this.onSheetsEvent, true);
      target.addEventListener(PICTURE_RULES_EVENT, this.onPictureRulesEvent, true);
      target.addEventListener(STATE_CHANGED_EVENT, this.onStateEvent, true); // shadow_hook.js: `checked`, `animate()`
    }
    for (const type of LOAD_EVENTS) target.addEventListener(type, this.onLoadEvent, true);
    for (const type of STYLE_EVENTS) target.addEventListener(type, this.onStyleEvent, { capture: true, passive: true });
  }

  /** `el` may host a shadow root (open, closed or declarative): observe it. */
  watchHost(el) {
    const root = this.shadow.getRoot(el);
    if (root) this.watchRoot(root);
  }

  watchRoot(root) {
    this.shadow.adopt(root); // again if the page replaced the root's adopted sheets
    if (this.roots.has(root) || !this.observer) return;
    this.roots.add(root);
    this.listenOnce(root);
    this.onRoot(root);
    this.observer.observe(root, DOMWatcher.getConfig());
    this.slicer.push({ root });
  }

  listenOnce(root) {
    if (this.listened?.has(root)) return;
    this.listened ??= new WeakSet();
    this.listened.add(root);
    this.listenOn(root);
  }

  onRecords(records) {
    // Added nodes are visited right here, before the next paint (so a CSS background meme from a
    // stylesheet never flashes), up to SYNC_BUDGET_MS of our own work; the rest goes to time
    // slices. The clock starts after one forced style pass: the browser owes that work before the
    // next paint anyway, and after it every style read below is cheap (writes are queued).
    let start = null;
    let lastRoot = null;
    const changed = new Set(); // elements whose class or style the page changed: what is under them repaints now
    for (const r of records) {
      const root = r.target.getRootNode();
      if (root !== document && root !== lastRoot && this.roots.has(root)) { // a page that reset its sheets
        this.shadow.adopt(root);
        this.onRoot(root);
      }
      lastRoot = root;
      if (r.type === 'childList') {
        if (r.target.nodeName === 'STYLE') start = this.onStylesheet(r.target, start); // its text changed
        for (const node of r.removedNodes) if (node.nodeType === Node.ELEMENT_NODE && !node.isConnected) this.onRemoved(node);
        for (const node of r.addedNodes) {
          if (node.nodeType !== Node.ELEMENT_NODE) continue;
          if (node.tagName === 'STYLE' || node.tagName === 'LINK') this.pictureSelector = undefined;
          if (node.tagName === 'STYLE') start = this.onStylesheet(node, start);
          if (node.tagName === 'SOURCE') this.onAttribute(node, 'src'); // a <picture> or <video> got a source
          start = this.visitAdded(node, start);
        }
      } else if (r.attributeName === 'class') {
        // A class can give the element, or anything under it, a background: look at them again.
        if (r.target.isConnected) {
          changed.add(r.target);
          start = this.visitAdded(r.target, start);
        }
      } else {
        if (r.attributeName === 'style' && r.target.isConnected) {
          changed.add(r.target);
          if (this.customPropertiesChanged(r.oldValue, r.target.getAttribute('style'), r.target)) start = this.visitInheriting(r.target, start);
        }
        this.onAttribute(r.target, r.attributeName);
      }
    }
    this.onBatch(changed);
  }

  /**
   * Visit an added (or re-classed, or restyled) element, or a shadow root, and its subtree unless
   * `subtree` is false, now within the batch budget, or leave it to slices. Returns the batch clock.
   */
  visitAdded(node, start, { subtree = true } = {}) {
    if (start === null) {
      const el = node.nodeType === Node.DOCUMENT_FRAGMENT_NODE ? node.host : node; // a shadow root's style is its host's
      if (el.isConnected) this.forceStyle(() => getComputedStyle(el).backgroundImage);
      start = performance.now();
    }
    if (this.slicer.pending === 0 && performance.now() - start < SYNC_BUDGET_MS) {
      if (subtree) this.visitTree(node, start);
      else this.visit({ el: node });
    } else {
      this.deferred += 1;
      if (subtree) this.holdBackSubtree(node);
      else this.reportDeferred([node]);
      this.slicer.push(subtree ? { root: node } : { el: node });
    }
    return start;
  }

  /**
   * Elements under `root` left for a later slice: report those a stylesheet could give a picture
   * (its own rules name them, getPictureSelector), so their backgrounds are hidden before the next
   * paint; every element when the rules cannot be read, and every element of a shadow root.
   */
  holdBackSubtree(root) {
    if (root.nodeType === Node.DOCUMENT_FRAGMENT_NODE) { // a shadow root: the document's rules do not reach in
      this.reportDeferred([...root.querySelectorAll('*')]);
      return;
    }
    const selector = root.getRootNode() === document ? this.getPictureSelector() : null;
    if (selector === null) {
      this.reportDeferred([root, ...root.getElementsByTagName('*')]);
      return;
    }
    if (selector) this.reportDeferred(namedBy(root, selector));
  }

  /**
   * The selectors of the document's style rules that give an element a picture, as one list
   * ('' when there is none), read once per stylesheet change; null when a sheet cannot be read
   * (cross-origin) or there are too many.
   */
  getPictureSelector() {
    if (this.pictureSelector !== undefined) return this.pictureSelector;
    const selectors = new Set();
    const probe = document.createDocumentFragment();
    try {
      const read = newStyleRead();
      for (const sheet of [...document.styleSheets, ...(document.adoptedStyleSheets ?? [])]) readStyleRules(sheet.cssRules, read);
      this.queriedProperties = read.queried;
      // a custom property no sheet declares may come from a script: it may hold a picture
      for (const selector of selectPictureRules(read.pictureRules, (name) => read.declared.get(name) ?? true)) {
        try {
          probe.querySelector(selector); // a selector this browser cannot parse would spoil the list
          selectors.add(selector);
        } catch {
          // skipped
        }
      }
    } catch {
      this.pictureSelector = null;
      return null;
    }
    this.pictureSelector = selectors.size > MAX_PICTURE_SELECTORS ? null : [...selectors].join(', ');
    return this.pictureSelector;
  }

  /**
   * The page changed a stylesheet through the CSSOM (shadow_hook.js announces it; no
   * MutationObserver does): every picture near the viewport is read again in this frame, and
   * everything else is looked at again in slices, at most once a second (CSS-in-JS libraries
   * insert rules all the time: the picture rules are not listed again for each).
   */
  onSheetsChanged() {
    this.pictureSelector = undefined;
    this.scheduleResweep();
    this.onBatch(new Set([document.documentElement]));
  }

  /**
   * The page's script gave stylesheet rules a picture through the CSSOM (shadow_hook.js lists
   * their selectors): the elements they style, in the document and in every shadow root watched,
   * may show a picture none of them showed before. They are looked at now, before the next paint.
   * `selectorTexts` null: too many to list; the elements every picture rule of the document's
   * sheets names are, and in each watched shadow root those its own sheets name (each sheet read
   * once for that task).
   */
  onPictureRules(selectorTexts) {
    const found = new Set();
    let selectors;
    if (selectorTexts) {
      selectors = selectPictureRules(selectorTexts.map((text) => [text, 'url()']));
    } else {
      this.pictureSelector = undefined; // read again: the sheets changed
      const all = this.getPictureSelector();
      this.addRootPictureElements(found);
      selectors = all ? [all] : []; // null: unreadable or too many, the resweep finds them
    }
    for (const root of selectorTexts ? [document, ...this.roots] : [document]) addMatches(found, root, selectors);
    let start = null;
    for (const el of found) start = this.visitAdded(el, start, { subtree: false });
    this.onBatch(found);
  }

  /**
   * Adds to `found` the elements of every watched shadow root that a picture rule of the root's
   * own sheets (its <style>s, <link>s and adopted sheets) names; a sheet many roots share is read
   * once. A root with a sheet that cannot be read (cross-origin) is left to the resweep.
   */
  addRootPictureElements(found) {
    const bySheet = new Map();
    for (const root of this.roots) {
      let selectors;
      try {
        selectors = [...(root.styleSheets ?? []), ...(root.adoptedStyleSheets ?? [])].flatMap((sheet) => {
          if (!bySheet.has(sheet)) bySheet.set(sheet, listPictureSelectors(sheet.cssRules));
          return bySheet.get(sheet);
        });
      } catch {
        continue;
      }
      addMatches(found, root, selectors);
    }
  }

  /**
   * A <style> was added or rewritten, or a <link> stylesheet loaded: the elements its rules give a
   * picture are looked at now (before the next paint, within the batch budget). A sheet we may
   * not read (a cross-origin <link>) makes everything be looked at again, in slices. Returns the
   * batch clock.
   */
  onStylesheet(owner, start = null) {
    this.pictureSelector = undefined;
    let selectors;
    try {
      selectors = listPictureSelectors(owner.sheet?.cssRules);
    } catch {
      this.scheduleResweep();
      return start;
    }
    const root = owner.getRootNode();
    const found = new Set();
    addMatches(found, root, selectors);
    for (const el of found) start = this.visitAdded(el, start, { subtree: false });
    return start;
  }

  /**
   * A stylesheet we could not read was added or loaded: any element may show another background
   * now. Everything is looked at again in time slices, at most once a second (sites that write
   * CSS from scripts add styles all the time).
   */
  scheduleResweep() {
    if (this.resweepTimer) return;
    const wait = Math.max(0, this.lastResweep + RESWEEP_MIN_INTERVAL_MS - performance.now());
    this.resweepTimer = setTimeout(() => {
      this.resweepTimer = 0;
      this.lastResweep = performance.now();
      if (!this.observer || !document.documentElement) return;
      this.slicer.push({ root: document.documentElement });
      for (const root of this.roots) this.slicer.push({ root });
    }, Math.max(wait, 50));
  }

  /** Visit `root` (an element, or a shadow root) and everything under it, within the batch budget. */
  visitTree(root, start) {
    const isShadowRoot = root.nodeType === Node.DOCUMENT_FRAGMENT_NODE;
    if (!isShadowRoot) this.visit({ el: root });
    const all = isShadowRoot ? root.querySelectorAll('*') : root.firstElementChild ? root.getElementsByTagName('*') : [];
    let i = 0;
    for (; i < all.length && performance.now() - start < SYNC_BUDGET_MS; i += 1) this.visit({ el: all[i] });
    if (i < all.length) {
      this.deferred += all.length - i;
      const rest = [];
      for (; i < all.length; i += 1) rest.push({ el: all[i] });
      if (isShadowRoot) this.reportDeferred(rest.map((item) => item.el));
      else this.holdBackSubtree(root); // visited ones are marked too: harmless, they are decided or have no picture
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
    this.watchHost(el);
    this.onElement(el);
  }

  /** Longest time-slice so far, in ms. */
  get maxSliceMs() {
    return this.slicer.maxSliceMs;
  }
}
