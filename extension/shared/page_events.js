/**
 * The events the main-world hook (content/shadow_hook.js) dispatches on page elements for the
 * content script. The classic scripts cannot import this module (the hook runs in the page's
 * world, loader.js is not a module), so each carries the same string, checked by
 * test/unit/page_events.test.js.
 */

/** Dispatched on a host element that just got a shadow root (closed ones included). */
export const SHADOW_ROOT_EVENT = 'simclip-shadow-root';

/** Dispatched on a <canvas> after the page's script drew a picture on it. */
export const CANVAS_DRAWN_EVENT = 'simclip-canvas-drawn';

/** Dispatched on the document after the page's script changed a stylesheet through the CSSOM. */
export const STYLESHEETS_CHANGED_EVENT = 'simclip-stylesheets-changed';

/** Dispatched on the document after the page's script set a form control's `checked` or started `element.animate()`. */
export const STATE_CHANGED_EVENT = 'simclip-state-changed';

/**
 * Dispatched on the document after the page's script gave stylesheet rules a picture (a rule
 * inserted, a declaration set, a sheet enabled or replaced), a CustomEvent whose `detail` is a
 * JSON list of those rules' selectors, or '' when there were too many to list.
 */
export const PICTURE_RULES_EVENT = 'simclip-picture-rules';
