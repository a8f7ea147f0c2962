/**
 * The warning categories as the server's GET /v1/labels lists them (docs/api.md), one copy for
 * every unit test. Frozen: a test that needs another list builds its own from these.
 */
export const HARMFUL_CATEGORY = Object.freeze({
  id: 'harmful', name: 'Harmful', description: 'Harmful memes', default_threshold: 0.5,
});
export const MISOGYNY_CATEGORY = Object.freeze({
  id: 'misogynous', name: 'Misogyny', description: 'Misogynous memes', default_threshold: 0.42,
});
export const CATEGORIES = Object.freeze([HARMFUL_CATEGORY, MISOGYNY_CATEGORY]);

/**
 * A storage.StorageArea in memory: `get(key)`, `set(items)`, `remove(key)` as the browser's, with
 * `data` the stored items and `nextSet()` resolving with the items of the next `set` (a test
 * waits for a store, never sleeps for it).
 */
export function memoryStorage(initial = {}) {
  const data = { ...initial };
  const waiting = [];
  return {
    data,
    get: async (key) => ({ [key]: data[key] }),
    set: async (items) => {
      Object.assign(data, items);
      for (const resolve of waiting.splice(0)) resolve(items);
    },
    remove: async (key) => {
      delete data[key];
    },
    nextSet: () => new Promise((resolve) => waiting.push(resolve)),
  };
}
