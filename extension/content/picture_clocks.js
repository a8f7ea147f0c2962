/**
 * PictureClocks: the timers of the pictures hidden while their verdict is on the way. The state
 * machine (image_state.js) decides what a time limit is and what its end does; this part keeps
 * one timer per record for it, and one for a "busy, retry later" answer.
 *
 * - A picture coming on screen gets a time limit (`limitMs`): the server's measured cost per
 *   picture times the pictures ahead of it, within the user's cap (`capMs`).
 * - When it ends, a verdict the server says is coming is waited on, within the cap
 *   (extendDeadline); else the picture times out (timeOut: shown unchecked, or kept hidden,
 *   as the settings say) and is painted.
 * - A "busy" or "loading" answer asks again after its Retry-After.
 */
import { extendDeadline, isComing, needsRetry, retryDelayMs, STATE, timeLimitMs, timeOut } from './image_state.js';

export class PictureClocks {
  /**
   * @param {{getContext: () => {settings, healthOk, server}, asker: VerdictAsker, timed: (fn, kind) => void,
   *          isTracked: (rec) => boolean, paint: (rec) => void, now?: () => number}} deps
   *   `isTracked`: the record is still the page's (a timer of one dropped does nothing);
   *   `paint`: put the record's new state into the page; `now`: ms, performance.now by default.
   */
  constructor({ getContext, asker, timed, isTracked, paint, now = () => performance.now() }) {
    Object.assign(this, { getContext, asker, timed, isTracked, paint, now });
  }

  /**
   * The time limit, in ms, for a picture coming on screen now (image_state.js timeLimitMs): the
   * server's measured cost per picture, times the pictures ahead of it (the server's queue as last
   * reported, and this page's own asks open or waiting ahead of it), within the user's cap.
   */
  limitMs() {
    const { server } = this.getContext();
    const asking = this.asker.waiting;
    return timeLimitMs({
      capMs: this.capMs(),
      perPictureMs: server?.cost?.perPictureMs ?? null,
      ahead: (server?.queueDepth ?? 0) + asking.inFlight + asking.onScreen,
    });
  }

  /** The user's cap on any wait, in ms: "show an image unchecked if no verdict comes within at most N s". */
  capMs() {
    return this.getContext().settings.revealAfterSeconds * 1000;
  }

  /** (Re)start the record's timer for its deadline (`rec.deadline`, ms on the `now` clock). */
  arm(rec) {
    clearTimeout(rec.timer);
    rec.timer = setTimeout(() => this.timed(() => this.onTimeout(rec), 'timeout'), Math.max(0, rec.deadline - this.now()));
  }

  /** The record's verdict came: its time limit stops. */
  stop(rec) {
    clearTimeout(rec.timer);
  }

  /** The record was dropped: its time limit and its retry stop. */
  drop(rec) {
    clearTimeout(rec.timer);
    clearTimeout(rec.retryTimer);
  }

  onTimeout(rec) {
    if (!this.isTracked(rec)) return;
    const { settings, healthOk } = this.getContext();
    const now = this.now();
    if (rec.deadline !== null && now < rec.deadline) {
      this.arm(rec); // a timer that fired early
      return;
    }
    // The server says the verdict is coming: wait on, within the user's cap.
    const coming = isComing(rec, this.asker.lastAnswerAt);
    if (extendDeadline(rec, now, { coming, limitMs: this.limitMs(), capMs: this.capMs() })) {
      this.arm(rec);
      return;
    }
    if (timeOut(rec, { settings, healthOk }, now)) this.paint(rec);
  }

  /** "Busy" or "loading, retry later": the picture stays hidden and is asked again after its Retry-After. */
  retryLater(rec) {
    clearTimeout(rec.retryTimer);
    rec.retryTimer = setTimeout(() => this.timed(() => {
      if (!this.isTracked(rec) || rec.state !== STATE.PENDING || !needsRetry(rec)) return;
      rec.asked = false;
      this.asker.update(rec);
    }, 'retry'), retryDelayMs(rec.verdict));
  }

  /**
   * The page was frozen (back/forward cache) while `records` waited: each one still hidden with a
   * time limit gets a fresh one from now.
   */
  restart(records, isHidden) {
    const now = this.now();
    for (const rec of records) {
      if (!isHidden(rec) || rec.deadline === null) continue;
      rec.deadline = now + this.limitMs();
      this.arm(rec);
    }
  }
}
