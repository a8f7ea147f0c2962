/**
 * The service worker: the only context that talks HTTP. It fetches image bytes for the content
 * scripts (host_permissions, no cookies), posts them to the local simclip-server with the pairing
 * token, caches verdicts, watches the server's health and keeps the toolbar badge up to date.
 * This file wires the listeners to the modules that do each job: health.js (the server's health
 * and categories), picture_fetch.js (picture bytes as the page got them), classify.js (queue,
 * verdict caches), badges.js (per-tab counts), report_menu.js (wrong-verdict reports),
 * orientation.js and open_tabs.js.
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
import { API_ERROR, ApiError, SETUP_STATE, createApiClient, diagnoseConnection, explainConnectionError } from '../shared/api.js';
import { getBrowser } from '../shared/browser.js';
import { LOADING_REASON, MSG, createMessageRouter, listenForMessages } from '../shared/messages.js';
import { loadSettings } from '../shared/settings.js';
import { EXIF_FORMATS_KEY, PAGE_LOADS_PREFIX, REPORTS_KEY, SETTINGS_KEY } from '../shared/storage_keys.js';
import { PageLoads } from '../shared/page_loads.js';
import { createBadges } from './badges.js';
import { createClassifier } from './classify.js';
import { createHealthWatch } from './health.js';
import { injectIntoOpenTabs } from './open_tabs.js';
import { createExifFormatsSource } from './orientation.js';
import { createPictureFetcher } from './picture_fetch.js';
import { createReportMenu } from './report_menu.js';

const ext = getBrowser();

const HEALTH_ALARM = 'simclip-health';

const pageLoads = new PageLoads(); // what each tab's browser loaded, and from which addresses
let runtimePromise = null; // memoised {settings, client}; reset when settings change or on failure
// the formats this browser turns by EXIF orientation, sent with every picture (orientation.js)
const getExifFormats = createExifFormatsSource({ storage: ext.storage.session, key: EXIF_FORMATS_KEY });

/** Settings and an API client, built once per worker life (or per settings change). */
function getRuntime() {
  if (!runtimePromise) {
    runtimePromise = (async () => {
      const settings = await loadSettings(ext.storage.local);
      await health.loadStored();
      const exifFormats = await getExifFormats();
      return { settings, client: createApiClient({ serverUrl: settings.serverUrl, token: settings.token, exifFormats }) };
    })();
    runtimePromise.catch(() => {
      runtimePromise = null;
    });
  }
  return runtimePromise;
}

const getSettings = async () => (await getRuntime()).settings;
const health = createHealthWatch({
  ext,
  getSettings,
  onNewServer: () => classifier.forgetVerdicts(), // another model gives other scores
  onStored: () => badges.refresh(),
  onCategories: (categories) => reports.createMenus(categories),
});
const badges = createBadges({ ext, ready: getRuntime, health });
const fetcher = createPictureFetcher(ext);
const classifier = createClassifier({
  getClient: async () => (await getRuntime()).client, health, fetcher, pageLoads, loadStoredTab,
});
const reports = createReportMenu({
  ext, classifyUrl: classifier.classifyUrl, findResult: classifier.findResult, getSettings, loadCategories: health.loadCategories,
});

/**
 * The page a content script runs in, as the browser names it (never a field of the message):
 * {url, referrerPolicy, tabId, topUrl}, `topUrl` the tab's top-level document (the partition).
 */
function pageOf(sender, referrerPolicy = '') {
  // An about:blank or srcdoc frame has its creator's origin.
  const url = [sender.url, sender.origin && `${sender.origin}/`, sender.tab?.url].find((u) => typeof u === 'string' && /^https?:/.test(u));
  if (!url || !(sender.tab?.id >= 0)) return null;
  return { url, referrerPolicy, tabId: sender.tab.id, topUrl: sender.tab.url ?? url };
}

// ---------------------------------------------------------------- what each tab's browser loaded

let storeTimer = 0;
const changedTabs = new Set();

/** Store the changed tabs' loads (storage.session: a restarted worker still knows them), once a second at most. */
function storeLoadsSoon(tabId) {
  changedTabs.add(tabId);
  if (storeTimer) return;
  storeTimer = setTimeout(() => {
    storeTimer = 0;
    const items = Object.fromEntries([...changedTabs].map((id) => [`${PAGE_LOADS_PREFIX}${id}`, pageLoads.exportTab(id)]));
    changedTabs.clear();
    ext.storage.session.set(items).catch(() => {}); // over the quota: the memory copy still answers
  }, 1000);
}
pageLoads.onChange = storeLoadsSoon;

/** A restarted worker reads back what the tab loaded before. */
async function loadStoredTab(tabId) {
  if (pageLoads.tabs.has(tabId)) return;
  const key = `${PAGE_LOADS_PREFIX}${tabId}`;
  pageLoads.importTab(tabId, (await ext.storage.session.get(key))[key]);
}

/** The request types the observers follow: documents (the top-level site) and pictures. */
function listObservedTypes() {
  const known = new Set(Object.values(ext.webRequest?.ResourceType ?? {}));
  const wanted = ['main_frame', 'image', 'imageset', 'media'];
  return known.size > 0 ? wanted.filter((t) => known.has(t)) : ['main_frame', 'image', 'media'];
}

// ---------------------------------------------------------------- setup (the server's background job)

let lastSetupState = null;

/**
 * GET, POST or DELETE /v1/setup for the popup and options page: {setup} or {error}. Starting a
 * job that already runs, or cancelling one that does not, answers the job's progress. When a job
 * has just finished, the server serves its new head: verdicts of the old one are dropped and the
 * health (mode, categories) is read again.
 */
async function callSetup(method) {
  const { settings, client } = await getRuntime();
  try {
    let setup;
    try {
      setup = await client[method]();
    } catch (e) {
      if (!(e instanceof ApiError) || !['setup_running', 'setup_not_running'].includes(e.code)) throw e;
      setup = await client.setupStatus();
    }
    if (setup.state === SETUP_STATE.DONE && lastSetupState !== null && lastSetupState !== SETUP_STATE.DONE) {
      classifier.forgetVerdicts();
      await health.check();
    }
    lastSetupState = setup.state;
    return { setup };
  } catch (e) {
    const kind = e instanceof ApiError ? e.kind : API_ERROR.SERVER_ERROR;
    const message = e instanceof ApiError && e.status === 404
      ? 'This simclip-server cannot set up protection from the browser: update it, or run "simclip setup".'
      : e?.code === LOADING_REASON ? 'The server is still loading its model: set up protection once it is ready.'
        : explainConnectionError(kind, { base: client.serverUrl, token: settings.token, detail: e?.message });
    return { error: { kind, code: e?.code ?? '', message } };
  }
}

// ---------------------------------------------------------------- listeners (top level, synchronous)

const router = createMessageRouter(
  {
    [MSG.CLASSIFY]: (msg, sender) => classifier.classifyUrl(msg.url, msg.priority, pageOf(sender, msg.referrerPolicy), msg.media),
    [MSG.CLASSIFY_BYTES]: (msg, sender) => classifier.classifyPageBytes(msg.base64, msg.priority, pageOf(sender)),
    [MSG.PAGE_STATS]: async (msg, sender) => {
      // Queued before any await, so updates from one tab keep the order they were sent in.
      await badges.setTabCount(sender.tab.id, msg.flagged, sender.frameId ?? 0);
      return { ok: true };
    },
    [MSG.REPORT]: async (msg, sender) => ({ ok: true, report: await reports.storeReport({ ...msg, page: pageOf(sender) }) }),
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
      await ext.storage.local.set({ [REPORTS_KEY]: [] });
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

// Tabs open before this version started (an install, update, reload or enable) get the content
// scripts now (open_tabs.js): once per worker life, whichever of these comes first.
let openTabsPromise = null;
const adoptOpenTabs = () => {
  openTabsPromise ??= injectIntoOpenTabs(ext).catch(() => 0);
  return openTabsPromise;
};
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
  if (area !== 'local' || !changes[SETTINGS_KEY]) return;
  const before = changes[SETTINGS_KEY].oldValue ?? {};
  const after = changes[SETTINGS_KEY].newValue ?? {};
  runtimePromise = null;
  if (before.serverUrl !== after.serverUrl || before.token !== after.token) {
    classifier.forgetVerdicts();
    health.check();
  }
});
ext.tabs.onRemoved.addListener((tabId) => {
  badges.setTabCount(tabId, null);
  pageLoads.forgetTab(tabId);
  ext.storage.session.remove(`${PAGE_LOADS_PREFIX}${tabId}`).catch(() => {});
});
// What each tab's browser loads (non-blocking observers: they see, never change, a request), and
// the addresses our own fetches reach.
if (ext.webRequest) {
  const urls = ['http://*/*', 'https://*/*'];
  const pageFilter = { urls, types: listObservedTypes() };
  const ownFilter = { urls, tabId: -1 };
  ext.webRequest.onBeforeRedirect.addListener((d) => pageLoads.recordRedirect(d), pageFilter);
  ext.webRequest.onResponseStarted.addListener((d) => pageLoads.recordResponse(d), pageFilter);
  ext.webRequest.onBeforeRedirect.addListener((d) => fetcher.recordOwnFetch(d, false), ownFilter);
  ext.webRequest.onResponseStarted.addListener((d) => fetcher.recordOwnFetch(d, true), ownFilter);
}
ext.tabs.onUpdated.addListener((tabId, changeInfo) => {
  if (!(changeInfo.status === 'loading' && changeInfo.url)) return;
  badges.setTabCount(tabId, 0);
  // A page shown again from the back/forward cache may have reported its count before this
  // event: ask its top frame again (a new page's script is not there yet, or counts 0).
  ext.tabs.sendMessage(tabId, { type: MSG.GET_PAGE_STATE }, { frameId: 0 })
    .then((state) => {
      if (Number.isInteger(state?.flagged) && state.flagged > 0) badges.setTabCount(tabId, state.flagged, 0);
    })
    .catch(() => {}); // no content script in the tab (yet)
});
