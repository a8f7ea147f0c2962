import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseHealth, parseSetup } from '../../shared/api.js';
import { BUSY_REASON, LOADING_REASON, VERDICT, isServerComing, isServerDown } from '../../shared/messages.js';
import {
  STAGE_NAMES, describeAmount, describePlan, describeStep, describeTimeLeft, formatMegabytes, isSetupRunning, progressFraction,
  shouldShowSetup, stageName,
} from '../../shared/setup.js';

const STAGES = ['weights', 'dataset', 'embed', 'train', 'calibrate', 'validate'];
const setup = (fields) => parseSetup({ state: 'running', stage: 'embed', stages: STAGES, done: 0, total: null, unit: null, eta_s: null, ...fields });
const READY = { status: 'ok', state: 'ready', model: 'simclip-tiny/none', mode: 'zero-shot', calibrated: false, device: 'cpu' };

test('every stage has the name the popup shows, in the order the server runs them', () => {
  assert.deepEqual(STAGES.map(stageName), [
    'Downloading the model', 'Fetching HarMeme', 'Reading memes (embedding)', 'Training', 'Calibrating', 'Checking',
  ]);
  assert.equal(Object.keys(STAGE_NAMES).length, 6);
  assert.equal(stageName('quantize'), 'quantize'); // a stage of a newer server keeps its own name
  assert.equal(describeStep(setup({ stage: 'train' })), 'Step 4 of 6');
  assert.equal(describeStep(setup({ stage: null })), '');
});

test('bytes are shown as MB, counts with their unit, an unknown total without "of"', () => {
  assert.equal(describeAmount({ done: 120e6, total: 350e6, unit: 'bytes' }), '120 of 350 MB');
  assert.equal(describeAmount({ done: 0.4e6, total: 1.71e9, unit: 'bytes' }), '0.4 of 1,710 MB');
  assert.equal(describeAmount({ done: 45e6, total: null, unit: 'bytes' }), '45 MB');
  assert.equal(describeAmount({ done: 1200, total: 3013, unit: 'memes' }), '1,200 of 3,013 memes');
  assert.equal(describeAmount({ done: 3, total: 20, unit: 'epochs' }), '3 of 20 epochs');
  assert.equal(describeAmount({ done: 7, total: null, unit: null }), '7');
  assert.equal(formatMegabytes(9.94e6), '9.9 MB');
});

test('the bar is the share done, or indeterminate without a total', () => {
  assert.equal(progressFraction({ done: 350, total: 1000 }), 0.35);
  assert.equal(progressFraction({ done: 1200, total: 1000 }), 1);
  assert.equal(progressFraction({ done: 5, total: null }), null);
  assert.equal(progressFraction({ done: 5, total: 0 }), null);
});

test('the time left reads like a person says it', () => {
  assert.equal(describeTimeLeft(720), 'about 12 min left');
  assert.equal(describeTimeLeft(4800), 'about 1 h 20 min left');
  assert.equal(describeTimeLeft(3600), 'about 1 h left');
  assert.equal(describeTimeLeft(30), 'less than a minute left');
  assert.equal(describeTimeLeft(null), '');
  assert.equal(describeTimeLeft(-3), '');
  assert.equal(describeTimeLeft(Number.NaN), '');
});

test('the plan says how long, where, and how much is downloaded and stored', () => {
  const plan = setup({ plan: { device: 'cpu', recipe: { name: 'cpu' }, estimate_s: 1500, download_bytes: 1.2e9, store_bytes: 350e6 } }).plan;
  assert.equal(describePlan(plan), 'About 25 min on cpu; downloads 1.2 GB; stores 350 MB');
  assert.equal(describePlan(null), '');
});

test('the popup offers setup to a zero-shot or random-weight server, and shows a job that runs or ended', () => {
  const zeroShot = parseHealth(READY);
  const trained = parseHealth({ ...READY, mode: 'trained', calibrated: true });
  const randomTrained = parseHealth({ ...READY, mode: 'trained', random_weights: true });
  const idle = setup({ state: 'idle', stage: null });
  assert.equal(shouldShowSetup(zeroShot, idle), true);
  assert.equal(shouldShowSetup(zeroShot, null), true);
  assert.equal(shouldShowSetup(trained, idle), false);
  assert.equal(shouldShowSetup(randomTrained, idle), true);
  assert.equal(shouldShowSetup(trained, setup({ state: 'done', stage: null })), true); // its summary
  assert.equal(shouldShowSetup(trained, setup({ state: 'running' })), true);
  assert.equal(shouldShowSetup(null, null), false);
  assert.equal(isSetupRunning(setup({})), true);
  assert.equal(isSetupRunning(idle), false);
});

test('busy and loading answers say the server is coming, not down', () => {
  for (const reason of [BUSY_REASON, LOADING_REASON]) {
    const verdict = { status: VERDICT.UNAVAILABLE, reason, retryAfterS: 2 };
    assert.equal(isServerComing(verdict), true, reason);
    assert.equal(isServerDown(verdict), false, reason);
  }
  const down = { status: VERDICT.UNAVAILABLE, reason: 'unreachable' };
  assert.equal(isServerComing(down), false);
  assert.equal(isServerDown(down), true);
  assert.equal(isServerComing({ status: VERDICT.OK, reason: 'busy' }), false);
});
