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
export const ORIENTATION_TEST_PICTURES = Object.freeze({
  jpeg: 'data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/4QAiRXhpZgAATU0AKgAAAAgAAQESAAMAAAABAAYAAAAAAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQERMUFRUVDA8XGBYUGBIUFRT/2wBDAQMEBAUEBQkFBQkUDQsNFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBT/wAARCAACAAQDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwAooooA/9k=',
  png: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAQAAAACCAIAAADwyuo0AAAAGmVYSWZNTQAqAAAACAABARIAAwAAAAEABgAAAAAAANZnS2kAAAASSURBVHicY2xoaGCAASYGJAAAJE4BhM3+prAAAAAASUVORK5CYII=',
  webp: 'data:image/webp;base64,UklGRlIAAABXRUJQVlA4WAoAAAAIAAAAAwAAAQAAVlA4TBEAAAAvA0AAAAdQwAIWsP+BiOh/AABFWElGGgAAAE1NACoAAAAIAAEBEgADAAAAAQAGAAAAAAAA',
});
// One test picture per display rule (the server's names, simclip.display.DISPLAY_RULES), checked by
// tests/test_display.py: a 4x2 picture with an EXIF orientation that a browser following the rule
// paints `followed`, 'turned' (2x4) or 'stored' (4x2) (exif-last-entry: a JPEG with orientation
// entries 1, then 6; apng-exif-ignored: a PNG with an animation control chunk, one frame, and
// orientation 6); or a 4x4 picture (tests/display_pictures.py) whose centre is painted in the
// colour `followed` where the browser follows the rule, `otherwise` where it does not.
export const DISPLAY_RULE_TEST_PICTURES = Object.freeze({
  'apng-exif-ignored': { followed: 'stored', url: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAQAAAACCAIAAADwyuo0AAAAGmVYSWZNTQAqAAAACAABARIAAwAAAAEABgAAAAAAANZnS2kAAAAIYWNUTAAAAAEAAAAAtC3poAAAABpmY1RMAAAAAAAAAAQAAAACAAAAAAAAAAAAAQAKAAB1iNcTAAAAEklEQVR42mNsaGhggAEmBiQAACROAYQ3jHRMAAAAAElFTkSuQmCC' },
  'exif-last-entry': { followed: 'turned', url: 'data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/4QAuRXhpZgAATU0AKgAAAAgAAgESAAMAAAABAAEAAAESAAMAAAABAAYAAAAAAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQERMUFRUVDA8XGBYUGBIUFRT/wAALCAACAAQBAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/9oACAEBAAA/ACv/2Q==' },
  'cmyk-profile-ignored': {
    followed: [255, 0, 0], otherwise: [0, 0, 255],
    url: 'data:image/jpeg;base64,/9j/7gAOQWRvYmUAZAAAAAAA/+IDdElDQ19QUk9GSUxFAAEBAAADZAAAAAACEAAAcHJ0ckNNWUtMYWIgAAAAAAAAAAAAAAAAYWNzcAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAPbWAAEAAAAA0y0AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAADZGVzYwAAAKgAAABwd3RwdAAAARgAAAAUQTJCMAAAASwAAAI4ZGVzYwAAAAAAAAAVc2ltY2xpcCB0ZXN0IHByb2ZpbGUAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAFhZWiAAAAAAAAD21gABAAAAANMtbWZ0MgAAAAAEAwMAAAEAAAAAAAAAAAAAAAAAAAABAAAAAAAAAAAAAAAAAAAAAQAAAAIAAgAA//8AAP//AAD//wAA////AIAEf/yIJIADf/4AAIAAgADspFr0dHV9g2qqeVEAAIAAgADnM01acQV552G0dwoAAIAAgAC3mL23VhJfJaM5Z/YAAIAAgACUZpn2PzhLfo5hWzkAAIAAgACIJYj6NzJDxYM2ViwAAIAAgACZbt2SQ3xLYrf5W80AAIAAgABkKsqwIG8s3q0WR7oAAIAAgABLY8RVD/Ics6jgPPkAAIAAgAD6OnPWu/+FYHj1oj0AAIAAgADnMkhasQt6XmATm9wAAIAAgADhhzeOrb12nlUZmakAAIAAgACvHrF9l+xaXJwVjUIAAIAAgACIJIADf/5EzoACf/4AAIAAgAB552G0dwo7/W07enMAAIAAgACN3NPVhiBEr7JXgYUAAIAAgABLYrf5W80fK6KsaZMAAIAAgAAcs6jgPPkHGpFlWcIAAIAAgAD45nBC3WOEfnaWt90AAIAAgADlrUKn0995XVxeslsAAIAAgADf8DC50Pt1kFCUsHEAAIAAgACssK29ys1YzJmUrSAAAIAAgACEfnaWt91CjHorolUAAIAAgAB1kFCUsHE5TGKgnWoAAIAAgACKcdDTxetCa7BZp0sAAIAAgABCa7BZp0sZnp3zj/wAAIAAgAAAAIAAgAAAAIAAgAAAAIAAgAAAAP//AAD//wAA//8AAP/bAEMAAgEBAQEBAgEBAQICAgICBAMCAgICBQQEAwQGBQYGBgUGBgYHCQgGBwkHBgYICwgJCgoKCgoGCAsMCwoMCQoKCv/AABQIAAQABARDEQBNEQBZEQBLEQD/xAAfAAABBQEBAQEBAQAAAAAAAAAAAQIDBAUGBwgJCgv/xAC1EAACAQMDAgQDBQUEBAAAAX0BAgMABBEFEiExQQYTUWEHInEUMoGRoQgjQrHBFVLR8CQzYnKCCQoWFxgZGiUmJygpKjQ1Njc4OTpDREVGR0hJSlNUVVZXWFlaY2RlZmdoaWpzdHV2d3h5eoOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4eLj5OXm5+jp6vHy8/T19vf4+fr/2gAOBEMATQBZAEsAAD8A/fyv5/6/n/r9/K//2Q==',
  },
  'png-icc-checksum-ignored': {
    followed: [12, 12, 221], otherwise: [220, 20, 20],
    url: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAyGlDQ1B0ZXN0AAB4nGNgYLzCAARMAgwMuXklRUHuTgoRkVEKDEggMbm4gAEv+HaNgRFEX9bFrw4r4EhJLU4G0k+AuKC8pKCEgYExBMgWKQI6BMjOALHTIewaEDsJwp4AVhMS5AxkLwGyBdIh7C0gdhKEfQTEhpoPAqLFmbnJOZkFCiWpxSUKBUX5aZk5qWS4GS9AhB8iXBBiKosYGPibGRi2nUeIJU1jYNjezsAgcQchlg/0k8U3Bgbm/uTSojKo0YxMxgwMhPgANqU6angEHDgAAAAUSURBVHicY7wjIsIAA0wMSAA3BwA0lAEMjwSDFgAAAABJRU5ErkJggg==',
  },
  'png-gama-beside-srgb': {
    followed: [188, 188, 188], otherwise: [128, 128, 128],
    url: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAAXNSR0IArs4c6QAAAARnQU1BAAGGoDHoll8AAAAUSURBVHicY2xoaGCAASYGJICbAwBMBAGIqwSi7QAAAABJRU5ErkJggg==',
  },
  'lab-profile-on-rgb': {
    followed: [0, 144, 0], otherwise: [128, 60, 200],
    url: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAABDmlDQ1BJQ0MgUHJvZmlsZQAAeJytUMFKxDAUnHaVRfDgQXqO9y3IetTLei6yRxUvTZq6gW63NK9owYMf4dGP8R8EP8IP8Np96W4JyC54cMJjZl4mLyFAeFWopQ1PgFRaSlIpXI2/cYwDRLjEUapsNZvPE+zFzxcCx5+xm7U/txOHmbaK+YPrXVU1AcED67Mnqpx+ZX2qFmnG+o31ZDa9Pmft8i/bsw6Re7fJdEmGWiEbU1BsyuGWCAlSSAgYZNAoQawILXckGtYFu5i5xD+B9DM5vlkJtara2jwuaCIaq0Vea120bu/27l5s0v4PbX4x7VvBr4E7/DKnPjsahX/KI+SFrvM1wPuuh+9tnOeh1t/WYZ4k8PiaAAAAFElEQVR4nGNssDnBAANMDEgANwcATIQBjFVvZ6YAAAAASUVORK5CYII=',
  },
});
const TURNED = Object.freeze({ width: 2, height: 4 }); // a test picture as an orienting browser paints it
const STORED = Object.freeze({ width: 4, height: 2 });
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

const distance = (a, b) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));

/**
 * The display rules (sorted) this browser follows, by their test pictures: a size one that
 * `measure` reports at its `followed` size (2x4 'turned' or 4x2 'stored'), a colour one whose
 * centre comes out nearer its `followed` colour than its `otherwise` one. A picture that does not decode, does not answer or has no centre colour
 * (a context without OffscreenCanvas) leaves its rule out: the server's default applies.
 *
 * @param {(url: string) => Promise<{width: number, height: number, centre?: number[] | null}>} measure
 * @returns {Promise<string[]>}
 */
export async function probeDisplayRules(measure, pictures = DISPLAY_RULE_TEST_PICTURES) {
  const checks = Object.entries(pictures).map(async ([rule, picture]) => {
    try {
      const shown = await withTimeout(measure(picture.url), PROBE_TIMEOUT_MS);
      if (typeof picture.followed === 'string') {
        const size = picture.followed === 'turned' ? TURNED : STORED;
        return shown.width === size.width && shown.height === size.height ? rule : null;
      }
      if (!Array.isArray(shown.centre)) return null;
      return distance(shown.centre, picture.followed) < distance(shown.centre, picture.otherwise) ? rule : null;
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

/**
 * The colour ([r, g, b]) of the centre pixel of a decoded picture (an ImageBitmap, or an <img>
 * where the canvas takes one), as an 8-bit canvas reads it back: the colour the browser paints,
 * its ICC profile applied. null where this context has no OffscreenCanvas.
 */
export function readCentre(source, width, height, Canvas = globalThis.OffscreenCanvas) {
  if (typeof Canvas !== 'function' || !width || !height) return null;
  const context = new Canvas(width, height).getContext('2d');
  context.drawImage(source, 0, 0);
  return Array.from(context.getImageData(width >> 1, height >> 1, 1, 1).data.slice(0, 3));
}

/** The size an <img> paints `url` at (naturalWidth/Height follow the EXIF orientation it applies) and its centre colour. */
export async function measureWithImage(url, ImageClass = globalThis.Image, read = readCentre) {
  const img = new ImageClass();
  img.src = url;
  await img.decode();
  return { width: img.naturalWidth, height: img.naturalHeight, centre: read(img, img.naturalWidth, img.naturalHeight) };
}

/** The size createImageBitmap decodes `url` at, with the decoder's orientation ("from-image"), and its centre colour. */
export async function measureWithBitmap(url, { fetchFn = globalThis.fetch.bind(globalThis), decode = globalThis.createImageBitmap, read = readCentre } = {}) {
  const blob = await (await fetchFn(url)).blob();
  const bitmap = await decode(blob, { imageOrientation: 'from-image' });
  try {
    return { width: bitmap.width, height: bitmap.height, centre: read(bitmap, bitmap.width, bitmap.height) };
  } finally {
    bitmap.close?.();
  }
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
