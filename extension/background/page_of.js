/**
 * The page a request to the worker comes from, as the browser names it (never a field a page
 * could write): a content script's message, or a click on the picture's context menu. The worker
 * fetches and caches for that page: `{url, referrerPolicy, tabId, topUrl}`, `topUrl` the tab's
 * top-level document (the cache partition, shared/page_loads.js).
 */

/** @typedef {{url: string, referrerPolicy: string, tabId: number, topUrl: string}} Page */

const isWeb = (u) => typeof u === 'string' && /^https?:/.test(u);

/**
 * The page of a runtime.onMessage sender; an about:blank or srcdoc frame has its creator's origin.
 *
 * @param {{url?: string, origin?: string, tab?: {id?: number, url?: string}}} sender runtime.MessageSender
 * @param {string} [referrerPolicy] the page's referrer policy, as its content script read it
 * @returns {Page | null} null off the web or outside a tab
 */
export function pageOfSender(sender, referrerPolicy = '') {
  const url = [sender.url, sender.origin && `${sender.origin}/`, sender.tab?.url].find(isWeb);
  if (!url || !(sender.tab?.id >= 0)) return null;
  return { url, referrerPolicy, tabId: sender.tab.id, topUrl: sender.tab.url ?? url };
}

/**
 * The page a context-menu click happened on.
 *
 * @param {{frameUrl?: string}} info contextMenus.OnClickData
 * @param {{id?: number, url?: string} | undefined} tab the tab clicked in
 * @returns {Page | null} null off the web
 */
export function pageOfMenuClick(info, tab) {
  return tab?.id >= 0 && isWeb(tab.url) ? { url: info.frameUrl ?? tab.url, referrerPolicy: '', tabId: tab.id, topUrl: tab.url } : null;
}
