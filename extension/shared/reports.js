/**
 * "Report a wrong verdict": corrections kept in storage.local only, never sent anywhere, and
 * exported as JSON Lines for training. One object per line:
 *   {"image_url", "sha256", "correction": "not_flagged"|"flagged", "categories": [...],
 *    "labels": HarMeme-style labels after the correction, "scores", "text", "timestamp"}
 * `labels` uses the HarMeme words ("not harmful" / the category ids), so the Harm-C reader can
 * take the file once the images are downloaded next to it (named by sha256).
 */
import { CORRECTION } from './messages.js';

export const REPORTS_KEY = 'reports';
export const MAX_REPORTS = 5000;

/** One report record. `categories`: the categories the user says were wrong (not_flagged) or missing (flagged). */
export function createReport({ imageUrl, sha256 = '', correction, categories = [], scores = {}, text = '', now = new Date() }) {
  if (!Object.values(CORRECTION).includes(correction)) throw new TypeError(`unknown correction ${correction}`);
  const labels = correction === CORRECTION.FLAGGED ? [...categories] : ['not harmful'];
  return {
    image_url: imageUrl,
    sha256,
    correction,
    categories: [...categories],
    labels,
    scores,
    text,
    timestamp: now.toISOString(),
  };
}

/** The stored list with `report` added; the same image and correction is kept once (latest wins); bounded. */
export function addReport(reports, report) {
  const key = (r) => `${r.sha256 || r.image_url}|${r.correction}`;
  const list = (reports ?? []).filter((r) => key(r) !== key(report));
  list.push(report);
  return list.slice(-MAX_REPORTS);
}

/** Reports -> JSON Lines text (one object per line, newline-terminated). */
export function reportsToJsonl(reports) {
  return (reports ?? []).map((r) => JSON.stringify(r)).join('\n') + ((reports ?? []).length ? '\n' : '');
}
