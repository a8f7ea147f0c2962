/**
 * Puts a record's state into the page: its hiding state (hiding.js), its warning card (warning.js)
 * on the one member of its picture's group that shows it best (image_state.js choosePrimary), and
 * a video's playback. The state machine (image_state.js) decides; this module only writes.
 */
import { STATE, choosePrimary, hasOverlay, isHidden } from './image_state.js';
import { showState } from './hiding.js';

export class Painter {
  /**
   * @param {{warnings, groupOf: (rec) => object[], recordOf: (el) => object|undefined}} deps
   *   `groupOf`: the records showing one picture in one place; `recordOf`: an element's own record.
   */
  constructor({ warnings, groupOf, recordOf }) {
    this.warnings = warnings;
    this.groupOf = groupOf;
    this.recordOf = recordOf;
  }

  /**
   * Put the record's state into the page, and its warning. One picture shown by several elements
   * in one place gets one warning, on the member that shows it best (choosePrimary).
   */
  paint(rec) {
    showState(rec);
    if (rec.kind === 'video') this.holdPlayback(rec.el);
    const group = this.groupOf(rec);
    const primary = choosePrimary(group.filter((r) => hasOverlay(r.state)));
    for (const member of group) {
      if (member === primary) this.warnings.sync(member);
      else this.warnings.remove(member);
    }
  }

  /**
   * A video plays only once it is decided and not covered: a pending, waiting or flagged one is
   * paused (and paused again if the page starts it); one we paused resumes when it is shown.
   */
  holdPlayback(video) {
    const rec = this.recordOf(video);
    if (!rec || rec.kind !== 'video') return;
    const covered = isHidden(rec) || rec.state === STATE.FLAGGED;
    if (covered && !video.paused) {
      rec.pausedByUs = true;
      video.pause();
    } else if (!covered && rec.pausedByUs) {
      rec.pausedByUs = false;
      video.play()?.catch?.(() => {}); // a page or browser that forbids autoplay keeps it paused
    }
  }
}
