/**
 * PictureReader: which picture each element shows now, and what that means for its record. A
 * record's verdict is bound to the picture its element paints: whenever the element may paint
 * another one (another source picked, a class, a custom property, a media or container query, an
 * animation: RepaintWatch), what it paints is read again (`consider`), and a picture that differs
 * from the record's is hidden at once and asked about as a new record; the old verdict never
 * covers it, and a cover over a picture that went away is lifted.
 *
 * The kinds of picture: an <img>'s current source, an SVG <image>, an `<input type=image>`, a
 * video's source or poster, a canvas drawing (canvas_looks.js), a CSS background, a `::before` /
 * `::after` picture and the style parts (an element's own `content`, `list-style-image`,
 * `border-image`: picture_sources.js). Reads happen when an element is reported; every write is queued (`later`)
 * and applied by `flush()`, so a batch of new elements costs one style recalculation and one
 * layout, not one per element. ImageFilter keeps the records and what a verdict does; this part
 * only says which picture to track, and which record to forget.
 */
import { STATE, isHidden, isTooSmallFile, isUnsizedKind } from './image_state.js';
import { LRUCache } from '../shared/lru.js';
import { clearState, dropEarlyMark, hasEarlyMark, reassertState, untag, writeState } from './hiding.js';
import {
  STYLE_PARTS, hasInlineUrl, isOneSrcset, readBackground, readCoveredBackground, readImage, readInputImage, readPart, readPseudo,
  readStylePart, readSvgImage,
} from './picture_sources.js';
import { PSEUDO_PARTS, RecordMap } from './record_map.js';
import { readVideoSource } from './video_frames.js';

// A covered background is read under our cover (a style invalidation) at most this often when
// RepaintWatch re-reads it: what it may find is a neutral picture to uncover, never one to hide.
export const COVERED_READ_MS = 250;
const MEASURED_PICTURES = 500; // the file sizes of the list-marker and `content` pictures kept, by URL

export class PictureReader {
  /**
   * @param {{records: RecordMap, canvases: CanvasLooks, repaints: {watch, recheckSoon, markDirty},
   *          track: (el, kind, url) => object, trackPending: (el, kind, url) => void,
   *          forget: (rec) => void, holdPlayback: (video) => void, now?: () => number}} deps
   *   `track`: a new record for the picture `el` shows (an <img>'s waits for its box to be
   *   decided); `trackPending`: one hidden at once (found by its style); `forget`: drop a record;
   *   `holdPlayback`: pause a covered video; `now`: ms, performance.now by default.
   */
  constructor({ records, canvases, repaints, track, trackPending, forget, holdPlayback, now = () => performance.now() }) {
    Object.assign(this, { records, canvases, repaints, track, trackPending, forget, holdPlayback, now });
    this.writes = []; // DOM writes queued by consider*(), applied by flush()
    this.shownBefore = new WeakMap(); // <img> -> {url, revealed} of a record dropped while its next source loads
    this.fileSizes = new LRUCache(MEASURED_PICTURES); // url -> {width, height}, null (unreadable) or 'measuring'
  }

  /**
   * An element the watcher reported (found, added, its class changed, a stylesheet arrived, it
   * loaded): whatever picture it shows now is tracked; called again, it only acts on a change.
   */
  consider(el) {
    if (el.tagName === 'IMG') {
      this.considerImage(el);
      this.considerSource(el, 'content', readStylePart(el, 'content')); // a `content: url()` replaces its picture
      return;
    }
    if (el.tagName === 'INPUT' && el.type === 'image') {
      const url = readInputImage(el);
      this.considerSource(el, 'input', url);
      if (!url) this.later(() => writeState(el, STATE.SKIP)); // no picture we check (an SVG, none): shown
      return;
    }
    if (el.tagName === 'image') {
      this.considerSource(el, 'svg', readSvgImage(el));
      return;
    }
    if (el.tagName === 'VIDEO') {
      this.considerSource(el, 'video', readVideoSource(el) || el.poster);
      this.later(() => this.holdPlayback(el));
      return;
    }
    if (el.tagName === 'CANVAS') {
      this.considerCanvas(el);
      return;
    }
    this.considerBackground(el);
    for (const part of PSEUDO_PARTS) this.considerSource(el, part, readPseudo(el, part));
    this.considerStyleParts(el);
  }

  /** The element's style parts (its own `content`, `list-style-image`, `border-image`): each tracked while it shows a picture. */
  considerStyleParts(el) {
    const computed = getComputedStyle(el);
    for (const part of STYLE_PARTS) this.considerSource(el, part, readStylePart(el, part, computed));
  }

  /**
   * RepaintWatch: what `el` paints may have changed. Only the pictures it has records for are read
   * again (finding new ones is the watcher's job), a covered background at most every
   * COVERED_READ_MS.
   */
  recheck(el) {
    if (el.tagName === 'CANVAS') {
      this.considerCanvas(el);
      return;
    }
    const now = this.now();
    for (const rec of this.records.of(el)) {
      if (rec.kind === 'img') this.considerImage(el);
      else if (rec.kind === 'svg') this.considerSource(el, 'svg', readSvgImage(el));
      else if (rec.kind === 'video') this.consider(el);
      else if (rec.kind !== 'bg') this.considerSource(el, rec.kind, readPart(el, rec.kind));
      else if (!(isHidden(rec) || rec.state === STATE.FLAGGED) || now - (rec.coveredReadAt ?? -Infinity) >= COVERED_READ_MS) {
        this.considerBackground(el);
      }
    }
  }

  /**
   * An <img> loaded (or was reported, or may show another source): measure it once its source is
   * known (writes wait for flush). Another source, even another size of one picture (a srcset or
   * <picture> pick at a new width), is another picture: hidden until it is checked. One the
   * browser is still loading (not complete) is hidden now, before it is painted.
   */
  considerImage(img) {
    if (!img.complete) {
      const rec = this.records.get(img);
      if (rec && rec.state !== null) this.later(() => this.hideForNewSource(img)); // the load listener calls again
      return;
    }
    const file = readImage(img);
    this.later(() => {
      const rec = this.records.get(img);
      if (rec && rec.url === file.url) {
        reassertState(rec);
        return;
      }
      // A picture the user chose to show stays their choice at another size of one srcset (the
      // same picture by HTML's rule), once that file is checked too; never across <source>s.
      const shown = rec ?? this.shownBefore.get(img);
      this.shownBefore.delete(img);
      if (rec) this.forget(rec);
      if (isTooSmallFile(file)) {
        writeState(img, STATE.SKIP); // broken, empty or too small to be a meme
        return;
      }
      const next = this.track(img, 'img', file.url);
      if (shown?.revealed && isOneSrcset(img, shown.url, file.url)) next.revealed = true;
    });
  }

  /** A CSS background: hidden at once (before it is measured), re-tracked when its URL changes. */
  considerBackground(el) {
    const rec = this.records.get(el);
    // Hidden, or covered by its warning card: the computed background is ours, read the site's under it.
    // Without a record, one the script of an earlier version covered (lifecycle.js) is read the same way.
    const hidden = rec ? isHidden(rec) || rec.state === STATE.FLAGGED : el.hasAttribute('data-simclip-bg');
    const read = readBackground(el, { hidden });
    const { inline } = read;
    const covered = rec ? rec.kind === 'bg' && !rec.inline : el.hasAttribute('data-simclip-bg');
    const url = read.url === null && covered ? readCoveredBackground(el) : read.url;
    if (rec && read.url === null && covered) rec.coveredReadAt = this.now();
    if (url === null || (rec && rec.url === url)) return; // unknown while we hide it, or unchanged
    if (!url) {
      if (rec) this.later(() => this.forgetAndShow(rec));
      else if (inline || el.hasAttribute('data-simclip-early')) this.later(() => writeState(el, STATE.SKIP)); // a mask or cursor url
      return;
    }
    // Hidden at once, measured by the IntersectionObserver (no forced layout here): a small
    // element (an icon sprite) gets its background back one frame later.
    this.later(() => {
      const current = this.records.get(el);
      if (current?.url === url) return;
      if (current) this.forget(current);
      this.trackPending(el, 'bg', url);
    });
  }

  /**
   * A <canvas>: its pixels are looked at (canvas_looks.js, bounded by CANVAS), and a drawing that is a picture is
   * tracked under its fingerprint, hidden until checked; another drawing is another picture. One
   * that cannot be read (tainted, blank, small) or keeps changing (animated) is shown, and looked
   * at again (an animated one once a CANVAS.recheckMs, checked once it holds still). `force`: the
   * page just drew on it, look now.
   */
  considerCanvas(canvas, { force = false } = {}) {
    const seen = this.canvases.look(canvas, { force });
    if (!seen) return;
    const { sample, key, animated } = seen;
    this.later(() => {
      const rec = this.records.get(canvas);
      if (rec?.url === key && !animated) return;
      if (rec) this.forgetAndShow(rec);
      if (sample.key && !animated) {
        this.trackPending(canvas, 'canvas', sample.key);
      } else {
        writeState(canvas, STATE.SKIP);
        this.repaints.watch(canvas); // drawn on later, or holding still: looked at again
      }
    });
  }

  /** A picture read from `el` (an SVG <image>, an input, a video, a part `kind`: record_map.js PARTS): tracked while it shows `url`. */
  considerSource(el, kind, url) {
    if (url && isUnsizedKind(kind) && this.isSmallFile(url)) url = ''; // a bullet or an icon: not a picture we check
    const part = RecordMap.partOf(kind);
    const rec = this.records.get(el, part);
    if ((rec?.url ?? '') === url) {
      // The loader hid the part early for a url() that is no picture we check (an SVG icon): shown.
      if (!url && part && hasEarlyMark(el, part)) this.later(() => dropEarlyMark(el, part));
      return;
    }
    this.later(() => {
      const current = this.records.get(el, part);
      if ((current?.url ?? '') === url) return;
      if (current) this.forgetAndShow(current);
      if (!url) return;
      this.trackPending(el, kind, url);
      if (isUnsizedKind(kind)) this.measureFile(url);
    });
  }

  /** True when the picture at `url` was measured smaller than a meme (isTooSmallFile). */
  isSmallFile(url) {
    const size = this.fileSizes.get(url);
    return typeof size === 'object' && size !== null && isTooSmallFile({ url, ...size });
  }

  /**
   * Measure the file of a picture whose element's box says nothing of its size (a list marker, a
   * `content` picture; image_state.js UNSIZED_KINDS), decoded from the browser's cache: one under
   * the size of a meme (a bullet, an icon) is shown, its records dropped, and not asked about.
   * Until then, and if it cannot be decoded here, it is hidden and checked like any picture.
   */
  measureFile(url) {
    if (this.fileSizes.has(url) || typeof Image !== 'function') return;
    this.fileSizes.set(url, 'measuring');
    const img = new Image();
    img.src = url;
    img.decode().then(() => ({ width: img.naturalWidth, height: img.naturalHeight }), () => null).then((size) => {
      this.fileSizes.set(url, size);
      if (!this.isSmallFile(url)) return;
      for (const rec of [...this.records.values()]) if (rec.url === url && isUnsizedKind(rec.kind)) this.forgetAndShow(rec);
    });
  }

  /** A watched attribute changed on `el`. */
  onAttribute(el, name) {
    if (name === 'src' && el.tagName === 'INPUT') { // an <input type=image>'s picture
      this.consider(el);
      this.flush();
      return;
    }
    if (name === 'src' || name === 'srcset') {
      this.onSourceChange(el);
      return;
    }
    if (name === 'sizes' || name === 'media') {
      // The browser may pick another candidate: a tracked <img> is read again before the next paint.
      const img = el.tagName === 'SOURCE' ? el.parentElement?.querySelector('img') : el;
      if (img?.tagName === 'IMG') this.repaints.recheckSoon(img);
      return;
    }
    if (el.tagName === 'CANVAS' && (name === 'drawn' || name === 'width' || name === 'height')) {
      // drawn on (shadow_hook.js), or cleared by a new size: looked at now, before the next paint
      this.considerCanvas(el, { force: true });
      this.applyWrites();
      return;
    }
    if (name === 'width' || name === 'height') return;
    if (name === 'href' || name === 'poster') {
      if (el.tagName === 'image' || el.tagName === 'VIDEO') this.consider(el);
      return;
    }
    const rec = this.records.get(el);
    if (name === 'data-simclip') {
      // Usually our own write echoing back; only a value the site changed needs restoring.
      if (rec && rec.state !== null) writeState(el, rec.state);
      return;
    }
    // style: a new inline background or style part (a lazy loader swapping a data: placeholder
    // for the real URL), one removed, or a site fighting our hiding.
    if (rec ? rec.kind === 'bg' : hasInlineUrl(el)) this.considerBackground(el);
    if (hasInlineUrl(el) || STYLE_PARTS.some((part) => this.records.get(el, part))) this.considerStyleParts(el);
    if (rec && this.records.get(el) === rec) this.later(() => reassertState(rec));
  }

  /** An <img> (or a <picture>'s <source>) got a new src or srcset: hidden until the new source is checked. */
  onSourceChange(el) {
    const video = el.tagName === 'VIDEO' ? el : el.tagName === 'SOURCE' && el.parentElement?.tagName === 'VIDEO' ? el.parentElement : null;
    if (video) {
      this.consider(video);
      this.flush();
      return;
    }
    const img = el.tagName === 'SOURCE' ? el.parentElement?.querySelector('img') : el;
    if (!img || img.tagName !== 'IMG') return;
    const rec = this.records.get(img);
    if (rec) this.forget(rec);
    clearState(img);
    this.considerImage(img);
    this.flush();
  }

  /** A tracked <img> started loading another source: hidden (the pre-hide rule) until it has loaded and is checked. */
  hideForNewSource(img) {
    const rec = this.records.get(img);
    if (!rec || img.complete) return;
    if (rec.revealed) this.shownBefore.set(img, { url: rec.url, revealed: true });
    this.forget(rec);
    clearState(img);
  }

  /** Forget a picture the element no longer shows, and take our marks off it (the loader's early one too). */
  forgetAndShow(rec) {
    this.forget(rec);
    untag(rec);
    const part = RecordMap.partOf(rec.kind);
    if (part) dropEarlyMark(rec.el, part);
  }

  // ------------------------------------------------------------ the write queue

  /** Queue a DOM write for the next flush (or the end of RepaintWatch's frame). */
  later(write) {
    this.writes.push(write);
  }

  /**
   * Apply the queued DOM writes (end of a mutation batch, slice or load event); the page changed,
   * so what the tracked elements near the viewport paint is read again before the next paint
   * (`changed`: the elements the page changed, RepaintWatch.markDirty).
   */
  flush(changed = null) {
    this.applyWrites();
    this.repaints.markDirty(changed);
  }

  applyWrites() {
    const writes = this.writes;
    this.writes = [];
    for (const write of writes) write();
  }
}
