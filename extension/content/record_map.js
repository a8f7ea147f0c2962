/**
 * Where ImageFilter keeps its records (image_state.js): by element and part (RecordMap), and by
 * picture (PictureIndex: a URL or a content hash -> the records showing it), so one picture shown
 * by several elements in one place is one picture (one warning, one count, one "Show").
 */
import { areInOnePlace } from './picture_sources.js';

export const PSEUDO_PARTS = ['before', 'after'];

/** The records, by element and part: an element's own picture ('') and its ::before / ::after ones. */
export class RecordMap {
  constructor() {
    this.byElement = new Map(); // el -> Map(part -> rec)
  }

  /** The part of an element a record of `kind` shows. */
  static partOf(kind) {
    return PSEUDO_PARTS.includes(kind) ? kind : '';
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

/** The records by picture: a URL or a content hash -> the records showing it (one picture, several elements). */
export class PictureIndex {
  constructor({ inOnePlace = areInOnePlace } = {}) {
    this.byKey = new Map();
    this.inOnePlace = inOnePlace;
  }

  /** Move `rec` from key `from` to key `to` (null: none). */
  rekey(rec, from, to) {
    if (from) {
      const set = this.byKey.get(from);
      set?.delete(rec);
      if (set?.size === 0) this.byKey.delete(from);
    }
    if (to) {
      if (!this.byKey.has(to)) this.byKey.set(to, new Set());
      this.byKey.get(to).add(rec);
    }
  }

  /** The records showing `rec`'s picture (same URL or same content) in the same place, `rec` included. */
  groupOf(rec) {
    const group = new Set([rec]);
    for (const key of [rec.url, rec.verdict?.sha256]) {
      for (const other of this.byKey.get(key) ?? []) {
        if (other !== rec && other.el !== rec.el && this.inOnePlace(rec.el, other.el)) group.add(other);
      }
    }
    return [...group];
  }
}
