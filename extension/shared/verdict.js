/**
 * From the server's scores to the warnings a user sees. The server sends a score per category
 * and a default threshold per category (`/v1/labels`); the user's sensitivity moves each
 * threshold in logit space, so level 3 keeps the server's threshold and every step scales the
 * odds needed to flag by the same factor, whatever the base threshold.
 */
import { SENSITIVITY, isCategoryEnabled } from './settings.js';

const LOGIT_STEP = 0.8; // one sensitivity step multiplies the flagging odds by e^0.8 ~ 2.2
const EPS = 1e-4;

const logit = (p) => Math.log(p / (1 - p));
const sigmoid = (x) => 1 / (1 + Math.exp(-x));

/** The threshold for one category at a sensitivity level (1 = fewest flags, 5 = most). */
export function thresholdFor(defaultThreshold, sensitivity) {
  const base = Math.min(1 - EPS, Math.max(EPS, Number(defaultThreshold)));
  const level = Math.min(SENSITIVITY.max, Math.max(SENSITIVITY.min, Number(sensitivity) || SENSITIVITY.default));
  return sigmoid(logit(base) + (SENSITIVITY.default - level) * LOGIT_STEP);
}

/**
 * The warnings to show for one image: enabled categories whose score reaches the adjusted threshold.
 *
 * @param {Object<string, number>} scores category id -> score in [0, 1] (from /v1/classify)
 * @param {Array<{id, name, default_threshold}>} categories the server's warning categories (from /v1/labels)
 * @param {Object} settings normalised settings
 * @returns {Array<{id, name, score, threshold}>} highest score first
 */
export function listActiveWarnings(scores, categories, settings) {
  const out = [];
  for (const category of categories ?? []) {
    const score = scores?.[category.id];
    if (typeof score !== 'number' || !isCategoryEnabled(settings, category.id)) continue;
    const threshold = thresholdFor(category.default_threshold, settings.sensitivity);
    if (score >= threshold) out.push({ id: category.id, name: category.name, score, threshold });
  }
  return out.sort((a, b) => b.score - a.score);
}

/** "Harmful 91% · Misogyny 64%": the scores, for the extension's own pages and diagnostics. */
export function describeWarnings(warnings) {
  return warnings.map((w) => `${w.name} ${Math.round(w.score * 100)}%`).join(' · ');
}

/**
 * "Harmful · Misogyny": what a warning card says in the page. The page's scripts can read what is
 * drawn in it (its custom properties, its accessible name), so the card names the categories
 * but not the scores (docs/security.md, "Extension: what a page can learn").
 */
export function describeCategories(warnings) {
  return warnings.map((w) => w.name).join(' · ');
}
