/**
 * The server's health as the worker last saw it, and the warning categories it serves: one probe
 * of /v1/health and /v1/labels at a time (on start, on an alarm, on a settings change, when a
 * picture finds the server down). The record is stored (storage.local[HEALTH_KEY]) whenever
 * anything a page reads of it changes, so pages and a restarted worker see the same one.
 */
import { API_ERROR, diagnoseConnection } from '../shared/api.js';
import { CATEGORIES_KEY, HEALTH_KEY } from '../shared/storage_keys.js';

/** Which server answered (model, mode, version): another one gives other scores. '' before any answer. */
export const serverIdentity = (h) => (h?.server ? `${h.server.model}|${h.server.mode}|${h.server.version}` : '');

/** What pages and content scripts read from the stored record: a change in any of it is stored. */
export const healthKey = (h) => JSON.stringify([h?.state, h?.message, serverIdentity(h), h?.server?.cost?.perPictureMs ?? null,
  h?.server?.randomWeights ?? null, h?.server?.setup?.state ?? null]);

/**
 * The health watch. `getSettings` resolves to the settings ({serverUrl, token}); `onNewServer`
 * runs when another server (serverIdentity) answers up; `onStored` after a changed record is
 * stored (the badges repaint); `onCategories(categories)` after a changed category list is stored.
 */
export function createHealthWatch({ ext, getSettings, onNewServer, onStored, onCategories }) {
  let health = null; // the last health record (mirrors storage.local[HEALTH_KEY])
  let healthPromise = null;
  let lastCheckAt = 0;

  const isUp = () => health?.state === 'ok';

  async function setHealth(next) {
    const previous = health;
    health = { ...next, checkedAt: Date.now() };
    if (serverIdentity(previous) !== serverIdentity(health) && health.state === 'ok') onNewServer();
    if (healthKey(previous) !== healthKey(health)) {
      await ext.storage.local.set({ [HEALTH_KEY]: health });
      await onStored();
    }
    return health;
  }

  async function storeCategories(categories) {
    const stored = (await ext.storage.local.get(CATEGORIES_KEY))[CATEGORIES_KEY];
    if (JSON.stringify(stored) !== JSON.stringify(categories)) {
      await ext.storage.local.set({ [CATEGORIES_KEY]: categories });
      await onCategories(categories);
    }
  }

  /** Probe /v1/health and the warning categories (/v1/labels); one probe at a time. */
  function check() {
    if (!healthPromise) {
      healthPromise = (async () => {
        lastCheckAt = Date.now();
        const settings = await getSettings();
        const d = await diagnoseConnection({
          serverUrl: settings.serverUrl,
          token: settings.token,
          extensionOrigin: ext.runtime.getURL('').replace(/\/$/, ''),
        });
        if (d.ok) await storeCategories(d.categories);
        if (d.kind === API_ERROR.BUSY && health !== null) return health; // it answered: up, only busy
        return setHealth({ state: d.kind, message: d.message, server: d.health ?? null });
      })().finally(() => {
        healthPromise = null;
      });
    }
    return healthPromise;
  }

  return {
    /** The last health record, null before the first probe or stored record. */
    get current() {
      return health;
    },
    /** Date.now() of the last probe's start (0: none in this worker life). */
    get lastCheckAt() {
      return lastCheckAt;
    },
    /** A restarted worker reads back the stored record (once: a probe's own record wins). */
    async loadStored() {
      if (health === null) health = (await ext.storage.local.get(HEALTH_KEY))[HEALTH_KEY] ?? null;
    },
    check,
    isUp,
    /** A known, failed health check (not one still to come). */
    isKnownDown: () => health !== null && !isUp(),
    /** The server's warning categories as last stored (an empty list before the first health check). */
    async loadCategories() {
      return (await ext.storage.local.get(CATEGORIES_KEY))[CATEGORIES_KEY] ?? [];
    },
  };
}
