/**
 * What each tab's browser loaded (shared/page_loads.js: the pictures and the addresses they came
 * from, recorded by the webRequest observers) kept in storage.session[PAGE_LOADS_PREFIX + tabId],
 * so a worker that MV3 stopped and started again still knows what a tab loaded before.
 */
import { PAGE_LOADS_PREFIX } from '../shared/storage_keys.js';

/** The request types the observers follow where the browser lists none (documents and pictures). */
const FALLBACK_TYPES = Object.freeze(['main_frame', 'sub_frame', 'image', 'media', 'xmlhttprequest']);

/**
 * The request types the observers follow: documents (the top-level site; a frame's document is
 * kept only when it is a picture or a video) and pictures, as far as this browser knows them
 * (Firefox has `imageset`, Chromium does not), and the page's fetches (kept only when they answer
 * with a picture or a video: PageLoads.recordResponse).
 *
 * @param {Record<string, string> | undefined} resourceType webRequest.ResourceType, undefined where missing
 * @returns {string[]} the types for a webRequest filter's `types`
 */
export function listObservedTypes(resourceType) {
  const known = new Set(Object.values(resourceType ?? {}));
  const wanted = ['main_frame', 'sub_frame', 'image', 'imageset', 'media', 'xmlhttprequest'];
  return known.size > 0 ? wanted.filter((t) => known.has(t)) : [...FALLBACK_TYPES];
}

/**
 * The tab loads' store. `pageLoads` is the PageLoads the observers record into; `storage` the
 * StorageArea that keeps it (storage.session); a changed tab is stored `storeDelayMs` after its
 * first change, with every tab changed meanwhile (once a second at most by default). A store
 * over the storage quota fails quietly: the memory copy still answers for this worker life.
 *
 * @param {{pageLoads: import('../shared/page_loads.js').PageLoads, storage: {get: Function, set: Function, remove: Function},
 *   storeDelayMs?: number}} options
 * @returns {{loadStoredTab: (tabId: number) => Promise<void>, forgetTab: (tabId: number) => void}}
 */
export function createTabLoads({ pageLoads, storage, storeDelayMs = 1000 }) {
  let storeTimer = 0;
  const changedTabs = new Set();
  const readBack = new Set(); // tabs whose stored loads this worker read back (once a worker life)

  pageLoads.onChange = (tabId) => {
    changedTabs.add(tabId);
    if (storeTimer) return;
    storeTimer = setTimeout(() => {
      storeTimer = 0;
      const items = Object.fromEntries([...changedTabs].map((id) => [`${PAGE_LOADS_PREFIX}${id}`, pageLoads.exportTab(id)]));
      changedTabs.clear();
      storage.set(items).catch(() => {}); // over the quota: the memory copy still answers
    }, storeDelayMs);
  };

  return {
    /** A restarted worker reads back what the tab loaded before, once (PageLoads.importTab: what it saw itself stays). */
    async loadStoredTab(tabId) {
      if (readBack.has(tabId)) return;
      readBack.add(tabId);
      if (readBack.size > 1000) readBack.delete(readBack.values().next().value);
      const key = `${PAGE_LOADS_PREFIX}${tabId}`;
      pageLoads.importTab(tabId, (await storage.get(key))[key]);
    },
    /** The tab closed: forget its loads, in memory and stored (a failed removal is ignored). */
    forgetTab(tabId) {
      readBack.delete(tabId);
      pageLoads.forgetTab(tabId);
      storage.remove(`${PAGE_LOADS_PREFIX}${tabId}`).catch(() => {});
    },
  };
}
