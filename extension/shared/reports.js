/**
 * "Report a wrong verdict": corrections kept in storage.local only, never sent anywhere, and
 * exported as JSON Lines for training. One object per line:
 *   {"image_url", "sha256", "correction": "not_flagged"|"flagged", "categories": [...],
 *    "labels": the image's class labels after the correction, "scores", "text", "timestamp"}
 * `labels` are class labels in HarMeme's words ("not harmful" / the category ids), so the Harm-C
 * reader can take the file once the images are downloaded next to it (named by sha256).
 */
import { CORRECTION } from './messages.js';

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

/** The right-click menu on images: "Report a wrong verdict" with one entry per correction. */
const MENU_PARENT = 'simclip-report';
const MENU_NOT_FLAGGED = `${MENU_PARENT}:not_flagged`;
const MENU_FLAG_PREFIX = `${MENU_PARENT}:flag:`;

/** The menu entries for the server's warning categories (`/v1/labels`), parent first. */
export function listReportMenuItems(categories) {
  return [
    { id: MENU_PARENT, title: 'Report a wrong verdict' },
    { id: MENU_NOT_FLAGGED, parentId: MENU_PARENT, title: 'Should not be flagged (false alarm)' },
    ...(categories ?? []).map((category) => ({ id: MENU_FLAG_PREFIX + category.id, parentId: MENU_PARENT, title: `Should be flagged: ${category.name}` })),
  ];
}

/**
 * What a click on a menu entry reports: {correction: NOT_FLAGGED} (the categories are the ones
 * shown for the image), {correction: FLAGGED, categories: [id]}, or null for another menu's entry.
 */
export function parseReportMenuClick(menuItemId) {
  if (menuItemId === MENU_NOT_FLAGGED) return { correction: CORRECTION.NOT_FLAGGED };
  if (typeof menuItemId === 'string' && menuItemId.startsWith(MENU_FLAG_PREFIX) && menuItemId.length > MENU_FLAG_PREFIX.length) {
    return { correction: CORRECTION.FLAGGED, categories: [menuItemId.slice(MENU_FLAG_PREFIX.length)] };
  }
  return null;
}
