/**
 * RepaintWatch: the one way a verdict stays bound to what an element paints. An element can show
 * another picture without any change to itself: an <img> whose <picture> or srcset picks another
 * source at a new width, a background set through a class on an ancestor, a custom property, a
 * media or container query, `:hover`, an animation. Whatever the cause, the page side (picture_reader.js)
 * is asked to re-read what the element paints now (`recheck(el)`), and it re-asks on a
 * difference, hiding the element first.
 *
 * Which elements: the tracked ones within about a screen of the viewport (an IntersectionObserver
 * keeps that set; one coming into it is re-read at once, so a change made far away is caught
 * before it is on screen). When: at the next animation frame after any signal that something may
 * have changed (a mutation batch, a resize, a media change, pointer or focus moving, a press, a
 * form control changed by the user, a hash change, the tab shown again), which runs before that
 * frame is painted; in the
 * frame a new viewport size is laid out in (a ResizeObserver on the root); every
 * frame while a tracked element runs an animation of a picture property, or a query container
 * around it one of a size (or it asks to be, a canvas just drawn on: `needsFrames`); and every
 * SWEEP_INTERVAL_MS while the tab is visible, for the changes no event announces (a CSSOM rule
 * inserted from a script). A frame's work stops at FRAME_BUDGET_MS and goes on at the next one,
 * except for the near elements under a node the page changed (a class or a style attribute on an
 * ancestor) and those animating: those are all read in that frame, as the change reaches them in
 * its paint.
 */

import { OWN_ANIMATIONS } from './dom_watcher.js';
import { flushStyle } from './perf.js';

const NEAR_MARGIN = '100% 0px'; // about a screen above and below the viewport
const FRAME_BUDGET_MS = 3; // our own work per animation frame
export const SWEEP_INTERVAL_MS = 1000; // the slowest a change nothing announces is found, while visible
const WINDOW_SIGNALS = ['resize', 'orientationchange', 'pageshow', 'hashchange']; // hashchange: `:target`
// pointer and focus moving (`:hover`, `:focus`), a press (`:active`), a form control's state
// (`:checked`, `:placeholder-shown`, `:invalid`) changed by the user
const DOCUMENT_SIGNALS = ['pointerover', 'pointerout', 'pointerdown', 'pointerup', 'focusin', 'focusout', 'input', 'change',
  'visibilitychange', 'fullscreenchange'];
const MEDIA_SIGNALS = ['(prefers-color-scheme: dark)', '(orientation: portrait)', '(prefers-reduced-motion: reduce)', 'print',
  '(prefers-contrast: more)', '(prefers-contrast: less)', '(forced-colors: active)',
  // a zoom or another screen: `resolution` queries, `image-set()` and `srcset` x-descriptors pick again
  '(min-resolution: 1.25dppx)', '(min-resolution: 1.5dppx)', '(min-resolution: 2dppx)', '(min-resolution: 3dppx)'];
// animated keyframes that can change a picture (not `backgroundPosition`: the same picture)
const PICTURE_PROPERTIES = /^(background|backgroundImage|content|listStyle|listStyleImage|borderImage|borderImageSource)$|^--/;
// Animated keyframes that resize a box, and with it what a container query (or a srcset's `sizes`)
// picks for the pictures under it.
const SIZE_PROPERTIES = /^(width|height|inlineSize|blockSize|minWidth|minHeight|maxWidth|maxHeight|minInlineSize|minBlockSize|maxInlineSize|maxBlockSize|flex|gridTemplate|padding|border(Left|Right|Top|Bottom)?Width|borderWidth|fontSize|zoom|aspectRatio)/;

export class RepaintWatch {
  /**
   * @param {{recheck: (el) => void, afterFrame: () => void, timed: (fn, kind) => void,
   *          forceStyle?: (read) => any, needsFrames?: (el) => boolean, win?: Window}} deps
   *   `recheck`: re-read what `el` paints (queues writes); `afterFrame`: apply the queued writes;
   *   `forceStyle`: run a read that flushes the page's pending style, booked apart (perf.js);
   *   `needsFrames`: true while `el` is to be re-read every frame (a canvas just drawn on);
   *   `now`: the clock of the frame budget, in ms.
   */
  constructor({ recheck, afterFrame, timed, forceStyle = (read) => read(), needsFrames = () => false, win = globalThis,
    now = () => performance.now() }) {
    Object.assign(this, { recheck, afterFrame, timed, forceStyle, needsFrames, win, now });
    this.near = new Set(); // tracked elements within NEAR_MARGIN of the viewport
    this.watched = new Set();
    this.queue = []; // elements left for the next frame (budget ran out), each once
    this.changed = new Set(); // the nodes the page changed since the last frame (markDirty)
    this.animating = []; // the elements found animating their picture last frame: read first in the next
    this.reads = 0; // elements read again so far (the page state's stats: what the signals cost)
    this.frame = 0; // non-zero while an animation frame of work is asked for
    this.probeArmed = false; // a ResizeObserver probe waits for this frame's layout
    this.inCallback = false; // inside our ResizeObserver callback (a new observation would come too late)
    this.dirty = false;
    this.sweepTimer = 0;
    this.animationMemo = new WeakMap(); // Animation -> {picture, size}: whether it changes a picture property, a size
    this.io = new IntersectionObserver((entries) => this.timed(() => this.onIntersect(entries), 'recheck'), { rootMargin: NEAR_MARGIN });
    // A new viewport size applies media and container queries in the frame it is laid out in, and
    // its resize event comes a frame later: a ResizeObserver on the root runs after that layout,
    // before that paint (what it changes is laid out again first).
    // (The root also changes size as the page grows: only a new viewport size counts.)
    this.viewportSize = '';
    this.viewport = typeof ResizeObserver === 'function' ? new ResizeObserver(() => this.timed(() => {
      const size = `${win.innerWidth}x${win.innerHeight}`;
      if (size === this.viewportSize) return;
      this.viewportSize = size;
      if (this.near.size === 0) return;
      this.dirty = true;
      this.inCallback = true;
      try {
        this.work();
      } finally {
        this.inCallback = false;
      }
    }, 'recheck')) : null;
    if (win.document?.documentElement) this.viewport?.observe(win.document.documentElement);
    this.signal = () => this.markDirty();
    this.media = MEDIA_SIGNALS.map((query) => win.matchMedia?.(query)).filter(Boolean);
    for (const type of WINDOW_SIGNALS) win.addEventListener(type, this.signal, { capture: true, passive: true });
    for (const type of DOCUMENT_SIGNALS) win.document?.addEventListener(type, this.signal, { capture: true, passive: true });
    for (const list of this.media) list.addEventListener?.('change', this.signal);
  }

  /** Stop watching for good (this content script is being replaced): observers, listeners, timers. */
  stop() {
    this.io.disconnect();
    this.viewport?.disconnect();
    for (const type of WINDOW_SIGNALS) this.win.removeEventListener?.(type, this.signal, { capture: true });
    for (const type of DOCUMENT_SIGNALS) this.win.document?.removeEventListener?.(type, this.signal, { capture: true });
    for (const list of this.media) list.removeEventListener?.('change', this.signal);
    this.win.clearTimeout?.(this.sweepTimer);
    this.watched.clear();
    this.near.clear();
    this.queue = [];
    this.changed.clear();
    this.animating = [];
    this.frame = 0;
    this.probeArmed = false;
    this.sweepTimer = 0;
  }

  /** Follow a tracked element (idempotent). */
  watch(el) {
    if (this.watched.has(el)) return;
    this.watched.add(el);
    this.io.observe(el);
    this.scheduleSweep();
  }

  /** Stop following an element that shows no tracked picture any more (idempotent). */
  unwatch(el) {
    if (!this.watched.delete(el)) return;
    this.near.delete(el);
    this.io.unobserve(el);
  }

  /**
   * Something may have changed what the near elements paint: re-read them before the next paint.
   * `changed`: the elements (and shadow roots) the page changed itself (a class, a style
   * attribute): the near elements under them are read in that frame whatever its budget, as the
   * change reaches them in that paint.
   */
  markDirty(changed = null) {
    if (this.near.size === 0) return;
    this.dirty = true;
    for (const node of changed ?? []) this.changed.add(node);
    this.requestFrame();
  }

  /** Re-read `el` at the next frame (it changed, or an event names it). */
  recheckSoon(el) {
    if (!this.watched.has(el)) return;
    this.queue.push(el);
    this.requestFrame();
  }

  onIntersect(entries) {
    flushStyle(this.forceStyle, this.win);
    for (const entry of entries) {
      if (!this.watched.has(entry.target)) continue;
      if (!entry.target.isConnected) {
        this.unwatch(entry.target); // removed from the page (a record of it is dropped by its owner)
        continue;
      }
      if (entry.isIntersecting) {
        this.near.add(entry.target);
        this.recheckSoon(entry.target); // changed while far away: read before it comes on screen (within the frame budget)
      } else {
        this.near.delete(entry.target);
      }
    }
    this.afterFrame();
  }

  /**
   * Run `work` in the next rendering update, after the page's animation-frame callbacks and
   * layout, before paint: a ResizeObserver's first report of a new observation comes then, so a
   * change the page makes in its own requestAnimationFrame callback is read before that frame is
   * painted (an animation frame of ours asked for then would come a frame late). From inside our
   * own callback (an animation running on, work left over), a new observation would come only
   * after this paint (and count as a loop error): the next frame's animation-frame step runs it,
   * after the animations have moved and the page's own callbacks asked for before ours. A signal
   * while that next frame is asked for still arms the probe: our animation-frame callback may
   * have run before the page's in this frame, and what the page changes there is painted in it.
   */
  requestFrame() {
    if (!this.inCallback && typeof ResizeObserver === 'function' && this.win.document?.documentElement) {
      if (this.probeArmed) return;
      this.probeArmed = true;
      this.armProbe();
      return;
    }
    if (this.frame) return;
    this.frame = 1;
    this.win.requestAnimationFrame(() => this.timed(() => {
      this.frame = 0;
      this.onFrame();
    }, 'recheck'));
  }

  armProbe() {
    const probe = new ResizeObserver(() => {
      probe.disconnect();
      this.probeArmed = false;
      this.timed(() => this.onFrame(), 'recheck');
    });
    probe.observe(this.win.document.documentElement);
  }

  onFrame() {
    this.inCallback = true;
    try {
      this.work();
    } finally {
      this.inCallback = false;
    }
  }

  /**
   * Before this frame's paint: re-read the elements that animated their picture last frame, then
   * what was queued, then, if dirty, every near element, within the frame budget (the elements
   * whose picture moves by itself first: the rest changes only on a signal, and waits a frame).
   */
  work() {
    flushStyle(this.forceStyle, this.win); // one forced style pass, booked apart, before the reads
    const changed = this.changed;
    this.changed = new Set();
    // read in this frame whatever the budget: what the page changed, and what may switch in any frame
    const urgent = new Set(changed.size > 0 ? [...this.near].filter((el) => isUnderAny(el, changed)) : []);
    for (const el of this.animating) if (this.near.has(el)) urgent.add(el);
    const order = new Set(this.queue);
    if (this.dirty) {
      this.dirty = false;
      for (const el of this.near) order.add(el);
    }
    for (const el of urgent) order.delete(el);
    const queue = [...urgent, ...order];
    const start = this.now();
    const animated = new Map(); // a document or shadow root -> its elements animating a picture, this frame
    this.animating = [];
    let i = 0;
    for (; i < queue.length && (i < urgent.size || this.now() - start < FRAME_BUDGET_MS); i += 1) {
      const el = queue[i];
      if (!this.watched.has(el)) continue;
      this.reads += 1;
      this.recheck(el);
      if (this.near.has(el) && (this.needsFrames(el) || this.isAnimatingPicture(el, animated))) this.animating.push(el);
    }
    this.queue = queue.slice(i);
    this.afterFrame();
    if (this.animating.length > 0) this.dirty = true;
    if (this.queue.length > 0 || this.animating.length > 0) this.requestFrame();
  }

  /**
   * True while `el` (or its ::before / ::after) runs an animation or transition of a picture
   * property, or one of its ancestors (across shadow hosts) one of a size with a query container
   * at or below it: a container resized frame by frame makes its container queries pick another
   * picture in some frame no event announces. Such elements are read in every frame past the
   * budget. The running animations are listed once per frame for each document or shadow root
   * (`animated` holds them for this frame): one style flush, booked apart, however many elements
   * are near.
   */
  isAnimatingPicture(el, animated = new Map()) {
    const root = el.getRootNode?.() ?? this.win.document;
    if (this.runningOf(root, animated).pictures.has(el)) return true;
    const roots = [root]; // el's root, then each shadow host's, up to the document
    while (roots.at(-1).host) roots.push(roots.at(-1).host.getRootNode?.() ?? this.win.document);
    if (roots.every((r) => this.runningOf(r, animated).resized.size === 0)) return false;
    let underContainer = false;
    for (let up = el.parentElement ?? root.host; up; up = up.parentElement ?? up.getRootNode?.()?.host ?? null) {
      const { resized, containers } = this.runningOf(up.getRootNode?.() ?? this.win.document, animated);
      underContainer ||= this.isQueryContainer(up, containers);
      if (underContainer && resized.has(up)) return true; // only a query container's size picks a picture
    }
    return false;
  }

  /** True when `el` is a size query container (`container-type` not `normal`), read once per frame. */
  isQueryContainer(el, seen) {
    if (!seen.has(el)) seen.set(el, (this.win.getComputedStyle?.(el)?.containerType ?? 'normal') !== 'normal');
    return seen.get(el);
  }

  /**
   * {pictures, resized, containers}: the elements of `root` running an animation of a picture
   * property, of a size (listed once per frame), and which of its elements are query containers
   * (filled as read, for this frame).
   */
  runningOf(root, animated) {
    if (!animated.has(root)) {
      const found = { pictures: new Set(), resized: new Set(), containers: new Map() };
      const animations = root?.getAnimations ? this.forceStyle(() => root.getAnimations()) : [];
      for (const a of animations) {
        if (a.playState !== 'running' || !a.effect?.target || a.animationName?.startsWith(OWN_ANIMATIONS)) continue;
        const changes = this.changesOf(a);
        if (changes.picture && isElementOrItsPicturePseudo(a)) found.pictures.add(a.effect.target);
        if (changes.size && !a.effect.pseudoElement) found.resized.add(a.effect.target);
      }
      animated.set(root, found);
    }
    return animated.get(root);
  }

  /** {picture, size}: whether the animation changes a picture property, a size (read once per animation). */
  changesOf(animation) {
    if (!this.animationMemo.has(animation)) {
      const names = animation.transitionProperty ? [camel(animation.transitionProperty)] : [];
      let unreadable = false;
      try {
        for (const frame of animation.effect?.getKeyframes?.() ?? []) names.push(...Object.keys(frame));
      } catch {
        unreadable = true; // assume it may change either
      }
      this.animationMemo.set(animation, {
        picture: unreadable || names.some((key) => PICTURE_PROPERTIES.test(key)),
        size: unreadable || names.some((key) => SIZE_PROPERTIES.test(key)),
      });
    }
    return this.animationMemo.get(animation);
  }

  /** While the tab is visible and something is tracked near the viewport, mark dirty every SWEEP_INTERVAL_MS. */
  scheduleSweep() {
    if (this.sweepTimer) return;
    this.sweepTimer = this.win.setTimeout(() => {
      this.sweepTimer = 0;
      if (this.watched.size === 0) return;
      if (this.win.document?.visibilityState !== 'hidden') this.markDirty();
      this.scheduleSweep();
    }, SWEEP_INTERVAL_MS);
  }
}

/** True when `el` is one of `nodes` or under one, across shadow roots (a host's change reaches its root's elements). */
function isUnderAny(el, nodes) {
  for (let node = el; node; node = node.getRootNode?.()?.host ?? null) {
    for (const n of nodes) if (n === node || n.contains?.(node)) return true;
  }
  return false;
}

const camel = (name) => name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
/** The animation runs on its target element itself, or on its ::before / ::after (not ::marker, ::selection...). */
const isElementOrItsPicturePseudo = (animation) => !animation.effect.pseudoElement
  || /^::(before|after)$/.test(animation.effect.pseudoElement);
