/**
 * Where ImageFilter keeps its records (image_state.js): by element and part (RecordMap), and by
 * picture (PictureIndex: a URL or a content hash -> the records showing it), so one picture shown
 * by several elements in one place is one picture (one warning, one count, one "Show").
 */
import { STYLE_PARTS, areInOnePlace, nearAncestors } from './picture_sources.js';

export const PSEUDO_PARTS = ['before', 'after'];
/** The parts an element may show a picture in besides its own ('': an <img>, a background...): see picture_sources.js. */
export const PARTS = [...PSEUDO_PARTS, ...STYLE_PARTS];

/** The records, by element and part: an element's own picture (''), its ::before / ::after and its style parts'. */
export class RecordMap {
  constructor() {
    this.byElement = new Map(); // el -> Map(part -> rec)
  }

  /** The part of an element a record of `kind` shows. */
  static partOf(kind) {
    return PARTS.includes(kind) ? kind : '';
  }

  get(el, part = '') {
    return this.byElement.get(el)?.get(part);
  }

  /** Every record of `el`. */
  of(el) {
    const parts = this.byElement.get(el);
    return parts ? [...parts.values()] : [];
  }

  has(rec) {
    return this.get(rec.el, RecordMap.partOf(rec.kind)) === rec;
  }

  set(rec) {
    let parts = this.byElement.get(rec.el);
    if (!parts) {
      parts = new Map();
      this.byElement.set(rec.el, parts);
    }
    parts.set(RecordMap.partOf(rec.kind), rec);
  }

  delete(rec) {
    if (!this.has(rec)) return;
    const parts = this.byElement.get(rec.el);
    parts.delete(RecordMap.partOf(rec.kind));
    if (parts.size === 0) this.byElement.delete(rec.el);
  }

  *values() {
    for (const parts of this.byElement.values()) yield* parts.values();
  }
}

const BUCKET_FROM = 8; // records under one key from which groupOf looks them up by ancestor

/** The records by picture: a URL or a content hash -> the records showing it (one picture, several elements). */
export class PictureIndex {
  /**
   * @param {{inOnePlace?: (a, b) => boolean, nearOf?: (el) => Iterable<object>}} deps
   *   `inOnePlace`: whether two elements show their picture in one place; `nearOf`: elements of
   *   which two in one place share at least one (their near ancestors).
   */
  constructor({ inOnePlace = areInOnePlace, nearOf = nearAncestors } = {}) {
    this.byKey = new Map();
    this.inOnePlace = inOnePlace;
    this.nearOf = nearOf;
    this.buckets = null; // for the rest of the current task: key -> (near element -> records)
  }

  /** Move `rec` from key `from` to key `to` (null: none). */
  rekey(rec, from, to) {
    if (from) {
      const set = this.byKey.get(from);
      set?.delete(rec);
      if (set?.size === 0) this.byKey.delete(from);
      this.buckets?.delete(from);
    }
    if (to) {
      if (!this.byKey.has(to)) this.byKey.set(to, new Set());
      this.byKey.get(to).add(rec);
      this.buckets?.delete(to);
    }
  }

  /** The records showing `rec`'s picture (same URL or same content) in the same place, `rec` included. */
  groupOf(rec) {
    const group = new Set([rec]);
    for (const key of [rec.url, rec.verdict?.sha256]) {
      for (const other of this.candidates(key, rec)) {
        if (other !== rec && other.el !== rec.el && this.inOnePlace(rec.el, other.el)) group.add(other);
      }
    }
    return [...group];
  }

  /**
   * The records under `key` that may be in `rec`'s place: all of a few; of many (one placeholder
   * or avatar on every post), those sharing a near ancestor with it, from an index by ancestor
   * built once per task for the key. Grouping n copies then costs about n, not n^2, comparisons.
   */
  candidates(key, rec) {
    const set = this.byKey.get(key);
    if (!set || set.size < BUCKET_FROM) return set ?? [];
    if (!this.buckets) {
      this.buckets = new Map();
      queueMicrotask(() => {
        this.buckets = null;
      });
    }
    let byNear = this.buckets.get(key);
    if (!byNear) {
      byNear = new Map();
      for (const other of set) {
        for (const near of this.nearOf(other.el)) {
          if (!byNear.has(near)) byNear.set(near, []);
          byNear.get(near).push(other);
        }
      }
      this.buckets.set(key, byNear);
    }
    const found = new Set();
    for (const near of this.nearOf(rec.el)) for (const other of byNear.get(near) ?? []) found.add(other);
    return found;
  }
}
