/**
 * When ImageFilter's records are asked about, and in what order: what the user sees first is
 * decided first. Records wait in three queues by priority (image_state.js `askPriority`: on
 * screen, near the screen, far), and this frame keeps only a few requests open at a time, so a
 * picture scrolled onto the screen overtakes every one left behind: a record scrolled far away
 * moves to the far queue, one removed from the page leaves it (`drop`), and neither costs the
 * server anything while it waits there. The same URL is asked about once (its promise is kept),
 * until its answer says the server was unavailable. While the server is unavailable, one image is
 * asked again after a backoff, so a restarted server is noticed within seconds.
 *
 * No DOM: timers and the clock are injected, so the unit tests drive it with a fake clock.
 */
import { Backoff, PRIORITY, RECOVERY_MS, askPriority } from './image_state.js';

const URL_MEMO_SIZE = 3000;
export const IN_FLIGHT = 4; // requests kept open for pictures on or near the screen
export const FAR_IN_FLIGHT = 2; // for far ones, only while nothing nearer waits
const PRIORITIES = [PRIORITY.ON_SCREEN, PRIORITY.NEAR, PRIORITY.FAR];

export class VerdictAsker {
  /**
   * @param {{requestVerdict: (rec, priority) => Promise<object|null>, onVerdict: (rec, verdict) => void,
   *          findUnavailable: () => object|undefined, timed?: (fn, kind) => void,
   *          timers?: {set: Function, clear: Function}}} deps
   *   `requestVerdict` asks the worker about the record's picture (`rec.url` is the dedupe key);
   *   `findUnavailable`: a record whose last answer was "unavailable" (recovery asks it again).
   */
  constructor({ requestVerdict, onVerdict, findUnavailable, timed = (fn) => fn(), timers }) {
    Object.assign(this, { requestVerdict, onVerdict, findUnavailable, timed });
    this.timers = timers ?? { set: (fn, ms) => setTimeout(fn, ms), clear: (id) => clearTimeout(id) };
    this.verdicts = new Map(); // url -> Promise<verdict>, in flight or answered
    this.queues = PRIORITIES.map(() => new Set()); // records waiting for an ask, by priority
    this.filed = new Map(); // record -> the priority it waits under
    this.inFlight = 0; // requests this frame has open
    this.pumpQueued = false;
    this.recoveryTimer = 0;
    this.recovery = new Backoff(RECOVERY_MS);
    this.lastAnswerAt = null; // when the server last answered with scores (the caller's clock)
  }

  /** File `rec` under its current priority (new, moved on or off screen, or to be asked again). */
  update(rec) {
    const priority = askPriority(rec);
    const filed = this.filed.get(rec);
    if (filed === priority) return;
    if (filed !== undefined) this.queues[filed].delete(rec);
    if (priority === null) {
      this.filed.delete(rec);
      return;
    }
    this.queues[priority].add(rec);
    this.filed.set(rec, priority);
    this.schedulePump();
  }

  /** `rec` left the page (or was replaced): it is never asked about. */
  drop(rec) {
    const filed = this.filed.get(rec);
    if (filed !== undefined) this.queues[filed].delete(rec);
    this.filed.delete(rec);
  }

  /** Records waiting per priority, and requests open (for tests and the popup). */
  get waiting() {
    return { onScreen: this.queues[0].size, near: this.queues[1].size, far: this.queues[2].size, inFlight: this.inFlight };
  }

  schedulePump() {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.timed(() => this.pump(), 'ask');
    });
  }

  /** Start asks, nearest first: a lower priority starts only once every nearer record is asked. */
  pump() {
    for (const priority of PRIORITIES) {
      const limit = priority === PRIORITY.FAR ? FAR_IN_FLIGHT : IN_FLIGHT;
      const queue = this.queues[priority];
      for (const rec of queue) {
        if (this.inFlight >= limit && !this.verdicts.has(rec.url)) break;
        this.ask(rec, priority);
      }
      if (queue.size > 0) return;
    }
  }

  ask(rec, priority) {
    this.drop(rec);
    rec.asked = true;
    this.getVerdict(rec, priority).then((verdict) => this.timed(() => this.onVerdict(rec, verdict), 'verdict'));
  }

  getVerdict(rec, priority) {
    let promise = this.verdicts.get(rec.url);
    if (!promise) {
      this.inFlight += 1;
      promise = Promise.resolve()
        .then(() => this.requestVerdict(rec, priority))
        .catch(() => null)
        .finally(() => {
          this.inFlight -= 1;
          this.schedulePump();
        });
      this.verdicts.set(rec.url, promise);
      if (this.verdicts.size > URL_MEMO_SIZE) this.verdicts.delete(this.verdicts.keys().next().value);
    }
    return promise;
  }

  /** The answer for `url` said "unavailable" (or never came): the next ask sends a new request. */
  forgetAnswer(url) {
    this.verdicts.delete(url);
  }

  /**
   * An answer came with scores at `now`: the server is up and works through its queue (pictures
   * still waiting wait on, image_state.js isComing), and the next outage starts the backoff afresh.
   */
  serverAnswered(now = null) {
    this.lastAnswerAt = now;
    this.recovery.reset();
  }

  /**
   * The worker learns that the server is back when it probes it, and it probes on an ask (or on
   * its once-a-minute alarm). A page with images waiting for an unavailable server asks again
   * about one of them, backing off, so a restarted server is noticed within seconds.
   */
  scheduleRecovery() {
    if (this.recoveryTimer) return;
    this.recoveryTimer = this.timers.set(() => this.timed(() => {
      this.recoveryTimer = 0;
      const rec = this.findUnavailable();
      if (!rec) {
        this.recovery.reset(); // nothing waits any more
        return;
      }
      this.forgetAnswer(rec.url); // an unavailable answer schedules the next try
      rec.asked = false;
      this.update(rec);
    }, 'recovery'), this.recovery.next());
  }
}
