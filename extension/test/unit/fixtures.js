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
