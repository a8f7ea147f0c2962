/**
 * Content script entry: wires DOMWatcher (finds images) to ImageFilter (decides, hides, blurs)
 * and OverlayLayer (badges), keeps the user's settings and the server's labels and health in
 * sync from storage, and answers the popup. All HTTP goes through the service worker.
 */
import { isHostAllowlisted } from '../shared/allowlist.js';
import { getBrowser } from '../shared/browser.js';
import { MSG, VERDICT, CORRECTION, sendWithRetry } from '../shared/messages.js';
import { SETTINGS_KEY, normalizeSettings } from '../shared/settings.js';
import { DOMWatcher } from './dom_watcher.js';
import { ImageFilter } from './image_filter.js';
import { OverlayLayer } from './overlay.js';

const HEALTH_KEY = 'health';
const LABELS_KEY = 'labels';

/**
 * @param {{stopEarlyWatch?: () => void}} options `stopEarlyWatch` ends the loader's stop-gap
 *   observer once the real watcher runs.
 */
export async function start({ stopEarlyWatch = () => {} } = {}) {
  const ext = getBrowser();
  // Our own main-thread time per task. Style and layout that we force once per task (the
  // browser owes them before the next paint anyway) are measured apart, in `maxForcedMs`.
  const stats = { maxTaskMs: 0, tasks: 0, maxByKind: {}, maxForcedMs: 0, over50: 0, slowest: [] };
  let forcedMs = 0;
  /** Run `fn` and record how long the main thread was busy with it, per kind of work. */
  const timed = (fn, kind = 'other') => {
    const outerForced = forcedMs;
    forcedMs = 0;
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      const ms = performance.now() - t0 - forcedMs;
      stats.maxForcedMs = Math.max(stats.maxForcedMs, Math.round(forcedMs * 10) / 10);
      forcedMs = outerForced;
      stats.tasks += 1;
      if (ms > stats.maxTaskMs) stats.maxTaskMs = ms;
      if (ms > 50) stats.over50 += 1;
      if (ms > 16) {
        stats.slowest.push({ kind, ms: Math.round(ms * 10) / 10 });
        stats.slowest.sort((a, b) => b.ms - a.ms).splice(5);
      }
      if (ms > (stats.maxByKind[kind] ?? 0)) stats.maxByKind[kind] = Math.round(ms * 10) / 10;
    }
  };
  /** Force the pending style (or layout) update now, in one go, and book its time apart. */
  const forceStyle = (read) => {
    const t0 = performance.now();
    const value = read();
    forcedMs += performance.now() - t0;
    return value;
  };

  const stored = await ext.storage.local.get([SETTINGS_KEY, LABELS_KEY, HEALTH_KEY]);
  let settings = normalizeSettings(stored[SETTINGS_KEY]);
  let labels = stored[LABELS_KEY] ?? [];
  let health = stored[HEALTH_KEY] ?? null;
  let paused = null;
  const host = location.hostname;
  const send = (message) => sendWithRetry((m) => ext.runtime.sendMessage(m), message);

  const overlay = new OverlayLayer({
    forceStyle,
    onReveal: (rec) => timed(() => filter.reveal(rec), 'click'),
    onHide: (rec) => timed(() => filter.hide(rec), 'click'),
    onReport: (rec) => {
      send({ type: MSG.REPORT, url: rec.url, correction: CORRECTION.NOT_FLAGGED, categories: rec.warnings.map((w) => w.id) });
      timed(() => filter.reveal(rec), 'click');
    },
    timed,
  });
  const filter = new ImageFilter({
    requestVerdict: async (url) => (await send({ type: MSG.CLASSIFY, url })) ?? { status: VERDICT.UNAVAILABLE, reason: 'no_worker' },
    overlay,
    getContext: () => ({ settings, labels, healthOk: health?.state === 'ok' }),
    onCountChange: (flagged) => send({ type: MSG.PAGE_STATS, flagged }),
    timed,
  });
  const watcher = new DOMWatcher({
    onElement: (el) => filter.consider(el),
    onAttribute: (el, name) => filter.onAttribute(el, name),
    onBatch: () => {
      filter.flush();
      overlay.schedulePosition();
    },
    isOwnNode: (node) => overlay.isOwnNode(node),
    timed,
    forceStyle,
  });
  // load does not bubble: one capturing listener sees every image load (lazy, srcset switches).
  const onImageEvent = (e) => {
    if (paused !== false || e.target?.tagName !== 'IMG') return;
    timed(() => {
      filter.considerImage(e.target);
      filter.flush();
    }, 'load');
  };
  document.addEventListener('load', onImageEvent, true);
  document.addEventListener('error', onImageEvent, true);

  const setRootFlag = (on) => {
    const apply = () => {
      const root = document.documentElement;
      if (on) root.setAttribute('data-simclip-off', 'paused');
      else root.removeAttribute('data-simclip-off');
    };
    if (document.documentElement) apply();
    else document.addEventListener('readystatechange', apply, { once: true });
  };

  const applyPause = () => {
    const next = isHostAllowlisted(host, settings.allowlist);
    if (next === paused) return;
    paused = next;
    setRootFlag(paused);
    overlay.setHidden(paused);
    if (paused) {
      watcher.unwatch();
      send({ type: MSG.PAGE_STATS, flagged: 0 });
    } else {
      watcher.watch();
      filter.rerender();
    }
  };

  ext.storage.onChanged.addListener((changes, area) => {
    if (area !== 'local') return;
    timed(() => {
      if (changes[SETTINGS_KEY]) settings = normalizeSettings(changes[SETTINGS_KEY].newValue);
      if (changes[LABELS_KEY]) labels = changes[LABELS_KEY].newValue ?? [];
      if (changes[HEALTH_KEY]) {
        const wasOk = health?.state === 'ok';
        health = changes[HEALTH_KEY].newValue ?? null;
        if (!wasOk && health?.state === 'ok' && !paused) filter.retryUnavailable();
      }
      applyPause();
      if (!paused && (changes[SETTINGS_KEY] || changes[LABELS_KEY])) filter.rerender();
    }, 'settings');
  });

  ext.runtime.onMessage.addListener((message, sender, sendResponse) => {
    if (sender.id !== ext.runtime.id || message?.type !== MSG.GET_PAGE_STATE) return false;
    const summary = filter.summarize();
    sendResponse({
      host,
      paused,
      flagged: paused ? 0 : summary.flagged,
      byState: summary.byState,
      stats: {
        maxTaskMs: stats.maxTaskMs,
        maxByKind: stats.maxByKind,
        maxForcedMs: stats.maxForcedMs,
        over50: stats.over50,
        slowest: stats.slowest,
        tasks: stats.tasks,
        deferred: watcher.deferred,
      },
    });
    return false;
  });

  applyPause();
  stopEarlyWatch();
}
