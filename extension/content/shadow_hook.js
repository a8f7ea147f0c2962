// Runs in the page's own JavaScript world (manifest "world": "MAIN"), at document_start, before
// the page's scripts: the only place that can learn that a shadow root, closed ones included, was
// attached to an element already in the page. It announces each new root with an event on its
// host and nothing else; the isolated content script (loader.js, dom_watcher.js) reads the root
// through chrome.dom.openOrClosedShadowRoot (Chromium) or Element.openOrClosedShadowRoot
// (Firefox), which page scripts do not have, so a closed root stays closed to the page.
// It also announces that a <canvas> was drawn on (a picture drawn or put on it), once per canvas
// after the page's script that drew it has run (a microtask, before the next paint), so the
// content script reads the new drawing before it is painted (canvas_pixels.js). And it switches
// the pre-hide rules off once the gap rules' clock ends (the add-on went away).
(() => {
  const SHADOW_ROOT_EVENT = 'simclip-shadow-root'; // shared/page_events.js
  const attach = Element.prototype.attachShadow;
  if (typeof attach !== 'function') return;
  Object.defineProperty(Element.prototype, 'attachShadow', {
    configurable: true,
    enumerable: false,
    writable: true,
    value: function attachShadow(init) {
      const root = attach.call(this, init);
      this.dispatchEvent(new Event(SHADOW_ROOT_EVENT));
      return root;
    },
  });

  const CANVAS_DRAWN_EVENT = 'simclip-canvas-drawn'; // shared/page_events.js
  const drawn = new Set();
  let queued = false;
  const announce = () => {
    queued = false;
    const canvases = [...drawn];
    drawn.clear();
    for (const canvas of canvases) canvas.dispatchEvent(new Event(CANVAS_DRAWN_EVENT));
  };
  const wrap = (proto, name) => {
    const original = proto?.[name];
    if (typeof original !== 'function') return;
    Object.defineProperty(proto, name, {
      configurable: true,
      enumerable: false,
      writable: true,
      value: {
        [name](...args) {
          const result = original.apply(this, args);
          const canvas = this.canvas;
          if (canvas instanceof HTMLCanvasElement && canvas.isConnected) {
            drawn.add(canvas);
            if (!queued) {
              queued = true;
              queueMicrotask(announce);
            }
          }
          return result;
        },
      }[name],
    });
  };
  wrap(globalThis.CanvasRenderingContext2D?.prototype, 'drawImage');
  wrap(globalThis.CanvasRenderingContext2D?.prototype, 'putImageData');
  wrap(globalThis.ImageBitmapRenderingContext?.prototype, 'transferFromImageBitmap');

  // The gap rules' clock ended (loader.js, tools/shadow_css.mjs): prehide.css has been missing for
  // 30 s, so the add-on was disabled or removed, not updated, and its scripts are gone with it.
  // This world outlives them: every rule is switched off, the page gets its pictures back.
  const GAP_CLOCK = 'simclip-gap-clock';
  addEventListener('animationend', (e) => {
    const root = document.documentElement;
    if (e.isTrusted && e.animationName === GAP_CLOCK && e.target === root) root.setAttribute('data-simclip-off', 'orphaned');
  }, true);
})();
