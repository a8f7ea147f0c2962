/**
 * What picture an element shows, read from the page without writing to it: an <img>'s current
 * source, an SVG <image>'s href, a CSS background (inline, from a stylesheet, `image-set()`), a
 * `::before` / `::after` pseudo-element's background or `content: url()`. Each reader returns the
 * URL to check, or '' when there is none (or none we can check).
 */
import { listCssImageUrls } from '../shared/cssurls.js';

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
 * An element's CSS background picture. `hidden`: our pre-hide rules hold it (its computed value
 * is then `none`), so only the inline value, or the one the loader saw (`data-simclip-early`),
 * can be read.
 */
export function readBackground(el, { hidden = false } = {}) {
  const inline = el.getAttribute('style');
  if (inline !== null && inline.includes('url(')) return { url: firstUrl(el.style.backgroundImage), inline: true };
  const early = hidden ? null : el.getAttribute('data-simclip-early');
  if (early) return { url: firstUrl(early), inline: false };
  return { url: hidden ? null : firstUrl(getComputedStyle(el).backgroundImage), inline: false };
}

/** True when the element carries an inline `url(...)` (a mask, a cursor, or a background). */
export const hasInlineUrl = (el) => (el.getAttribute('style') ?? '').includes('url(');

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

function firstUrl(value) {
  if (!value || value === 'none') return '';
  return listCssImageUrls(value, document.baseURI)[0] ?? '';
}
