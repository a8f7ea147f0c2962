/**
 * Wrong-verdict reports: the picture's context menu (one item per correction and category,
 * shared/reports.js) and the REPORT message a content script sends, stored in
 * storage.local[REPORTS_KEY] with the picture's scores and OCR text (cleared by the options page).
 */
import { CORRECTION } from '../shared/messages.js';
import { addReport, createReport, listReportMenuItems, parseReportMenuClick } from '../shared/reports.js';
import { REPORTS_KEY } from '../shared/storage_keys.js';
import { listActiveWarnings } from '../shared/verdict.js';
import { pageOfMenuClick } from './page_of.js';

/**
 * The reports. `classifyUrl(url, priority, page)` gives a picture's verdict; `findResult(page,
 * sha)` the server's classification of those bytes, as cached for the page's site;
 * `getSettings()` and `loadCategories()` what a false alarm's categories are worked out from.
 */
export function createReportMenu({ ext, classifyUrl, findResult, getSettings, loadCategories }) {
  async function createMenus(categories) {
    if (!ext.contextMenus) return;
    await ext.contextMenus.removeAll();
    for (const item of listReportMenuItems(categories)) ext.contextMenus.create({ ...item, contexts: ['image'] });
  }

  async function storeReport({ url, correction, categories, page = null }) {
    const verdict = await classifyUrl(url, 1, page);
    const sha = verdict.sha256 ?? '';
    const result = sha ? findResult(page, sha) : null;
    const report = createReport({
      imageUrl: url,
      sha256: sha,
      correction,
      categories,
      scores: verdict.scores ?? {},
      text: result?.text ?? '',
    });
    const reports = (await ext.storage.local.get(REPORTS_KEY))[REPORTS_KEY] ?? [];
    await ext.storage.local.set({ [REPORTS_KEY]: addReport(reports, report) });
    return report;
  }

  async function onMenuClicked(info, tab) {
    const click = parseReportMenuClick(info.menuItemId);
    if (!click || !info.srcUrl) return;
    let { categories } = click;
    const page = pageOfMenuClick(info, tab);
    if (click.correction === CORRECTION.NOT_FLAGGED) {
      // A false alarm names the categories the image was flagged for, with the user's settings.
      const verdict = await classifyUrl(info.srcUrl, 1, page);
      const settings = await getSettings();
      categories = listActiveWarnings(verdict.scores ?? {}, await loadCategories(), settings).map((w) => w.id);
    }
    await storeReport({ url: info.srcUrl, correction: click.correction, categories, page });
  }

  /** Forget every stored report (the options page's "clear"). */
  async function clearReports() {
    await ext.storage.local.set({ [REPORTS_KEY]: [] });
  }

  return { createMenus, storeReport, onMenuClicked, clearReports };
}
