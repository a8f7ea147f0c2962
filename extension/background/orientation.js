/**
 * Which picture formats this browser turns by their EXIF orientation when it paints them, so that
 * the server judges a picture as this browser shows it (docs/api.md, "What is judged"). Browsers
 * differ here (Chromium paints a WebP with an EXIF orientation as stored) and change with their
 * versions, so the answer is measured in the browser itself, never looked up in a table: a tiny
 * test picture per format, stored 4x2 px with EXIF orientation 6 ("turn 90 degrees clockwise"),
 * is decoded, and a format whose picture comes out 2x4 is one this browser orients.
 *
 * Measured once per browser session (storage.session keeps the answer across worker restarts).
 * Where the background has a document (Firefox's event page) the test pictures are decoded by an
 * <img>, as pages paint them; in Chromium's service worker, by createImageBitmap, which takes the
 * same decoder's orientation ("from-image", its default).
 */

// 4x2 grey pictures with EXIF orientation 6, made with Pillow (tests/test_display.py checks them).
export const ORIENTATION_TEST_PICTURES = Object.freeze({
  jpeg: 'data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/4QAiRXhpZgAATU0AKgAAAAgAAQESAAMAAAABAAYAAAAAAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQERMUFRUVDA8XGBYUGBIUFRT/2wBDAQMEBAUEBQkFBQkUDQsNFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBT/wAARCAACAAQDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwAooooA/9k=',
  png: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAQAAAACCAIAAADwyuo0AAAAGmVYSWZNTQAqAAAACAABARIAAwAAAAEABgAAAAAAANZnS2kAAAASSURBVHicY2xoaGCAASYGJAAAJE4BhM3+prAAAAAASUVORK5CYII=',
  webp: 'data:image/webp;base64,UklGRlIAAABXRUJQVlA4WAoAAAAIAAAAAwAAAQAAVlA4TBEAAAAvA0AAAAdQwAIWsP+BiOh/AABFWElGGgAAAE1NACoAAAAIAAEBEgADAAAAAQAGAAAAAAAA',
});
const TURNED = Object.freeze({ width: 2, height: 4 }); // a test picture as an orienting browser paints it
const PROBE_TIMEOUT_MS = 3000; // a decoder that never answers counts as "not oriented"

/**
 * The formats (names as the server's `exif_orientation` takes them, sorted) whose test picture
 * `measure` reports turned upright. A format whose picture does not decode is left out: this
 * browser paints nothing of such pictures, so the rule for them does not matter. null when the
 * JPEG picture, which every browser decodes, did not decode: the measure itself is broken, and
 * the server's default is the better guess.
 *
 * @param {(url: string) => Promise<{width: number, height: number}>} measure
 * @returns {Promise<string[] | null>}
 */
export async function probeExifFormats(measure, pictures = ORIENTATION_TEST_PICTURES) {
  const checks = Object.entries(pictures).map(async ([format, url]) => {
    try {
      const size = await withTimeout(measure(url), PROBE_TIMEOUT_MS);
      return { format, decoded: true, turned: size.width === TURNED.width && size.height === TURNED.height };
    } catch {
      return { format, decoded: false, turned: false };
    }
  });
  const results = await Promise.all(checks);
  if (!results.some((r) => r.format === 'jpeg' && r.decoded)) return null;
  return results.filter((r) => r.turned).map((r) => r.format).sort();
}

function withTimeout(promise, ms) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** The size an <img> paints `url` at (naturalWidth/Height follow the EXIF orientation it applies). */
export async function measureWithImage(url, ImageClass = globalThis.Image) {
  const img = new ImageClass();
  img.src = url;
  await img.decode();
  return { width: img.naturalWidth, height: img.naturalHeight };
}

/** The size createImageBitmap decodes `url` at, with the decoder's orientation ("from-image"). */
export async function measureWithBitmap(url, { fetchFn = globalThis.fetch.bind(globalThis), decode = globalThis.createImageBitmap } = {}) {
  const blob = await (await fetchFn(url)).blob();
  const bitmap = await decode(blob, { imageOrientation: 'from-image' });
  const size = { width: bitmap.width, height: bitmap.height };
  bitmap.close?.();
  return size;
}

/** measureWithImage where this context has a document (Firefox's event page), else measureWithBitmap. */
export function pickMeasure(scope = globalThis) {
  return typeof scope.document === 'object' && typeof scope.Image === 'function' ? measureWithImage : measureWithBitmap;
}

/**
 * `getExifFormats()`: this browser's formats (probeExifFormats), measured once per browser session
 * and kept in `storage` (storage.session) under `key`; null when it could not be measured at all,
 * which leaves the server's default (every format oriented).
 */
export function createExifFormatsSource({ storage, key, measure = pickMeasure() }) {
  let pending = null;
  return function getExifFormats() {
    if (!pending) {
      pending = (async () => {
        const stored = (await storage.get(key).catch(() => ({})))[key];
        if (Array.isArray(stored) && stored.every((f) => typeof f === 'string')) return stored;
        const formats = await probeExifFormats(measure);
        if (formats) await storage.set({ [key]: formats }).catch(() => {}); // over quota: measured again next time
        return formats;
      })().catch(() => null);
    }
    return pending;
  };
}
