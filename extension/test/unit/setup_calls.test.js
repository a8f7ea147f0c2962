import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createSetupCalls, describeSetupError } from '../../background/setup_calls.js';
import { API_ERROR, ApiError, SETUP_STATE } from '../../shared/api.js';
import { LOADING_REASON } from '../../shared/messages.js';

const SERVER = { base: 'http://127.0.0.1:8478', token: '' };

/** A client whose setup job answers `states` in turn, and whose methods throw what `throws` names. */
function fakeRuntime({ states = [], throws = {} } = {}) {
  const calls = [];
  const answer = (method) => async () => {
    calls.push(method);
    if (throws[method]) throw throws[method];
    return { state: states.shift() };
  };
  const client = { serverUrl: SERVER.base, setupStatus: answer('setupStatus'), startSetup: answer('startSetup'), cancelSetup: answer('cancelSetup') };
  return { calls, getRuntime: async () => ({ settings: { token: SERVER.token }, client }) };
}

test('a job seen running and then done tells the worker once; one already done when first seen does not', async () => {
  const runtime = fakeRuntime({ states: [SETUP_STATE.DONE, SETUP_STATE.RUNNING, SETUP_STATE.DONE, SETUP_STATE.DONE] });
  let done = 0;
  const callSetup = createSetupCalls({ getRuntime: runtime.getRuntime, onSetupDone: async () => done++ });
  assert.deepEqual(await callSetup('setupStatus'), { setup: { state: SETUP_STATE.DONE } });
  assert.equal(done, 0, 'a job done before this worker saw it serves the head it already reads');
  await callSetup('startSetup');
  assert.equal(done, 0);
  await callSetup('setupStatus');
  assert.equal(done, 1);
  await callSetup('setupStatus');
  assert.equal(done, 1, 'done twice is one finish');
  assert.deepEqual(runtime.calls, ['setupStatus', 'startSetup', 'setupStatus', 'setupStatus']);
});

test('starting a running job or cancelling none answers the job\'s progress', async () => {
  const runtime = fakeRuntime({
    states: [SETUP_STATE.RUNNING, SETUP_STATE.IDLE],
    throws: {
      startSetup: new ApiError(API_ERROR.SERVER_ERROR, 'running', { status: 409, code: 'setup_running' }),
      cancelSetup: new ApiError(API_ERROR.SERVER_ERROR, 'none', { status: 409, code: 'setup_not_running' }),
    },
  });
  const callSetup = createSetupCalls({ getRuntime: runtime.getRuntime, onSetupDone: async () => {} });
  assert.deepEqual(await callSetup('startSetup'), { setup: { state: SETUP_STATE.RUNNING } });
  assert.deepEqual(await callSetup('cancelSetup'), { setup: { state: SETUP_STATE.IDLE } });
  assert.deepEqual(runtime.calls, ['startSetup', 'setupStatus', 'cancelSetup', 'setupStatus']);
});

test('a failed call answers an error for the page, never throws', async () => {
  const runtime = fakeRuntime({ throws: { startSetup: new ApiError(API_ERROR.UNREACHABLE, 'cannot connect') } });
  const callSetup = createSetupCalls({ getRuntime: runtime.getRuntime, onSetupDone: async () => {} });
  const { error } = await callSetup('startSetup');
  assert.equal(error.kind, API_ERROR.UNREACHABLE);
  assert.equal(error.code, '');
  assert.match(error.message, /Server not running: nothing answers at http:\/\/127\.0\.0\.1:8478/);
});

test('an old server, a loading model and a crash each get their own words', () => {
  const old = describeSetupError(new ApiError(API_ERROR.SERVER_ERROR, 'not found', { status: 404, code: 'not_found' }), SERVER);
  assert.deepEqual(old, { kind: API_ERROR.SERVER_ERROR, code: 'not_found', message: old.message });
  assert.match(old.message, /cannot set up protection from the browser: update it/);
  const loading = describeSetupError(new ApiError(API_ERROR.BUSY, 'loading', { status: 503, code: LOADING_REASON }), SERVER);
  assert.equal(loading.code, LOADING_REASON);
  assert.match(loading.message, /still loading its model/);
  const crash = describeSetupError(new TypeError('boom'), SERVER);
  assert.deepEqual(crash, { kind: API_ERROR.SERVER_ERROR, code: '', message: 'The server at http://127.0.0.1:8478 answered with an error: boom' });
});
