/**
 * The backend's HTTP contract (docs/api.md), and the only file that knows its paths and JSON
 * field names. Every call carries the pairing token in `X-Auth-Token`, never cookies, and has a
 * time limit. Responses are checked for shape, so a different program on the port is reported as
 * "not a simclip server" rather than failing later.
 */
import { isTokenWellFormed, normalizeServerUrl } from './settings.js';

export const API_PATHS = Object.freeze({
  health: '/v1/health',
  categories: '/v1/labels', // the warning categories; the path keeps its v1 name
  classify: '/v1/classify',
  setup: '/v1/setup', // GET the setup job's progress, POST start it, DELETE cancel it
});
export const TOKEN_HEADER = 'X-Auth-Token';
/** Header of classify: the formats whose EXIF orientation this browser applies (background/orientation.js). */
export const EXIF_ORIENTATION_HEADER = 'X-Exif-Orientation';
/** Header of classify: the rules this browser follows where browsers read a picture differently (background/orientation.js). */
export const DISPLAY_RULES_HEADER = 'X-Display-Rules';
export const MAX_IMAGE_BYTES = 10 * 1024 * 1024; // the server's body limit (THREATS.md T6)
export const TIMEOUTS_MS = Object.freeze({ health: 4000, categories: 4000, classify: 30000, setup: 10000 });

/** ApiError.kind values. */
export const API_ERROR = Object.freeze({
  UNREACHABLE: 'unreachable', // nothing listens there (connection refused)
  TIMEOUT: 'timeout', // no answer in time
  UNAUTHORIZED: 'unauthorized', // 401: missing or wrong token
  FORBIDDEN: 'forbidden', // 403: Host or Origin refused
  NOT_SIMCLIP: 'not_simclip', // an answer, but not in this API's shape
  BUSY: 'busy', // 503 with Retry-After: shed (`busy`) or still loading (`loading`); the server is up
  REFUSED_IMAGE: 'refused_image', // 400/413/415/422: this image will never be accepted
  SERVER_ERROR: 'server_error', // any other error status
});

export class ApiError extends Error {
  constructor(kind, message, { status = 0, code = '', retryAfterS = 0 } = {}) {
    super(message);
    this.name = 'ApiError';
    this.kind = kind;
    this.status = status;
    this.code = code;
    this.retryAfterS = retryAfterS;
  }
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const notSimclip = (what) => new ApiError(API_ERROR.NOT_SIMCLIP, `the answer to ${what} is not a simclip server's`);

/** /v1/health `state`: the model loads in the background; until then classify answers 503 `loading`. */
export const SERVER_STATE = Object.freeze({ LOADING: 'loading', READY: 'ready', FAILED: 'failed' });

const finiteOrNull = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const stringOrNull = (v) => (typeof v === 'string' ? v : null);
const parseError = (e) => (isObject(e) ? { code: String(e.code ?? 'error'), message: String(e.message ?? e.code ?? 'error') } : null);

/**
 * GET /v1/health body -> {state, model, mode, device, ocr, version, queueDepth, calibrated,
 * loading, error, randomWeights, precision, cost, setup}. `state` is 'ready' for a server from
 * before the field existed. While loading (or once loading failed) the model fields may be empty.
 */
export function parseHealth(body) {
  if (!isObject(body)) throw notSimclip(API_PATHS.health);
  const state = body.state ?? SERVER_STATE.READY;
  if (!Object.values(SERVER_STATE).includes(state)) throw notSimclip(API_PATHS.health);
  if (state === SERVER_STATE.READY && (body.status !== 'ok' || typeof body.mode !== 'string' || typeof body.model !== 'string')) {
    throw notSimclip(API_PATHS.health);
  }
  const loading = isObject(body.loading) ? {
    stage: String(body.loading.stage ?? ''),
    done: finiteOrNull(body.loading.done) ?? 0,
    total: finiteOrNull(body.loading.total),
    unit: stringOrNull(body.loading.unit),
    message: String(body.loading.message ?? ''),
  } : null;
  const cost = isObject(body.cost) && finiteOrNull(body.cost.per_picture_ms) !== null ? {
    perPictureMs: body.cost.per_picture_ms,
    encodeMs: finiteOrNull(body.cost.encode_ms),
    ocrMs: finiteOrNull(body.cost.ocr_ms),
    device: String(body.cost.device ?? body.device ?? ''),
    workers: finiteOrNull(body.cost.workers) ?? 1,
  } : null;
  return {
    state,
    model: String(body.model ?? ''),
    mode: String(body.mode ?? ''),
    device: String(body.device ?? ''),
    ocr: String(body.ocr ?? ''),
    version: String(body.version ?? ''),
    queueDepth: Number(body.queue_depth ?? 0),
    // false: zero-shot scores not fitted on labelled memes (they rank pictures, 0.5 means little);
    // null: a server from before the field existed
    calibrated: typeof body.calibrated === 'boolean' ? body.calibrated : null,
    loading,
    error: parseError(body.error),
    randomWeights: body.random_weights === true, // a backbone with random weights: its verdicts mean nothing
    precision: isObject(body.precision) ? { served: String(body.precision.served ?? ''), head: stringOrNull(body.precision.head) } : null,
    cost, // measured by the server on its device; null until measured (or an older server)
    setup: isObject(body.setup) ? { state: String(body.setup.state ?? ''), stage: stringOrNull(body.setup.stage) } : null,
  };
}

/** What the server does while it starts (/v1/health `loading.stage`), in the user's words. */
const LOADING_TEXT = Object.freeze({ weights: 'downloading the model', model: 'loading the model', warmup: 'warming up' });

/** "Starting: downloading the model, 35%" for a server that is still loading. */
export function describeLoading(health) {
  const loading = health?.loading;
  const what = LOADING_TEXT[loading?.stage] ?? 'loading the model';
  const share = loading && loading.total > 0 ? `, ${Math.min(100, Math.floor((100 * loading.done) / loading.total))}%` : '';
  return `Starting: ${what}${share}`;
}

/** "trained mode", or "zero-shot mode, uncalibrated: …", so the popup says what the scores mean. */
export function describeServerMode(health) {
  if (health.calibrated === false && health.mode === 'zero-shot') { // a trained head's own scores are fitted
    return `${health.mode} mode, uncalibrated: scores only rank pictures`;
  }
  return `${health.mode} mode`;
}

/** "about 0.8 s per picture on this CPU" from the server's measured cost, or '' before it is measured. */
export function describeCost(health) {
  const ms = health?.cost?.perPictureMs;
  if (!(ms > 0)) return '';
  const amount = ms < 500 ? `${Math.max(1, Math.round(ms / 10) * 10)} ms` : `${(ms / 1000).toFixed(1)} s`;
  const device = (health.cost.device || health.device || '').toLowerCase();
  const where = device.startsWith('cuda') ? 'this GPU' : device === 'mps' ? 'this Mac\'s GPU' : device ? `this ${device.toUpperCase()}` : 'this computer';
  return `about ${amount} per picture on ${where}`;
}

/** The setup job's states and stages (GET /v1/setup). */
export const SETUP_STATE = Object.freeze({ IDLE: 'idle', RUNNING: 'running', DONE: 'done', FAILED: 'failed', CANCELLED: 'cancelled' });
export const SETUP_STAGES = Object.freeze(['weights', 'dataset', 'embed', 'train', 'calibrate', 'validate']);

/**
 * GET/POST/DELETE /v1/setup body -> {state, stage, stages, done, total, unit, etaS, error, plan,
 * summary: {categories: [{id, name, status, calibrated, examples, valMacroF1, text, howToImprove}]}}.
 */
export function parseSetup(body) {
  if (!isObject(body) || !Object.values(SETUP_STATE).includes(body.state)) throw notSimclip(API_PATHS.setup);
  const stages = Array.isArray(body.stages) && body.stages.every((s) => typeof s === 'string') ? body.stages : [...SETUP_STAGES];
  const plan = isObject(body.plan) ? {
    device: String(body.plan.device ?? ''),
    recipe: isObject(body.plan.recipe) ? String(body.plan.recipe.name ?? '') : '',
    estimateS: finiteOrNull(body.plan.estimate_s),
    downloadBytes: finiteOrNull(body.plan.download_bytes),
    storeBytes: finiteOrNull(body.plan.store_bytes),
  } : null;
  const categories = isObject(body.summary) && Array.isArray(body.summary.categories)
    ? body.summary.categories.filter(isObject).map((c) => ({
      id: String(c.id ?? ''),
      name: String(c.name ?? c.id ?? ''),
      status: String(c.status ?? ''),
      calibrated: c.calibrated === true,
      examples: finiteOrNull(c.examples),
      valMacroF1: finiteOrNull(c.val_macro_f1),
      text: String(c.text ?? ''),
      howToImprove: stringOrNull(c.how_to_improve),
    }))
    : null;
  return {
    state: body.state,
    stage: stringOrNull(body.stage),
    stages,
    done: finiteOrNull(body.done) ?? 0,
    total: finiteOrNull(body.total),
    unit: stringOrNull(body.unit),
    etaS: finiteOrNull(body.eta_s),
    error: parseError(body.error),
    plan,
    summary: categories ? { categories } : null,
  };
}

/**
 * GET /v1/labels body -> the warning categories [{id, name, description, default_threshold}].
 * The list is under `categories`, or under `labels` (its v1 name, which servers keep sending);
 * `categories` wins when both are there.
 */
export function parseCategories(body) {
  const list = isObject(body) ? (Array.isArray(body.categories) ? body.categories : body.labels) : null;
  if (!Array.isArray(list)) throw notSimclip(API_PATHS.categories);
  return list.map((c) => {
    if (!isObject(c) || typeof c.id !== 'string' || typeof c.name !== 'string' || typeof c.default_threshold !== 'number') {
      throw notSimclip(API_PATHS.categories);
    }
    return { id: c.id, name: c.name, description: String(c.description ?? ''), default_threshold: c.default_threshold };
  });
}

/**
 * The classify headers for a browser that turns pictures by EXIF orientation in `exifFormats`
 * and follows `displayRules` (background/orientation.js): none for a null `exifFormats` (not
 * measured: the server's defaults); 'none' for an empty list.
 */
export function displayHeaders(exifFormats = null, displayRules = []) {
  if (!Array.isArray(exifFormats)) return {};
  const list = (names) => (names.length ? names.join(',') : 'none');
  return { [EXIF_ORIENTATION_HEADER]: list(exifFormats), [DISPLAY_RULES_HEADER]: list(displayRules) };
}

/**
 * POST /v1/classify body -> {sha256, mode, scores, text, cached, size}; `size` ({width, height} of
 * the picture as the server judged it) is null from a server that does not send it.
 */
export function parseClassification(body) {
  if (!isObject(body) || typeof body.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(body.sha256) || !isObject(body.scores)) {
    throw notSimclip(API_PATHS.classify);
  }
  const scores = {};
  for (const [id, s] of Object.entries(body.scores)) {
    if (typeof s === 'number' && s >= 0 && s <= 1) scores[id] = s;
  }
  const size = isObject(body.size) && Number.isInteger(body.size.width) && Number.isInteger(body.size.height)
    ? { width: body.size.width, height: body.size.height } : null;
  return { sha256: body.sha256, mode: String(body.mode ?? ''), scores, text: String(body.text ?? ''), cached: body.cached === true, size };
}

function errorFromResponse(status, body, retryAfter) {
  const code = isObject(body) && isObject(body.error) && typeof body.error.code === 'string' ? body.error.code : null;
  if (code === null) return new ApiError(API_ERROR.NOT_SIMCLIP, `HTTP ${status} without a simclip error body`, { status });
  const message = String(body.error.message ?? code);
  const kind =
    status === 401 ? API_ERROR.UNAUTHORIZED
      : status === 403 ? API_ERROR.FORBIDDEN
        : status === 503 ? API_ERROR.BUSY
          : [400, 411, 413, 415, 422].includes(status) ? API_ERROR.REFUSED_IMAGE
            : API_ERROR.SERVER_ERROR;
  // A shed request (503 `busy`) says when to come back in `retry_after_ms`; the header has whole seconds.
  const ms = Number(body.error.retry_after_ms);
  const retryAfterS = Number.isFinite(ms) && ms >= 0 ? ms / 1000 : Number(retryAfter) || 0;
  return new ApiError(kind, message, { status, code, retryAfterS });
}

/**
 * A client bound to one server and token.
 *
 * @param {{serverUrl: string, token: string, fetchFn?: Function, exifFormats?: string[] | null, displayRules?: string[]}} options
 *   exifFormats, displayRules: the formats this browser turns by EXIF orientation and the display
 *   rules it follows (background/orientation.js), sent with every classify; a null exifFormats
 *   leaves the server's defaults
 * @returns {{health, setupStatus, startSetup, cancelSetup, categories, classify}} async methods;
 *   they throw ApiError
 */
export function createApiClient({ serverUrl, token, fetchFn = globalThis.fetch.bind(globalThis), exifFormats = null, displayRules = [] }) {
  const base = normalizeServerUrl(serverUrl);
  if (!base) throw new TypeError(`server URL ${serverUrl} is not http on 127.0.0.1, localhost or [::1]`);

  async function request(path, { method = 'GET', body, timeoutMs, headers = {} }) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let response;
    try {
      response = await fetchFn(base + path, {
        method,
        body,
        headers: body ? { [TOKEN_HEADER]: token, 'Content-Type': 'application/octet-stream', ...headers } : { [TOKEN_HEADER]: token, ...headers },
        credentials: 'omit',
        cache: 'no-store',
        redirect: 'error',
        signal: controller.signal,
      });
    } catch (e) {
      if (controller.signal.aborted) throw new ApiError(API_ERROR.TIMEOUT, `no answer from ${base} in ${timeoutMs} ms`);
      throw new ApiError(API_ERROR.UNREACHABLE, `cannot connect to ${base} (${e?.message ?? e})`);
    } finally {
      clearTimeout(timer);
    }
    let json = null;
    try {
      json = await response.json();
    } catch {
      // not JSON: judged below
    }
    if (!response.ok) throw errorFromResponse(response.status, json, response.headers.get('Retry-After'));
    if (json === null) throw notSimclip(path);
    return json;
  }

  const setupCall = (method) => async () => parseSetup(await request(API_PATHS.setup, { method, timeoutMs: TIMEOUTS_MS.setup }));

  return {
    serverUrl: base,
    health: async () => parseHealth(await request(API_PATHS.health, { timeoutMs: TIMEOUTS_MS.health })),
    setupStatus: setupCall('GET'),
    startSetup: setupCall('POST'),
    cancelSetup: setupCall('DELETE'),
    categories: async () => parseCategories(await request(API_PATHS.categories, { timeoutMs: TIMEOUTS_MS.categories })),
    classify: async (bytes) =>
      parseClassification(await request(API_PATHS.classify, {
        method: 'POST', body: bytes, timeoutMs: TIMEOUTS_MS.classify, headers: displayHeaders(exifFormats, displayRules),
      })),
  };
}

/**
 * Test a server URL and token, and say exactly what is wrong in words a user can act on.
 *
 * @returns {Promise<{ok: boolean, kind: string, message: string, health?: object, categories?: object[]}>}
 *   `kind`: 'ok', 'bad_url', an API_ERROR, or SERVER_STATE.LOADING / FAILED (paired, the model
 *   not ready: `health` says how far it got, or why it failed)
 */
export async function diagnoseConnection({ serverUrl, token, fetchFn, extensionOrigin = '' }) {
  const base = normalizeServerUrl(serverUrl);
  if (!base) {
    return {
      ok: false,
      kind: 'bad_url',
      message: 'The server URL must be http://127.0.0.1:PORT, http://localhost:PORT or http://[::1]:PORT (the server only listens on this computer).',
    };
  }
  const client = createApiClient({ serverUrl: base, token: token ?? '', fetchFn });
  try {
    const health = await client.health();
    if (health.state === SERVER_STATE.LOADING) {
      return { ok: false, kind: SERVER_STATE.LOADING, message: `Paired with simclip-server at ${base}. ${describeLoading(health)}.`, health };
    }
    if (health.state === SERVER_STATE.FAILED) {
      const why = health.error?.message ?? 'no reason given';
      return { ok: false, kind: SERVER_STATE.FAILED, message: `The server at ${base} could not load its model: ${why}`, health };
    }
    const categories = await client.categories();
    const names = categories.map((c) => c.name).join(', ') || 'no categories';
    return {
      ok: true,
      kind: 'ok',
      message: `Connected to simclip-server ${health.version} at ${base}: ${health.mode} mode, model ${health.model} on ${health.device}. Warns about: ${names}.`,
      health,
      categories,
    };
  } catch (e) {
    const kind = e instanceof ApiError ? e.kind : API_ERROR.SERVER_ERROR;
    return { ok: false, kind, message: explainConnectionError(kind, { base, token, extensionOrigin, detail: e?.message }) };
  }
}

/** The sentence the options page and popup show for a failed connection. */
export function explainConnectionError(kind, { base, token = '', extensionOrigin = '', detail = '' }) {
  switch (kind) {
    case API_ERROR.UNREACHABLE:
      return `Server not running: nothing answers at ${base}. Start it with "simclip-server" and check the port it prints (default 8478).`;
    case API_ERROR.TIMEOUT:
      return `The server at ${base} did not answer in time. It may still be loading the model: wait a moment and test again.`;
    case API_ERROR.NOT_SIMCLIP:
      return `Wrong port: something answers at ${base}, but it is not a simclip server. Use the port simclip-server prints (default 8478).`;
    case API_ERROR.UNAUTHORIZED:
      if (!token) return `No token: the server at ${base} is running, but needs the pairing token. Run "simclip-server --print-token" and paste it here.`;
      if (!isTokenWellFormed(token)) return 'Wrong token: a token is 43 letters, digits, "-" or "_". Run "simclip-server --print-token" and paste it again.';
      return `Wrong token: the server at ${base} refused this token. Run "simclip-server --print-token" and paste it again.`;
    case API_ERROR.FORBIDDEN:
      return `The server at ${base} refused this extension (${detail}). If it was started with --allow-origin, add ${extensionOrigin || "this extension's origin"}.`;
    case API_ERROR.BUSY:
      return `The server at ${base} is busy; test again in a moment.`;
    default:
      return `The server at ${base} answered with an error: ${detail}`;
  }
}
