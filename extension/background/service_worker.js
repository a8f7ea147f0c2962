/**
 * The service worker: the only context that talks HTTP. It fetches image bytes for the content
 * scripts (host_permissions; cookies only for a picture on the page's own site), posts them to
 * the local simclip-server with the pairing token, caches verdicts, watches the server's health
 * and keeps the toolbar badge up to date.
 * This file only wires the browser's events to the modules that do each job: runtime.js (the
 * settings and the API client), health.js (the server's health and categories), tab_loads.js
 * (what each tab's browser loaded), picture_fetch.js (picture bytes as the page got them),
 * classify.js (queue, verdict caches), badges.js (per-tab counts), report_menu.js (wrong-verdict
 * reports), setup_calls.js (the server's setup job), page_of.js (which page asks), orientation.js
 * and open_tabs.js. Firefox runs the same file as an event page (manifest.json "background").
 *
 * What a page can learn through it (docs/security.md, "Extension: what a page can learn"): it
 * fetches only pictures the tab's own browser loaded, from addresses it can vouch for (webRequest
 * observers, shared/page_loads.js); its verdict caches are partitioned by the tab's top-level
 * site, and an answer the server took from its own cache is held as long as computing it would
 * have taken, the first time a site asks; the reasons a picture could not be read go to the
 * content script's own world only.
 *
 * MV3 kills an idle worker after 30 s: every listener is registered synchronously below, state
 * that must survive (health, warning categories, per-tab counts and loads, reports) lives in
 * chrome.storage (keys in shared/storage_keys.js), and the in-memory caches are only an
 * optimisation.
 */
import { diagnoseConnection } from '../shared/api.js';
import { getBrowser } from '../shared/browser.js';
import { MSG, createMessageRouter, listenForMessages } from '../shared/messages.js';
import { PageLoads } from '../shared/page_loads.js';
import { DISPLAY_KEY } from '../shared/storage_keys.js';
import { createBadges } from './badges.js';
import { createClassifier } from './classify.js';
import { createHealthWatch } from './health.js';
import { createOpenTabsAdoption } from './open_tabs.js';
import { createDisplaySource } from './orientation.js';
import { pageOfSender } from './page_of.js';
import { createPictureFetcher } from './picture_fetch.js';
import { createReportMenu } from './report_menu.js';
import { createRuntime } from './runtime.js';
import { createSetupCalls } from './setup_calls.js';
import { createTabLoads, listObservedTypes } from './tab_loads.js';

const ext = getBrowser();

const HEALTH_ALARM = 'simclip-health';

const pageLoads = new PageLoads(); // what each tab's browser loaded, and from which addresses
const tabLoads = createTabLoads({ pageLoads, storage: ext.storage.session });
const runtime = createRuntime({
  storage: ext.storage.local,
  beforeBuild: () => health.loadStored(),
  // the formats this browser turns by EXIF orientation and its display rules, sent with every picture (orientation.js)
  getDisplay: createDisplaySource({ storage: ext.storage.session, key: DISPLAY_KEY }),
});
const health = createHealthWatch({
  ext,
  getSettings: runtime.getSettings,
  onNewServer: () => classifier.forgetVerdicts(), // another model gives other scores
  onStored: () => badges.refresh(),
  onCategories: (categories) => reports.createMenus(categories),
});
const badges = createBadges({ ext, ready: runtime.get, health });
const fetcher = createPictureFetcher(ext);
const classifier = createClassifier({
  getClient: runtime.getClient, health, fetcher, pageLoads, loadStoredTab: tabLoads.loadStoredTab,
});
const reports = createReportMenu({
  ext, classifyUrl: classifier.classifyUrl, findResult: classifier.findResult, getSettings: runtime.getSettings, loadCategories: health.loadCategories,
});
const callSetup = createSetupCalls({
  getRuntime: runtime.get,
  onSetupDone: async () => { // the server now serves the job's new head
    classifier.forgetVerdicts();
    await health.check();
  },
});
// Tabs open before this version started get the content scripts (open_tabs.js), once per worker life.
const adoptOpenTabs = createOpenTabsAdoption(ext);

// ---------------------------------------------------------------- listeners (top level, synchronous)

const router = createMessageRouter(
  {
    [MSG.CLASSIFY]: (msg, sender) => classifier.classifyUrl(msg.url, msg.priority, pageOfSender(sender, msg.referrerPolicy), msg.media),
    [MSG.CLASSIFY_BYTES]: (msg, sender) => classifier.classifyPageBytes(msg.base64, msg.priority, pageOfSender(sender)),
    [MSG.PAGE_STATS]: async (msg, sender) => {
      // Queued before any await, so updates from one tab keep the order they were sent in.
      await badges.setTabCount(sender.tab.id, msg.flagged, sender.frameId ?? 0);
      return { ok: true };
    },
    [MSG.REPORT]: async (msg, sender) => ({ ok: true, report: await reports.storeReport({ ...msg, page: pageOfSender(sender) }) }),
    [MSG.CHECK_HEALTH]: () => health.check(),
    [MSG.TEST_CONNECTION]: (msg) => diagnoseConnection({
      serverUrl: msg.serverUrl,
      token: msg.token,
      extensionOrigin: ext.runtime.getURL('').replace(/\/$/, ''),
    }),
    [MSG.SETUP_STATUS]: () => callSetup('setupStatus'),
    [MSG.SETUP_START]: () => callSetup('startSetup'),
    [MSG.SETUP_CANCEL]: () => callSetup('cancelSetup'),
    [MSG.CLEAR_REPORTS]: async () => {
      await reports.clearReports();
      return { ok: true };
    },
  },
  { extensionId: ext.runtime.id, extensionOrigin: ext.runtime.getURL('') },
);
listenForMessages(ext.runtime.onMessage, router);

async function onStart() {
  await fetcher.ensureGuard();
  await ext.alarms.create(HEALTH_ALARM, { periodInMinutes: 1 });
  await reports.createMenus(await health.loadCategories());
  await health.check();
}

globalThis.addEventListener?.('install', () => adoptOpenTabs()); // Chromium registers the worker again on enable too
ext.runtime.onInstalled.addListener((details) => {
  onStart();
  adoptOpenTabs();
  if (details.reason === 'install') ext.runtime.openOptionsPage();
});
ext.runtime.onStartup.addListener(onStart);
ext.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === HEALTH_ALARM) health.check();
});
ext.contextMenus?.onClicked.addListener(reports.onMenuClicked);
ext.storage.onChanged.addListener((changes, area) => {
  if (!runtime.onStorageChanged(changes, area).server) return;
  classifier.forgetVerdicts();
  health.check();
});
ext.tabs.onRemoved.addListener((tabId) => {
  badges.setTabCount(tabId, null);
  tabLoads.forgetTab(tabId);
});
// What each tab's browser loads (non-blocking observers: they see, never change, a request), and
// the addresses our own fetches reach.
if (ext.webRequest) {
  const urls = ['http://*/*', 'https://*/*'];
  const pageFilter = { urls, types: listObservedTypes(ext.webRequest.ResourceType) };
  const ownFilter = { urls, tabId: -1 };
  ext.webRequest.onBeforeRedirect.addListener((d) => pageLoads.recordRedirect(d), pageFilter);
  ext.webRequest.onResponseStarted.addListener((d) => pageLoads.recordResponse(d), pageFilter, ['responseHeaders']);
  ext.webRequest.onBeforeRedirect.addListener((d) => fetcher.recordOwnFetch(d, false), ownFilter);
  ext.webRequest.onResponseStarted.addListener((d) => fetcher.recordOwnFetch(d, true), ownFilter);
}
ext.tabs.onUpdated.addListener((tabId, changeInfo) => {
  if (changeInfo.status === 'loading' && changeInfo.url) badges.pageLoading(tabId);
});
