/**
 * The warning on a flagged picture, drawn inside the picture's own box, not in a layer above the
 * page: the picture leaves its box (an <img> or <video> shifts its content out with
 * `object-position`, a background is replaced) and a card naming the reason takes its place, as
 * the element's own background. So the warning is wherever the picture is, in the same frame: it
 * moves with transforms and inner scrollers, is clipped by scroll containers, stays under the
 * site's sticky headers, dialogs and input boxes, and never takes a click outside the picture.
 *
 * The card (card.js) depends on the categories and on the box's size (a compact card under 200
 * px, text never under 11 px). Cards are shared: each distinct card is one rule in a stylesheet
 * of ours (adopted by the document and by each shadow root), keyed on `data-simclip-card` (a
 * number), which sets the custom property `--simclip-card` that prehide.css draws. A flagged
 * element only carries the number of its card, so a feed with thousands of flagged pictures
 * holds a handful of rules, and a ResizeObserver on the flagged elements picks another card when
 * a box changes size. A click on a flagged picture shows it; a click on the card's "Not
 * harmful?" chip reports a wrong verdict. A click is ours only when the picture (or a layer of
 * the site's sized to it, like Instagram's) is what was hit; a click on anything else, the
 * site's header over the picture included, is the site's. A ::before/::after or an SVG <image>
 * picture is blurred, without a card. The page's scripts can read the card (its custom property,
 * its accessible name): it names the categories, never the scores, and no attribute repeats it
 * (the tests read it from ImageFilter.listPictures, in the extension's world).
 *
 * Keyboard and screen readers: while flagged, a card's element is in the tab order (tabindex 0
 * unless the site already made it focusable), a button whose accessible name (aria-label, and a
 * title for the pointer) names every category, even where the card lists only the top one.
 * Enter or Space on it shows the picture, as a click does; Shift+Enter reports it as not
 * harmful, as the chip does (aria-keyshortcuts says so). The element's own tabindex, role,
 * aria-label, aria-keyshortcuts and title come back when the card goes.
 */
import { cardSvg, createMeasure, layoutCard, svgUrl, whereOnCard } from './card.js';

const SWALLOWED = ['pointerdown', 'pointerup', 'mousedown', 'mouseup', 'auxclick', 'dblclick'];
const SHOW_KEYS = new Set(['Enter', ' ']);
const REPORT_KEY = 'Shift+Enter';
const A11Y_ATTRS = ['tabindex', 'role', 'aria-label', 'aria-keyshortcuts', 'title']; // ours while a card is drawn, the site's after
const CARD_KINDS = new Set(['img', 'bg', 'video', 'canvas']); // records drawn with a card (not pseudo, not SVG)
export const CARD_ATTR = 'data-simclip-card'; // the number of the card an element draws
const MAX_IDLE_CARDS = 32; // rules of cards no element draws now, kept for the next one

/**
 * Whether a flagged record's element can act as the card's button: a picture element, or a
 * background on an element with no element children (a button over a post's text and links
 * would hide them from screen readers).
 */
function isButtonLike(rec) {
  return CARD_KINDS.has(rec.kind) && (rec.kind !== 'bg' || rec.el.childElementCount === 0);
}

/** What a screen reader says of a flagged picture for categories `names` (["Harmful", "Misogyny"]). */
export function accessibleLabel(names) {
  const list = names.length > 0 ? names.join(', ') : 'flagged';
  return `Hidden picture: ${list}. Press Enter to show it, or Shift+Enter if it is not harmful.`;
}

/**
 * The box the card is drawn in: the element's padding box (its background's area), read where
 * layout is clean (a ResizeObserver callback); the observer's border box where the browser gives
 * an inline box no client size.
 */
function boxOfEntry(entry) {
  const el = entry.target;
  if (el.clientWidth > 0 || el.clientHeight > 0) return { width: el.clientWidth, height: el.clientHeight };
  const size = entry.borderBoxSize?.[0];
  return size ? { width: size.inlineSize, height: size.blockSize } : { width: entry.contentRect.width, height: entry.contentRect.height };
}

export class WarningPainter {
  /**
   * @param {{onReveal: (rec) => void, onReport: (rec) => void, findRecord: (el) => object|undefined,
   *          timed: (fn, kind) => void, measure?: (text, sizePx, weight) => number}} deps
   *   `findRecord`: the flagged record whose element is `el`; `measure`: text widths (card.js).
   */
  constructor({ onReveal, onReport, findRecord, timed, measure }) {
    Object.assign(this, { onReveal, onReport, findRecord, timed });
    this.measure = measure ?? createMeasure();
    this.cards = new Map(); // rec -> {names, layout (card.js), card (its entry in byCard, or null)}
    this.byCard = new Map(); // SVG source -> {id, svg, users: Set(rec)}: one rule each
    this.order = []; // the card entries whose rule is in the sheet, in rule order
    this.nextCardId = 1;
    this.sheet = null;
    this.styleEl = null; // where constructable sheets are refused: one <style> of ours
    this.roots = new Set(); // shadow roots the sheet was adopted into
    this.disabled = false;
    this.ownA11y = new Map(); // rec -> the element's own tabindex, role, aria-label... (null: none)
    this.sizes = typeof ResizeObserver === 'function'
      ? new ResizeObserver((entries) => this.timed(() => this.onResize(entries), 'resize')) : null;
    this.sized = new Map(); // element -> the record whose card follows its size
    this.onPointer = (e) => this.timed(() => this.handlePointer(e), 'click');
    this.onKey = (e) => this.timed(() => this.handleKey(e), 'click');
    this.listenOn(window);
  }

  /** Clicks inside a shadow root are retargeted at its host outside it: listen in each root too. */
  listenOn(target) {
    target.addEventListener('click', this.onPointer, true);
    for (const type of SWALLOWED) target.addEventListener(type, this.onPointer, true);
    target.addEventListener('keydown', this.onKey, true);
  }

  /** Adopt the card rules into a shadow root (the document's rules do not reach into it). */
  adoptInto(root) {
    if (this.roots.has(root)) {
      this.ensureAdopted(root);
      return;
    }
    this.roots.add(root);
    this.listenOn(root);
    this.ensureAdopted(root);
  }

  ensureAdopted(target) {
    const sheet = this.getSheet();
    if (!sheet) return;
    try {
      if (!Array.from(target.adoptedStyleSheets).includes(sheet)) target.adoptedStyleSheets = [...target.adoptedStyleSheets, sheet];
    } catch {
      // the rules still reach the document through styleEl; a card in this root shows without text
    }
  }

  getSheet() {
    if (this.sheet === null) {
      try {
        this.sheet = new CSSStyleSheet();
      } catch {
        this.sheet = undefined;
      }
    }
    return this.sheet;
  }

  /** Pause: cards off (prehide.css is switched off by the page's flag; our rules only name cards). */
  setHidden(hidden) {
    this.disabled = hidden;
  }

  /** Draw or update the warning of a flagged or revealed record. */
  sync(rec) {
    const names = rec.warnings.map((w) => w.name);
    if (rec.state === 'flagged' && isButtonLike(rec)) this.makeFocusable(rec, names);
    else this.restoreA11y(rec);
    const entry = this.cards.get(rec);
    if (entry && entry.names.join('\n') === names.join('\n')) return;
    if (!entry) this.cards.set(rec, { names, layout: null, card: null });
    else entry.names = names;
    if (!CARD_KINDS.has(rec.kind)) return; // blurred: no card to draw
    if (entry?.box) this.drawCard(rec, entry.box);
    this.followSize(rec);
  }

  remove(rec) {
    this.restoreA11y(rec);
    const entry = this.cards.get(rec);
    if (!entry) return;
    this.cards.delete(rec);
    if (this.sized.get(rec.el) === rec) {
      this.sized.delete(rec.el);
      this.sizes?.unobserve(rec.el);
    }
    this.releaseCard(rec, entry);
    if (rec.el.hasAttribute(CARD_ATTR)) rec.el.removeAttribute(CARD_ATTR);
  }

  /** The card follows the element's box: the observer reports it now (before the next paint) and on every change. */
  followSize(rec) {
    if (this.sized.get(rec.el) === rec) return;
    this.sized.set(rec.el, rec);
    if (this.sizes) this.sizes.observe(rec.el);
    else this.drawCard(rec, { width: rec.el.clientWidth, height: rec.el.clientHeight });
  }

  onResize(entries) {
    const boxes = entries.map((entry) => [this.sized.get(entry.target), boxOfEntry(entry)]); // every read before any write
    for (const [rec, box] of boxes) {
      // no box (removed, display: none): the card it has stays until it gets one again
      if (rec && this.cards.has(rec) && (box.width > 0 || box.height > 0)) this.drawCard(rec, box);
    }
  }

  /** Give `rec`'s element the card for its categories in a box of `box` (shared with every element drawing the same). */
  drawCard(rec, box) {
    const entry = this.cards.get(rec);
    entry.box = box;
    entry.layout = layoutCard(entry.names, box, this.measure);
    const svg = cardSvg(entry.layout);
    if (entry.card?.svg === svg) return;
    this.releaseCard(rec, entry);
    let card = this.byCard.get(svg);
    if (!card) {
      card = { id: this.nextCardId++, svg, users: new Set() };
      this.byCard.set(svg, card);
      this.insertRule(card);
    } else {
      this.byCard.delete(svg); // most recently used last: idle cards leave oldest first
      this.byCard.set(svg, card);
    }
    card.users.add(rec);
    entry.card = card;
    const id = String(card.id);
    if (rec.el.getAttribute(CARD_ATTR) !== id) rec.el.setAttribute(CARD_ATTR, id);
  }

  /** `rec` no longer draws its card; past MAX_IDLE_CARDS cards nobody draws, the oldest rule goes. */
  releaseCard(rec, entry) {
    const card = entry.card;
    if (!card) return;
    entry.card = null;
    card.users.delete(rec);
    if (card.users.size > 0) return;
    let idle = 0;
    for (const c of this.byCard.values()) if (c.users.size === 0) idle += 1;
    for (const [svg, c] of this.byCard) {
      if (idle <= MAX_IDLE_CARDS) break;
      if (c.users.size > 0) continue;
      this.byCard.delete(svg);
      this.deleteRule(c);
      idle -= 1;
    }
  }

  /** The number of card rules in our stylesheet (one per distinct card), for tests and the popup. */
  get ruleCount() {
    return this.byCard.size;
  }

  /** A flagged card: in the tab order, a button named after its reasons (the site's values kept). */
  makeFocusable(rec, names) {
    const { el } = rec;
    if (!this.ownA11y.has(rec)) {
      this.ownA11y.set(rec, Object.fromEntries(A11Y_ATTRS.map((name) => [name, el.getAttribute(name)])));
      if (!(el.tabIndex >= 0)) el.setAttribute('tabindex', '0');
      el.setAttribute('role', 'button');
      el.setAttribute('aria-keyshortcuts', REPORT_KEY);
    }
    const label = accessibleLabel(names);
    if (el.getAttribute('aria-label') !== label) el.setAttribute('aria-label', label);
    const title = names.join(', ');
    if (el.getAttribute('title') !== title) el.setAttribute('title', title);
  }

  /** The card went (shown, hidden again, unflagged): the element's own attributes come back. */
  restoreA11y(rec) {
    const own = this.ownA11y.get(rec);
    if (!own) return;
    this.ownA11y.delete(rec);
    for (const [name, value] of Object.entries(own)) {
      if (value === null) rec.el.removeAttribute(name);
      else rec.el.setAttribute(name, value);
    }
  }

  /** Whether `rec` carries its picture's warning (flagged or revealed: one element per picture). */
  hasCard(rec) {
    return this.cards.has(rec);
  }

  /** The card layout `rec`'s element draws now (card.js CARD_LAYOUT), or null before it has a box. */
  layoutOf(rec) {
    return this.cards.get(rec)?.layout?.layout ?? null;
  }

  /** Whether `rec` (a record or undefined) is flagged and its card drawn: clicks and keys on it are ours. */
  isCovering(rec) {
    return Boolean(rec) && this.cards.has(rec) && rec.state === 'flagged';
  }

  /** Enter or Space on a focused flagged picture shows it, as a click on its card does; Shift+Enter reports it. */
  handleKey(e) {
    if (this.disabled || this.ownA11y.size === 0 || !e.isTrusted || !SHOW_KEYS.has(e.key)) return;
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const report = e.shiftKey && e.key === 'Enter';
    if (e.shiftKey && !report) return;
    const rec = this.findRecord(e.composedPath()[0]);
    if (!this.isCovering(rec)) return;
    e.preventDefault(); // Space would scroll the page, Enter follow a link around the picture
    e.stopImmediatePropagation();
    if (report) this.onReport(rec);
    else this.onReveal(rec);
  }

  ruleOf(card) {
    return `[${CARD_ATTR}="${card.id}"] { --simclip-card: ${svgUrl(card.svg)}; }`;
  }

  /** One rule per distinct card, added and removed one at a time (rewriting the sheet would restyle the page). */
  insertRule(card) {
    const sheet = this.getSheet();
    if (sheet) {
      sheet.insertRule(this.ruleOf(card), this.order.length);
      this.order.push(card);
      this.ensureAdopted(document);
      return;
    }
    this.writeStyleElement();
  }

  deleteRule(card) {
    const sheet = this.getSheet();
    if (!sheet) {
      queueMicrotask(() => this.writeStyleElement());
      return;
    }
    const i = this.order.indexOf(card);
    if (i < 0) return;
    sheet.deleteRule(i);
    this.order.splice(i, 1);
  }

  /** Where constructable sheets are refused: every card rule in one <style> of ours. */
  writeStyleElement() {
    if (!this.styleEl) {
      this.styleEl = document.createElement('style');
      this.styleEl.setAttribute('data-simclip-style', '');
    }
    this.styleEl.textContent = [...this.byCard.values()].map((card) => this.ruleOf(card)).join('\n');
    if (!this.styleEl.isConnected) (document.head ?? document.documentElement).append(this.styleEl);
  }

  /**
   * A pointer event in the capture phase: if it hit a flagged picture (and nothing of the site's
   * above it), it is ours and goes no further; a click shows the picture or reports it.
   */
  handlePointer(e) {
    if (this.disabled || this.cards.size === 0 || !e.isTrusted) return;
    const rec = this.hitRecord(e);
    if (!rec) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    if (e.type !== 'click') return;
    const where = whereOnCard(this.cards.get(rec)?.layout, rec.el.getBoundingClientRect(), e.clientX, e.clientY);
    if (where === 'report') this.onReport(rec);
    else this.onReveal(rec);
  }

  /**
   * The flagged record a pointer event hit: the event's target (or an element on its path) is a
   * flagged picture, or every element above the picture at that point is a layer of the site's
   * lying within the picture's box (a transparent cover). A header, dialog or input above it is not.
   */
  hitRecord(e) {
    for (const node of e.composedPath()) {
      if (node === window || node === document) break;
      const rec = this.findRecord(node);
      if (this.isCovering(rec)) return rec;
    }
    const root = e.target?.getRootNode?.() ?? document;
    const stack = (root.elementsFromPoint ? root : document).elementsFromPoint(e.clientX, e.clientY);
    const above = [];
    for (const el of stack) {
      const rec = this.findRecord(el);
      if (this.isCovering(rec)) {
        const box = el.getBoundingClientRect();
        return above.every((cover) => isWithin(cover.getBoundingClientRect(), box)) ? rec : null;
      }
      if (!el.contains(e.target) || el === e.target) above.push(el);
    }
    return null;
  }
}

function isWithin(inner, outer, slack = 4) {
  return inner.left >= outer.left - slack && inner.top >= outer.top - slack
    && inner.right <= outer.right + slack && inner.bottom <= outer.bottom + slack;
}
