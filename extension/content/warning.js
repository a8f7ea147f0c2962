/**
 * The warning on a flagged picture, drawn inside the picture's own box, not in a layer above the
 * page: the picture leaves its box (an <img> or <video> shifts its content out with
 * `object-position`, a background is replaced) and a card naming the reason takes its place, as
 * the element's own background. So the warning is wherever the picture is, in the same frame: it
 * moves with transforms and inner scrollers, is clipped by scroll containers, stays under the
 * site's sticky headers, dialogs and input boxes, and never takes a click outside the picture.
 *
 * The card's text differs per picture: one rule per flagged record sets the custom property
 * `--simclip-card` (an SVG data: URL) on its element, in a stylesheet of ours adopted by the
 * document and by each shadow root; prehide.css draws it. A click on a flagged picture shows it;
 * a click on the card's "Not harmful?" chip reports a wrong verdict. A click is ours only when
 * the picture (or a layer of the site's sized to it, like Instagram's) is what was hit; a click on
 * anything else, the site's header over the picture included, is the site's. A ::before/::after
 * or an SVG <image> picture is blurred, without a card. The page's scripts can read the card
 * (its custom property, its accessible name): it names the categories, never the scores, and no
 * attribute repeats it (the tests read it from ImageFilter.listPictures, in the extension's world).
 *
 * Keyboard and screen readers: while flagged, a card's element is in the tab order (tabindex 0
 * unless the site already made it focusable), a button with an aria-label naming the reason,
 * and Enter or Space on it shows the picture, as a click does. The element's own tabindex, role
 * and aria-label come back when the card goes.
 */
import { describeCategories } from '../shared/verdict.js';

export const CARD = Object.freeze({ width: 300, height: 100, max: 300 }); // px; drawn at min(element width, max)
// The "Not harmful?" chip, in card coordinates.
export const REPORT_CHIP = Object.freeze({ x: 100, y: 66, width: 100, height: 24 });
const SWALLOWED = ['pointerdown', 'pointerup', 'mousedown', 'mouseup', 'auxclick', 'dblclick'];
const SHOW_KEYS = new Set(['Enter', ' ']);
const A11Y_ATTRS = ['tabindex', 'role', 'aria-label']; // ours while a card is drawn, the site's after
const CARD_KINDS = new Set(['img', 'bg', 'video']); // records drawn with a card (not pseudo, not SVG)

/**
 * Whether a flagged record's element can act as the card's button: a picture element, or a
 * background on an element with no element children (a button over a post's text and links
 * would hide them from screen readers).
 */
function isButtonLike(rec) {
  return CARD_KINDS.has(rec.kind) && (rec.kind !== 'bg' || rec.el.childElementCount === 0);
}

/** What a screen reader says of a flagged picture whose card reads `text` ("Harmful"). */
export function accessibleLabel(text) {
  return `Hidden picture: ${text}. Press Enter to show it.`;
}

/** The card for `text` ("Harmful"), as a CSS url() value. */
export function cardUrl(text) {
  const escape = (s) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const { width, height } = CARD;
  const chip = REPORT_CHIP;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`
    + `<g font-family="system-ui, sans-serif" text-anchor="middle">`
    + `<text x="150" y="28" font-size="16" font-weight="600" fill="#ffffff">&#9888; ${escape(text)}</text>`
    + `<text x="150" y="52" font-size="13" fill="#e8dcff">Click to show</text>`
    + `<rect x="${chip.x}" y="${chip.y}" width="${chip.width}" height="${chip.height}" rx="6" fill="none" stroke="#c9a8ff"/>`
    + `<text x="150" y="${chip.y + 16}" font-size="12" fill="#e8dcff">Not harmful?</text></g></svg>`;
  return `url("data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}")`;
}

/**
 * Where on a flagged element of box `rect` a click at (x, y) landed: 'report' on the card's
 * chip, else 'show'. The card is drawn centred, at min(element width, CARD.max) wide.
 */
export function whereOnCard(rect, x, y) {
  const scale = Math.min(rect.width, CARD.max) / CARD.width;
  const left = rect.left + (rect.width - CARD.width * scale) / 2;
  const top = rect.top + (rect.height - CARD.height * scale) / 2;
  const cx = (x - left) / scale;
  const cy = (y - top) / scale;
  const c = REPORT_CHIP;
  return cx >= c.x && cx <= c.x + c.width && cy >= c.y && cy <= c.y + c.height ? 'report' : 'show';
}

const idAttrOf = (rec) => (rec.kind === 'before' || rec.kind === 'after' ? `data-simclip-${rec.kind}-id` : 'data-simclip-id');

export class WarningPainter {
  /**
   * @param {{onReveal: (rec) => void, onReport: (rec) => void, findRecord: (el) => object|undefined,
   *          timed: (fn, kind) => void}} deps `findRecord`: the flagged record whose element is `el`.
   */
  constructor({ onReveal, onReport, findRecord, timed }) {
    Object.assign(this, { onReveal, onReport, findRecord, timed });
    this.cards = new Map(); // rec -> the text on its card
    this.order = []; // the records whose rule is in the sheet, in rule order
    this.sheet = null;
    this.styleEl = null; // where constructable sheets are refused: one <style> of ours
    this.roots = new Set(); // shadow roots the sheet was adopted into
    this.disabled = false;
    this.ownA11y = new Map(); // rec -> the element's own tabindex, role, aria-label (null: none)
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
    const text = describeCategories(rec.warnings);
    if (rec.state === 'flagged' && isButtonLike(rec)) this.makeFocusable(rec, text);
    else this.restoreA11y(rec);
    if (this.cards.get(rec) === text) return;
    if (this.cards.has(rec)) this.deleteRule(rec);
    this.cards.set(rec, text);
    this.insertRule(rec, text);
  }

  remove(rec) {
    this.restoreA11y(rec);
    if (!this.cards.has(rec)) return;
    this.deleteRule(rec);
    this.cards.delete(rec);
  }

  /** A flagged card: in the tab order, a button named after its reason (the site's values kept). */
  makeFocusable(rec, text) {
    const { el } = rec;
    if (!this.ownA11y.has(rec)) {
      this.ownA11y.set(rec, Object.fromEntries(A11Y_ATTRS.map((name) => [name, el.getAttribute(name)])));
      if (!(el.tabIndex >= 0)) el.setAttribute('tabindex', '0');
      el.setAttribute('role', 'button');
    }
    const label = accessibleLabel(text);
    if (el.getAttribute('aria-label') !== label) el.setAttribute('aria-label', label);
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

  /** Whether `rec` (a record or undefined) is flagged and its card drawn: clicks and keys on it are ours. */
  isCovering(rec) {
    return Boolean(rec) && this.cards.has(rec) && rec.state === 'flagged';
  }

  /** Enter or Space on a focused flagged picture shows it, as a click on its card does. */
  handleKey(e) {
    if (this.disabled || this.ownA11y.size === 0 || !e.isTrusted || !SHOW_KEYS.has(e.key)) return;
    if (e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    const rec = this.findRecord(e.composedPath()[0]);
    if (!this.isCovering(rec)) return;
    e.preventDefault(); // Space would scroll the page, Enter follow a link around the picture
    e.stopImmediatePropagation();
    this.onReveal(rec);
  }

  /**
   * One rule per card, added and removed one at a time: a rule keyed on one element's attribute
   * restyles that element only (rewriting the whole sheet would restyle the whole page).
   */
  insertRule(rec, text) {
    const rule = `[${idAttrOf(rec)}="${rec.id}"] { --simclip-card: ${cardUrl(text)}; }`;
    const sheet = this.getSheet();
    if (sheet) {
      sheet.insertRule(rule, this.order.length);
      this.order.push(rec);
      this.ensureAdopted(document);
      return;
    }
    this.writeStyleElement();
  }

  deleteRule(rec) {
    const sheet = this.getSheet();
    if (!sheet) {
      queueMicrotask(() => this.writeStyleElement());
      return;
    }
    const i = this.order.indexOf(rec);
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
    this.styleEl.textContent = [...this.cards].map(([rec, text]) => `[${idAttrOf(rec)}="${rec.id}"] { --simclip-card: ${cardUrl(text)}; }`).join('\n');
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
    const where = whereOnCard(rec.el.getBoundingClientRect(), e.clientX, e.clientY);
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
