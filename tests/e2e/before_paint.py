"""A page-side hook for the e2e monitors: call a check once per rendering update, at the last
moment before paint (a plain module: the Firefox driver's configs and the fixture pages use it).

A check in an animation-frame callback runs before the callbacks asked for after it, and before
ResizeObserver callbacks: it would see a picture the extension's loader (loader.js recheckHosts,
an animation frame) or its repaint watch (repaint_watch.js, a first-round ResizeObserver) hides
before that very paint, and count a frame that was never painted. Here the check runs in a
second round of ResizeObserver callbacks, after every first-round one and every animation-frame
callback: a ResizeObserver made each frame reports `outer` in the first round, and its callback
resizes `inner`, one level deeper, which another observer reports only after the first round's
callbacks and a new layout. `inner` is resized through its stylesheet rule (CSSOM), which no
MutationObserver reports: a resize through its `style` attribute was a DOM change every frame,
which made the extension look at the pictures near the viewport again every frame and hid from
the monitor every switch the extension is not told of.
"""

# A JS expression: `everyPaint(check)`. Starts at once, even before the document element exists
# (a streamed page is painted while it is parsed).
EVERY_PAINT_JS = r"""
((check) => {
  const outer = document.createElement('div');
  outer.style.cssText = 'position: fixed; left: 0; top: 0; width: 2px; height: 2px; pointer-events: none';
  const inner = document.createElement('div');
  inner.id = '__paint_monitor_inner';
  outer.appendChild(inner);
  const sheet = document.createElement('style');
  sheet.textContent = '#__paint_monitor_inner { width: 1px; height: 1px; }';
  new ResizeObserver(check).observe(inner);
  let rule = null;
  const tick = () => {
    if (!outer.isConnected && document.documentElement) document.documentElement.append(sheet, outer);
    if (outer.isConnected) {
      rule ??= sheet.sheet.cssRules[0];
      const ro = new ResizeObserver(() => {
        ro.disconnect();
        rule.style.width = rule.style.width === '1px' ? '2px' : '1px';
      });
      ro.observe(outer);
    } else {
      check(); // nothing to observe yet: the frame is checked here
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})
""".strip()
