/**
 * The popup's and options page's calls to the server's setup job (/v1/setup, docs/setup.md):
 * read its progress, start it, cancel it. The answer is a message for the page, never a thrown
 * error; when a job is seen to finish, the server serves its new head, which the worker learns of
 * through `onSetupDone`.
 */
import { API_ERROR, ApiError, SETUP_STATE, explainConnectionError } from '../shared/api.js';
import { LOADING_REASON } from '../shared/messages.js';

/** Error codes that mean "already so": starting a running job, cancelling none. The job's progress answers them. */
const ALREADY_SO = Object.freeze(['setup_running', 'setup_not_running']);

/**
 * The page's words for a failed setup call.
 *
 * @param {unknown} e what the call threw (an ApiError, or anything else: a server error)
 * @param {{base: string, token: string}} server the server's URL and the pairing token (for the explanation)
 * @returns {{kind: string, code: string, message: string}} `kind` an API_ERROR, `code` the server's error code or ''
 */
export function describeSetupError(e, { base, token }) {
  const kind = e instanceof ApiError ? e.kind : API_ERROR.SERVER_ERROR;
  const message = e instanceof ApiError && e.status === 404
    ? 'This simclip-server cannot set up protection from the browser: update it, or run "simclip setup".'
    : e?.code === LOADING_REASON ? 'The server is still loading its model: set up protection once it is ready.'
      : explainConnectionError(kind, { base, token, detail: e?.message });
  return { kind, code: e?.code ?? '', message };
}

/**
 * The setup calls. `getRuntime()` resolves to {settings, client} (runtime.js); `onSetupDone()`
 * runs (and is awaited) when a call sees a job that this worker saw unfinished answer done: the
 * worker drops the old head's verdicts and reads the health again.
 *
 * @param {{getRuntime: () => Promise<{settings: {token: string}, client: object}>, onSetupDone: () => Promise<unknown>}} options
 * @returns {(method: string) => Promise<{setup: object} | {error: {kind: string, code: string, message: string}}>}
 *   a call by the API client's method name ('setupStatus', 'startSetup',
 *   'cancelSetup': GET, POST, DELETE /v1/setup); rejects only when the runtime cannot be built
 */
export function createSetupCalls({ getRuntime, onSetupDone }) {
  let lastSetupState = null; // the job's state at the last answer this worker saw

  return async function callSetup(method) {
    const { settings, client } = await getRuntime();
    try {
      let setup;
      try {
        setup = await client[method]();
      } catch (e) {
        if (!(e instanceof ApiError) || !ALREADY_SO.includes(e.code)) throw e;
        setup = await client.setupStatus();
      }
      if (setup.state === SETUP_STATE.DONE && lastSetupState !== null && lastSetupState !== SETUP_STATE.DONE) await onSetupDone();
      lastSetupState = setup.state;
      return { setup };
    } catch (e) {
      return { error: describeSetupError(e, { base: client.serverUrl, token: settings.token }) };
    }
  };
}
