/**
 * Which picture formats this browser turns by their EXIF orientation when it paints them, and
 * which rules it follows where browsers read the same EXIF differently, so that the server judges
 * a picture as this browser shows it (docs/api.md, "What is judged"). Browsers differ here
 * (Chromium paints a WebP with an EXIF orientation as stored, Firefox an APNG; of several
 * orientation entries Chromium reads the first, Firefox the last) and change with their versions,
 * so the answer is measured in the browser itself, never looked up in a table: a tiny test
 * picture per format, stored 4x2 px with EXIF orientation 6 ("turn 90 degrees clockwise"), is
 * decoded, and a format whose picture comes out 2x4 is one this browser orients; a test picture
 * per display rule comes out 2x4 only in a browser that follows the rule.
 *
 * Measured once per browser session (storage.session keeps the answer across worker restarts).
 * Where the background has a document (Firefox's event page) the test pictures are decoded by an
 * <img>, as pages paint them; in Chromium's service worker, by createImageBitmap, which takes the
 * same decoder's orientation ("from-image", its default).
 */

// 4x2 grey pictures with EXIF orientation 6, made with Pillow (tests/test_display.py checks them).
// apng: a PNG with an animation control chunk (one frame), which is what makes a browser take it
// for an APNG.
export const ORIENTATION_TEST_PICTURES = Object.freeze({
  jpeg: 'data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/4QAiRXhpZgAATU0AKgAAAAgAAQESAAMAAAABAAYAAAAAAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQERMUFRUVDA8XGBYUGBIUFRT/2wBDAQMEBAUEBQkFBQkUDQsNFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBT/wAARCAACAAQDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwAooooA/9k=',
  png: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAQAAAACCAIAAADwyuo0AAAAGmVYSWZNTQAqAAAACAABARIAAwAAAAEABgAAAAAAANZnS2kAAAASSURBVHicY2xoaGCAASYGJAAAJE4BhM3+prAAAAAASUVORK5CYII=',
  webp: 'data:image/webp;base64,UklGRlIAAABXRUJQVlA4WAoAAAAIAAAAAwAAAQAAVlA4TBEAAAAvA0AAAAdQwAIWsP+BiOh/AABFWElGGgAAAE1NACoAAAAIAAEBEgADAAAAAQAGAAAAAAAA',
  apng: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAQAAAACCAIAAADwyuo0AAAAGmVYSWZNTQAqAAAACAABARIAAwAAAAEABgAAAAAAANZnS2kAAAAIYWNUTAAAAAEAAAAAtC3poAAAABpmY1RMAAAAAAAAAAQAAAACAAAAAAAAAAAAAQAKAAB1iNcTAAAAEklEQVR42mNsaGhggAEmBiQAACROAYQ3jHRMAAAAAElFTkSuQmCC',
});
// 4x2 grey pictures turned (2x4) only where the browser follows the rule (the server's names,
// simclip.display.DISPLAY_RULES). exif-last-entry: a JPEG with orientation entries 1, then 6.
export const DISPLAY_RULE_TEST_PICTURES = Object.freeze({
  'exif-last-entry': 'data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/4QAuRXhpZgAATU0AKgAAAAgAAgESAAMAAAABAAEAAAESAAMAAAABAAYAAAAAAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/wAALCAACAAQBAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/9oACAEBAAA/ACv/2Q==',
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

/**
 * The display rules (sorted) whose test picture `measure` reports turned; one whose picture does
 * not decode or does not answer is left out (the server's default rule applies).
 *
 * @param {(url: string) => Promise<{width: number, height: number}>} measure
 * @returns {Promise<string[]>}
 */
export async function probeDisplayRules(measure, pictures = DISPLAY_RULE_TEST_PICTURES) {
  const checks = Object.entries(pictures).map(async ([rule, url]) => {
    try {
      const size = await withTimeout(measure(url), PROBE_TIMEOUT_MS);
      return size.width === TURNED.width && size.height === TURNED.height ? rule : null;
    } catch {
      return null;
    }
  });
  return (await Promise.all(checks)).filter((rule) => rule !== null).sort();
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

const isNameList = (value) => Array.isArray(value) && value.every((name) => typeof name === 'string');

/**
 * `getDisplay()`: this browser's `{exifFormats, displayRules}` (probeExifFormats,
 * probeDisplayRules), measured once per browser session and kept in `storage` (storage.session)
 * under `key`. `exifFormats` is null when it could not be measured at all, which leaves the
 * server's defaults (every format oriented), and nothing is stored then.
 *
 * @returns {() => Promise<{exifFormats: string[] | null, displayRules: string[]}>}
 */
export function createDisplaySource({ storage, key, measure = pickMeasure() }) {
  let pending = null;
  return function getDisplay() {
    if (!pending) {
      pending = (async () => {
        const stored = (await storage.get(key).catch(() => ({})))[key];
        if (isNameList(stored?.exifFormats) && isNameList(stored?.displayRules)) {
          return { exifFormats: stored.exifFormats, displayRules: stored.displayRules };
        }
        const [exifFormats, displayRules] = await Promise.all([probeExifFormats(measure), probeDisplayRules(measure)]);
        if (!exifFormats) return { exifFormats: null, displayRules: [] };
        const display = { exifFormats, displayRules };
        await storage.set({ [key]: display }).catch(() => {}); // over quota: measured again next time
        return display;
      })().catch(() => ({ exifFormats: null, displayRules: [] }));
    }
    return pending;
  };
}
