/**
 * The content script's own life, which can end before the page's: an update, a reload or a
 * disable of the extension unloads it while its tabs stay open. The script left behind (the
 * orphan) keeps running, with no extension to ask (`runtime.id` is gone, every message throws),
 * while the pre-hide stylesheet stays applied (Chromium) and the worker of the new version
 * injects a fresh script (the successor) into every open tab (background/open_tabs.js).
 *
 * - The orphan notices before it acts: every piece of its work runs through `timed`, which first
 *   checks that the extension is still there. Once it is gone the orphan retires: its watcher
 *   stops and nothing it does later writes to the page (a timer of its own that would fail a
 *   picture open, a late answer). What it decided stays as it left it: a flagged picture stays
 *   covered, a picture still waiting stays hidden, for the successor to take over.
 * - Each instance stamps the document (INSTANCE_ATTR, a random token, meaningless to the page).
 *   An orphan that sees no successor's stamp after HANDOVER_WAIT_MS (the extension was disabled
 *   or removed, not updated) switches every pre-hide rule off, so the page gets its pictures.
 * - A successor that finds another instance's stamp takes the page over: it clears an orphan's
 *   switch-off, and the pictures that were already in the page when it started are loaded once
 *   more as the page's own pictures before they are asked about (`wasThereBefore`): the new worker
 *   vouches only for loads it saw itself (shared/page_loads.js), and it started after those. The
 *   same holds for a page shown again from the back/forward cache (`restored`): the worker forgot
 *   its loads when the tab went to another page, and for a script injected into a page already
 *   parsed (`startedLate`: an open tab at a first install or an enable).
 */
export const INSTANCE_ATTR = 'data-simclip-instance';
export const ORPHAN_OFF = 'orphaned'; // data-simclip-off: the extension went away and nobody took over
export const HANDOVER_WAIT_MS = 30000;

/** True while this content script's extension is loaded (false once it was updated, reloaded, disabled or removed). */
export function isExtensionAlive(ext) {
  try {
    return Boolean(ext?.runtime?.id);
  } catch {
    return false;
  }
}

/**
 * @param {{ext: object, timed: (fn, kind) => any, doc?: Document, onRetire?: () => void,
 *          startedLate?: boolean, token?: string, timers?: {set: Function}}} deps `onRetire`
 *   stops the orphan's watchers; `startedLate`: this script was injected into a page already
 *   parsed, whose pictures the worker may not have seen load; `doc`, `token` and `timers` are
 *   for tests.
 * @returns {{timed, send, retired: () => boolean, predecessor: string|null, wasThereBefore: (el) => boolean}}
 */
export function createLifecycle({ ext, timed, doc = document, onRetire = () => {}, startedLate = false, token, timers }) {
  const set = timers?.set ?? ((fn, ms) => setTimeout(fn, ms));
  const own = token ?? Math.random().toString(36).slice(2, 12);
  const root = doc.documentElement;
  const predecessor = root?.getAttribute(INSTANCE_ATTR) ?? null;
  root?.setAttribute(INSTANCE_ATTR, own);
  if (predecessor && root.getAttribute('data-simclip-off') === ORPHAN_OFF) root.removeAttribute('data-simclip-off');
  // The elements of the page when a successor (or a script injected late) started, or when the
  // page was last shown again from the back/forward cache (nodes in shadow roots count by their host).
  const listElements = () => new WeakSet(doc.querySelectorAll('*'));
  let before = predecessor || startedLate ? listElements() : null;
  let retired = false;

  function retire() {
    if (retired) return;
    retired = true;
    try {
      onRetire();
    } finally {
      set(() => {
        if (root?.isConnected && root.getAttribute(INSTANCE_ATTR) === own) root.setAttribute('data-simclip-off', ORPHAN_OFF);
      }, HANDOVER_WAIT_MS);
    }
  }

  /** True when it may go on: the extension is still there (else this script retires). */
  function checkAlive() {
    if (retired) return false;
    if (isExtensionAlive(ext)) return true;
    retire();
    return false;
  }

  return {
    predecessor,
    retired: () => retired,
    /** `timed` that runs nothing once the extension is gone. */
    timed: (fn, kind) => (checkAlive() ? timed(fn, kind) : undefined),
    /** Send `message` with `sendMessage`; an orphan's send never settles (nothing may follow it). */
    send: (sendMessage, message) => (checkAlive() ? sendMessage(message) : new Promise(() => {})),
    /**
     * The page is shown again from the back/forward cache: the worker forgot what it loaded when
     * the tab went elsewhere, so its pictures are loaded again before they are asked about.
     */
    restored() {
      before = listElements();
    },
    /** True for an element in the page when a successor started or when the page was last restored. */
    wasThereBefore(el) {
      if (!before) return false;
      let node = el;
      for (;;) {
        if (before.has(node)) return true;
        const host = node.getRootNode?.()?.host;
        if (!host) return false;
        node = host;
      }
    },
  };
}
