/**
 * The warning card's drawing: what it says and where, for a box of a given size, as an SVG the
 * flagged element shows as its own background (warning.js puts it there).
 *
 * The SVG has no size and no viewBox: the browser draws it at the size of the element's box,
 * unscaled, one SVG unit per CSS px, so a 12 px font is 12 px on screen in a 120 px box as in a
 * 600 px one (a scaled drawing shrank its text to 6 px at 150 px). Its content is laid out about
 * the box's centre (a nested <svg> at 50% 50%), so one drawing fits every box its layout fits:
 * cards are shared by every picture with the same words and layout (warning.js keeps one rule per
 * distinct card). The layout is chosen for the box:
 *
 *   full     (200 px wide and up): the categories, wrapped over two lines, or the top one and
 *            "+N" when they need more; "Click to show"; the "Not harmful?" chip
 *   compact  (below 200 px): the top category and "+N", the chip
 *   mini     (a box too small for the chip's words): the warning sign and a "?" chip
 *   icon     (smaller still): the warning sign alone
 *
 * No text is smaller than MIN_FONT_PX, and nothing is drawn outside the box: a name too long for
 * it is shortened with an ellipsis (the full list is in the card's accessible name). Pure: no DOM;
 * text widths come from the `measure` the caller passes (a canvas in the page, an estimate here).
 */

export const MIN_FONT_PX = 11;
export const CARD_FONT = 'system-ui, sans-serif';
export const CARD_LAYOUT = Object.freeze({ FULL: 'full', COMPACT: 'compact', MINI: 'mini', ICON: 'icon' });
export const FULL_MIN_WIDTH = 200; // px: below this, the compact card
export const SIGN = '\u26a0'; // the warning sign
export const CHIP_TEXT = 'Not harmful?';
const SEPARATOR = ' · ';
const MARGIN = { x: 8, y: 6 }; // px kept clear inside the box's edges
const MAX_TEXT_WIDTH = 340; // px: a wider box keeps its lines this short
const COLORS = Object.freeze({ title: '#ffffff', text: '#e8dcff', chip: '#c9a8ff' });

// Sizes in px: font, line height, and the chip's height and side padding.
const FULL = Object.freeze({ title: 15, titleLine: 19, sub: 12, subLine: 16, chip: 12, chipHeight: 24, chipPad: 10, gap: 4, chipGap: 8 });
const COMPACT = Object.freeze({ title: 12, titleLine: 16, chip: MIN_FONT_PX, chipHeight: 20, chipPad: 6, chipGap: 6 });
const MINI = Object.freeze({ sign: 16, chip: MIN_FONT_PX, chipSize: 20, gap: 6 });

/**
 * A width estimate for `text` at `sizePx` (bold when `weight` >= 600), on the wide side: for
 * tests and where no canvas can measure.
 */
export function estimateWidth(text, sizePx, weight = 400) {
  return [...text].length * sizePx * (weight >= 600 ? 0.68 : 0.62);
}

/**
 * `text` cut to fit `maxWidth` at `size`, ending in an ellipsis when cut; '' when not even one
 * letter and the ellipsis fit.
 */
export function fitText(text, maxWidth, size, weight, measure) {
  if (measure(text, size, weight) <= maxWidth) return text;
  const chars = [...text];
  for (let n = chars.length - 1; n >= 1; n -= 1) {
    const cut = `${chars.slice(0, n).join('').trimEnd()}…`;
    if (measure(cut, size, weight) <= maxWidth) return cut;
  }
  return '';
}

/** Greedy lines of `names` joined by SEPARATOR, the first after the sign; null if over `maxLines`. */
function wrapNames(names, maxWidth, size, measure, maxLines) {
  const lines = [];
  let line = SIGN;
  for (const name of names) {
    const joined = line === SIGN ? `${SIGN} ${name}` : `${line}${SEPARATOR}${name}`;
    if (measure(joined, size, 600) <= maxWidth) {
      line = joined;
      continue;
    }
    if (line === SIGN || measure(name, size, 600) > maxWidth) return null; // one name alone does not fit
    lines.push(line);
    line = name;
  }
  lines.push(line);
  return lines.length <= maxLines ? lines : null;
}

/** "⚠ Hateful +2" cut to `maxWidth` (the name shortened, the count kept); '' if it cannot fit. */
function topWithCount(names, maxWidth, size, measure) {
  const more = names.length > 1 ? ` +${names.length - 1}` : '';
  const room = maxWidth - measure(`${SIGN} ${more}`, size, 600);
  const name = fitText(names[0] ?? '', room, size, 600, measure);
  return name ? `${SIGN} ${name}${more}` : '';
}

/** A column of parts ({height, ...}) centred on the box's centre: each part's top (y, from the centre). */
function stack(parts) {
  const total = parts.reduce((sum, p) => sum + p.height, 0);
  let y = -total / 2;
  return parts.map((p) => {
    const top = y;
    y += p.height;
    return { ...p, top };
  });
}

const baseline = (top, lineHeight, size) => top + lineHeight / 2 + size * 0.35;

function fullLayout(names, box, measure) {
  const maxWidth = Math.min(box.width - 2 * MARGIN.x, MAX_TEXT_WIDTH);
  if (box.width < FULL_MIN_WIDTH) return null;
  const lines = wrapNames(names, maxWidth, FULL.title, measure, 2) ?? [topWithCount(names, maxWidth, FULL.title, measure)];
  if (!lines[0]) return null;
  const chipWidth = Math.ceil(measure(CHIP_TEXT, FULL.chip, 400)) + 2 * FULL.chipPad;
  const parts = stack([
    ...lines.map((text) => ({ kind: 'title', text, height: FULL.titleLine })),
    { kind: 'gap', height: FULL.gap },
    { kind: 'sub', text: 'Click to show', height: FULL.subLine },
    { kind: 'gap', height: FULL.chipGap },
    { kind: 'chip', height: FULL.chipHeight },
  ]);
  const height = parts.at(-1).top + FULL.chipHeight - parts[0].top;
  if (height > box.height - 2 * MARGIN.y) return null;
  const texts = [];
  let chip = null;
  for (const p of parts) {
    if (p.kind === 'title') texts.push({ text: p.text, size: FULL.title, weight: 600, fill: COLORS.title, y: baseline(p.top, FULL.titleLine, FULL.title) });
    if (p.kind === 'sub') texts.push({ text: p.text, size: FULL.sub, weight: 400, fill: COLORS.text, y: baseline(p.top, FULL.subLine, FULL.sub) });
    if (p.kind === 'chip') chip = { x: -chipWidth / 2, y: p.top, width: chipWidth, height: FULL.chipHeight, size: FULL.chip, text: CHIP_TEXT };
  }
  return { layout: CARD_LAYOUT.FULL, texts, chip, height };
}

function compactLayout(names, box, measure) {
  const maxWidth = box.width - 2 * MARGIN.x;
  const chipWidth = Math.ceil(measure(CHIP_TEXT, COMPACT.chip, 400)) + 2 * COMPACT.chipPad;
  const title = topWithCount(names, maxWidth, COMPACT.title, measure);
  if (!title || chipWidth > box.width - 2 * 2) return null;
  const parts = stack([
    { kind: 'title', height: COMPACT.titleLine },
    { kind: 'gap', height: COMPACT.chipGap },
    { kind: 'chip', height: COMPACT.chipHeight },
  ]);
  const height = COMPACT.titleLine + COMPACT.chipGap + COMPACT.chipHeight;
  if (height > box.height - 2 * 2) return null;
  return {
    layout: CARD_LAYOUT.COMPACT,
    texts: [{ text: title, size: COMPACT.title, weight: 600, fill: COLORS.title, y: baseline(parts[0].top, COMPACT.titleLine, COMPACT.title) }],
    chip: { x: -chipWidth / 2, y: parts[2].top, width: chipWidth, height: COMPACT.chipHeight, size: COMPACT.chip, text: CHIP_TEXT },
    height,
  };
}

function miniLayout(box, measure) {
  const signWidth = Math.ceil(measure(SIGN, MINI.sign, 600));
  const width = signWidth + MINI.gap + MINI.chipSize;
  if (width > box.width - 4 || MINI.chipSize > box.height - 4) return null;
  const left = -width / 2;
  return {
    layout: CARD_LAYOUT.MINI,
    texts: [{ text: SIGN, size: MINI.sign, weight: 600, fill: COLORS.title, y: MINI.sign * 0.35, x: left + signWidth / 2 }],
    chip: { x: left + signWidth + MINI.gap, y: -MINI.chipSize / 2, width: MINI.chipSize, height: MINI.chipSize, size: MINI.chip, text: '?' },
    height: MINI.chipSize,
  };
}

/**
 * The card for a picture flagged for `names` (category names, highest score first) in a box of
 * `box` ({width, height}, CSS px): {layout (CARD_LAYOUT), texts: [{text, size, weight, fill, y, x?}],
 * chip: {x, y, width, height, size, text} | null, height}, coordinates from the box's centre
 * (x 0 when absent: centred). `measure(text, sizePx, weight)` gives a text's width in px.
 */
export function layoutCard(names, box, measure = estimateWidth) {
  const size = { width: Math.max(0, Number(box?.width) || 0), height: Math.max(0, Number(box?.height) || 0) };
  const list = names.length > 0 ? names : ['Flagged'];
  return fullLayout(list, size, measure) ?? compactLayout(list, size, measure) ?? miniLayout(size, measure)
    ?? { layout: CARD_LAYOUT.ICON, texts: size.width >= 16 && size.height >= 16 ? [{ text: SIGN, size: 14, weight: 600, fill: COLORS.title, y: 5 }] : [], chip: null, height: 14 };
}

const escapeXml = (s) => String(s).replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (v) => String(Math.round(v * 10) / 10);

/** The card `layout` (layoutCard) as SVG source: sized by the box it is drawn in, centred in it. */
export function cardSvg(layout) {
  const parts = layout.texts.map((t) => `<text x="${num(t.x ?? 0)}" y="${num(t.y)}" font-size="${t.size}"`
    + `${t.weight >= 600 ? ' font-weight="600"' : ''} fill="${t.fill}">${escapeXml(t.text)}</text>`);
  const { chip } = layout;
  if (chip) {
    const round = chip.text === '?' ? chip.height / 2 : 6;
    parts.push(`<rect x="${num(chip.x)}" y="${num(chip.y)}" width="${num(chip.width)}" height="${num(chip.height)}" rx="${num(round)}" fill="none" stroke="${COLORS.chip}"/>`);
    parts.push(`<text x="${num(chip.x + chip.width / 2)}" y="${num(baseline(chip.y, chip.height, chip.size))}" font-size="${chip.size}" fill="${COLORS.text}">${escapeXml(chip.text)}</text>`);
  }
  return '<svg xmlns="http://www.w3.org/2000/svg"><svg x="50%" y="50%" overflow="visible">'
    + `<g font-family="${CARD_FONT}" text-anchor="middle">${parts.join('')}</g></svg></svg>`;
}

/** An SVG's source as a CSS url() value. */
export function svgUrl(svg) {
  return `url("data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}")`;
}

/**
 * Where a click at (x, y) landed on a card of `layout` drawn in box `rect` ({left, top, width,
 * height}): 'report' on its chip, else 'show'.
 */
export function whereOnCard(layout, rect, x, y) {
  const chip = layout?.chip;
  if (!chip) return 'show';
  const cx = x - (rect.left + rect.width / 2);
  const cy = y - (rect.top + rect.height / 2);
  return cx >= chip.x && cx <= chip.x + chip.width && cy >= chip.y && cy <= chip.y + chip.height ? 'report' : 'show';
}

/**
 * A text measurer for the page: canvas widths, in the card's font, remembered; the estimate where
 * the page gives no canvas. A small margin covers rounding between the canvas and the SVG text.
 */
export function createMeasure() {
  let ctx = null;
  try {
    ctx = new OffscreenCanvas(1, 1).getContext('2d');
  } catch {
    ctx = null;
  }
  const known = new Map();
  return (text, size, weight = 400) => {
    const key = `${weight} ${size} ${text}`;
    let width = known.get(key);
    if (width === undefined) {
      if (ctx) {
        ctx.font = `${weight >= 600 ? 600 : 400} ${size}px ${CARD_FONT}`;
        width = ctx.measureText(text).width * 1.04 + 2;
      } else {
        width = estimateWidth(text, size, weight);
      }
      if (known.size > 500) known.clear();
      known.set(key, width);
    }
    return width;
  };
}
