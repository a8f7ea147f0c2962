// Classic content script (manifest content scripts cannot be ES modules): load the module graph.
//
// Until it has loaded, a stop-gap observer hides CSS background images set by stylesheets (the
// pre-hide stylesheet covers <img> and inline styles, but cannot know which rules set a
// background). It keeps the value it saw in data-simclip-early for the real watcher.
// If loading fails, every pre-hide rule is switched off so the page never loses its images.
(() => {
  const ext = globalThis.browser ?? globalThis.chrome;
  const found = [];
  const look = (el) => {
    const bg = getComputedStyle(el).backgroundImage;
    if (bg && bg.includes('url(') && !(el.getAttribute('style') ?? '').includes('url(')) found.push([el, bg]);
  };
  const early = new MutationObserver((records) => {
    for (const r of records) {
      for (const node of r.addedNodes) {
        if (node.nodeType !== 1 || node.tagName === 'IMG') continue;
        look(node);
        for (const el of node.getElementsByTagName('*')) if (el.tagName !== 'IMG') look(el);
      }
    }
    for (const [el, bg] of found.splice(0)) el.setAttribute('data-simclip-early', bg); // reads first, then writes
  });
  early.observe(document, { childList: true, subtree: true });
  import(ext.runtime.getURL('content/main.js'))
    .then((m) => m.start({ stopEarlyWatch: () => early.disconnect() }))
    .catch((e) => {
      early.disconnect();
      const root = document.documentElement;
      if (root) root.setAttribute('data-simclip-off', 'error');
      console.warn('SimCLIP Meme Shield: content script failed, images are shown unchecked', e);
    });
})();
