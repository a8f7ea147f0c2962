/**
 * The pictures a CSS image value (`background-image`, `content`, `list-style-image`,
 * `border-image-source`) shows. Each `url(...)` layer counts;
 * an `image-set()` (or `-webkit-image-set()`) shows one of its candidates, the one the browser
 * picks for the screen's pixel ratio: the smallest resolution at or above it, else the largest.
 */

// Raster types the server decodes; a data: URL of another type (an SVG icon) is not a picture we check.
const DATA_IMAGE = /^data:image\/(jpeg|jpg|pjpeg|png|apng|gif|webp|bmp|avif)[;,]/i;
const URL_RE = /url\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([^)\s]*))\s*\)/g;
const IMAGE_SET = /(?:-webkit-)?image-set\(/gi;

/** True when a CSS value names a picture: a url() or an image-set(). */
export const namesPicture = (value) => value.includes('url(') || /image-set\(/i.test(value);

/** True for a URL the extension can check: http(s), a page's blob:, or a raster data: image. */
export function isCheckableUrl(url) {
  return /^https?:/i.test(url) || /^blob:/i.test(url) || DATA_IMAGE.test(url);
}

/** The checkable URLs in a CSS image value (`url("a"), linear-gradient(...), url(b)`), resolved against `base`. */
export function listCssImageUrls(value, base, dpr = globalThis.devicePixelRatio ?? 1) {
  if (typeof value !== 'string' || !namesPicture(value)) return [];
  const out = [];
  for (const m of pickImageSets(value, dpr).matchAll(URL_RE)) {
    const raw = (m[1] ?? m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1');
    if (!raw) continue;
    if (/^data:/i.test(raw)) {
      if (DATA_IMAGE.test(raw)) out.push(raw);
      continue;
    }
    try {
      const url = new URL(raw, base);
      if (isCheckableUrl(url.href)) out.push(url.href);
    } catch {
      // not a URL
    }
  }
  return out;
}

/** `value` with each image-set() replaced by the url() of the candidate shown at `dpr`. */
function pickImageSets(value, dpr) {
  if (!/image-set\(/i.test(value)) return value;
  let out = '';
  let from = 0;
  for (const m of value.matchAll(IMAGE_SET)) {
    if (m.index < from) continue; // nested inside a set already replaced
    const open = m.index + m[0].length;
    const close = findClosingParen(value, open);
    const candidates = splitTopLevel(value.slice(open, close)).map(readCandidate).filter((c) => c.url);
    out += value.slice(from, m.index) + (candidates.length ? `url(${JSON.stringify(chooseCandidate(candidates, dpr).url)})` : 'none');
    from = close + 1;
  }
  return out + value.slice(from);
}

/**
 * The characters of `text` from `from` on that are outside quoted strings, each with the
 * parenthesis depth before it (relative to `from`): [index, char, depth].
 */
function* unquoted(text, from = 0) {
  let depth = 0;
  let quote = '';
  for (let i = from; i < text.length; i += 1) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i += 1;
      else if (c === quote) quote = '';
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else {
      yield [i, c, depth];
      if (c === '(') depth += 1;
      else if (c === ')') depth -= 1;
    }
  }
}

/** The index of the `)` that closes the parenthesis opened just before `open`, or text.length. */
function findClosingParen(text, open) {
  for (const [i, c, depth] of unquoted(text, open)) if (c === ')' && depth === 0) return i;
  return text.length;
}

/** `text` split at the commas outside parentheses and strings. */
function splitTopLevel(text) {
  const parts = [];
  let start = 0;
  for (const [i, c, depth] of unquoted(text)) {
    if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

const RESOLUTION_PER_X = { x: 1, dppx: 1, dpi: 1 / 96, dpcm: 2.54 / 96 };

/** One image-set() candidate: `url(a.png) 2x`, `"a.png" 1x`, `url(a.avif) type("image/avif")`. */
function readCandidate(text) {
  const url = /url\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([^)\s]*))\s*\)/.exec(text)
    ?? /^\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')/.exec(text);
  const res = /(\d*\.?\d+)(x|dppx|dpi|dpcm)\b/i.exec(text.replace(/url\([^)]*\)|"[^"]*"|'[^']*'/g, ''));
  return {
    url: url ? (url[1] ?? url[2] ?? url[3] ?? '').replace(/\\(.)/g, '$1') : '',
    x: res ? Number(res[1]) * RESOLUTION_PER_X[res[2].toLowerCase()] : 1,
  };
}

function chooseCandidate(candidates, dpr) {
  const sorted = [...candidates].sort((a, b) => a.x - b.x);
  return sorted.find((c) => c.x >= dpr) ?? sorted[sorted.length - 1];
}

const PSEUDO_SUFFIX = /::?(before|after|marker)\s*$/i;

const VAR_REFERENCE = /var\(\s*(--[^,)\s]+)/g;
// A value that is no picture and no placeholder for one: a color, a number or length, a keyword
// (not `none` or a CSS-wide keyword, the default a script may replace with a url()).
const PLAIN_VALUE = /^\s*(#[0-9a-f]{3,8}|(rgba?|hsla?|hwb|lab|lch|oklab|oklch|color|color-mix)\(.*\)|-?[\d.]+[a-z%]*|(?!(none|initial|inherit|unset|revert|revert-layer)\s*$)[a-z-]+)\s*$/i;

/** True when `value` (a custom property's) cannot name a picture: a color, a number or length, a keyword (PLAIN_VALUE). */
export const isPlainValue = (value) => PLAIN_VALUE.test(value ?? '');

/** An empty readStyleRules result, for one walk over several sheets. */
export const newStyleRead = () => ({ declared: new Map(), queried: new Set(), pictureRules: [] });

/**
 * One walk over the style rules in `rules` (a CSSRuleList, read recursively through @media,
 * @supports, @container, @layer and nesting) that reads each rule's declarations once, for what
 * the watcher needs of a stylesheet. Adds to `out` and returns it:
 *  - `declared`: the custom properties (`--name`) the rules declare: name -> true when one of its
 *    declarations may hold a picture (anything but a color, a number, a length or a keyword:
 *    `none` may be the default a script replaces);
 *  - `queried`: the custom properties whose value itself the rules choose by: those a container
 *    style query names (`@container style(--theme: dark)`), and those in a picture property's
 *    `if(...)` (`if(style(--theme: dark): url(a); else: url(b))`); '*' stands for any, when such a
 *    rule names none that can be read. One of these set to a plain value may change a picture too;
 *  - `pictureRules`: [selectorText, value] of the style rules whose `background(-image)`,
 *    `content`, `border-image(-source)` or `list-style(-image)` names a picture (url(),
 *    image-set()) or a custom property (var()), and for a list-style one the rule's descendants
 *    too (the property is inherited): selectPictureRules picks from them once every sheet's
 *    `declared` is known.
 */
export function readStyleRules(rules, out = newStyleRead()) {
  for (const rule of rules ?? []) {
    if (rule.conditionText?.includes('style(')) addPropertyNames(rule.conditionText, out.queried);
    const style = rule.style;
    if (style) {
      for (let i = 0; i < (style.length ?? 0); i += 1) {
        const name = style[i];
        if (name.startsWith('--')) out.declared.set(name, out.declared.get(name) || !PLAIN_VALUE.test(style.getPropertyValue(name)));
      }
      const list = `${style.listStyleImage ?? ''} ${style.listStyle ?? ''}`;
      const value = `${style.backgroundImage ?? ''} ${style.background ?? ''} ${style.content ?? ''} ${style.borderImage ?? ''} ${
        style.borderImageSource ?? ''} ${list}`;
      if (/\bif\(/i.test(value)) addPropertyNames(value, out.queried);
      if (typeof rule.selectorText === 'string' && (namesPicture(value) || value.includes('var('))) {
        out.pictureRules.push([rule.selectorText, value]);
        // list-style-image is inherited: a list's items show what a rule gives the list
        if (namesPicture(list) || list.includes('var(')) out.pictureRules.push([descendantsOf(rule.selectorText), list]);
      }
    }
    if (rule.cssRules) readStyleRules(rule.cssRules, out);
  }
  return out;
}

function addPropertyNames(text, names) {
  const found = text.match(/--[^\s:;,()]+/g);
  for (const name of found ?? ['*']) names.add(name);
}

/**
 * The selectors of `pictureRules` (readStyleRules) that give an element, or its ::before /
 * ::after, a picture: a url() or image-set(), or var(--name) of a custom property that may hold
 * one (`mayHoldPicture(name)`: by default every one may; one the page sets from a script or a
 * style attribute is in no stylesheet). A pseudo-element selector comes back as its element's
 * selector. Lets a new stylesheet be checked against the elements it styles instead of every
 * element of the page.
 */
export function selectPictureRules(pictureRules, mayHoldPicture = () => true) {
  const out = new Set();
  for (const [selectorText, value] of pictureRules) {
    if (!namesPicture(value) && ![...value.matchAll(VAR_REFERENCE)].some((m) => mayHoldPicture(m[1]))) continue;
    for (const selector of splitSelectorList(selectorText)) out.add(selector.replace(PSEUDO_SUFFIX, '').trim() || '*');
  }
  return [...out];
}

/** readStyleRules' `queried` for `rules`, added to `names`. */
export const listStyleQueryProperties = (rules, names = new Set()) => readStyleRules(rules, { ...newStyleRead(), queried: names }).queried;

/** The picture selectors of `rules` alone (readStyleRules, then selectPictureRules). */
export const listPictureSelectors = (rules, mayHoldPicture) => selectPictureRules(readStyleRules(rules).pictureRules, mayHoldPicture);

/** The selector of every descendant of what `selectorText` (a list) selects: "ul.a, ol" -> "ul.a *, ol *". */
const descendantsOf = (selectorText) => splitSelectorList(selectorText).map((s) => `${s} *`).join(', ');

/** "a, b:is(c, d)" -> ["a", "b:is(c, d)"]: commas inside parentheses or strings do not split. */
function splitSelectorList(text) {
  return splitTopLevel(text).map((s) => s.trim()).filter(Boolean);
}
