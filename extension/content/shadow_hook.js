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
   * `proto[name]` wrapped: after the page's call, `announce(receiver)` when `when(receiver,
   * result)` (a method that returns a promise announces once it resolves). Its name and behaviour
   * stay.
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
          if (when(this, result)) {
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
  // The selectors of the rules a change gave a picture (a url(), an image-set(), a var()): the
  // elements they style may have shown none before, so nothing tracks them yet, and the content
  // script looks at them at once instead of at its next sweep. Listed once per task, in the same
  // microtask order as the announcement above; past MAX_PICTURE_RULES, '' (the sweep finds them).
  const PICTURE_RULES_EVENT = 'simclip-picture-rules'; // shared/page_events.js
  const PICTURE_VALUE = /url\(|image-set\(|var\(/i;
  const MAX_PICTURE_RULES = 64;
  let pictureRules = null; // this task's selectors, or null
  let tooMany = false;
  const notePictureRules = (rules, depth = 0) => {
    for (const rule of rules ?? []) {
      if (!rule || depth > 8) continue;
      if (rule.cssRules) notePictureRules(rule.cssRules, depth + 1); // @media, @supports, @layer, nesting
      if (typeof rule.selectorText !== 'string' || !PICTURE_VALUE.test(rule.style?.cssText ?? '')) continue;
      if (!pictureRules) {
        pictureRules = new Set();
        queueMicrotask(() => {
          const detail = tooMany ? '' : JSON.stringify([...pictureRules]);
          pictureRules = null;
          tooMany = false;
          document.dispatchEvent(new CustomEvent(PICTURE_RULES_EVENT, { detail }));
        });
      }
      if (pictureRules.size >= MAX_PICTURE_RULES) tooMany = true;
      else pictureRules.add(rule.selectorText);
    }
  };
  const rulesOf = (sheet) => {
    try {
      return sheet?.cssRules ?? [];
    } catch {
      return []; // cross-origin
    }
  };
  const sheetProto = globalThis.CSSStyleSheet?.prototype;
  const groupProto = globalThis.CSSGroupingRule?.prototype; // @media, @supports, @layer blocks, nested rules
  const inserted = (owner, index) => {
    notePictureRules([rulesOf(owner)[index]]);
    return true;
  };
  for (const proto of [sheetProto, groupProto]) {
    wrapMethod(proto, 'insertRule', inserted, announceSheets);
    wrapMethod(proto, 'deleteRule', always, announceSheets);
  }
  wrapMethod(sheetProto, 'addRule', (sheet) => inserted(sheet, rulesOf(sheet).length - 1), announceSheets);
  wrapMethod(sheetProto, 'replaceSync', (sheet) => notePictureRules(rulesOf(sheet)) || true, announceSheets);
  for (const name of ['removeRule', 'replace']) wrapMethod(sheetProto, name, always, announceSheets);
  // a sheet enabled gives its rules' elements their pictures
  const enabled = (owner) => {
    const sheet = owner?.sheet ?? owner;
    if (sheet && !sheet.disabled) notePictureRules(rulesOf(sheet));
    return true;
  };
  for (const proto of [globalThis.StyleSheet?.prototype, globalThis.HTMLStyleElement?.prototype, globalThis.HTMLLinkElement?.prototype]) {
    wrapSetter(proto, 'disabled', enabled);
  }
  /** `proto[name]`'s getter wrapped: the page gets `after(receiver, value)`. Its name stays. */
  const wrapGetter = (proto, name, after) => {
    const desc = proto && Object.getOwnPropertyDescriptor(proto, name);
    if (typeof desc?.get !== 'function' || !desc.configurable) return null;
    const { get } = desc;
    const getter = Object.getOwnPropertyDescriptor({ get [name]() { return after(this, get.call(this)); } }, name).get;
    Object.defineProperty(proto, name, { ...desc, get: getter });
    return get;
  };
  // The adopted sheets: set (the setter), or changed in place (an ObservableArray: push, splice, an
  // index written, with no setter call), which the getter's array, handed to the page through one
  // proxy per array, announces. A sheet a root adopts for the first time has its picture rules
  // listed: its elements may have shown none before.
  const adoptedBy = new WeakMap(); // root -> WeakSet of the sheets it adopted
  const noteAdopted = (root, sheet) => {
    if (!sheet || typeof sheet !== 'object' || !('cssRules' in sheet)) return;
    if (!adoptedBy.has(root)) adoptedBy.set(root, new WeakSet());
    if (adoptedBy.get(root).has(sheet)) return;
    adoptedBy.get(root).add(sheet);
    notePictureRules(rulesOf(sheet));
  };
  const proxies = new WeakMap(); // an adopted-sheets array -> the proxy the page gets
  const inPlace = (root) => ({
    set(target, key, value) {
      const done = Reflect.set(target, key, value);
      if (done) {
        noteAdopted(root, value);
        announceSheets();
      }
      return done;
    },
    deleteProperty(target, key) {
      const done = Reflect.deleteProperty(target, key);
      if (done) announceSheets();
      return done;
    },
  });
  for (const proto of [globalThis.Document?.prototype, globalThis.ShadowRoot?.prototype]) {
    const get = wrapGetter(proto, 'adoptedStyleSheets', (root, array) => {
      if (!array || typeof array !== 'object') return array;
      if (!proxies.has(array)) proxies.set(array, new Proxy(array, inPlace(root)));
      return proxies.get(array);
    });
    if (!get) continue;
    wrapSetter(proto, 'adoptedStyleSheets', (root) => {
      for (const sheet of get.call(root) ?? []) noteAdopted(root, sheet);
      return true;
    });
  }
  // a rule's declarations (an element's own style attribute is a DOM change, seen already)
  const inRule = (style) => {
    if (!style?.parentRule) return false;
    notePictureRules([style.parentRule]);
    return true;
  };
  const declProto = globalThis.CSSStyleDeclaration?.prototype;
  for (const name of ['setProperty', 'removeProperty']) wrapMethod(declProto, name, inRule, announceSheets);
  // the named properties live on a subclass's prototype in some engines (CSSStyleProperties, CSS2Properties)
  const propertyProtos = [globalThis.CSSStyleProperties?.prototype, globalThis.CSS2Properties?.prototype, declProto];
  for (const name of ['cssText', 'background', 'backgroundImage', 'content', 'listStyle', 'listStyleImage', 'borderImage',
    'borderImageSource']) {
    for (const proto of propertyProtos) wrapSetter(proto, name, inRule);
  }
  const noteRule = (rule) => notePictureRules([rule]) || true;
  wrapSetter(globalThis.CSSRule?.prototype, 'cssText', noteRule);
  wrapSetter(globalThis.CSSStyleRule?.prototype, 'selectorText', noteRule); // the same picture on other elements now
  // A media list changed through the CSSOM (`mediaText`, `appendMedium`, `deleteMedium`, or the
  // owner's `media` set): the rules of its @media block or sheet may apply now, and their picture
  // rules are listed. A list does not name its owner: the `media` getters that hand it out note it.
  const mediaOwners = new WeakMap(); // MediaList -> its @media rule or sheet
  const mediaChanged = (list) => {
    const owner = mediaOwners.get(list);
    if (owner) notePictureRules(rulesOf(owner));
    return true;
  };
  for (const proto of [globalThis.CSSMediaRule?.prototype, globalThis.StyleSheet?.prototype]) {
    const get = wrapGetter(proto, 'media', (owner, list) => {
      if (list && typeof list === 'object') mediaOwners.set(list, owner);
      return list;
    });
    if (get) wrapSetter(proto, 'media', (owner) => notePictureRules(rulesOf(owner)) || true);
  }
  const mediaProto = globalThis.MediaList?.prototype;
  wrapSetter(mediaProto, 'mediaText', mediaChanged);
  for (const name of ['appendMedium', 'deleteMedium']) wrapMethod(mediaProto, name, mediaChanged, announceSheets);

  // A state a selector reads changed by a script, with no event and no DOM change (`:checked`,
  // `:indeterminate`), or an animation started or changed from a script (`element.animate()`, an
  // animation cancelled, finished, replayed...): announced the same way, on the document, once per
  // task (the content script reads the pictures near the viewport again; a running animation of
  // a picture, or of a size around a query container, is then read every frame). An animation of
  // nothing that can change a picture (a spinner's transform, a fade's opacity: most of them) is
  // not announced, as each announcement costs a read of every picture near the viewport.
  const STATE_CHANGED_EVENT = 'simclip-state-changed'; // shared/page_events.js
  const announceState = announcer(STATE_CHANGED_EVENT);
  for (const name of ['checked', 'indeterminate']) wrapSetter(globalThis.HTMLInputElement?.prototype, name, always, announceState);
  // keyframe properties that can change a picture: its own (repaint_watch.js PICTURE_PROPERTIES) or
  // a size a container query reads (SIZE_PROPERTIES); a custom property may hold either
  const MAY_SWITCH = /^(background|backgroundImage|content|listStyle|listStyleImage|borderImage|borderImageSource)$|^--|^(width|height|inlineSize|blockSize|min|max|flex|gridTemplate|padding|border\w*Width|fontSize|zoom|aspectRatio)/;
  const switchesByEffect = new WeakMap();
  const maySwitchPicture = (animation) => {
    const effect = animation?.effect;
    if (!effect || typeof effect.getKeyframes !== 'function') return true; // unknown: announce
    if (!switchesByEffect.has(effect)) {
      let found = false;
      try {
        for (const frame of effect.getKeyframes()) if (Object.keys(frame).some((key) => MAY_SWITCH.test(key))) found = true;
      } catch {
        found = true;
      }
      switchesByEffect.set(effect, found);
    }
    return switchesByEffect.get(effect);
  };
  const animationProto = globalThis.Animation?.prototype;
  for (const name of ['cancel', 'finish', 'play', 'pause', 'reverse', 'updatePlaybackRate', 'commitStyles']) {
    wrapMethod(animationProto, name, maySwitchPicture, announceState);
  }
  for (const name of ['currentTime', 'startTime', 'playbackRate', 'timeline']) wrapSetter(animationProto, name, maySwitchPicture, announceState);
  wrapSetter(animationProto, 'effect', always, announceState);
  const keyframesChanged = (effect) => switchesByEffect.delete(effect) || true; // read again at the next call
  wrapMethod(globalThis.KeyframeEffect?.prototype, 'setKeyframes', keyframesChanged, announceState);
  wrapSetter(globalThis.KeyframeEffect?.prototype, 'target', always, announceState);
  wrapMethod(globalThis.Element?.prototype, 'animate', (el, animation) => maySwitchPicture(animation), announceState);

  // The gap rules' clock ended (loader.js, tools/shadow_css.mjs): prehide.css has been missing for
  // 30 s, so the add-on was disabled or removed, not updated, and its scripts are gone with it.
  // This world outlives them: every rule is switched off, the page gets its pictures back.
  const GAP_CLOCK = 'simclip-gap-clock';
  addEventListener('animationend', (e) => {
    const root = document.documentElement;
    if (e.isTrusted && e.animationName === GAP_CLOCK && e.target === root) root.setAttribute('data-simclip-off', 'orphaned');
  }, true);
})();
