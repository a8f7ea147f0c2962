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
  const stats = { maxTaskMs: 0, tasks: 0 };
  /** Run `fn` and record how long the main thread was busy with it. */
  const timed = (fn) => {
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      const ms = performance.now() - t0;
      stats.tasks += 1;
      if (ms > stats.maxTaskMs) stats.maxTaskMs = ms;
    }
  };

  const stored = await ext.storage.local.get([SETTINGS_KEY, LABELS_KEY, HEALTH_KEY]);
  let settings = normalizeSettings(stored[SETTINGS_KEY]);
  let labels = stored[LABELS_KEY] ?? [];
  let health = stored[HEALTH_KEY] ?? null;
  let paused = null;
  const host = location.hostname;
  const send = (message) => sendWithRetry((m) => ext.runtime.sendMessage(m), message);

  const overlay = new OverlayLayer({
    onReveal: (rec) => timed(() => filter.reveal(rec)),
    onHide: (rec) => timed(() => filter.hide(rec)),
    onReport: (rec) => {
      send({ type: MSG.REPORT, url: rec.url, correction: CORRECTION.NOT_FLAGGED, categories: rec.warnings.map((w) => w.id) });
      timed(() => filter.reveal(rec));
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
  });
  // load does not bubble: one capturing listener sees every image load (lazy, srcset switches).
  const onImageEvent = (e) => {
    if (paused !== false || e.target?.tagName !== 'IMG') return;
    timed(() => {
      filter.considerImage(e.target);
      filter.flush();
    });
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
    });
  });

  ext.runtime.onMessage.addListener((message, sender, sendResponse) => {
    if (sender.id !== ext.runtime.id || message?.type !== MSG.GET_PAGE_STATE) return false;
    const summary = filter.summarize();
    sendResponse({
      host,
      paused,
      flagged: paused ? 0 : summary.flagged,
      byState: summary.byState,
      stats: { maxTaskMs: Math.max(stats.maxTaskMs, watcher.maxSliceMs), tasks: stats.tasks, deferred: watcher.deferred },
    });
    return false;
  });

  applyPause();
  stopEarlyWatch();
}
