/**
 * The warning overlays: one layer element at the document's origin holding, in an open shadow
 * root, a box over each flagged element (a badge naming the categories with their scores, "Show",
 * "Not harmful?") or a small "Hide" button over a revealed one. Boxes are absolutely positioned in
 * document coordinates, so the page's own layout never changes; they are re-placed after DOM
 * changes, resizes and scrolling inside scroll containers, with all reads before all writes.
 */
import { describeWarnings } from '../shared/verdict.js';

export const LAYER_TAG = 'simclip-shield-layer';

const LAYER_CSS = `
:host { all: initial; position: absolute; top: 0; left: 0; width: 0; height: 0; z-index: 2147483646; pointer-events: none; }
:host([hidden]) { display: none; }
.box { position: absolute; box-sizing: border-box; display: flex; align-items: center; justify-content: center;
  font: 13px/1.3 system-ui, sans-serif; color: #fff; overflow: hidden; }
.box[data-state="flagged"] { pointer-events: auto; cursor: pointer; background: rgba(30, 16, 48, 0.35); }
.box[data-state="revealed"] { align-items: flex-start; justify-content: flex-end; }
.badge { display: flex; flex-direction: column; align-items: center; gap: 6px; max-width: 90%; padding: 8px 12px;
  border-radius: 8px; background: rgba(30, 16, 48, 0.88); text-align: center; }
.label { font-weight: 600; }
.actions { display: flex; gap: 6px; }
button { pointer-events: auto; font: inherit; font-size: 12px; color: #fff; background: #5b2a86; border: 1px solid #c9a8ff;
  border-radius: 6px; padding: 3px 8px; cursor: pointer; }
button.secondary { background: transparent; }
.box[data-state="revealed"] button { margin: 4px; }
`;

export class OverlayLayer {
  /** @param {{onReveal, onHide, onReport: (rec) => void, timed: (fn, kind) => void, forceStyle: (read) => void}} callbacks */
  constructor({ onReveal, onHide, onReport, timed, forceStyle }) {
    this.forceStyle = forceStyle;
    this.onReveal = onReveal;
    this.onHide = onHide;
    this.onReport = onReport;
    this.timed = timed;
    this.boxes = new Map(); // rec -> box element
    this.host = document.createElement(LAYER_TAG);
    this.root = this.host.attachShadow({ mode: 'open' });
    const style = document.createElement('style');
    style.textContent = LAYER_CSS;
    this.root.append(style);
    this.frame = 0;
    this.resizeObserver = new ResizeObserver(() => this.schedulePosition());
    window.addEventListener('resize', () => this.schedulePosition(), { passive: true });
    // Scrolling the window moves boxes with the document; scrolling an inner container does not.
    document.addEventListener('scroll', (e) => {
      if (e.target !== document) this.schedulePosition();
    }, { capture: true, passive: true });
    setInterval(() => {
      if (this.boxes.size > 0) this.schedulePosition(); // late layout shifts (fonts, images above)
    }, 1000);
  }

  /** True for our own nodes (the watcher ignores them). */
  isOwnNode(node) {
    return node === this.host;
  }

  setHidden(hidden) {
    this.host.hidden = hidden;
  }

  /** Create or update the box for a flagged or revealed record. */
  sync(rec) {
    const box = this.boxes.get(rec) ?? this.createBox(rec);
    const text = describeWarnings(rec.warnings);
    const state = rec.state;
    if (box.dataset.state !== state || box.dataset.text !== text) {
      box.dataset.state = state;
      box.dataset.text = text;
      box.replaceChildren(state === 'flagged' ? this.makeBadge(text) : this.makeButton('hide', 'Hide', `Hide again (${text})`));
    }
    this.ensureAttached();
    this.schedulePosition();
  }

  createBox(rec) {
    const box = document.createElement('div');
    box.className = 'box';
    box.dataset.target = String(rec.id);
    box.addEventListener('click', (e) => {
      e.preventDefault();
      e.stopPropagation();
      const action = e.target.closest?.('button')?.dataset.action ?? (box.dataset.state === 'flagged' ? 'show' : null);
      if (action === 'show') this.onReveal(rec);
      else if (action === 'hide') this.onHide(rec);
      else if (action === 'report') this.onReport(rec);
    });
    this.boxes.set(rec, box);
    this.root.append(box);
    this.resizeObserver.observe(rec.el);
    return box;
  }

  makeBadge(text) {
    const badge = document.createElement('div');
    badge.className = 'badge';
    badge.setAttribute('role', 'note');
    const label = document.createElement('div');
    label.className = 'label';
    label.textContent = `\u26A0 ${text}`;
    const actions = document.createElement('div');
    actions.className = 'actions';
    actions.append(this.makeButton('show', 'Show', 'Show this image'), this.makeButton('report', 'Not harmful?', 'Report a wrong verdict (kept on this computer)', true));
    badge.append(label, actions);
    return badge;
  }

  makeButton(action, text, title, secondary = false) {
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.action = action;
    b.textContent = text;
    b.title = title;
    if (secondary) b.className = 'secondary';
    return b;
  }

  remove(rec) {
    const box = this.boxes.get(rec);
    if (!box) return;
    box.remove();
    this.boxes.delete(rec);
    this.resizeObserver.unobserve(rec.el);
  }

  ensureAttached() {
    if (!this.host.isConnected && document.documentElement) document.documentElement.append(this.host);
  }

  schedulePosition() {
    if (this.frame || this.boxes.size === 0) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.timed(() => this.position(), 'overlay');
    });
  }

  /** Place every box over its element: all reads (one forced layout), then only the writes that change something. */
  position() {
    this.ensureAttached();
    const sx = window.scrollX;
    const sy = window.scrollY;
    for (const [box, r] of this.measureAll()) placeBox(box, r, sx, sy);
  }

  /** [box, the element's client rect (null once it left the document)] for every box. */
  measureAll() {
    const placed = [];
    const [first] = this.boxes.keys();
    if (first?.el.isConnected) this.forceStyle(() => first.el.getBoundingClientRect()); // one layout, booked apart
    for (const [rec, box] of this.boxes) placed.push([box, rec.el.isConnected ? rec.el.getBoundingClientRect() : null]);
    return placed;
  }
}

function placeBox(box, r, sx, sy) {
  const place = !r || r.width === 0 || r.height === 0 ? 'none' : `${r.left + sx},${r.top + sy},${r.width},${r.height}`;
  if (box.dataset.place === place) return; // most boxes do not move: write only what changed
  box.dataset.place = place;
  if (place === 'none') {
    box.style.display = 'none';
    return;
  }
  box.style.display = '';
  box.style.left = `${r.left + sx}px`;
  box.style.top = `${r.top + sy}px`;
  box.style.width = `${r.width}px`;
  box.style.height = `${r.height}px`;
}
