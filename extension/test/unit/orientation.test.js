import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  DISPLAY_RULE_TEST_PICTURES, ORIENTATION_TEST_PICTURES, createDisplaySource, measureWithBitmap, measureWithImage, pickMeasure,
  probeDisplayRules, probeExifFormats, readCentre,
} from '../../background/orientation.js';
import { createApiClient, displayHeaders, parseClassification } from '../../shared/api.js';
import { memoryStorage } from './fixtures.js';

const TURNED = { width: 2, height: 4 };
const STORED = { width: 4, height: 2 };

const TEST_PICTURES = {
  ...ORIENTATION_TEST_PICTURES,
  ...Object.fromEntries(Object.entries(DISPLAY_RULE_TEST_PICTURES).map(([rule, picture]) => [rule, picture.url])),
};

/**
 * A browser that orients the formats (or follows the rules) in `oriented`, and cannot decode those
 * in `broken`; `centre`: what its canvas reads back (null: no OffscreenCanvas).
 */
const fakeBrowser = ({ oriented = [], broken = [], centre = 'painted' }) => async (url) => {
  const name = Object.keys(TEST_PICTURES).find((f) => TEST_PICTURES[f] === url);
  if (broken.includes(name)) throw new Error('cannot decode');
  const picture = DISPLAY_RULE_TEST_PICTURES[name];
  const follows = oriented.includes(name);
  if (Array.isArray(picture?.followed)) { // a colour rule's 4x4 picture
    const painted = follows ? picture.followed : picture.otherwise;
    return { width: 4, height: 4, centre: centre === 'painted' ? painted.map((v) => Math.max(0, v - 3)) : centre };
  }
  const turned = picture ? follows === (picture.followed === 'turned') : follows; // a size rule's, or a format's
  return { ...(turned ? TURNED : STORED), centre: centre === 'painted' ? [128, 128, 128] : centre };
};
const FIREFOX_RULES = ['apng-exif-ignored', 'cmyk-profile-ignored', 'exif-last-entry', 'png-gama-beside-srgb', 'png-icc-checksum-ignored'];

test('lists the formats whose test picture comes out turned, sorted', async () => {
  assert.deepEqual(await probeExifFormats(fakeBrowser({ oriented: ['png', 'jpeg'] })), ['jpeg', 'png']); // a browser that paints WebP as stored
  assert.deepEqual(await probeExifFormats(fakeBrowser({ oriented: ['jpeg', 'png', 'webp'] })), ['jpeg', 'png', 'webp']);
  assert.deepEqual(await probeExifFormats(fakeBrowser({})), []);
});

test('leaves out a format the browser cannot decode, and gives up when even JPEG does not decode', async () => {
  assert.deepEqual(await probeExifFormats(fakeBrowser({ oriented: ['jpeg', 'webp'], broken: ['webp'] })), ['jpeg']);
  assert.equal(await probeExifFormats(fakeBrowser({ oriented: ['png'], broken: ['jpeg'] })), null);
  assert.equal(await probeExifFormats(async () => { throw new Error('no decoder here'); }), null);
});

test('lists the display rules whose test picture comes out turned, or nearer its followed colour', async () => {
  assert.deepEqual(await probeDisplayRules(fakeBrowser({ oriented: ['jpeg', ...FIREFOX_RULES] })), FIREFOX_RULES); // Firefox 153
  assert.deepEqual(await probeDisplayRules(fakeBrowser({ oriented: ['jpeg', 'lab-profile-on-rgb'] })), ['lab-profile-on-rgb']); // Chromium 156
  assert.deepEqual(await probeDisplayRules(fakeBrowser({ oriented: ['exif-last-entry'], broken: ['exif-last-entry'] })), []);
  assert.deepEqual(await probeDisplayRules(async () => new Promise(() => {}), {}), []);
});

test('a colour rule is left out where the centre cannot be read back; the size rule still counts', async () => {
  const noCanvas = fakeBrowser({ oriented: FIREFOX_RULES, centre: null });
  assert.deepEqual(await probeDisplayRules(noCanvas), ['apng-exif-ignored', 'exif-last-entry']);
});

test('readCentre reads the centre pixel of what was decoded, and nothing without OffscreenCanvas', () => {
  const drawn = [];
  class FakeCanvas {
    constructor(width, height) {
      this.size = [width, height];
    }

    getContext() {
      return {
        drawImage: (source, x, y) => drawn.push([source, x, y]),
        getImageData: (x, y, w, h) => ({ data: Uint8ClampedArray.from([x, y, w + h, 255]) }),
      };
    }
  }
  assert.deepEqual(readCentre('bitmap', 4, 2, FakeCanvas), [2, 1, 2]);
  assert.deepEqual(drawn, [['bitmap', 0, 0]]);
  assert.equal(readCentre('bitmap', 4, 2, undefined), null);
  assert.equal(readCentre('bitmap', 0, 0, FakeCanvas), null);
});

test('each test picture is a data: URL of its own format', () => {
  const magic = { jpeg: [0xff, 0xd8, 0xff], png: [0x89, 0x50, 0x4e, 0x47], webp: [0x52, 0x49, 0x46, 0x46] };
  const container = { 'apng-exif-ignored': 'png', 'exif-last-entry': 'jpeg', 'cmyk-profile-ignored': 'jpeg', 'png-icc-checksum-ignored': 'png', 'png-gama-beside-srgb': 'png', 'lab-profile-on-rgb': 'png' };
  for (const [name, url] of Object.entries(TEST_PICTURES)) {
    const format = container[name] ?? name;
    assert.ok(url.startsWith(`data:image/${format};base64,`), name);
    const bytes = Buffer.from(url.split(',')[1], 'base64');
    assert.deepEqual([...bytes.subarray(0, magic[format].length)], magic[format], name);
  }
});

test('measures with an <img> where there is a document, with createImageBitmap in a worker', async () => {
  class FakeImage {
    async decode() {
      this.naturalWidth = 2;
      this.naturalHeight = 4;
    }
  }
  assert.equal(pickMeasure({ document: {}, Image: FakeImage }), measureWithImage);
  assert.equal(pickMeasure({}), measureWithBitmap);
  assert.deepEqual(await measureWithImage('data:x', FakeImage, () => [1, 2, 3]), { ...TURNED, centre: [1, 2, 3] });
  const seen = [];
  const size = await measureWithBitmap('data:x', {
    fetchFn: async () => ({ blob: async () => 'blob' }),
    decode: async (blob, options) => {
      seen.push([blob, options]);
      return { width: 4, height: 2, close() {} };
    },
    read: (bitmap, width, height) => [width, height, 0],
  });
  assert.deepEqual(size, { ...STORED, centre: [4, 2, 0] });
  assert.deepEqual(seen, [['blob', { imageOrientation: 'from-image' }]]);
});

test('measures once per browser session: a restarted worker reads the stored answer', async () => {
  const storage = memoryStorage();
  let probes = 0;
  const measure = async (url) => {
    probes += 1;
    return fakeBrowser({ oriented: ['jpeg'] })(url);
  };
  const pictures = Object.keys(TEST_PICTURES).length;
  const first = createDisplaySource({ storage, key: 'display', measure });
  const measured = { exifFormats: ['jpeg'], displayRules: [] };
  assert.deepEqual(await first(), measured);
  assert.deepEqual(await first(), measured);
  assert.equal(probes, pictures); // one test picture per format and rule, once
  const restarted = createDisplaySource({ storage, key: 'display', measure });
  assert.deepEqual(await restarted(), measured);
  assert.equal(probes, pictures);
  storage.data.display = ['jpeg']; // what an older version stored: measured again
  assert.deepEqual(await createDisplaySource({ storage, key: 'display', measure })(), measured);
  assert.equal(probes, 2 * pictures);
});

test('a probe that cannot measure stores nothing and leaves the server its default', async () => {
  const storage = memoryStorage();
  const source = createDisplaySource({ storage, key: 'display', measure: async () => { throw new Error('x'); } });
  assert.deepEqual(await source(), { exifFormats: null, displayRules: [] });
  assert.equal(storage.data.display, undefined);
});

test('classify sends the browser\'s formats in X-Exif-Orientation and rules in X-Display-Rules, no header when unknown', async () => {
  assert.deepEqual(displayHeaders(null), {});
  assert.deepEqual(displayHeaders([]), { 'X-Exif-Orientation': 'none', 'X-Display-Rules': 'none' });
  assert.deepEqual(displayHeaders(['jpeg', 'png'], ['exif-last-entry']),
    { 'X-Exif-Orientation': 'jpeg,png', 'X-Display-Rules': 'exif-last-entry' });
  const calls = [];
  const fetchFn = async (url, init) => {
    calls.push({ url, init });
    return new Response(JSON.stringify({ sha256: 'ab'.repeat(32), mode: 'trained', scores: {}, text: '', cached: false, size: { width: 20, height: 60 } }),
      { status: 200, headers: { 'Content-Type': 'application/json' } });
  };
  const client = createApiClient({ serverUrl: 'http://127.0.0.1:9', token: 'A'.repeat(43), fetchFn, exifFormats: ['jpeg', 'png'], displayRules: ['exif-last-entry'] });
  const result = await client.classify(new Uint8Array([1]));
  assert.equal(calls[0].url, 'http://127.0.0.1:9/v1/classify');
  assert.equal(calls[0].init.headers['X-Exif-Orientation'], 'jpeg,png');
  assert.equal(calls[0].init.headers['X-Display-Rules'], 'exif-last-entry');
  assert.equal(calls[0].init.headers['X-Auth-Token'], 'A'.repeat(43));
  await createApiClient({ serverUrl: 'http://127.0.0.1:9', token: 'A'.repeat(43), fetchFn }).classify(new Uint8Array([1]));
  assert.equal('X-Exif-Orientation' in calls[1].init.headers, false);
  assert.equal('X-Display-Rules' in calls[1].init.headers, false);
  assert.deepEqual(result.size, { width: 20, height: 60 });
  assert.equal(parseClassification({ sha256: 'ab'.repeat(32), scores: {}, size: { width: 'x' } }).size, null);
});
