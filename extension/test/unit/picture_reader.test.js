// content/picture_reader.js on a fake page: which picture an element shows, read when it is
// reported, and what that does to its record (tracked, forgotten, kept) once the writes are flushed.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CanvasLooks } from '../../content/canvas_looks.js';
import { STATE, createRecord, holdPending } from '../../content/image_state.js';
import { tagTracked } from '../../content/hiding.js';
import { COVERED_READ_MS, PictureReader } from '../../content/picture_reader.js';
import { RecordMap } from '../../content/record_map.js';

const BASE = 'https://site.test/';
const COVER = 'linear-gradient(rgba(128, 128, 128, 0.16), rgba(128, 128, 128, 0.16))'; // our pending tint: no url()

/**
 * An element as the reader sees it: attributes, an inline style, and what the page's styles give
 * it (`page`: its background, `before` / `after`: its pseudo-elements' content and background).
 * Under our cover (`data-simclip-bg` with a hidden state) its computed background is ours.
 */
class FakeElement {
  constructor(tagName, { attrs = {}, page = 'none', before, after, ...props } = {}) {
    Object.assign(this, { tagName, page, pseudo: { '::before': before, '::after': after }, parentElement: null }, props);
    this.attrs = new Map(Object.entries(attrs));
    this.style = { backgroundImage: '', getPropertyPriority: () => '', setProperty() {}, removeProperty() {} };
    this.styleReads = 0;
  }

  getAttribute(name) { return this.attrs.get(name) ?? null; }

  setAttribute(name, value) { this.attrs.set(name, String(value)); }

  hasAttribute(name) { return this.attrs.has(name); }

  removeAttribute(name) { this.attrs.delete(name); }
}

globalThis.document = { baseURI: BASE };
globalThis.getComputedStyle = (el, pseudo) => {
  el.styleReads += 1;
  if (pseudo === '::marker' && ['pending', 'waiting', 'flagged'].includes(el.getAttribute('data-simclip-list-style'))) return { content: 'none' };
  if (pseudo) return el.pseudo[pseudo] ?? { content: 'none', backgroundImage: 'none' };
  const covered = el.hasAttribute('data-simclip-bg') && ['pending', 'waiting', 'flagged'].includes(el.getAttribute('data-simclip'));
  return { backgroundImage: covered ? COVER : el.page, objectPosition: '', backgroundColor: '', visibility: 'visible', filter: '', ...el.own };
};

const img = ({ src, width = 400, height = 300, complete = true, srcset = '' }) => new FakeElement('IMG', {
  attrs: { src, srcset }, src: `${BASE}${src}`, currentSrc: `${BASE}${src}`, naturalWidth: width, naturalHeight: height, complete,
});

/** A reader over a real RecordMap, with ImageFilter's part (tracking, forgetting) kept as a log. */
function setUp({ sample = () => ({}) } = {}) {
  const records = new RecordMap();
  const log = [];
  const repaints = { watched: [], soon: [], dirty: 0 };
  let clock = 0;
  let nextId = 1;
  const track = (el, kind, url) => {
    const rec = createRecord({ id: nextId++, el, kind, url });
    records.set(rec);
    tagTracked(rec);
    log.push(['track', kind, url]);
    return rec;
  };
  const reader = new PictureReader({
    records,
    canvases: new CanvasLooks({ sample, now: () => clock }),
    repaints: {
      watch: (el) => repaints.watched.push(el),
      recheckSoon: (el) => repaints.soon.push(el),
      markDirty: () => { repaints.dirty += 1; },
    },
    track,
    trackPending: (el, kind, url) => holdPending(track(el, kind, url)),
    forget: (rec) => {
      records.delete(rec);
      log.push(['forget', rec.kind, rec.url]);
    },
    holdPlayback: (video) => log.push(['holdPlayback', video.tagName]),
    now: () => clock,
  });
  return { reader, records, log, repaints, tick: (ms) => { clock += ms; } };
}

test('an <img> is read when reported and tracked only at flush, which has what it paints read again', () => {
  const { reader, records, log, repaints } = setUp();
  const el = img({ src: 'meme.png' });
  reader.consider(el);
  assert.deepEqual(log, [], 'reads now, writes later');
  reader.flush();
  assert.deepEqual(log, [['track', 'img', `${BASE}meme.png`]]);
  assert.equal(repaints.dirty, 1);
  reader.consider(el);
  reader.flush();
  assert.equal(log.length, 1, 'the same source again: nothing new');
  el.currentSrc = `${BASE}other.png`;
  reader.consider(el);
  reader.flush();
  assert.deepEqual(log.slice(1), [['forget', 'img', `${BASE}meme.png`], ['track', 'img', `${BASE}other.png`]]);
  assert.equal(records.get(el).url, `${BASE}other.png`, 'another source is another picture: a new record');
});

test('a broken or icon-sized <img> is shown as skipped, never tracked', () => {
  const { reader, log } = setUp();
  const icon = img({ src: 'icon.png', width: 32, height: 32 });
  const broken = img({ src: 'gone.png', width: 0, height: 0 });
  reader.consider(icon);
  reader.consider(broken);
  reader.flush();
  assert.deepEqual(log, []);
  assert.equal(icon.getAttribute('data-simclip'), 'shown');
  assert.equal(broken.getAttribute('data-simclip'), 'shown');
});

test('a picture the user chose to show stays shown at another size of its srcset, not at another picture', () => {
  const { reader, records } = setUp();
  const el = img({ src: 'a.png', srcset: 'a.png 1x, a-2x.png 2x' });
  for (const [next, revealed] of [['a-2x.png', true], ['b.png', false]]) {
    reader.consider(el);
    reader.flush();
    const rec = records.get(el);
    rec.state = STATE.REVEALED;
    rec.revealed = true;
    el.setAttribute('data-simclip', 'revealed');
    el.complete = false; // the browser loads the next source
    reader.consider(el);
    reader.flush();
    assert.equal(records.get(el), undefined, 'dropped while it loads');
    assert.equal(el.hasAttribute('data-simclip'), false, 'hidden again by the pre-hide rule');
    Object.assign(el, { complete: true, currentSrc: `${BASE}${next}` });
    reader.consider(el);
    reader.flush();
    assert.equal(records.get(el).revealed, revealed, next);
    el.currentSrc = `${BASE}a.png`; // back to the first source for the next round
    reader.consider(el);
    reader.flush();
  }
});

test('a CSS background is tracked hidden at once; gone under our cover, its record is forgotten and our marks taken off', () => {
  const { reader, records, log } = setUp();
  const el = new FakeElement('DIV', { page: 'url("https://site.test/bg.png")' });
  reader.consider(el);
  reader.flush();
  const rec = records.get(el);
  assert.deepEqual(log, [['track', 'bg', `${BASE}bg.png`]]);
  assert.equal(rec.state, STATE.PENDING);
  el.setAttribute('data-simclip', 'pending');
  el.page = 'none'; // the site takes its background away while we hide it
  reader.consider(el);
  assert.equal(typeof rec.coveredReadAt, 'number', 'read under our cover');
  reader.flush();
  assert.deepEqual(log.at(-1), ['forget', 'bg', `${BASE}bg.png`]);
  assert.equal(records.get(el), undefined);
  assert.equal(el.hasAttribute('data-simclip-bg'), false);
  assert.equal(el.hasAttribute('data-simclip-id'), false);
});

test('RepaintWatch reads a covered background again at most every COVERED_READ_MS, a shown one every time', () => {
  const { reader, records, tick } = setUp();
  const el = new FakeElement('DIV', { page: 'url("https://site.test/bg.png")' });
  reader.consider(el);
  reader.flush();
  el.setAttribute('data-simclip', 'pending');
  const reads = () => el.styleReads;
  reader.recheck(el);
  const first = reads();
  tick(COVERED_READ_MS - 1);
  reader.recheck(el);
  assert.equal(reads(), first, 'too soon: not read under our cover again');
  tick(1);
  reader.recheck(el);
  assert.ok(reads() > first);
  records.get(el).state = STATE.CLEAN;
  el.setAttribute('data-simclip', 'shown');
  const shown = reads();
  reader.recheck(el);
  assert.ok(reads() > shown, 'a shown background is read at once');
});

test('a ::before picture is a record of its own beside the element\'s background, dropped when it goes', () => {
  const { reader, records, log } = setUp();
  const el = new FakeElement('DIV', { before: { content: '""', backgroundImage: 'url("https://site.test/m.png")' } });
  reader.consider(el);
  reader.flush();
  assert.deepEqual(log, [['track', 'before', `${BASE}m.png`]]);
  assert.equal(records.get(el), undefined, 'no background of its own');
  assert.equal(el.getAttribute('data-simclip-before-id'), String(records.get(el, 'before').id));
  el.pseudo['::before'] = { content: 'none', backgroundImage: 'none' };
  reader.recheck(el);
  reader.flush();
  assert.deepEqual(log.at(-1), ['forget', 'before', `${BASE}m.png`]);
  assert.equal(el.hasAttribute('data-simclip-before-id'), false);
});

test('a ::before the loader hid early for a url() that is no picture we check (an SVG icon) is shown again', () => {
  const { reader, log } = setUp();
  const icon = 'url("data:image/svg+xml,%3Csvg xmlns=%27http://www.w3.org/2000/svg%27/%3E")';
  const el = new FakeElement('SPAN', { attrs: { 'data-simclip-early-before': '' }, before: { content: icon, backgroundImage: 'none' } });
  const meme = new FakeElement('SPAN', { attrs: { 'data-simclip-early-before': '' }, before: { content: 'url("https://site.test/m.png")', backgroundImage: 'none' } });
  reader.consider(el);
  reader.consider(meme);
  assert.equal(el.hasAttribute('data-simclip-early-before'), true, 'writes wait for the flush');
  reader.flush();
  assert.equal(el.hasAttribute('data-simclip-early-before'), false, 'nothing to check: the icon is shown');
  assert.deepEqual(log, [['track', 'before', `${BASE}m.png`]]);
  assert.equal(meme.hasAttribute('data-simclip-early-before'), true, 'a picture stays hidden until its record has a state');
});

test('the style parts (content, a list item\'s marker, a border image) and an image input are records of their own', () => {
  const { reader, records, log } = setUp();
  const el = new FakeElement('DIV', {
    page: 'url("https://site.test/bg.png")',
    own: { content: 'url("https://site.test/c.png")', display: 'list-item', listStyleImage: 'url("https://site.test/l.png")',
      borderImageSource: 'url("https://site.test/b.png")' },
  });
  const list = new FakeElement('UL', { own: { display: 'block', listStyleImage: 'url("https://site.test/l.png")' } });
  const item = new FakeElement('LI', { own: { display: 'list-item', listStyleImage: 'url("https://site.test/l.png")' } });
  item.pseudo['::marker'] = { content: 'url("https://site.test/mk.png")' }; // the ::marker's own content wins
  const input = new FakeElement('INPUT', { type: 'image', src: `${BASE}i.png` });
  const icon = new FakeElement('INPUT', { type: 'image', src: 'data:image/svg+xml,%3Csvg/%3E' });
  for (const e of [el, list, item, input, icon]) reader.consider(e);
  reader.flush();
  assert.deepEqual(log, [
    ['track', 'bg', `${BASE}bg.png`], ['track', 'content', `${BASE}c.png`], ['track', 'list-style', `${BASE}l.png`],
    ['track', 'border-image', `${BASE}b.png`], ['track', 'list-style', `${BASE}mk.png`], ['track', 'input', `${BASE}i.png`],
  ], 'a list shows no marker of its own: its items do');
  for (const part of ['content', 'list-style', 'border-image']) {
    assert.equal(el.getAttribute(`data-simclip-${part}-id`), String(records.get(el, part).id));
    assert.equal(records.get(el, part).state, 'pending', 'hidden at once');
  }
  assert.equal(records.get(input).state, 'pending');
  assert.equal(icon.getAttribute('data-simclip'), 'shown', 'no picture we check: shown, never left hidden');
  item.setAttribute('data-simclip-list-style', 'flagged'); // our cover: its ::marker's content is ours
  reader.recheck(item);
  reader.flush();
  assert.deepEqual(log.at(-1), ['track', 'input', `${BASE}i.png`], 'read under the cover lifted for one read: unchanged, kept');
  assert.equal(item.getAttribute('data-simclip-list-style'), 'flagged', 'the cover is put back');
  el.own.borderImageSource = 'none';
  reader.recheck(el);
  reader.flush();
  assert.deepEqual(log.at(-1), ['forget', 'border-image', `${BASE}b.png`]);
  assert.equal(el.hasAttribute('data-simclip-border-image'), false, 'the border is the page\'s again');
  assert.ok(records.get(el, 'content') && records.get(el), 'the other parts keep their records');
});

test('a still canvas drawing is tracked hidden under its fingerprint; an unreadable one is shown and watched', () => {
  let drawing = { key: 'fp-1' };
  const { reader, records, log, repaints } = setUp({ sample: () => drawing });
  const canvas = new FakeElement('CANVAS');
  reader.consider(canvas);
  reader.flush();
  assert.deepEqual(log, [['track', 'canvas', 'fp-1']]);
  assert.equal(records.get(canvas).state, STATE.PENDING);
  drawing = { out: 'tainted_canvas' };
  reader.onAttribute(canvas, 'drawn'); // the page drew on it: looked at now, written at once
  assert.deepEqual(log.at(-1), ['forget', 'canvas', 'fp-1']);
  assert.equal(canvas.getAttribute('data-simclip'), 'shown');
  assert.deepEqual(repaints.watched, [canvas], 'looked at again later');
});

test('a new src hides the <img> until it is checked; sizes has it read again soon; a site\'s own data-simclip is put back', () => {
  const { reader, records, log, repaints } = setUp();
  const el = img({ src: 'a.png' });
  reader.consider(el);
  reader.flush();
  const rec = records.get(el);
  rec.state = STATE.PENDING;
  el.setAttribute('data-simclip', 'shown'); // the site wrote over our state
  reader.onAttribute(el, 'data-simclip');
  assert.equal(el.getAttribute('data-simclip'), 'pending');
  reader.onAttribute(el, 'sizes');
  assert.deepEqual(repaints.soon, [el]);
  Object.assign(el, { complete: false, currentSrc: `${BASE}b.png` });
  reader.onAttribute(el, 'src');
  assert.deepEqual(log.at(-1), ['forget', 'img', `${BASE}a.png`]);
  assert.equal(el.hasAttribute('data-simclip'), false, 'hidden by the pre-hide rule while it loads');
  assert.equal(records.get(el), undefined);
});

test('a video is tracked by its source or poster, hidden at once, and its playback held', () => {
  const { reader, log } = setUp();
  const video = new FakeElement('VIDEO', { poster: `${BASE}poster.jpg`, currentSrc: '', querySelector: () => null });
  reader.consider(video);
  reader.flush();
  assert.deepEqual(log, [['track', 'video', `${BASE}poster.jpg`], ['holdPlayback', 'VIDEO']]);
});

test('a list marker or content picture measured smaller than a meme (a bullet) is shown and not asked about; a large one stays checked', async () => {
  const sizes = { [`${BASE}bullet.gif`]: [12, 12], [`${BASE}meme.png`]: [480, 360] };
  globalThis.Image = class {
    decode() {
      const size = sizes[this.src];
      if (!size) return Promise.reject(new Error('EncodingError'));
      [this.naturalWidth, this.naturalHeight] = size;
      return Promise.resolve();
    }
  };
  try {
    const { reader, records, log } = setUp();
    const item = (url) => new FakeElement('LI', { own: { display: 'list-item', listStyleImage: `url("${url}")` } });
    const [small, large, unreadable] = [item(`${BASE}bullet.gif`), item(`${BASE}meme.png`), item(`${BASE}gone.png`)];
    small.setAttribute('data-simclip-early-list-style', ''); // the loader hid it first
    for (const el of [small, large, unreadable]) reader.consider(el);
    reader.flush();
    assert.equal(log.filter(([what]) => what === 'track').length, 3, 'hidden at once, before it is measured');
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(records.get(small, 'list-style'), undefined, 'a bullet: its record dropped');
    assert.equal(small.hasAttribute('data-simclip-list-style-id'), false, 'and its marks taken off');
    assert.equal(small.hasAttribute('data-simclip-early-list-style'), false, 'the loader\'s too');
    assert.ok(records.get(large, 'list-style'), 'a meme-sized marker stays checked');
    assert.ok(records.get(unreadable, 'list-style'), 'one that cannot be measured here stays checked');
    const more = item(`${BASE}bullet.gif`);
    const before = log.length;
    reader.consider(more);
    reader.flush();
    assert.equal(log.length, before, 'the next item with that bullet is not tracked at all');
  } finally {
    delete globalThis.Image;
  }
});
