/**
 * When ImageFilter's records are asked about: a visible image at once, with a time limit; images
 * away from the viewport in the background, a few at a time; and, while the server is
 * unavailable, one image again after a backoff, so a restarted server is noticed within seconds.
 * The same URL is asked about once (the promise is kept), until its answer says "unavailable".
 */
import { Backoff, RECOVERY_MS } from './image_state.js';

const URL_MEMO_SIZE = 3000;
const BACKLOG_INTERVAL_MS = 400;
const BACKGROUND_IN_FLIGHT = 4; // background asks only while fewer verdicts than this are awaited

export class VerdictAsker {
  /**
   * @param {{requestVerdict: (url) => Promise<object|null>, timed: (fn, kind) => void,
   *          revealAfterMs: () => number, onVerdict: (rec, verdict) => void, onTimeout: (rec) => void,
   *          isAskable: (rec) => boolean, findUnavailable: () => object|undefined}} deps
   *   `isAskable`: the record is still tracked, pending and not asked yet (the backlog skips others);
   *   `findUnavailable`: a record whose last answer was "unavailable" (recovery asks it again).
   */
  constructor({ requestVerdict, timed, revealAfterMs, onVerdict, onTimeout, isAskable, findUnavailable }) {
    Object.assign(this, { requestVerdict, timed, revealAfterMs, onVerdict, onTimeout, isAskable, findUnavailable });
    this.verdicts = new Map(); // url -> Promise<verdict>
    this.inFlight = 0; // verdicts this page is waiting for
    this.backlog = new Set(); // pending records away from the viewport
    this.backlogTimer = 0;
    this.recoveryTimer = 0;
    this.recovery = new Backoff(RECOVERY_MS);
  }

  /** Ask about `rec` now; `onTimeout(rec)` runs if no answer comes within the user's time limit. */
  ask(rec) {
    rec.asked = true;
    clearTimeout(rec.timer);
    rec.timer = setTimeout(() => this.timed(() => this.onTimeout(rec), 'timeout'), this.revealAfterMs());
    this.inFlight += 1;
    this.getVerdict(rec.url).then((verdict) => {
      this.inFlight -= 1;
      this.timed(() => this.onVerdict(rec, verdict), 'verdict');
    });
  }

  /** Ask again about a record shown without scores (the server is back): a new request. */
  askAgain(rec) {
    this.forgetAnswer(rec.url);
    this.ask(rec);
  }

  /** The answer for `url` said "unavailable": the next ask sends a new request. */
  forgetAnswer(url) {
    this.verdicts.delete(url);
  }

  getVerdict(url) {
    let promise = this.verdicts.get(url);
    if (!promise) {
      promise = this.requestVerdict(url);
      this.verdicts.set(url, promise);
      if (this.verdicts.size > URL_MEMO_SIZE) this.verdicts.delete(this.verdicts.keys().next().value);
    }
    return promise;
  }

  /** The answer came (or the record is forgotten): no time-out any more. */
  stopTimer(rec) {
    clearTimeout(rec.timer);
  }

  /** Drop every plan for a forgotten record. */
  drop(rec) {
    clearTimeout(rec.timer);
    this.backlog.delete(rec);
  }

  /** `rec` was measured away from the viewport: ask about it in the background. */
  askInBackground(rec) {
    this.backlog.add(rec);
    this.scheduleBacklog();
  }

  /** `rec` came near the viewport: ask now, ahead of the backlog. */
  askVisible(rec) {
    this.backlog.delete(rec);
    this.ask(rec);
  }

  /**
   * Images measured away from the viewport (scrolled past, or far below) are asked about in the
   * background, a few at a time and only while nothing visible is waiting, so they are decided
   * before the user scrolls to them without delaying what is on screen.
   */
  scheduleBacklog() {
    if (this.backlogTimer || this.backlog.size === 0) return;
    this.backlogTimer = setTimeout(() => {
      this.backlogTimer = 0;
      this.timed(() => this.drainBacklog(), 'backlog');
      this.scheduleBacklog();
    }, BACKLOG_INTERVAL_MS);
  }

  drainBacklog() {
    for (const rec of this.backlog) {
      if (this.inFlight >= BACKGROUND_IN_FLIGHT) break;
      this.backlog.delete(rec);
      if (this.isAskable(rec)) this.ask(rec);
    }
  }

  /** An answer came with scores: the server is up, the next outage starts the backoff afresh. */
  serverAnswered() {
    this.recovery.reset();
  }

  /**
   * The worker learns that the server is back when it probes it, and it probes on an ask (or on
   * its once-a-minute alarm). A page with images waiting for an unavailable server asks again
   * about one of them, backing off, so a restarted server is noticed within seconds.
   */
  scheduleRecovery() {
    if (this.recoveryTimer) return;
    this.recoveryTimer = setTimeout(() => this.timed(() => {
      this.recoveryTimer = 0;
      const rec = this.findUnavailable();
      if (rec) this.ask(rec); // an unavailable answer schedules the next try
      else this.recovery.reset(); // nothing waits any more
    }, 'recovery'), this.recovery.next());
  }
}
