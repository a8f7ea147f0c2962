/**
 * User settings: one object under SETTINGS_KEY of storage.local (storage_keys.js), always read through
 * `normalizeSettings`, so a missing, old or hand-edited value falls back to the default.
 */
import { normalizeSiteEntry } from './allowlist.js';
import { SETTINGS_KEY } from './storage_keys.js';

export const DEFAULT_PORT = 8478;
export const SENSITIVITY = Object.freeze({ min: 1, max: 5, default: 3 });
export const REVEAL_AFTER = Object.freeze({ min: 3, max: 120, default: 60 }); // seconds: the cap on any wait (image_state.js timeLimitMs)

export const DEFAULT_SETTINGS = Object.freeze({
  serverUrl: `http://127.0.0.1:${DEFAULT_PORT}`, // the local simclip-server
  token: '', // pairing token, from `simclip-server --print-token`
  categories: {}, // category id -> false when the user turned its warning off (missing = on)
  sensitivity: SENSITIVITY.default, // 1 (flag only clear cases) .. 5 (flag more)
  allowlist: [], // sites where the extension does nothing
  keepHiddenWhenDown: false, // keep waiting images hidden when the server is down (else reveal)
  revealAfterSeconds: REVEAL_AFTER.default, // the longest a picture on screen waits hidden for its verdict
});

const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** True for a token as the server makes them: 32 random bytes, base64url, 43 characters. */
export function isTokenWellFormed(token) {
  return typeof token === 'string' && TOKEN_RE.test(token);
}

/** The server URL reduced to `http://host:port`, or null unless it is plain http on loopback. */
export function normalizeServerUrl(raw) {
  if (typeof raw !== 'string') return null;
  let url;
  try {
    url = new URL(raw.trim());
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' || url.username || url.password) return null;
  if (!LOOPBACK_HOSTS.has(url.hostname)) return null; // the server only answers on loopback
  return `http://${url.hostname}:${url.port || 80}`;
}

function clampInt(value, { min, max, default: fallback }) {
  const n = Number(value);
  if (!Number.isFinite(n)) return fallback;
  return Math.min(max, Math.max(min, Math.round(n)));
}

/** Any stored value -> a complete, valid settings object. */
export function normalizeSettings(raw) {
  const s = raw && typeof raw === 'object' ? raw : {};
  const categories = {};
  if (s.categories && typeof s.categories === 'object') {
    for (const [id, on] of Object.entries(s.categories)) {
      if (/^[a-z_]{1,40}$/.test(id)) categories[id] = on !== false;
    }
  }
  const allowlist = Array.isArray(s.allowlist)
    ? [...new Set(s.allowlist.map(normalizeSiteEntry).filter(Boolean))].sort()
    : [];
  return {
    serverUrl: normalizeServerUrl(s.serverUrl) ?? DEFAULT_SETTINGS.serverUrl,
    token: typeof s.token === 'string' ? s.token.trim() : '',
    categories,
    sensitivity: clampInt(s.sensitivity, SENSITIVITY),
    allowlist,
    keepHiddenWhenDown: s.keepHiddenWhenDown === true,
    revealAfterSeconds: clampInt(s.revealAfterSeconds, REVEAL_AFTER),
  };
}

/** True unless the user turned the warning for `categoryId` off. */
export function isCategoryEnabled(settings, categoryId) {
  return settings.categories[categoryId] !== false;
}

/** Settings from a StorageArea (storage.local). */
export async function loadSettings(area) {
  const got = await area.get(SETTINGS_KEY);
  return normalizeSettings(got?.[SETTINGS_KEY]);
}

/** Merge `patch` into the stored settings and return the result. */
export async function saveSettings(area, patch) {
  const next = normalizeSettings({ ...(await loadSettings(area)), ...patch });
  await area.set({ [SETTINGS_KEY]: next });
  return next;
}
