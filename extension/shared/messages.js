/**
 * Every message between the extension's contexts: its type name, the fields it carries, who may
 * send it, and the router the receiving side uses. Content scripts and extension pages import
 * this module; nothing else spells a message type.
 *
 *   content -> worker   CLASSIFY {url, priority, referrerPolicy, media} -> Verdict (media 'video': a video file)
 *   content -> worker   CLASSIFY_BYTES {base64, mime, priority} -> Verdict (a picture read in the page)
 *   content -> worker   PAGE_STATS {flagged}           -> {ok}
 *   content -> worker   REPORT {url, correction, categories} -> {ok, report}
 *   page    -> worker   CHECK_HEALTH {}                -> Health
 *   page    -> worker   TEST_CONNECTION {serverUrl, token} -> Diagnosis (see api.js)
 *   page    -> worker   CLEAR_REPORTS {}               -> {ok}
 *   page    -> worker   SETUP_STATUS {}                -> {setup} | {error: {kind, code, message}}  (GET /v1/setup)
 *   page    -> worker   SETUP_START {}                 -> {setup} | {error}  (POST: one already running answers its progress)
 *   page    -> worker   SETUP_CANCEL {}                -> {setup} | {error}  (DELETE)
 *   page    -> content  GET_PAGE_STATE {frameUrl?}     -> {host, paused, flagged, revealed, byState, asking, stats, frame, pictures}
 *                       (frameUrl: only the frame at that URL answers; holds [{id, url}]: only the one
 *                       holding one of those records; picturesOnly: {frame, pictures} alone)
 *                       (pictures: [{id, kind, state, why, warning}], the reasons the page never sees)
 *   page    -> content  HIDE_REVEALED {}               -> (none): cover again the pictures the user showed
 *
 * "page" means an extension page (popup, options); the worker refuses those types from tabs.
 */

export const MSG = Object.freeze({
  CLASSIFY: 'simclip/classify',
  CLASSIFY_BYTES: 'simclip/classify-bytes',
  PAGE_STATS: 'simclip/page-stats',
  REPORT: 'simclip/report',
  CHECK_HEALTH: 'simclip/check-health',
  TEST_CONNECTION: 'simclip/test-connection',
  CLEAR_REPORTS: 'simclip/clear-reports',
  SETUP_STATUS: 'simclip/setup-status',
  SETUP_START: 'simclip/setup-start',
  SETUP_CANCEL: 'simclip/setup-cancel',
  GET_PAGE_STATE: 'simclip/get-page-state',
  HIDE_REVEALED: 'simclip/hide-revealed',
});

/** Verdict.status values the worker answers CLASSIFY with. */
export const VERDICT = Object.freeze({
  OK: 'ok', // scores are in; the content script decides with the user's settings
  SKIPPED: 'skipped', // not checked by rule (private host, not http, too small): show it
  FAILED: 'failed', // this picture could not be read or checked (fetch failed, HTTP error, too large, undecodable): shown, marked unchecked, never "server down"
  UNAVAILABLE: 'unavailable', // the server is down, unpaired or busy: fail open unless keepHiddenWhenDown (down only)
});

/**
 * `reason` of a FAILED verdict the worker gives without fetching: the tab's browser never loaded
 * the URL as a picture (as far as the worker saw), or loaded it from a private address on a
 * public site (shared/page_loads.js judge). The content script loads a NOT_LOADED picture once
 * more as the page's and asks again (content/main.js).
 */
export const LOAD_REFUSAL = Object.freeze({ NOT_LOADED: 'not_loaded', PRIVATE_ADDRESS: 'private_address' });

/** `reason` of an UNAVAILABLE verdict when the server is up but its queue is full (not "down"). */
export const BUSY_REASON = 'busy';
/** `reason` of an UNAVAILABLE verdict while the server still loads its model (not "down" either). */
export const LOADING_REASON = 'loading';

/**
 * True when a verdict says the server will answer, only not now: busy or still loading (a 503
 * with Retry-After). Such a verdict may carry `retryAfterS`, when to ask again.
 */
export function isServerComing(verdict) {
  return verdict?.status === VERDICT.UNAVAILABLE && (verdict.reason === BUSY_REASON || verdict.reason === LOADING_REASON);
}

/** True when a verdict says the server itself is down or unpaired (not busy or loading, not this picture's fault). */
export function isServerDown(verdict) {
  return verdict?.status === VERDICT.UNAVAILABLE && !isServerComing(verdict);
}

/** Report.correction values. */
export const CORRECTION = Object.freeze({ NOT_FLAGGED: 'not_flagged', FLAGGED: 'flagged' });

const isString = (max) => (v) => typeof v === 'string' && v.length > 0 && v.length <= max;
const isCount = (v) => Number.isInteger(v) && v >= 0 && v < 1e6;
const isCategoryList = (v) => Array.isArray(v) && v.length <= 16 && v.every(isString(40));
const isPriority = (v) => v === undefined || (Number.isInteger(v) && v >= 0 && v <= 2);
const isBase64 = (max) => (v) => isString(max)(v) && /^[A-Za-z0-9+/]+={0,2}$/.test(v);

/** The longest URL a CLASSIFY message carries; a longer one is read in the page or not checked. */
export const MAX_URL_CHARS = 8192;
/** The most bytes of a picture read in the page (content/page_bytes.js); memes are far smaller. */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024;
/** The most base64 characters a CLASSIFY_BYTES message carries. */
export const MAX_BASE64_CHARS = Math.ceil(MAX_PAGE_BYTES / 3) * 4;

// type -> {from: 'content' | 'page', fields: {name: predicate}}
const SCHEMAS = {
  [MSG.CLASSIFY]: {
    from: 'content',
    fields: {
      url: isString(MAX_URL_CHARS),
      priority: isPriority,
      referrerPolicy: (v) => v === undefined || (typeof v === 'string' && v.length <= 40),
      media: (v) => v === undefined || v === 'image' || v === 'video',
    },
  },
  [MSG.CLASSIFY_BYTES]: {
    from: 'content',
    fields: { base64: isBase64(MAX_BASE64_CHARS), mime: isString(100), priority: isPriority },
  },
  [MSG.PAGE_STATS]: { from: 'content', fields: { flagged: isCount } },
  [MSG.REPORT]: {
    from: 'any',
    fields: {
      url: isString(MAX_URL_CHARS),
      correction: (v) => Object.values(CORRECTION).includes(v),
      categories: isCategoryList,
    },
  },
  [MSG.CHECK_HEALTH]: { from: 'page', fields: {} },
  [MSG.TEST_CONNECTION]: { from: 'page', fields: { serverUrl: isString(200), token: (v) => typeof v === 'string' && v.length <= 200 } },
  [MSG.CLEAR_REPORTS]: { from: 'page', fields: {} },
  [MSG.SETUP_STATUS]: { from: 'page', fields: {} },
  [MSG.SETUP_START]: { from: 'page', fields: {} },
  [MSG.SETUP_CANCEL]: { from: 'page', fields: {} },
  [MSG.GET_PAGE_STATE]: { from: 'page', fields: {} },
  [MSG.HIDE_REVEALED]: { from: 'page', fields: {} },
};

/** null when `message` is well formed, else a sentence saying what is wrong. */
export function validateMessage(message) {
  if (!message || typeof message !== 'object') return 'message is not an object';
  const schema = SCHEMAS[message.type];
  if (!schema) return `unknown message type ${JSON.stringify(message.type)}`;
  for (const [name, ok] of Object.entries(schema.fields)) {
    if (!ok(message[name])) return `${message.type}: field ${name} is missing or invalid`;
  }
  return null;
}

/** Where a message came from: 'content' (a tab's content script), 'page' (our own page), or null (refused). */
export function classifySender(sender, { extensionId, extensionOrigin }) {
  if (!sender || sender.id !== extensionId) return null;
  if (typeof sender.url === 'string' && sender.url.startsWith(extensionOrigin)) return 'page';
  return sender.tab ? 'content' : null;
}

/**
 * A router `(message, sender) -> Promise<reply>`: refuses foreign senders, malformed messages and
 * page-only types sent from a tab, then calls `handlers[type](message, sender)`.
 */
export function createMessageRouter(handlers, { extensionId, extensionOrigin }) {
  return async (message, sender) => {
    const problem = validateMessage(message);
    if (problem) return { error: problem };
    const from = classifySender(sender, { extensionId, extensionOrigin });
    const wanted = SCHEMAS[message.type].from;
    if (!from || (wanted !== 'any' && wanted !== from)) {
      return { error: `${message.type} is not accepted from this sender` };
    }
    const handler = handlers[message.type];
    if (!handler) return { error: `${message.type} is not handled here` };
    return handler(message, sender);
  };
}

/** Attach `router` to runtime.onMessage with the callback form (async replies need `return true`). */
export function listenForMessages(onMessage, router) {
  onMessage.addListener((message, sender, sendResponse) => {
    router(message, sender).then(sendResponse, (e) => sendResponse({ error: String(e?.message ?? e) }));
    return true;
  });
}

/**
 * `send(message)` with retries: a worker that was just killed answers "Receiving end does not
 * exist" until it restarts. Resolves with the reply, or null after `tries` (callers fail open).
 */
export async function sendWithRetry(send, message, { tries = 5, delayMs = 500, sleep } = {}) {
  const wait = sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  for (let i = 0; i < tries; i += 1) {
    try {
      const reply = await send(message);
      if (reply !== undefined) return reply;
    } catch {
      // worker not reachable yet: retry below
    }
    if (i < tries - 1) await wait(delayMs);
  }
  return null;
}
