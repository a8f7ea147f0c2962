// Runs in the page's own JavaScript world (manifest "world": "MAIN"), at document_start, before
// the page's scripts: the only place that can learn that a shadow root, closed ones included, was
// attached to an element already in the page. It announces each new root with an event on its
// host and nothing else; the isolated content script (loader.js, dom_watcher.js) reads the root
// through chrome.dom.openOrClosedShadowRoot (Chromium) or Element.openOrClosedShadowRoot
// (Firefox), which page scripts do not have, so a closed root stays closed to the page.
// It also announces that a <canvas> was drawn on (a picture drawn or put on it), once per canvas
// after the page's script that drew it has run (a microtask, before the next paint), so the
// content script reads the new drawing before it is painted (canvas_pixels.js). It announces a
// stylesheet changed through the CSSOM, which no MutationObserver reports, and a state changed
// by a script with no event (`checked`, `element.animate()`): dom_watcher.js reads the pictures
// again. And it switches the pre-hide rules off once the gap rules' clock ends
// (the add-on went away).
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

  /**
   * `proto[name]` wrapped: after the page's call, `announce(receiver)` when `when(receiver)` (a
   * method that returns a promise announces once it resolves). Its name and behaviour stay.
   */
  const wrapMethod = (proto, name, when, announce) => {
    const original = proto?.[name];
    if (typeof original !== 'function') return;
    Object.defineProperty(proto, name, {
      configurable: true,
      enumerable: false,
      writable: true,
      value: {
        [name](...args) {
          const result = original.apply(this, args);
          if (when(this)) {
            if (result instanceof Promise) result.then(() => announce(this), () => {});
            else announce(this);
          }
          return result;
        },
      }[name],
    });
  };

  const CANVAS_DRAWN_EVENT = 'simclip-canvas-drawn'; // shared/page_events.js
  const drawn = new Set();
  let queued = false;
  const announceDrawn = () => {
    queued = false;
    const canvases = [...drawn];
    drawn.clear();
    for (const canvas of canvases) canvas.dispatchEvent(new Event(CANVAS_DRAWN_EVENT));
  };
  const onCanvas = (context) => context.canvas instanceof HTMLCanvasElement && context.canvas.isConnected;
  const wrap = (proto, name) => wrapMethod(proto, name, onCanvas, (context) => {
    drawn.add(context.canvas);
    if (!queued) {
      queued = true;
      queueMicrotask(announceDrawn);
    }
  });
  wrap(globalThis.CanvasRenderingContext2D?.prototype, 'drawImage');
  wrap(globalThis.CanvasRenderingContext2D?.prototype, 'putImageData');
  wrap(globalThis.ImageBitmapRenderingContext?.prototype, 'transferFromImageBitmap');

  // A stylesheet changed through the CSSOM (a rule inserted, removed or edited, a sheet disabled
  // or replaced, the adopted sheets set): no MutationObserver reports it, and it may give an
  // element another picture. Announced once per task on the document, after the page's script
  // that changed it (a microtask, before the next paint). The extension's own sheets are changed
  // from its isolated world, through prototypes this does not touch.
  const STYLESHEETS_CHANGED_EVENT = 'simclip-stylesheets-changed'; // shared/page_events.js
  /** A function that dispatches `type` on the document once per task, after the calling script. */
  const announcer = (type) => {
    let queued = false;
    return () => {
      if (queued) return;
      queued = true;
      queueMicrotask(() => {
        queued = false;
        document.dispatchEvent(new Event(type));
      });
    };
  };
  const announceSheets = announcer(STYLESHEETS_CHANGED_EVENT);
  const always = () => true;
  const wrapped = new Set(); // our setters: a property two prototypes share is wrapped once
  const wrapSetter = (proto, name, when = always, announce = announceSheets) => {
    for (let p = proto; p; p = Object.getPrototypeOf(p)) {
      const desc = Object.getOwnPropertyDescriptor(p, name);
      if (!desc) continue;
      if (typeof desc.set !== 'function' || !desc.configurable || wrapped.has(desc.set)) return;
      const { set } = desc;
      const setter = {
        [name](value) {
          set.call(this, value);
          if (when(this)) announce();
        },
      }[name];
      wrapped.add(setter);
      Object.defineProperty(p, name, { ...desc, set: setter });
      return;
    }
  };
  const sheetProto = globalThis.CSSStyleSheet?.prototype;
  for (const name of ['insertRule', 'deleteRule', 'addRule', 'removeRule', 'replace', 'replaceSync']) wrapMethod(sheetProto, name, always, announceSheets);
  for (const proto of [globalThis.StyleSheet?.prototype, globalThis.HTMLStyleElement?.prototype, globalThis.HTMLLinkElement?.prototype]) {
    wrapSetter(proto, 'disabled');
  }
  for (const proto of [globalThis.Document?.prototype, globalThis.ShadowRoot?.prototype]) wrapSetter(proto, 'adoptedStyleSheets');
  // a rule's declarations (an element's own style attribute is a DOM change, seen already)
  const inRule = (style) => Boolean(style?.parentRule);
  const declProto = globalThis.CSSStyleDeclaration?.prototype;
  for (const name of ['setProperty', 'removeProperty']) wrapMethod(declProto, name, inRule, announceSheets);
  // the named properties live on a subclass's prototype in some engines (CSSStyleProperties, CSS2Properties)
  const propertyProtos = [globalThis.CSSStyleProperties?.prototype, globalThis.CSS2Properties?.prototype, declProto];
  for (const name of ['cssText', 'background', 'backgroundImage', 'content', 'listStyleImage']) {
    for (const proto of propertyProtos) wrapSetter(proto, name, inRule);
  }
  wrapSetter(globalThis.CSSRule?.prototype, 'cssText');
  wrapSetter(globalThis.MediaList?.prototype, 'mediaText');

  // A state a selector reads changed by a script, with no event and no DOM change (`:checked`,
  // `:indeterminate`), or an animation started or changed from a script (`element.animate()`, an
  // animation cancelled, finished, replayed...): announced the same way, on the document, once per
  // task (the content script reads the pictures near the viewport again; a running animation of
  // a picture is then read every frame).
  const STATE_CHANGED_EVENT = 'simclip-state-changed'; // shared/page_events.js
  const announceState = announcer(STATE_CHANGED_EVENT);
  for (const name of ['checked', 'indeterminate']) wrapSetter(globalThis.HTMLInputElement?.prototype, name, always, announceState);
  const animationProto = globalThis.Animation?.prototype;
  for (const name of ['cancel', 'finish', 'play', 'pause', 'reverse', 'updatePlaybackRate', 'commitStyles']) {
    wrapMethod(animationProto, name, always, announceState);
  }
  for (const name of ['currentTime', 'startTime', 'playbackRate', 'effect', 'timeline']) wrapSetter(animationProto, name, always, announceState);
  wrapMethod(globalThis.KeyframeEffect?.prototype, 'setKeyframes', always, announceState);
  wrapSetter(globalThis.KeyframeEffect?.prototype, 'target', always, announceState);
  wrapMethod(globalThis.Element?.prototype, 'animate', always, announceState);

  // The gap rules' clock ended (loader.js, tools/shadow_css.mjs): prehide.css has been missing for
  // 30 s, so the add-on was disabled or removed, not updated, and its scripts are gone with it.
  // This world outlives them: every rule is switched off, the page gets its pictures back.
  const GAP_CLOCK = 'simclip-gap-clock';
  addEventListener('animationend', (e) => {
    const root = document.documentElement;
    if (e.isTrusted && e.animationName === GAP_CLOCK && e.target === root) root.setAttribute('data-simclip-off', 'orphaned');
  }, true);
})();
