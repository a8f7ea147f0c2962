/**
 * The setup job (GET /v1/setup, parsed by api.js parseSetup) in the user's words: the stage's
 * name, how far it is (bytes as MB), the time left, and whether the popup should offer it. Pure
 * helpers, no DOM: setup_panel.js draws them, the unit tests read them.
 */
import { SETUP_STATE } from './api.js';

/** The name each stage is shown with. */
export const STAGE_NAMES = Object.freeze({
  weights: 'Downloading the model',
  dataset: 'Fetching HarMeme',
  embed: 'Reading memes (embedding)',
  train: 'Training',
  calibrate: 'Calibrating',
  validate: 'Checking',
});

/** How often an open popup or options page asks for the progress while setup runs. */
export const SETUP_POLL_MS = 1000;

const numberFormat = new Intl.NumberFormat('en-US');

/** "Downloading the model"; a stage this version does not know keeps the server's name. */
export const stageName = (stage) => STAGE_NAMES[stage] ?? String(stage ?? '');

/** "Step 3 of 6" for `stage` in the job's list of stages ('' when it is not in it). */
export function describeStep(setup) {
  const i = setup.stages.indexOf(setup.stage);
  return i < 0 ? '' : `Step ${i + 1} of ${setup.stages.length}`;
}

/** Bytes as MB (decimal, as downloads are sized): "0.4 MB", "12 MB", "1,024 MB". */
export function formatMegabytes(bytes) {
  const mb = bytes / 1e6;
  return `${mb < 10 ? mb.toFixed(1) : numberFormat.format(Math.round(mb))} MB`;
}

/** How far the stage is: "120 of 350 MB", "1,200 of 3,013 memes", "3 of 20 epochs", "45 MB" (total unknown). */
export function describeAmount({ done, total, unit }) {
  if (unit === 'bytes') return total > 0 ? `${formatMegabytes(done).replace(' MB', '')} of ${formatMegabytes(total)}` : formatMegabytes(done);
  const count = (n) => numberFormat.format(Math.round(n));
  const suffix = unit ? ` ${unit}` : '';
  return total > 0 ? `${count(done)} of ${count(total)}${suffix}` : `${count(done)}${suffix}`;
}

/** The share done, 0..1, or null when the total is not known (an indeterminate bar). */
export function progressFraction({ done, total }) {
  return total > 0 ? Math.min(1, Math.max(0, done / total)) : null;
}

/** "about 12 min left", "about 1 h 20 min left", "less than a minute left"; '' when unknown. */
export function describeTimeLeft(etaS) {
  if (typeof etaS !== 'number' || !Number.isFinite(etaS) || etaS < 0) return '';
  return `${describeDuration(etaS)} left`;
}

/** "about 25 min", "about 1 h 20 min", "less than a minute". */
export function describeDuration(seconds) {
  if (seconds < 60) return 'less than a minute';
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `about ${minutes} min`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return `about ${h} h${m ? ` ${m} min` : ''}`;
}

/** "About 25 min on cpu; downloads 1.2 GB, stores 2 GB" from the job's plan ('' without one). */
export function describePlan(plan) {
  if (!plan) return '';
  const size = (bytes) => (bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : formatMegabytes(bytes));
  const parts = [];
  if (plan.estimateS !== null) parts.push(`${describeDuration(plan.estimateS).replace(/^a/, 'A')}${plan.device ? ` on ${plan.device}` : ''}`);
  if (plan.downloadBytes !== null) parts.push(`downloads ${size(plan.downloadBytes)}`);
  if (plan.storeBytes !== null) parts.push(`stores ${size(plan.storeBytes)}`);
  return parts.join('; ');
}

/** True while the job runs (the pages poll only then). */
export const isSetupRunning = (setup) => setup?.state === SETUP_STATE.RUNNING;

/**
 * Whether the popup offers (or shows) setup: while a job runs or just ended, and whenever the
 * server runs without a trained head (zero-shot) or on random test weights.
 */
export function shouldShowSetup(server, setup) {
  if (setup && setup.state !== SETUP_STATE.IDLE) return true;
  if (!server) return false;
  return server.mode === 'zero-shot' || server.randomWeights === true || server.setup?.state === SETUP_STATE.RUNNING;
}
