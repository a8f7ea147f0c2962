/**
 * Every message between the extension's contexts: its type name, the fields it carries, who may
 * send it, and the router the receiving side uses. Content scripts and extension pages import
 * this module; nothing else spells a message type.
 *
 *   content -> worker   CLASSIFY {url}                 -> Verdict
 *   content -> worker   PAGE_STATS {flagged}           -> {ok}
 *   content -> worker   REPORT {url, correction, categories} -> {ok, report}
 *   page    -> worker   CHECK_HEALTH {}                -> Health
 *   page    -> worker   TEST_CONNECTION {serverUrl, token} -> Diagnosis (see api.js)
 *   page    -> worker   CLEAR_REPORTS {}               -> {ok}
 *   page    -> content  GET_PAGE_STATE {}              -> {host, paused, flagged, checked, stats}
 *
 * "page" means an extension page (popup, options); the worker refuses those types from tabs.
 */

export const MSG = Object.freeze({
  CLASSIFY: 'simclip/classify',
  PAGE_STATS: 'simclip/page-stats',
  REPORT: 'simclip/report',
  CHECK_HEALTH: 'simclip/check-health',
  TEST_CONNECTION: 'simclip/test-connection',
  CLEAR_REPORTS: 'simclip/clear-reports',
  GET_PAGE_STATE: 'simclip/get-page-state',
});

/** Verdict.status values the worker answers CLASSIFY with. */
export const VERDICT = Object.freeze({
  OK: 'ok', // scores are in; the content script decides with the user's settings
  SKIPPED: 'skipped', // this image is not checked (private host, too big, not an image...): show it
  UNAVAILABLE: 'unavailable', // the server is down or unpaired: fail open unless keepHiddenWhenDown
});

/** Report.correction values. */
export const CORRECTION = Object.freeze({ NOT_FLAGGED: 'not_flagged', FLAGGED: 'flagged' });

const isString = (max) => (v) => typeof v === 'string' && v.length > 0 && v.length <= max;
const isCount = (v) => Number.isInteger(v) && v >= 0 && v < 1e6;
const isCategoryList = (v) => Array.isArray(v) && v.length <= 16 && v.every(isString(40));

// type -> {from: 'content' | 'page', fields: {name: predicate}}
const SCHEMAS = {
  [MSG.CLASSIFY]: { from: 'content', fields: { url: isString(8192) } },
  [MSG.PAGE_STATS]: { from: 'content', fields: { flagged: isCount } },
  [MSG.REPORT]: {
    from: 'any',
    fields: {
      url: isString(8192),
      correction: (v) => Object.values(CORRECTION).includes(v),
      categories: isCategoryList,
    },
  },
  [MSG.CHECK_HEALTH]: { from: 'page', fields: {} },
  [MSG.TEST_CONNECTION]: { from: 'page', fields: { serverUrl: isString(200), token: (v) => typeof v === 'string' && v.length <= 200 } },
  [MSG.CLEAR_REPORTS]: { from: 'page', fields: {} },
  [MSG.GET_PAGE_STATE]: { from: 'page', fields: {} },
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
