/**
 * What picture an element shows, read from the page without writing to it: an <img>'s current
 * source, an SVG <image>'s href, an `<input type=image>`'s src, a CSS background (inline, from a
 * stylesheet, `image-set()`), a `::before` / `::after` pseudo-element's background or
 * `content: url()`, and the element's own `content`, `list-style-image` and `border-image`. Each reader returns the
 * URL to check, or '' when there is none (or none we can check).
 */
import { listCssImageUrls, namesPicture } from '../shared/cssurls.js';

/** What loading an <img> gave: its current source and the file's size (0 until decoded). */
export function readImage(img) {
  return { url: img.currentSrc || img.src, width: img.naturalWidth, height: img.naturalHeight };
}

/** An SVG <image>'s picture (`href`, or the older `xlink:href`), resolved against the document. */
export function readSvgImage(el) {
  const raw = el.href?.baseVal || el.getAttribute('href') || el.getAttributeNS('http://www.w3.org/1999/xlink', 'href') || '';
  return raw ? firstUrl(`url(${JSON.stringify(raw)})`) : '';
}

/**
 * An element's CSS background picture, and whether its inline style names a url(). `hidden`: our
 * pre-hide rules hold it (its computed value is then ours), so only an inline background can be
 * read here (readCoveredBackground reads the rest); url null: unknown. A url() in an inline
 * custom property (`--bg: url(...)`) is no background of its own: what the element paints is its
 * computed value.
 */
export function readBackground(el, { hidden = false } = {}) {
  const style = el.getAttribute('style');
  const inline = style !== null && style.includes('url(');
  if (inline) {
    const own = firstUrl(el.style.backgroundImage);
    if (own || !style.includes('--')) return { url: own, inline };
  }
  if (hidden) return { url: null, inline };
  const marked = el.hasAttribute('data-simclip'); // the loader's rules hide a background until we mark the element
  const early = marked ? null : el.getAttribute('data-simclip-early');
  if (early && !inline) return { url: firstUrl(early), inline };
  if (inline && !marked) return { url: readUnmarkedBackground(el), inline };
  return { url: firstUrl(getComputedStyle(el).backgroundImage), inline };
}

/** The computed background of an element the loader's inline-url rule hides (not marked yet), read under a mark lifted at once. */
function readUnmarkedBackground(el) {
  el.setAttribute('data-simclip', '');
  try {
    return firstUrl(getComputedStyle(el).backgroundImage);
  } finally {
    el.removeAttribute('data-simclip');
  }
}

/**
 * The background the page gives an element our own rules cover (a pending tint, a warning card,
 * all keyed on `data-simclip-bg`): the marker is lifted for one style read and put back in the same
 * task, so nothing is painted in between. null when it cannot be read (no marker: not ours).
 */
export function readCoveredBackground(el) {
  if (!el.hasAttribute('data-simclip-bg')) return null;
  el.removeAttribute('data-simclip-bg');
  try {
    return firstUrl(getComputedStyle(el).backgroundImage);
  } finally {
    el.setAttribute('data-simclip-bg', '');
  }
}

/** True when the element carries an inline `url(...)` (a mask, a cursor, or a background). */
export const hasInlineUrl = (el) => (el.getAttribute('style') ?? '').includes('url(');

/**
 * The parts of an element that paint a picture through a CSS image property other than its
 * background, each read from the element's computed style and kept as a record of its own
 * (prehide.css hides each part without changing the property read here):
 *  - 'content': the element's own `content: url()`, which replaces what the element shows (an
 *    <img>'s picture included);
 *  - 'list-style': a list item's marker: its `::marker`'s `content: url()`, or its
 *    `list-style-image` (inherited: a list's items show it);
 *  - 'border-image': a `border-image-source`, drawn around the box (and across it with `fill`).
 * `mask-image` is left out on purpose: a mask paints no colour of its picture, only its alpha
 * shapes the element's own content (docs/extension.md).
 */
const STYLE_PART_VALUES = {
  content: (computed) => computed.content ?? '',
  'list-style': (computed, el) => (String(computed.display).includes('list-item') ? readMarker(el, computed) : ''),
  'border-image': (computed) => computed.borderImageSource ?? '',
};
export const STYLE_PARTS = Object.keys(STYLE_PART_VALUES);

/**
 * A list item's marker picture: its `::marker`'s own `content: url()`, which wins, else its
 * `list-style-image`. prehide.css hides a marker through that same `content` (a ::marker has no
 * other property that hides a picture): under our cover it is read with our attributes lifted for
 * that one read, put back in the same task (nothing is painted in between).
 */
function readMarker(el, computed) {
  let marker = getComputedStyle(el, '::marker').content ?? '';
  const lifted = marker === 'none' ? MARKER_COVERS.filter((name) => el.hasAttribute(name)).map((name) => [name, el.getAttribute(name)]) : [];
  if (lifted.length > 0) {
    for (const [name] of lifted) el.removeAttribute(name);
    try {
      marker = getComputedStyle(el, '::marker').content ?? '';
    } finally {
      for (const [name, value] of lifted) el.setAttribute(name, value);
    }
  }
  return namesPicture(marker) ? marker : computed.listStyleImage ?? '';
}
const MARKER_COVERS = ['data-simclip-list-style', 'data-simclip-early-list-style']; // hiding.js, prehide.css

/** The picture of the element's style part `part` (STYLE_PARTS), from its computed style; '' when none. */
export function readStylePart(el, part, computed = getComputedStyle(el)) {
  return firstUrl(STYLE_PART_VALUES[part](computed, el)); // '' unless it names a picture we check
}

/** An `<input type=image>`'s picture (its `src`, resolved), '' for any other input. */
export const readInputImage = (el) => (el.type === 'image' && el.src ? firstUrl(`url(${JSON.stringify(el.src)})`) : '');

/**
 * The picture of the element's `::before` or `::after` (`part`): its background, or a
 * `content: url(...)`. '' when the pseudo-element does not exist (`content` none or normal).
 */
export function readPseudo(el, part) {
  const style = getComputedStyle(el, `::${part}`);
  const content = style.content;
  if (!content || content === 'none' || content === 'normal') return '';
  return firstUrl(style.backgroundImage) || (content.includes('url(') ? firstUrl(content) : '');
}

/** The picture `el` shows in `part` (record_map.js PARTS: a pseudo-element, a style part, an input's image). */
export function readPart(el, part) {
  if (part === 'before' || part === 'after') return readPseudo(el, part);
  if (part === 'input') return readInputImage(el);
  return readStylePart(el, part);
}

function firstUrl(value) {
  if (!value || value === 'none') return '';
  return listCssImageUrls(value, document.baseURI)[0] ?? '';
}

/**
 * True when `from` and `to` are candidates of one source set of the <img>: its own `src` and
 * `srcset`, or one <source>'s `srcset` (sizes of one picture, by HTML's rule); false across a
 * <picture>'s sources, which may be other pictures (art direction).
 */
export function isOneSrcset(img, from, to) {
  const sets = [`${img.getAttribute('src') ?? ''}, ${img.getAttribute('srcset') ?? ''}`];
  if (img.parentElement?.tagName === 'PICTURE') {
    for (const source of img.parentElement.querySelectorAll('source')) sets.push(source.getAttribute('srcset') ?? '');
  }
  return sets.some((set) => {
    const urls = listSrcsetUrls(set);
    return urls.has(from) && urls.has(to);
  });
}

function listSrcsetUrls(set) {
  const urls = new Set();
  for (const candidate of set.split(/,\s+/)) {
    const raw = candidate.trim().split(/\s+/)[0];
    try {
      if (raw) urls.add(new URL(raw, document.baseURI).href);
    } catch {
      // not a URL
    }
  }
  return urls;
}

const NEAR_LEVELS = 4; // elements in "the same place" share an ancestor this close to both

let seen = null; // for the rest of the current task: element -> {box, above}

/**
 * What areInOnePlace reads of an element, once per task: its border box and its ancestors up to
 * NEAR_LEVELS. Comparing n copies of one picture (a grid of one placeholder, an avatar on every
 * post) reads n boxes, not n^2, and our own writes in between (state attributes: no box moves,
 * prehide.css) do not force a layout before each read.
 */
function readPlace(el) {
  if (!seen) {
    seen = new Map();
    queueMicrotask(() => {
      seen = null;
    });
  }
  let place = seen.get(el);
  if (!place) {
    const above = new Set();
    for (let node = el, i = 0; node && i <= NEAR_LEVELS; node = node.parentElement, i += 1) above.add(node);
    place = { above, box: null };
    seen.set(el, place);
  }
  return place;
}

const boxOf = (place, el) => (place.box ??= el.getBoundingClientRect());

/**
 * The element and its ancestors up to NEAR_LEVELS (read once per task): two elements are in one
 * place (areInOnePlace) only if these sets of theirs share an element.
 * @returns {Set<Element>}
 */
export const nearAncestors = (el) => readPlace(el).above;

/**
 * True when two elements show their picture in the same place: they share an ancestor at most
 * NEAR_LEVELS above each (X's background <div> and invisible <img> are siblings; Reddit's backdrop
 * and post image are cousins) and their boxes overlap over at least half of the smaller one. One
 * meme posted twice in a feed stays two pictures. Only called for elements showing the same URL
 * or content, so the layout it reads is rare.
 */
export function areInOnePlace(a, b) {
  const pa = readPlace(a);
  let near = false;
  for (let el = b, i = 0; el && i <= NEAR_LEVELS && !near; el = el.parentElement, i += 1) near = pa.above.has(el);
  if (!near) return false;
  const ra = boxOf(pa, a);
  const rb = boxOf(readPlace(b), b);
  const overlap = Math.max(0, Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left))
    * Math.max(0, Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top));
  const smaller = Math.min(ra.width * ra.height, rb.width * rb.height);
  return smaller > 0 && overlap >= smaller / 2;
}

/** True when the site makes the element nearly invisible (opacity) or blurs it itself (a backdrop). */
export function isFaded(el) {
  const style = getComputedStyle(el);
  return Number(style.opacity) < 0.1 || style.filter.includes('blur');
}
