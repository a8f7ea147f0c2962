/**
 * What ImageFilter reports about a frame's pictures: the flagged count for the badge (at most once
 * a COUNT_INTERVAL_MS, only when it changed), and, for the popup and the tests only, the list of
 * records and the counts per state. None of it is written into the page.
 */
import { STATE, summaryState } from './image_state.js';
import { describeWarnings } from '../shared/verdict.js';

export const COUNT_INTERVAL_MS = 300;

/** The flagged count, sent to `onChange` a COUNT_INTERVAL_MS after a change was reported, when it differs. */
export class CountReporter {
  /** @param {{count: () => number, onChange: (n: number) => void}} deps */
  constructor({ count, onChange }) {
    this.count = count;
    this.onChange = onChange;
    this.last = -1;
    this.timer = 0;
  }

  report() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = 0;
      const n = this.count();
      if (n !== this.last) {
        this.last = n;
        this.onChange(n);
      }
    }, COUNT_INTERVAL_MS);
  }

  /** The count left the badge (a page hidden in the back/forward cache): the next one is sent even if equal. */
  forget() {
    this.last = -1;
  }
}

/**
 * Every record as the extension sees it: id, kind, state (image_state.js STATE), why it is shown
 * without a verdict, and the warning of the one element that draws its picture's card ('' else).
 */
export function listPictures(records, hasCard) {
  return records.map((rec) => ({
    id: rec.id, kind: rec.kind, state: rec.state, why: rec.why, warning: hasCard(rec) ? describeWarnings(rec.warnings) : '',
  }));
}

/**
 * True when one of `pictures` ({id, url}) is among `records`: an <img> record must show `url`
 * too (its currentSrc); other kinds match by id (url null: any).
 */
export function holdsAny(records, pictures) {
  const wanted = new Map(pictures.map((p) => [String(p.id), p.url ?? null]));
  for (const rec of records) {
    const id = String(rec.id);
    if (!wanted.has(id)) continue;
    const url = wanted.get(id);
    if (url === null || rec.kind !== 'img' || url === rec.url) return true;
  }
  return false;
}

/** Counts per state (summaryState), with the flagged count and the asker's queue. */
export function summarize(records, { flagged, asking }) {
  const byState = {};
  for (const rec of records) byState[summaryState(rec)] = (byState[summaryState(rec)] ?? 0) + 1;
  return { flagged, revealed: byState[STATE.REVEALED] ?? 0, byState, asking };
}
