/**
 * The tabs that were open before this version of the extension started: after an install, an
 * update, a reload or an enable, Chromium does not run the manifest's content scripts in them, and
 * the script an older version left there (content/lifecycle.js) has no extension to ask. The
 * worker injects the content scripts into every frame of those tabs that has none of this
 * version running: the pre-hide stylesheet, the main-world hook (only where no version of ours
 * ran before: an older one's is still in place), then the loader, which takes the page over.
 */
const TAB_URLS = ['http://*/*', 'https://*/*'];
const CONTENT_CSS = 'content/prehide.css';
const MAIN_WORLD_JS = 'content/shadow_hook.js';
const LOADER_JS = ['content/shadow_css.js', 'content/loader.js']; // as the manifest lists them
const INSTANCE_ATTR = 'data-simclip-instance'; // content/lifecycle.js: stamped by every content script

/** In each frame (the extension's own world): is our script running, did one run before? */
function probeFrame(attr) {
  return { running: globalThis.simclipContentScript === true, stamped: Boolean(document.documentElement?.hasAttribute(attr)) };
}

/** Inject the content scripts into the frames of `tabId` that lack them; the number of frames injected. */
async function injectIntoTab(ext, tabId) {
  let probes;
  try {
    probes = await ext.scripting.executeScript({ target: { tabId, allFrames: true }, func: probeFrame, args: [INSTANCE_ATTR] });
  } catch {
    return 0; // a page we may not script (the store, a PDF viewer), or the tab is gone
  }
  const missing = probes.filter((p) => p.result && !p.result.running);
  if (missing.length === 0) return 0;
  const target = { tabId, frameIds: missing.map((p) => p.frameId) };
  const fresh = missing.filter((p) => !p.result.stamped).map((p) => p.frameId);
  try {
    await ext.scripting.insertCSS({ target, files: [CONTENT_CSS] });
    if (fresh.length > 0) {
      await ext.scripting.executeScript({ target: { tabId, frameIds: fresh }, files: [MAIN_WORLD_JS], world: 'MAIN', injectImmediately: true });
    }
    await ext.scripting.executeScript({ target, files: LOADER_JS, injectImmediately: true });
  } catch {
    return 0; // the frame navigated meanwhile: its new document got the manifest's scripts
  }
  return missing.length;
}

/** Inject the content scripts into every open http(s) tab that lacks them; resolves to the frames injected. */
export async function injectIntoOpenTabs(ext) {
  if (!ext.scripting?.executeScript) return 0;
  const tabs = await ext.tabs.query({ url: TAB_URLS });
  const counts = await Promise.all(tabs.map((tab) => injectIntoTab(ext, tab.id)));
  return counts.reduce((a, b) => a + b, 0);
}

/**
 * The open tabs adopted once per worker life, whichever of the worker's start events (an install,
 * update, reload or enable) asks first: each call resolves to the first call's number of frames
 * injected (0 when the injection failed).
 *
 * @param {object} ext the browser's extension API (shared/browser.js)
 * @returns {() => Promise<number>}
 */
export function createOpenTabsAdoption(ext) {
  let adopted = null;
  return () => {
    adopted ??= injectIntoOpenTabs(ext).catch(() => 0);
    return adopted;
  };
}
