/**
 * The content script's accounting of its own main-thread time: every piece of work runs through
 * `timed(fn, kind)`, which records how long it took, per kind of work, and counts the long tasks
 * (over 50 ms). Style and layout passes that the script forces once per piece (the browser owes
 * them before the next paint anyway) go through `forceStyle(read)` and are booked apart, in
 * `maxForcedMs`. The popup and the e2e tests read the numbers through GET_PAGE_STATE.
 */
const LONG_TASK_MS = 50;
const SLOW_TASK_MS = 16; // tasks over this are listed in `slowest`
const SLOWEST_KEPT = 5;

const round1 = (ms) => Math.round(ms * 10) / 10;

/**
 * Force the page's pending style update now, through `forceStyle` (booked apart), by reading the
 * root element's computed style. A task's first style read after a big insertion would otherwise
 * carry the browser's whole style update, which it owes before the next paint anyway (110 ms
 * seen for 7,500 elements).
 * @param {(read: () => any) => any} forceStyle  createPerf's forceStyle, or a stand-in
 * @param {Window} win  the window whose document is read
 */
export function flushStyle(forceStyle, win = globalThis) {
  const root = win.document?.documentElement;
  if (root) forceStyle(() => win.getComputedStyle(root).backgroundImage);
}

/** @param {() => number} now the clock, in ms */
export function createPerf(now = () => performance.now()) {
  const stats = { maxTaskMs: 0, tasks: 0, maxByKind: {}, maxForcedMs: 0, over50: 0, slowest: [] };
  let forcedMs = 0; // forced style time inside the task running now

  function record(kind, ms) {
    stats.tasks += 1;
    if (ms > stats.maxTaskMs) stats.maxTaskMs = ms;
    if (ms > LONG_TASK_MS) stats.over50 += 1;
    if (ms > SLOW_TASK_MS) {
      stats.slowest.push({ kind, ms: round1(ms) });
      stats.slowest.sort((a, b) => b.ms - a.ms).splice(SLOWEST_KEPT);
    }
    if (ms > (stats.maxByKind[kind] ?? 0)) stats.maxByKind[kind] = round1(ms);
  }

  /** Run `fn` and record how long the main thread was busy with it, less the forced style time. */
  function timed(fn, kind = 'other') {
    const outerForced = forcedMs;
    forcedMs = 0;
    const t0 = now();
    try {
      return fn();
    } finally {
      const ms = now() - t0 - forcedMs;
      stats.maxForcedMs = Math.max(stats.maxForcedMs, round1(forcedMs));
      forcedMs = outerForced;
      record(kind, ms);
    }
  }

  /** Force the pending style (or layout) update now, in one go, and book its time apart. */
  function forceStyle(read) {
    const t0 = now();
    const value = read();
    forcedMs += now() - t0;
    return value;
  }

  /** The numbers so far, for GET_PAGE_STATE. */
  function snapshot() {
    const { maxTaskMs, maxByKind, maxForcedMs, over50, slowest, tasks } = stats;
    return { maxTaskMs, maxByKind, maxForcedMs, over50, slowest, tasks };
  }

  return { timed, forceStyle, snapshot };
}
