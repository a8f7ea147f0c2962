/**
 * The worker's settings and its API client for the local server, built once per worker life and
 * again after the settings change (storage.local[SETTINGS_KEY]). Building them also reads back
 * what a restarted worker needs first (the stored health) and the formats this browser turns by
 * EXIF orientation and the display rules it follows, which the client sends with every picture.
 */
import { createApiClient } from '../shared/api.js';
import { loadSettings } from '../shared/settings.js';
import { SETTINGS_KEY } from '../shared/storage_keys.js';

/**
 * Does a storage.onChanged event change the settings, and with them the server the worker talks
 * to? `{settings, server}`: `settings` when any setting changed, `server` when the server URL or
 * the token did (another server, or another pairing, gives other answers).
 *
 * @param {Record<string, {oldValue?: object, newValue?: object}>} changes as storage.onChanged passes them
 * @param {string} area the storage area's name ('local', 'session', 'sync')
 * @returns {{settings: boolean, server: boolean}}
 */
export function describeSettingsChange(changes, area) {
  if (area !== 'local' || !changes[SETTINGS_KEY]) return { settings: false, server: false };
  const before = changes[SETTINGS_KEY].oldValue ?? {};
  const after = changes[SETTINGS_KEY].newValue ?? {};
  return { settings: true, server: before.serverUrl !== after.serverUrl || before.token !== after.token };
}

/**
 * The runtime source. `storage` is the StorageArea holding the settings (storage.local);
 * `beforeBuild()` runs before each build (the health watch reads back its stored record);
 * `getDisplay()` resolves to the client's `{exifFormats, displayRules}` (orientation.js).
 *
 * @param {{storage: {get: Function}, beforeBuild?: () => Promise<void>,
 *   getDisplay?: () => Promise<{exifFormats: string[] | null, displayRules: string[]}>}} options
 * @returns {{get: () => Promise<{settings: object, client: object}>, getSettings: () => Promise<object>,
 *   getClient: () => Promise<object>, onStorageChanged: (changes: object, area: string) => {settings: boolean, server: boolean}}}
 *   `get` rejects when the settings cannot be read or the stored server URL is not a local one
 *   (createApiClient's TypeError); a failed build is not kept, so the next call tries again.
 */
const UNMEASURED = { exifFormats: null, displayRules: [] };

export function createRuntime({ storage, beforeBuild = async () => {}, getDisplay = async () => UNMEASURED }) {
  let runtimePromise = null; // memoised {settings, client}; reset when settings change or on failure

  function get() {
    if (!runtimePromise) {
      runtimePromise = (async () => {
        const settings = await loadSettings(storage);
        await beforeBuild();
        const { exifFormats, displayRules } = await getDisplay();
        return { settings, client: createApiClient({ serverUrl: settings.serverUrl, token: settings.token, exifFormats, displayRules }) };
      })();
      runtimePromise.catch(() => {
        runtimePromise = null;
      });
    }
    return runtimePromise;
  }

  return {
    get,
    getSettings: async () => (await get()).settings,
    getClient: async () => (await get()).client,
    /** storage.onChanged: a settings change drops the built runtime; says what changed (describeSettingsChange). */
    onStorageChanged(changes, area) {
      const change = describeSettingsChange(changes, area);
      if (change.settings) runtimePromise = null;
      return change;
    },
  };
}
