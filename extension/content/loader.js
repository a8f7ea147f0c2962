// Classic content script (manifest content scripts cannot be ES modules): load the module graph.
//
// Until it has loaded, a stop-gap observer hides CSS background images set by stylesheets (the
// pre-hide stylesheet covers <img> and inline styles, but cannot know which rules set a
// background), ::before / ::after pictures and the style parts (`content`, `list-style-image`,
// `border-image`). It keeps the value it saw in data-simclip-early (data-simclip-early-before,
// -after, -content, -list-style, -border-image) for the real watcher. The
// pre-hide stylesheet does not reach into shadow roots: each root found (announced by
// shadow_hook.js, or met under an added node) adopts SHADOW_CSS, the same rules, at once, and is
// watched like the document (its added nodes, and roots attached inside it).
// If loading fails, every pre-hide rule is switched off so the page never loses its images.
// The worker injects this file again into the tabs that were open when the extension was
// installed, updated, reloaded or enabled (background/open_tabs.js): a frame where this
// extension's script already runs is left alone.
//
// Parts, top to bottom: shadow roots (find one, adopt the rules, listen inside it); the early
// scan (look at each added element, read then write); the declarative-root recheck (empty hosts
// looked at again each frame while the page is parsed, before and after main.js takes over); the
// gap sheet (the pictures stay hidden while an update leaves the tab without prehide.css); the
// hand-over to main.js (or the switch-off if it fails to load).
(() => {
  if (globalThis.simclipContentScript === true) return;
  globalThis.simclipContentScript = true;
  // injected into a page already parsed (an open tab at an install, update or enable), not at document_start
  const startedLate = document.readyState !== 'loading';
  const ext = globalThis.browser ?? globalThis.chrome;
  const SHADOW_ROOT_EVENT = 'simclip-shadow-root'; // shared/page_events.js
  // prehide.css for shadow roots (the document's `html:not([data-simclip-off])` becomes the sheet's `disabled`).
  const SHADOW_CSS = globalThis.simclipShadowCss ?? ''; // content/shadow_css.js, built from prehide.css
  // prehide.css's hiding rules, for the moment an update leaves the tab without it (tools/shadow_css.mjs).
  const GAP_CSS = globalThis.simclipGapCss ?? '';
  const GAP_FIRST_RULE = 'simclip-gap-clock'; // tools/shadow_css.mjs GAP_CLOCK
  const HOST_TAGS = new Set(['article', 'aside', 'blockquote', 'body', 'div', 'footer', 'h1', 'h2', 'h3', 'h4',
    'h5', 'h6', 'header', 'main', 'nav', 'p', 'section', 'span']); // the elements that can have a shadow root

  // main.js's helper for shadow roots (dom_watcher.js, main.js): the roots found, and how.
  // `onLateRoot(root)`: set by main.js, told of a declarative root the recheck found after it took over.
  const shadow = { sheet: null, styles: [], roots: new Set(), getRoot: findRoot, adopt, setDisabled, onLateRoot: null };
  // Until main.js takes over (then null): the roots this script listens on for roots attached
  // inside them. shadow_hook.js's event does not leave the root its host is in, so a closed root
  // attached inside another (nested web components) is heard only there: listening on the
  // document alone, its pictures would paint before the modules load.
  let earlyRoots = new Set();
  // While the page is parsed (then null): hosts seen empty, whose declarative root may come later.
  let emptyHosts = new Set();
  let frameAsked = false; // a recheckHosts() is asked for the next frame
  const found = []; // [element, attribute, value], read by look(), written by writeFound()
  let inCallback = false; // in the early observer's callback (it reads everything, then writes)
  const early = new MutationObserver(onEarlyRecords);

  // ------------------------------------------------------------ shadow roots

  /** The shadow root of `el` (open or closed, through the extension's view), or null. */
  function getRoot(el) {
    try {
      return ext.dom?.openOrClosedShadowRoot?.(el) ?? el.openOrClosedShadowRoot ?? el.shadowRoot ?? null;
    } catch {
      return el.shadowRoot ?? null;
    }
  }

  /**
   * The shadow root of `el`, or null. While the page is parsed, an empty element that can host one
   * is looked at again each frame: its declarative root may be attached later (the recheck).
   */
  function findRoot(el) {
    const root = getRoot(el);
    if (!root && emptyHosts && !el.firstChild && (el.localName.includes('-') || HOST_TAGS.has(el.localName))) watchEmptyHost(el);
    return root;
  }

  /** Put the hiding rules into `root` (again, if the page replaced its adopted sheets). */
  function adopt(root) {
    shadow.roots.add(root);
    if (earlyRoots && !earlyRoots.has(root)) watchEarly(root);
    adoptSheet(root);
  }

  /** Until main.js takes over, `root` is watched like the document: roots announced in it, added nodes. */
  function watchEarly(root) {
    earlyRoots.add(root);
    root.addEventListener(SHADOW_ROOT_EVENT, onShadowRoot, true);
    // what is added inside it later, and what it holds now (roots in it, stylesheet backgrounds)
    early.observe(root, { childList: true, subtree: true });
    lookInside(root);
    if (!inCallback) writeFound(); // else the observer's callback writes once all is read
  }

  /** The pre-hide rules in `root`: one shared constructable sheet, or a <style> where there is none. */
  function adoptSheet(root) {
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
  }

  /** Switch the rules off in every shadow root (paused on this site, or the script failed), or on. */
  function setDisabled(disabled) {
    if (shadow.sheet) shadow.sheet.disabled = disabled;
    for (const style of shadow.styles) style.disabled = disabled;
  }

  /** shadow_hook.js announced a root attached to the event's target. */
  function onShadowRoot(e) {
    const root = getRoot(e.target);
    if (root) adopt(root);
  }

  // ------------------------------------------------------------ the early scan

  /** An element: its shadow root adopted (or, empty, rechecked each frame), its pictures read. */
  function look(el) {
    const root = findRoot(el);
    if (root) adopt(root);
    readPictures(el);
  }

  /**
   * Queue (in `found`) a stylesheet background, the ::before / ::after pictures and the style
   * parts (picture_sources.js STYLE_PARTS: `content`, a list item's `list-style-image`,
   * `border-image-source`) of `el`.
   */
  function readPictures(el) {
    const own = getComputedStyle(el);
    const bg = own.backgroundImage;
    if (bg && bg.includes('url(') && !(el.getAttribute('style') ?? '').includes('url(')) found.push([el, 'data-simclip-early', bg]);
    const marker = own.display.includes('list-item') ? `${own.listStyleImage} ${getComputedStyle(el, '::marker').content}` : '';
    const parts = [['content', own.content], ['list-style', marker], ['border-image', own.borderImageSource]];
    for (const [part, value] of parts) if (value && value.includes('url(')) found.push([el, `data-simclip-early-${part}`, '']);
    for (const part of ['before', 'after']) {
      const pseudo = getComputedStyle(el, `::${part}`);
      const content = pseudo.content;
      if (content && content !== 'none' && content !== 'normal' && `${pseudo.backgroundImage} ${content}`.includes('url(')) {
        found.push([el, `data-simclip-early-${part}`, '']);
      }
    }
  }

  /** look() at every element under `node` (an element or a shadow root), <img> aside. */
  function lookInside(node) {
    for (const el of node.querySelectorAll('*')) if (el.tagName !== 'IMG') look(el);
  }

  /** Write what look() read: all reads first, then the writes (one style recalculation). */
  function writeFound() {
    for (const [el, name, value] of found.splice(0)) el.setAttribute(name, value);
  }

  /** The early observer: every added element (and what is under it) is looked at, then written. */
  function onEarlyRecords(records) {
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
  }

  // ------------------------------------------------------------ the declarative-root recheck
  // A declarative root (<template shadowrootmode>) is attached by the parser with no event and
  // no document mutation, sometimes just after this script saw its host, still empty, inserted
  // (its pictures, a closed root's too, would paint before the modules load), or after main.js
  // took over (dom_watcher.js looks for a root only when it visits the host: a streamed page that
  // pauses between the host's start tag and its template's would show the picture unchecked).
  // Such hosts are looked at again before each paint while the page is parsed; only the parser
  // attaches a declarative root to a host already in the page. A root found once main.js runs is
  // handed to its watcher.

  function watchEmptyHost(el) {
    emptyHosts.add(el);
    askFrame();
  }

  function askFrame() {
    if (frameAsked) return;
    frameAsked = true;
    requestAnimationFrame(recheckHosts);
  }

  /** Before a paint: the empty hosts that got a root adopt it; the others are looked at next frame. */
  function recheckHosts() {
    frameAsked = false;
    if (!emptyHosts) return;
    for (const el of emptyHosts) {
      const root = getRoot(el);
      if (root) {
        emptyHosts.delete(el);
        adopt(root);
        shadow.onLateRoot?.(root);
      }
    }
    if (document.readyState !== 'loading') emptyHosts = null; // parsed: no declarative root comes later
    else if (emptyHosts.size > 0) askFrame();
  }

  // ------------------------------------------------------------ the gap sheet
  // Firefox removes an add-on's content-script CSS when it unloads it (an update, a reload), and
  // the new version's comes only with its scripts: meanwhile the pictures still waiting, and the
  // flagged ones, would be painted. An adopted sheet belongs to the page and stays: it holds
  // prehide.css's hiding rules again (they change nothing while prehide.css applies), and a clock
  // that has shadow_hook.js switch them off 30 s into a gap (tools/shadow_css.mjs). One per
  // document: a successor replaces its predecessor's.

  function adoptGapSheet() {
    if (!GAP_CSS) return;
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(GAP_CSS);
      const isGapSheet = (s) => s.cssRules[0]?.name === GAP_FIRST_RULE;
      document.adoptedStyleSheets = [...Array.from(document.adoptedStyleSheets).filter((s) => !isGapSheet(s)), sheet];
    } catch {
      // no constructable sheets: no cover for that moment
    }
  }

  // ------------------------------------------------------------ the hand-over

  /** main.js's watcher listens from now on (on the document and on every root it observes); once. */
  function stopEarlyWatch() {
    if (earlyRoots === null) return; // stopped already: main.js failed after taking over
    early.disconnect();
    document.removeEventListener(SHADOW_ROOT_EVENT, onShadowRoot, true);
    for (const root of earlyRoots) root.removeEventListener(SHADOW_ROOT_EVENT, onShadowRoot, true);
    earlyRoots = null;
  }

  /** The modules failed to load: every pre-hide rule is switched off, the page keeps its images. */
  function giveUp(e) {
    stopEarlyWatch();
    const root = document.documentElement;
    if (root) root.setAttribute('data-simclip-off', 'error');
    setDisabled(true);
    console.warn('SimCLIP Meme Shield: content script failed, images are shown unchecked', e);
  }

  document.addEventListener(SHADOW_ROOT_EVENT, onShadowRoot, true);
  // the last recheck: a hidden tab runs no animation frames, and parsing may end between two
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', recheckHosts, { once: true });
  else emptyHosts = null;
  early.observe(document, { childList: true, subtree: true });
  import(ext.runtime.getURL('content/main.js'))
    .then((m) => m.start({ stopEarlyWatch, shadow, startedLate }))
    .catch(giveUp);
  adoptGapSheet(); // after the early watch is set up: it is for a later moment, an update
})();
