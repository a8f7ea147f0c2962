/**
 * Pictures the worker cannot fetch, read here in the page's context: `data:` URLs (the bytes are
 * in the URL) and `blob:` URLs (they exist only in this page: Telegram Web, WhatsApp Web). The
 * bytes go to the worker as base64 (CLASSIFY_BYTES), capped at MAX_PAGE_BYTES, and are never
 * sent as a URL: a data: URL longer than the message's URL field would be refused, and a refused
 * message must never look like a server that is down. A picture over the cap, or not an image,
 * is answered FAILED at once, without a message.
 */
import { MAX_PAGE_BYTES, VERDICT } from '../shared/messages.js';

const DATA_IMAGE = /^data:(image\/[a-z0-9.+-]+)?[^,]*?(;base64)?,/i;
const SERVER_FORMATS = /^image\/(jpeg|jpg|pjpeg|png|apng|gif|webp|bmp|avif|svg\+xml)$/i; // what the server decodes
const SVG = /^image\/svg\+xml$/i;
// An SVG shown as a picture paints only the pictures it embeds as data: URIs (docs/api.md, SVG):
// one without is a vector drawing (an icon, a logo), which the server does not judge.
const EMBEDDED_PICTURE = /\bhref\s*=\s*["']\s*data:image\//i;

/** base64 as a data: URL may carry it (line breaks, the URL-safe alphabet), in the standard alphabet. */
const standardBase64 = (text) => text.replace(/\s+/g, '').replace(/-/g, '+').replace(/_/g, '/');

/** True for a URL whose bytes only the page can read. */
export const isPageOnlyUrl = (url) => /^(data|blob):/i.test(url);

const failed = (reason) => ({ status: VERDICT.FAILED, reason });

/**
 * The picture at `url` (data: or blob:) as {base64, mime}, or a FAILED verdict. `el` is the
 * element showing it: a blob: URL the page has already revoked is read back from the decoded
 * <img> through a canvas (a blob: picture is same-origin, so the canvas is never tainted).
 */
export async function readPageBytes(url, el = null) {
  if (/^data:/i.test(url)) return readDataUrl(url);
  let blob = await pageFetch(url).then((r) => (r.ok ? r.blob() : null), () => null); // null: revoked, or another context's
  if (!blob && el?.tagName === 'IMG') blob = await drawToBlob(el);
  if (!blob) return failed('blob_unreadable');
  return readBlob(blob);
}

/** The base64 part of a data: URL, checked for type and size without decoding it. */
function readDataUrl(url) {
  const head = DATA_IMAGE.exec(url.slice(0, 256));
  if (!head || !head[1]) return failed('not_image');
  if (!SERVER_FORMATS.test(head[1])) return failed('unsupported_format');
  if (SVG.test(head[1])) return readSvgDataUrl(url, head);
  if (!head[2]) return failed('not_base64'); // a percent-encoded raster image does not occur in practice
  if (((url.length - head[0].length) * 3) / 4 > MAX_PAGE_BYTES * 1.05) return failed('too_large'); // before copying it
  const base64 = standardBase64(url.slice(head[0].length));
  if (base64.length === 0) return failed('empty');
  if ((base64.length * 3) / 4 > MAX_PAGE_BYTES) return failed('too_large');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return failed('not_base64');
  return { base64, mime: head[1].toLowerCase() };
}

/**
 * An SVG data: URL, base64 or (as SVGs usually are) percent-encoded text, as {base64, mime}; an
 * SVG that embeds no picture is SKIPPED (nothing the server judges), one that does not decode
 * FAILED.
 */
function readSvgDataUrl(url, head) {
  const body = url.slice(head[0].length);
  if ((body.length * 3) / 4 > MAX_PAGE_BYTES * 1.05) return failed('too_large');
  let bytes;
  try {
    bytes = head[2]
      ? Uint8Array.from(atob(standardBase64(body)), (c) => c.charCodeAt(0))
      : new TextEncoder().encode(decodeURIComponent(body));
  } catch {
    return failed(head[2] ? 'not_base64' : 'not_image');
  }
  if (bytes.length === 0) return failed('empty');
  if (bytes.length > MAX_PAGE_BYTES) return failed('too_large');
  const text = new TextDecoder().decode(bytes.subarray(0, 64 * 1024));
  if (!EMBEDDED_PICTURE.test(text)) return { status: VERDICT.SKIPPED, reason: 'vector_svg' };
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return { base64: btoa(binary), mime: 'image/svg+xml' };
}

async function readBlob(blob) {
  if (blob.size === 0) return failed('empty');
  if (blob.size > MAX_PAGE_BYTES) return failed('too_large');
  if (blob.type && !blob.type.startsWith('image/') && blob.type !== 'application/octet-stream') return failed('not_image');
  const dataUrl = await new Promise((resolve) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => resolve('');
    reader.readAsDataURL(blob); // encodes off the main thread
  });
  const comma = dataUrl.indexOf(',');
  if (comma < 0) return failed('blob_unreadable');
  return { base64: dataUrl.slice(comma + 1), mime: blob.type || 'application/octet-stream' };
}

/** The page's own fetch where the content script has one apart from its own (Firefox: `content.fetch`), else null. */
function pageOwnFetch() {
  const asPage = globalThis.content?.fetch;
  return typeof asPage === 'function' ? asPage.bind(globalThis.content) : null;
}

/** fetch as the page: Firefox's content-script fetch is the extension's, `content.fetch` the page's. */
function pageFetch(url) {
  return (pageOwnFetch() ?? fetch)(url);
}

// A picture read from its painting is scaled down to this longest side and sent as JPEG: the model
// sees 336 px, the OCR a meme's text at a few hundred px; a 4 MP PNG of a photo is over the 4 MiB
// of MAX_PAGE_BYTES, and a canvas side over 32767 px fails in Firefox.
export const PAINTED_BOUNDS = Object.freeze({ side: 1280, quality: 0.9 });

/**
 * The picture an <img> shows, for one that no request of the worker could fetch (its site's
 * service worker made it up, main.js): the file itself where this page's own fetch reaches it
 * (Firefox's `content.fetch`, through the page's service worker: every frame, the SVG as SVG),
 * else its decoded painting, scaled to PAINTED_BOUNDS.side, as JPEG over white. {base64, mime},
 * or a FAILED verdict: not decoded yet or broken ('not_painted'), or a canvas the browser taints
 * (a cross-origin picture without CORS) or cannot allocate ('unreadable_painting').
 */
export async function readShownImage(img, url) {
  if (!img.complete || img.naturalWidth === 0) return failed('not_painted');
  const asPage = pageOwnFetch();
  if (asPage) {
    const blob = await asPage(url).then((r) => (r.ok ? r.blob() : null), () => null);
    if (blob?.type.startsWith('image/')) {
      const read = await readBlob(blob);
      if (!read.status) return read;
    }
  }
  const scale = Math.min(1, PAINTED_BOUNDS.side / Math.max(img.naturalWidth, img.naturalHeight));
  const blob = await drawToBlob(img, { scale, type: 'image/jpeg', quality: PAINTED_BOUNDS.quality });
  return blob ? readBlob(blob) : failed('unreadable_painting');
}

/**
 * A decoded <img> re-encoded through a canvas (PNG at its size by default; `scale` it, `type` and
 * `quality` as for canvas.toBlob; a JPEG is drawn over white), or null: not decoded, or a canvas
 * the browser taints or cannot allocate.
 */
async function drawToBlob(img, { scale = 1, type = 'image/png', quality } = {}) {
  if (!img.complete || img.naturalWidth === 0) return null;
  try {
    const canvas = document.createElement('canvas');
    canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
    canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
    const ctx = canvas.getContext('2d');
    if (type === 'image/jpeg') {
      ctx.fillStyle = '#fff'; // JPEG has no transparency: what shows through is usually the page's white
      ctx.fillRect(0, 0, canvas.width, canvas.height);
    }
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    return await new Promise((resolve) => canvas.toBlob(resolve, type, quality));
  } catch {
    return null;
  }
}
