/**
 * Every key the extension keeps data under, in one place. The strings are what users' browsers
 * already hold: changing one loses their data, so a constant is named for what it holds while its
 * string stays as it was.
 */

// storage.local
export const SETTINGS_KEY = 'settings'; // the user's settings, read through normalizeSettings (settings.js)
export const HEALTH_KEY = 'health'; // {state, message, server, checkedAt}: the worker's last health check
export const CATEGORIES_KEY = 'labels'; // [{id, name, description, default_threshold}]: the server's warning categories (from /v1/labels; stored before they had their name)
export const REPORTS_KEY = 'reports'; // the wrong-verdict reports (reports.js)

// storage.session
export const TAB_COUNTS_KEY = 'tabCounts'; // {tabId: {frameId: flagged}}: each frame's count; a tab's badge shows their sum
export const PAGE_LOADS_PREFIX = 'pageLoads:'; // + tabId: what the tab's browser loaded (page_loads.js exportTab)
export const DISPLAY_KEY = 'display'; // {exifFormats, displayRules}: how this browser paints EXIF orientation (background/orientation.js)

/** A tab's flagged count under TAB_COUNTS_KEY: the sum over its frames (a plain number, as an older worker stored it, counts as is). */
export function sumTabCount(entry) {
  if (typeof entry === 'number') return entry;
  return Object.values(entry ?? {}).reduce((a, b) => a + b, 0);
}
