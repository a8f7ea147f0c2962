// Classic content script (manifest content scripts cannot be ES modules): load the module graph.
//
// Until it has loaded, a stop-gap observer hides CSS background images set by stylesheets (the
// pre-hide stylesheet covers <img> and inline styles, but cannot know which rules set a
// background), and ::before / ::after pictures. It keeps the value it saw in data-simclip-early
// (data-simclip-early-before, -after) for the real watcher. The
// pre-hide stylesheet does not reach into shadow roots: each root found (announced by
// shadow_hook.js, or met under an added node) adopts SHADOW_CSS, the same rules, at once, and is
// watched like the document (its added nodes, and roots attached inside it).
// If loading fails, every pre-hide rule is switched off so the page never loses its images.
// The worker injects this file again into the tabs that were open when the extension was
// installed, updated, reloaded or enabled (background/service_worker.js): a frame where this
// extension's script already runs is left alone.
(() => {
  if (globalThis.simclipContentScript === true) return;
  globalThis.simclipContentScript = true;
  const ext = globalThis.browser ?? globalThis.chrome;
  const SHADOW_ROOT_EVENT = 'simclip-shadow-root'; // shared/page_events.js
  // prehide.css for shadow roots (the document's `html:not([data-simclip-off])` becomes the sheet's `disabled`).
  const SHADOW_CSS = globalThis.simclipShadowCss ?? ''; // content/shadow_css.js, built from prehide.css
  const shadow = { sheet: null, styles: [], roots: new Set(), getRoot: null, adopt: null, setDisabled: null };
  // Until main.js takes over: the roots this script listens on for roots attached inside them.
  // shadow_hook.js's event does not leave the root its host is in, so a closed root attached
  // inside another (nested web components) is heard only there: listening on the document alone
  // let its pictures paint before the modules loaded (seen in CI).
  let earlyRoots = new Set();
  shadow.getRoot = (el) => {
    try {
      return ext.dom?.openOrClosedShadowRoot?.(el) ?? el.openOrClosedShadowRoot ?? el.shadowRoot ?? null;
    } catch {
      return el.shadowRoot ?? null;
    }
  };
  /** Put the hiding rules into `root` (again, if the page replaced its adopted sheets). */
  shadow.adopt = (root) => {
    shadow.roots.add(root);
    if (earlyRoots && !earlyRoots.has(root)) {
      earlyRoots.add(root);
      root.addEventListener(SHADOW_ROOT_EVENT, onShadowRoot, true);
      // what is added inside it later, and what it holds now (roots in it, stylesheet backgrounds)
      early.observe(root, { childList: true, subtree: true });
      lookInside(root);
      if (!inCallback) writeFound(); // else the observer's callback writes once all is read
    }
    try {
      if (!shadow.sheet) {
        shadow.sheet = new CSSStyleSheet();
        shadow.sheet.replaceSync(SHADOW_CSS);
      }
      if (!Array.from(root.adoptedStyleSheets).includes(shadow.sheet)) {
        root.adoptedStyleSheets = [...root.adoptedStyleSheets, shadow.sheet];
      }
    } catch {
      if (!root.querySelector('style[data-simclip-style]')) { // no constructable sheets here: a <style> child
        const style = document.createElement('style');
        style.setAttribute('data-simclip-style', '');
        style.textContent = SHADOW_CSS;
        root.prepend(style);
        shadow.styles.push(style);
      }
    }
  };
  /** Switch the rules off in every shadow root (paused on this site, or the script failed), or on. */
  shadow.setDisabled = (disabled) => {
    if (shadow.sheet) shadow.sheet.disabled = disabled;
    for (const style of shadow.styles) style.disabled = disabled;
  };
  function onShadowRoot(e) {
    const root = shadow.getRoot(e.target);
    if (root) shadow.adopt(root);
  }
  document.addEventListener(SHADOW_ROOT_EVENT, onShadowRoot, true);
  /** main.js's watcher listens from now on (on the document and on every root it observes). */
  const stopListening = () => {
    document.removeEventListener(SHADOW_ROOT_EVENT, onShadowRoot, true);
    for (const root of earlyRoots) root.removeEventListener(SHADOW_ROOT_EVENT, onShadowRoot, true);
    earlyRoots = null;
    emptyHosts = null;
  };

  const found = []; // [element, attribute, value]
  let inCallback = false; // in the early observer's callback (it reads everything, then writes)
  const writeFound = () => {
    for (const [el, name, value] of found.splice(0)) el.setAttribute(name, value); // reads first, then writes
  };
  // A declarative root (<template shadowrootmode>) is attached by the parser with no event and
  // no document mutation, sometimes just after this script saw its host, still empty, inserted
  // (a closed one's picture then painted before the modules loaded: seen in CI). Such hosts are
  // looked at again before each paint, until main.js takes over.
  const HOST_TAGS = new Set(['article', 'aside', 'blockquote', 'body', 'div', 'footer', 'h1', 'h2', 'h3', 'h4',
    'h5', 'h6', 'header', 'main', 'nav', 'p', 'section', 'span']); // the elements that can have a shadow root
  let emptyHosts = new Set();
  let frameAsked = false;
  const recheckHosts = () => {
    frameAsked = false;
    if (!emptyHosts) return;
    for (const el of emptyHosts) {
      const root = shadow.getRoot(el);
      if (root) {
        emptyHosts.delete(el);
        shadow.adopt(root);
      }
    }
    if (emptyHosts.size > 0) {
      frameAsked = true;
      requestAnimationFrame(recheckHosts);
    }
  };
  const look = (el) => {
    const root = shadow.getRoot(el);
    if (root) shadow.adopt(root);
    else if (emptyHosts && !el.firstChild && (el.localName.includes('-') || HOST_TAGS.has(el.localName))) {
      emptyHosts.add(el);
      if (!frameAsked) {
        frameAsked = true;
        requestAnimationFrame(recheckHosts);
      }
    }
    const bg = getComputedStyle(el).backgroundImage;
    if (bg && bg.includes('url(') && !(el.getAttribute('style') ?? '').includes('url(')) found.push([el, 'data-simclip-early', bg]);
    for (const part of ['before', 'after']) {
      const pseudo = getComputedStyle(el, `::${part}`);
      const content = pseudo.content;
      if (content && content !== 'none' && content !== 'normal' && `${pseudo.backgroundImage} ${content}`.includes('url(')) {
        found.push([el, `data-simclip-early-${part}`, '']);
      }
    }
  };
  /** look() at every element under `node` (an element or a shadow root), <img> aside. */
  const lookInside = (node) => {
    for (const el of node.querySelectorAll('*')) if (el.tagName !== 'IMG') look(el);
  };
  const early = new MutationObserver((records) => {
    inCallback = true;
    try {
      for (const r of records) {
        for (const node of r.addedNodes) {
          if (node.nodeType !== 1 || node.tagName === 'IMG') continue;
          look(node);
          lookInside(node);
        }
      }
    } finally {
      inCallback = false;
    }
    writeFound();
  });
  early.observe(document, { childList: true, subtree: true });
  import(ext.runtime.getURL('content/main.js'))
    .then((m) => m.start({
      stopEarlyWatch: () => {
        early.disconnect();
        stopListening();
      },
      shadow,
    }))
    .catch((e) => {
      early.disconnect();
      stopListening();
      const root = document.documentElement;
      if (root) root.setAttribute('data-simclip-off', 'error');
      shadow.setDisabled(true);
      console.warn('SimCLIP Meme Shield: content script failed, images are shown unchecked', e);
    });
})();
