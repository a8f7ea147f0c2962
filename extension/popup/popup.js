/**
 * The toolbar popup: server status (starting with its progress, failed with its reason, a loud
 * line on random test weights), the "Set up protection" panel when the server has no trained
 * head (setup_panel.js), flagged count on the current page, pause on this site, one
 * toggle per warning category (the server's, from /v1/labels) and the sensitivity. Settings are
 * written to storage; content scripts apply them to open pages at once.
 * Opened as a page with `?tab=ID` it acts for that tab (keyboard users, tests).
 */
import { addSite, isHostAllowlisted, removeSite } from '../shared/allowlist.js';
import { SERVER_STATE, describeCost, describeLoading, describeServerMode } from '../shared/api.js';
import { getBrowser } from '../shared/browser.js';
import { MSG } from '../shared/messages.js';
import { isCategoryEnabled, loadSettings, saveSettings } from '../shared/settings.js';
import { shouldShowSetup } from '../shared/setup.js';
import { SetupPanel } from '../shared/setup_panel.js';
import { CATEGORIES_KEY, HEALTH_KEY, SETTINGS_KEY, TAB_COUNTS_KEY, sumTabCount } from '../shared/storage_keys.js';

const ext = getBrowser();
const $ = (id) => document.getElementById(id);
const SENSITIVITY_TEXT = {
  1: 'Lowest: a warning card only on the clearest cases',
  2: 'Low',
  3: "Normal: the server's thresholds",
  4: 'High',
  5: 'Highest: a warning card on anything that might be harmful',
};
const STATUS_TEXT = {
  ok: 'Server running',
  unreachable: 'Server not running',
  timeout: 'Server not answering',
  unauthorized: 'Not paired: wrong or missing token',
  forbidden: 'Server refused this extension',
  not_simclip: 'Wrong port: not a simclip server',
  bad_url: 'Server URL is not valid',
  [SERVER_STATE.LOADING]: 'Server starting',
  [SERVER_STATE.FAILED]: 'Server could not load its model',
};
const HEALTH_POLL_MS = { [SERVER_STATE.LOADING]: 1000, other: 5000 }; // while the popup is open

let tab = null;
let health = null; // the worker's last health record
let setupPanel = null;
let setupAsked = false; // the job's progress is asked once when the popup opens on a server that answers

async function getTargetTab() {
  const fromQuery = Number(new URLSearchParams(location.search).get('tab'));
  if (fromQuery) return ext.tabs.get(fromQuery);
  const [active] = await ext.tabs.query({ active: true, currentWindow: true });
  return active ?? null;
}

function renderHealth(next) {
  health = next ?? null;
  const status = $('status');
  status.dataset.state = health?.state ?? 'unknown';
  const s = health?.server;
  const starting = health?.state === SERVER_STATE.LOADING;
  $('status-text').textContent = starting ? describeLoading(s)
    : health ? STATUS_TEXT[health.state] ?? 'Server error' : 'Checking the server…';
  $('server-info').textContent = health?.state === 'ok' && s ? `${describeServerMode(s)} · ${s.model} · ${s.device}`
    : health?.state === SERVER_STATE.FAILED ? s?.error?.message ?? health.message
      : starting ? '' : health?.message ?? '';
  $('server-cost').textContent = health?.state === 'ok' ? describeCost(s) : '';
  $('random-weights').hidden = !(health?.state === 'ok' && s?.randomWeights);
  renderSetup();
}

/** The setup panel: shown when the server answers and has no trained head, or while a job runs or just ended. */
function renderSetup() {
  const answers = health?.state === 'ok' || health?.state === SERVER_STATE.LOADING;
  if (answers && !setupAsked) {
    setupAsked = true;
    setupPanel.refresh().then(renderSetup);
  }
  $('setup').hidden = !(answers && shouldShowSetup(health.server, setupPanel.setup));
}

function renderCategories(categories, settings) {
  const box = $('categories');
  if (!categories?.length) return;
  box.replaceChildren(...categories.map((category) => {
    const row = document.createElement('label');
    row.title = category.description;
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.id = `category-${category.id}`;
    input.checked = isCategoryEnabled(settings, category.id);
    input.addEventListener('change', async () => {
      const current = await loadSettings(ext.storage.local);
      await saveSettings(ext.storage.local, { categories: { ...current.categories, [category.id]: input.checked } });
    });
    row.append(input, document.createTextNode(category.name));
    return row;
  }));
}

function renderSettings(settings) {
  $('sensitivity').value = String(settings.sensitivity);
  $('sensitivity-text').textContent = SENSITIVITY_TEXT[settings.sensitivity];
  const host = tab?.url ? new URL(tab.url).hostname : '';
  $('site').textContent = host || 'this site';
  $('pause-site').disabled = !host;
  $('pause-site').checked = Boolean(host) && isHostAllowlisted(host, settings.allowlist);
}

/**
 * "Shown unchecked: 2 (fetch_failed 1, http_410 1)": why pictures of this page (its top frame)
 * have no verdict. The reasons stay in the extension: the page itself never sees them.
 */
function describeUnchecked(pictures = []) {
  const reasons = new Map();
  for (const p of pictures) if (p.state === 'unchecked') reasons.set(p.why || 'unknown', (reasons.get(p.why || 'unknown') ?? 0) + 1);
  const total = [...reasons.values()].reduce((a, b) => a + b, 0);
  if (total === 0) return '';
  return `Shown unchecked: ${total} (${[...reasons].map(([why, n]) => `${why} ${n}`).join(', ')})`;
}

async function renderPageCount() {
  if (!tab?.id) return;
  try {
    const state = await ext.tabs.sendMessage(tab.id, { type: MSG.GET_PAGE_STATE }, { frameId: 0 });
    // Each frame (the page and its iframes) counts its own pictures; the worker keeps the sum.
    const counts = (await ext.storage.session.get(TAB_COUNTS_KEY))[TAB_COUNTS_KEY] ?? {};
    const flagged = counts[tab.id] === undefined ? state.flagged : sumTabCount(counts[tab.id]);
    $('page-count').textContent = state.paused ? 'Paused on this page' : `Flagged on this page: ${flagged}`;
    $('hide-revealed').hidden = !(state.revealed > 0);
    $('page-unchecked').textContent = state.paused ? '' : describeUnchecked(state.pictures);
  } catch {
    $('page-count').textContent = 'Not active on this page';
  }
}

async function init() {
  const send = (message) => ext.runtime.sendMessage(message);
  setupPanel = new SetupPanel($('setup'), {
    send,
    onFinished: () => send({ type: MSG.CHECK_HEALTH }).then(renderHealth, () => {}), // the new head's mode and categories
  });
  tab = await getTargetTab().catch(() => null);
  const stored = await ext.storage.local.get([HEALTH_KEY, CATEGORIES_KEY]);
  let settings = await loadSettings(ext.storage.local);
  renderHealth(stored[HEALTH_KEY] ?? null);
  renderCategories(stored[CATEGORIES_KEY], settings);
  renderSettings(settings);
  renderPageCount();

  $('sensitivity').addEventListener('input', async () => {
    await saveSettings(ext.storage.local, { sensitivity: Number($('sensitivity').value) });
  });
  $('pause-site').addEventListener('change', async () => {
    const host = new URL(tab.url).hostname;
    const current = await loadSettings(ext.storage.local);
    const allowlist = $('pause-site').checked ? addSite(current.allowlist, host) : removeSite(current.allowlist, host);
    await saveSettings(ext.storage.local, { allowlist });
  });
  $('hide-revealed').addEventListener('click', async () => {
    await ext.tabs.sendMessage(tab.id, { type: MSG.HIDE_REVEALED }).catch(() => {}); // every frame of the tab
    $('hide-revealed').hidden = true;
  });
  $('open-options').addEventListener('click', (e) => {
    e.preventDefault();
    ext.runtime.openOptionsPage();
  });
  ext.storage.onChanged.addListener(async (changes, area) => {
    if (area !== 'local') return;
    if (changes[HEALTH_KEY]) renderHealth(changes[HEALTH_KEY].newValue);
    if (changes[SETTINGS_KEY] || changes[CATEGORIES_KEY]) {
      settings = await loadSettings(ext.storage.local);
      const categories = changes[CATEGORIES_KEY]?.newValue ?? (await ext.storage.local.get(CATEGORIES_KEY))[CATEGORIES_KEY];
      renderCategories(categories, settings);
      renderSettings(settings);
    }
    setTimeout(renderPageCount, 400);
  });
  setInterval(renderPageCount, 2000);
  // While the popup is open, the status follows the server (each second while it starts).
  const checkHealth = async () => {
    await send({ type: MSG.CHECK_HEALTH }).then(renderHealth, () => {});
    setTimeout(checkHealth, HEALTH_POLL_MS[health?.state] ?? HEALTH_POLL_MS.other);
  };
  checkHealth();
}

init();
