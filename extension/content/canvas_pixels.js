/**
 * What a <canvas> shows, read from its pixels: a page that draws a picture on a canvas (Telegram
 * Web's media viewer, image viewers and editors) gives no URL to check. A small fingerprint of the
 * pixels (the canvas scaled down to FINGERPRINT_SIDE² and hashed) tells when the drawing changed;
 * a snapshot (scaled to at most CANVAS_BOUNDS.side, JPEG) is what the worker is sent, as bytes.
 *
 * What stays out: a canvas the page drew a cross-origin picture on without CORS is "tainted" and
 * cannot be read by anyone in the page (the browser's rule); a WebGL canvas whose drawing buffer
 * is not preserved may read as blank; a canvas that changes at nearly every look (a game, a video,
 * an animation) is not a picture to hold back (see canvas_looks.js, CANVAS.animated).
 */
import { MAX_PAGE_BYTES } from '../shared/messages.js';

export const CANVAS_BOUNDS = Object.freeze({
  minSide: 100, // px of the canvas bitmap: smaller ones are icons, sparklines, avatars
  side: 640, // px: snapshots are scaled down to this longest side (the server looks at 224-336 px)
  quality: 0.9, // JPEG
});
const FINGERPRINT_SIDE = 32;

/** Why a canvas is not checked (a shown canvas's reason). */
export const CANVAS_OUT = Object.freeze({
  SMALL: 'small',
  TAINTED: 'tainted_canvas', // cross-origin pixels: unreadable in the page
  BLANK: 'blank', // nothing drawn yet (or one flat colour, or an unreadable WebGL buffer)
});

let scratch = null;

/**
 * A look at `canvas`: {key} (a fingerprint of its pixels, with its size) or {out} (CANVAS_OUT).
 * Reads one FINGERPRINT_SIDE² downscale (4 KiB), whatever the canvas's size.
 */
export function sampleCanvas(canvas) {
  const { width, height } = canvas;
  if (Math.min(width, height) < CANVAS_BOUNDS.minSide) return { out: CANVAS_OUT.SMALL };
  scratch ??= document.createElement('canvas').getContext('2d', { willReadFrequently: true });
  const side = FINGERPRINT_SIDE;
  scratch.canvas.width = side;
  scratch.canvas.height = side;
  try {
    scratch.clearRect(0, 0, side, side);
    scratch.drawImage(canvas, 0, 0, side, side);
  } catch {
    return { out: CANVAS_OUT.TAINTED };
  }
  const data = readPixels(scratch, side);
  if (data && !isFlat(data)) return { key: `canvas:${width}x${height}:${hash(data)}` };
  if (data && data[3] !== 0) return { out: CANVAS_OUT.BLANK }; // one opaque colour
  // Nothing, or only zeros: Firefox may hand a content script the page's pixel array through a
  // wrapper it cannot read. The scaled picture as a PNG string says the same (a blank one is the
  // empty canvas's string).
  let png;
  try {
    png = scratch.canvas.toDataURL('image/png');
  } catch {
    return { out: CANVAS_OUT.TAINTED }; // a SecurityError: the canvas holds another origin's pixels
  }
  scratch.clearRect(0, 0, side, side);
  if (png === scratch.canvas.toDataURL('image/png')) return { out: CANVAS_OUT.BLANK };
  return { key: `canvas:${width}x${height}:${hash(new TextEncoder().encode(png))}` };
}

/** The scaled pixels as an array of our own, or null when they cannot be read here. */
function readPixels(ctx, side) {
  try {
    const pixels = ctx.getImageData(0, 0, side, side).data;
    const copy = new Uint8ClampedArray(side * side * 4);
    for (let i = 0; i < copy.length; i += 1) copy[i] = pixels[i];
    return copy;
  } catch {
    return null;
  }
}

/**
 * The canvas's picture as {dataUrl}, scaled to at most CANVAS_BOUNDS.side, when it still shows
 * `key` (sampleCanvas); {changed: true} when it shows something else now; {out} when unreadable.
 * The look and the snapshot are taken in one task: the page cannot draw in between.
 */
export function snapshotCanvas(canvas, key) {
  const now = sampleCanvas(canvas);
  if (now.out) return now;
  if (now.key !== key) return { changed: true };
  const scale = Math.min(1, CANVAS_BOUNDS.side / Math.max(canvas.width, canvas.height));
  const copy = document.createElement('canvas');
  copy.width = Math.max(1, Math.round(canvas.width * scale));
  copy.height = Math.max(1, Math.round(canvas.height * scale));
  const ctx = copy.getContext('2d');
  ctx.fillStyle = '#fff'; // JPEG has no transparency: what shows through is usually the page's white
  ctx.fillRect(0, 0, copy.width, copy.height);
  try {
    ctx.drawImage(canvas, 0, 0, copy.width, copy.height);
    const dataUrl = copy.toDataURL('image/jpeg', CANVAS_BOUNDS.quality);
    if ((dataUrl.length * 3) / 4 > MAX_PAGE_BYTES) return { out: 'too_large' };
    return { dataUrl };
  } catch {
    return { out: CANVAS_OUT.TAINTED };
  }
}

/** True when every pixel is the same (nothing drawn, or one flat colour). */
function isFlat(data) {
  const view = new Uint32Array(data.buffer, data.byteOffset, data.byteLength / 4);
  const first = view[0];
  for (let i = 1; i < view.length; i += 1) if (view[i] !== first) return false;
  return true;
}

/** FNV-1a over the bytes (four at a time), as 8 hex digits. */
function hash(data) {
  const view = new Uint32Array(data.buffer, data.byteOffset, Math.floor(data.byteLength / 4));
  let h = 0x811c9dc5;
  for (let i = 0; i < view.length; i += 1) {
    h ^= view[i];
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}
