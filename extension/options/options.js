/**
 * Options: server URL and pairing token with a connection test that names the problem, the
 * server's state (starting, failed, random test weights), "Set up protection" (setup_panel.js),
 * the fail behaviour, the site allowlist and the wrong-verdict reports (export as JSONL).
 */
import { SERVER_STATE, describeCost, describeLoading, describeServerMode } from '../shared/api.js';
import { getBrowser } from '../shared/browser.js';
import { MSG } from '../shared/messages.js';
import { reportsToJsonl } from '../shared/reports.js';
import { loadSettings, normalizeServerUrl, saveSettings } from '../shared/settings.js';
import { SetupPanel } from '../shared/setup_panel.js';
import { HEALTH_KEY, REPORTS_KEY } from '../shared/storage_keys.js';

const ext = getBrowser();
const $ = (id) => document.getElementById(id);
const LOADING_POLL_MS = 1000; // while the server starts, its progress is followed this often
let setupPanel = null;
let loadingTimer = 0;

/** The server's state under the pairing form: starting (with progress), failed (why), or what it serves. */
function renderServerState(health) {
  const s = health?.server;
  const answers = health?.state === 'ok' || health?.state === SERVER_STATE.LOADING;
  $('server-state').textContent = health?.state === SERVER_STATE.LOADING ? describeLoading(s)
    : health?.state === SERVER_STATE.FAILED ? `The server could not load its model: ${s?.error?.message ?? health.message}`
      : health?.state === 'ok' && s ? [describeServerMode(s), describeCost(s)].filter(Boolean).join(' · ') : '';
  $('random-weights').hidden = !(health?.state === 'ok' && s?.randomWeights);
  const wasHidden = $('setup').hidden;
  $('setup').hidden = !answers;
  if (answers && wasHidden) setupPanel.refresh();
  clearTimeout(loadingTimer);
  if (health?.state === SERVER_STATE.LOADING) {
    loadingTimer = setTimeout(() => ext.runtime.sendMessage({ type: MSG.CHECK_HEALTH }).then(renderServerState, () => {}), LOADING_POLL_MS);
  }
}

function showResult(id, ok, text) {
  const el = $(id);
  el.dataset.ok = String(ok);
  el.textContent = text;
}

async function saveAndTest() {
  const serverUrl = $('server-url').value.trim() || 'http://127.0.0.1:8478';
  const token = $('token').value.trim();
  $('connection-status').dataset.kind = 'testing';
  showResult('connection-status', '', 'Testing…');
  if (normalizeServerUrl(serverUrl)) await saveSettings(ext.storage.local, { serverUrl, token });
  const result = await ext.runtime.sendMessage({ type: MSG.TEST_CONNECTION, serverUrl, token });
  $('connection-status').dataset.kind = result.kind ?? 'error';
  showResult('connection-status', Boolean(result.ok), result.message ?? result.error);
  if (result.ok) ext.runtime.sendMessage({ type: MSG.CHECK_HEALTH });
}

async function saveFailure() {
  const s = await saveSettings(ext.storage.local, {
    keepHiddenWhenDown: $('keep-hidden').checked,
    revealAfterSeconds: Number($('reveal-after').value),
  });
  $('reveal-after').value = String(s.revealAfterSeconds);
  showResult('failure-status', true, 'Saved.');
}

async function saveAllowlist() {
  const entries = $('allowlist').value.split(/[\s,]+/).filter(Boolean);
  const s = await saveSettings(ext.storage.local, { allowlist: entries });
  $('allowlist').value = s.allowlist.join('\n');
  const dropped = entries.length - s.allowlist.length;
  showResult('allowlist-status', dropped === 0, `Saved ${s.allowlist.length} site(s).${dropped > 0 ? ` ${dropped} entry(ies) were duplicates or not valid host names.` : ''}`);
}

async function renderReports() {
  const reports = (await ext.storage.local.get(REPORTS_KEY))[REPORTS_KEY] ?? [];
  $('report-count').textContent = reports.length ? `${reports.length} report(s).` : 'No reports.';
  $('report-list').replaceChildren(...reports.slice(-20).reverse().map((r) => {
    const li = document.createElement('li');
    li.textContent = `${r.timestamp.slice(0, 19)} ${r.correction} ${r.categories.join(',')} ${r.image_url}`;
    return li;
  }));
  $('export-reports').disabled = reports.length === 0;
}

async function exportReports() {
  const reports = (await ext.storage.local.get(REPORTS_KEY))[REPORTS_KEY] ?? [];
  const blob = new Blob([reportsToJsonl(reports)], { type: 'application/x-ndjson' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = 'simclip-reports.jsonl';
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

async function init() {
  setupPanel = new SetupPanel($('setup'), {
    send: (message) => ext.runtime.sendMessage(message),
    onFinished: () => ext.runtime.sendMessage({ type: MSG.CHECK_HEALTH }).catch(() => {}),
  });
  renderServerState((await ext.storage.local.get(HEALTH_KEY))[HEALTH_KEY]);
  const s = await loadSettings(ext.storage.local);
  $('server-url').value = s.serverUrl;
  $('token').value = s.token;
  $('keep-hidden').checked = s.keepHiddenWhenDown;
  $('reveal-after').value = String(s.revealAfterSeconds);
  $('allowlist').value = s.allowlist.join('\n');
  $('show-token').addEventListener('change', () => {
    $('token').type = $('show-token').checked ? 'text' : 'password';
  });
  $('save-test').addEventListener('click', saveAndTest);
  $('keep-hidden').addEventListener('change', saveFailure);
  $('reveal-after').addEventListener('change', saveFailure);
  $('save-allowlist').addEventListener('click', saveAllowlist);
  $('export-reports').addEventListener('click', exportReports);
  $('clear-reports').addEventListener('click', async () => {
    await ext.runtime.sendMessage({ type: MSG.CLEAR_REPORTS });
    renderReports();
  });
  ext.storage.onChanged.addListener((changes, area) => {
    if (area === 'local' && changes[REPORTS_KEY]) renderReports();
    if (area === 'local' && changes[HEALTH_KEY]) renderServerState(changes[HEALTH_KEY].newValue);
  });
  renderReports();
  document.body.dataset.ready = 'true';
}

init();
