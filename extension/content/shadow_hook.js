// Runs in the page's own JavaScript world (manifest "world": "MAIN"), at document_start, before
// the page's scripts: the only place that can learn that a shadow root, closed ones included, was
// attached to an element already in the page. It announces each new root with an event on its
// host and nothing else; the isolated content script (loader.js, dom_watcher.js) reads the root
// through chrome.dom.openOrClosedShadowRoot (Chromium) or Element.openOrClosedShadowRoot
// (Firefox), which page scripts do not have, so a closed root stays closed to the page.
(() => {
  const SHADOW_EVENT = 'simclip-shadow-root'; // the same name in loader.js and dom_watcher.js
  const attach = Element.prototype.attachShadow;
  if (typeof attach !== 'function') return;
  Object.defineProperty(Element.prototype, 'attachShadow', {
    configurable: true,
    enumerable: false,
    writable: true,
    value: function attachShadow(init) {
      const root = attach.call(this, init);
      this.dispatchEvent(new Event(SHADOW_EVENT));
      return root;
    },
  });
})();
