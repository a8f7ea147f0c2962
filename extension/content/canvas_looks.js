/**
 * When a <canvas> is looked at (its pixels sampled, canvas_pixels.js), and what it showed: every
 * frame while it is new or has just changed (a viewer drawing the picture it opened), then at most
 * once a CANVAS.recheckMs; one that changed `animated.changes` times within `animated.withinMs` (a
 * game, a video, an animation) is animated: PictureReader leaves it shown until it holds still.
 */
import { sampleCanvas } from './canvas_pixels.js';

export const CANVAS = Object.freeze({ freshMs: 3000, recheckMs: 1000, animated: { changes: 4, withinMs: 4000 } });

export class CanvasLooks {
  /** @param {{sample?: (canvas) => {key?: string, out?: string}, now?: () => number}} [deps] */
  constructor({ sample = sampleCanvas, now = () => performance.now() } = {}) {
    this.looks = new WeakMap(); // canvas -> {since, at, key, changes, animated}
    this.sample = sample;
    this.now = now;
  }

  /**
   * Look at `canvas` if it is due (`force`: the page just drew on it). Null when it is not due, or
   * shows the still drawing it showed last time; else what it shows now: the sample (its `key`,
   * the drawing's fingerprint, when it is a picture), the key it is known by, and whether it is animated.
   */
  look(canvas, { force = false } = {}) {
    const now = this.now();
    let look = this.looks.get(canvas);
    if (!look) {
      look = { since: now, at: -Infinity, key: null, changes: [], animated: false };
      this.looks.set(canvas, look);
    }
    const due = now - look.at >= CANVAS.recheckMs || (!look.animated && (force || this.isFresh(canvas)));
    if (!due) return null;
    look.at = now;
    const sample = this.sample(canvas);
    const key = sample.key ?? sample.out;
    if (look.key === key) {
      if (!look.animated) return null;
      look.animated = false; // it holds still now: checked like any drawing
      look.changes = [];
    } else if (look.key !== null) {
      look.changes = [...look.changes.filter((t) => now - t < CANVAS.animated.withinMs), now];
      look.since = now; // just changed: looked at every frame for a while
      look.animated = look.changes.length >= CANVAS.animated.changes;
    }
    look.key = key;
    return { sample, key, animated: look.animated };
  }

  /** True for a canvas found, or changed, within CANVAS.freshMs (looked at every frame). */
  isFresh(el) {
    const look = el.tagName === 'CANVAS' ? this.looks.get(el) : undefined;
    return Boolean(look && !look.animated && this.now() - look.since < CANVAS.freshMs);
  }
}
