/**
 * The toolbar badge: each tab's flagged count (the sum of what its frames report, kept in
 * storage.session[TAB_COUNTS_KEY] so a restarted worker still knows it), or a red '!' on every
 * tab while the server is known to be down.
 */
import { MSG } from '../shared/messages.js';
import { createSerialLane } from '../shared/queue.js';
import { TAB_COUNTS_KEY, sumTabCount } from '../shared/storage_keys.js';

export const BADGE_COLOR = Object.freeze({ ok: '#5b2a86', down: '#b3261e' });

/** What the badge shows: '!' while the server is down, else the flagged count ('' for none). */
export const badgeText = (down, flagged) => (down ? '!' : flagged > 0 ? String(flagged) : '');

/**
 * The stored counts with one tab's changed (in place; returned): `null` forgets a frame
 * (`frameId`) or, without one, the whole tab; a count without a frame replaces the tab's frames.
 */
export function updateTabCounts(counts, tabId, flagged, frameId = null) {
  if (frameId === null) {
    if (flagged === null) delete counts[tabId];
    else counts[tabId] = { 0: flagged };
  } else {
    const frames = typeof counts[tabId] === 'object' && counts[tabId] !== null ? counts[tabId] : {};
    if (flagged === null) delete frames[frameId];
    else frames[frameId] = flagged;
    counts[tabId] = frames;
  }
  return counts;
}

/**
 * The badges. `ready()` resolves once the stored health is loaded (the colour depends on it);
 * `health` is the health watch (isKnownDown, current).
 */
export function createBadges({ ext, ready, health }) {
  // Count updates and badge repaints run one at a time, in the order they arrive: two overlapping
  // read-modify-writes of the stored counts would lose one, and a slower older update could paint
  // over a newer badge.
  const badgeLane = createSerialLane();

  async function getTabCounts() {
    return (await ext.storage.session.get(TAB_COUNTS_KEY))[TAB_COUNTS_KEY] ?? {};
  }

  async function paintBadge(tabId, flagged) {
    const down = health.isKnownDown();
    try {
      await ext.action.setBadgeText({ tabId, text: badgeText(down, flagged) });
      await ext.action.setBadgeBackgroundColor({ tabId, color: down ? BADGE_COLOR.down : BADGE_COLOR.ok });
    } catch {
      // the tab is gone
    }
  }

  /**
   * Store and paint a tab's flagged count: each frame (the page, its iframes) reports its own, and
   * the badge shows their sum. `null` forgets a frame (`frameId`) or, without one, a closed or
   * reloaded tab. Every tab that reported is kept (zero too) and repainted on a health change: a
   * tab-specific '' would otherwise hide the global '!' of a down server.
   */
  function setTabCount(tabId, flagged, frameId = null) {
    return badgeLane(async () => {
      await ready();
      const counts = updateTabCounts(await getTabCounts(), tabId, flagged, frameId);
      await ext.storage.session.set({ [TAB_COUNTS_KEY]: counts });
      if (counts[tabId] !== undefined) await paintBadge(tabId, sumTabCount(counts[tabId]));
    });
  }

  /**
   * A tab started loading another page: its count is 0 again. A page shown again from the
   * back/forward cache may have reported its count before this event, so its top frame is asked
   * (a new page's script is not there yet, or counts 0; a tab with no content script is left at 0).
   * Resolves once the tab's count is stored and painted; never rejects.
   */
  async function pageLoading(tabId) {
    const reset = setTabCount(tabId, 0);
    const asked = ext.tabs.sendMessage(tabId, { type: MSG.GET_PAGE_STATE }, { frameId: 0 })
      .then((state) => {
        if (Number.isInteger(state?.flagged) && state.flagged > 0) return setTabCount(tabId, state.flagged, 0);
      })
      .catch(() => {}); // no content script in the tab (yet)
    await Promise.allSettled([reset, asked]);
  }

  return {
    setTabCount,
    pageLoading,
    /** Repaint the global badge and title and every tab that reported (after a health change). */
    refresh() {
      return badgeLane(async () => {
        const down = health.isKnownDown();
        await ext.action.setBadgeText({ text: down ? '!' : '' });
        await ext.action.setBadgeBackgroundColor({ color: down ? BADGE_COLOR.down : BADGE_COLOR.ok });
        await ext.action.setTitle({ title: down ? `SimCLIP Meme Shield: ${health.current.message}` : 'SimCLIP Meme Shield' });
        const counts = await getTabCounts();
        await Promise.all(Object.entries(counts).map(([tabId, frames]) => paintBadge(Number(tabId), sumTabCount(frames))));
      });
    },
  };
}
