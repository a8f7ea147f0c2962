import assert from 'node:assert/strict';
import { test } from 'node:test';

class FakeIO {
  constructor(callback) {
    this.callback = callback;
    this.connected = true;
    this.targets = new Set();
    FakeIO.last = this;
  }

  observe(el) { this.targets.add(el); }

  unobserve(el) { this.targets.delete(el); }

  disconnect() { this.connected = false; }

  report(el, isIntersecting) { this.callback([{ target: el, isIntersecting }]); }
}
globalThis.IntersectionObserver = FakeIO;
const { RepaintWatch } = await import('../../content/repaint_watch.js');

/** A window whose animation frames run when the test says, and whose events the test fires. */
function fakeWindow() {
  const listeners = new Map();
  const on = (type, fn) => listeners.set(type, [...(listeners.get(type) ?? []), fn]);
  const frames = [];
  return {
    addEventListener: on,
    document: { addEventListener: on, visibilityState: 'visible' },
    matchMedia: () => ({ addEventListener: () => {} }),
    requestAnimationFrame: (fn) => frames.push(fn),
    setTimeout: () => 1, // the once-a-second sweep never comes in these tests
    fire: (type) => (listeners.get(type) ?? []).forEach((fn) => fn()),
    runFrame: () => frames.splice(0).forEach((fn) => fn()),
    get pendingFrames() { return frames.length; },
  };
}

function setUp({ needsFrames, recheckMs = 0 } = {}) {
  const win = fakeWindow();
  const seen = [];
  let applied = 0;
  let clock = 0;
  const flushes = [];
  const watch = new RepaintWatch({
    recheck: (el) => {
      seen.push(el.name);
      clock += recheckMs;
    },
    now: () => clock,
    afterFrame: () => { applied += 1; },
    timed: (fn) => fn(),
    forceStyle: (read) => { flushes.push(1); return read(); },
    needsFrames,
    win,
  });
  const elements = [];
  win.document.getAnimations = () => elements.flatMap((x) => x.animations);
  const el = (name, animations = []) => {
    const x = { name, isConnected: true, animations };
    elements.push(x);
    return x;
  };
  return { win, seen, watch, el, applied: () => applied, flushes };
}

test('an element coming near the viewport is read again at the next frame, within its budget (it may have changed while far away)', () => {
  const { win, watch, seen, el } = setUp();
  const a = el('a');
  watch.watch(a);
  FakeIO.last.report(a, true);
  assert.deepEqual(seen, [], 'not in the observer callback: hundreds may come near at once');
  win.runFrame();
  assert.deepEqual(seen, ['a']);
});

test('a resize, a mutation batch or a pointer move reads every near element again at the next frame, once', () => {
  const { win, watch, seen, el, applied } = setUp();
  const [a, b, far] = [el('a'), el('b'), el('far')];
  for (const x of [a, b, far]) watch.watch(x);
  FakeIO.last.report(a, true);
  FakeIO.last.report(b, true);
  seen.length = 0;
  win.fire('resize');
  watch.markDirty();
  win.fire('pointerover');
  assert.equal(win.pendingFrames, 1, 'one frame for any number of signals');
  win.runFrame();
  assert.deepEqual(seen.sort(), ['a', 'b'], 'the far element waits until it comes near');
  assert.ok(applied() >= 1, 'the writes are applied in that frame');
  win.runFrame();
  assert.deepEqual(seen.sort(), ['a', 'b'], 'nothing more without a new signal');
});

test('a press, a form control changed by the user, a hash change and the media features a picture can follow each read the near elements again', () => {
  for (const signal of ['pointerdown', 'pointerup', 'input', 'change', 'hashchange']) {
    const { win, watch, seen, el } = setUp();
    const a = el('a');
    watch.watch(a);
    FakeIO.last.report(a, true);
    win.runFrame();
    seen.length = 0;
    win.fire(signal);
    win.runFrame();
    assert.deepEqual(seen, ['a'], signal);
  }
  const queries = [];
  const win = fakeWindow();
  win.matchMedia = (query) => {
    queries.push(query);
    return { addEventListener: () => {} };
  };
  new RepaintWatch({ recheck: () => {}, afterFrame: () => {}, timed: (fn) => fn(), win });
  for (const q of ['(prefers-color-scheme: dark)', '(prefers-contrast: more)', '(forced-colors: active)', '(min-resolution: 2dppx)']) {
    assert.ok(queries.includes(q), q);
  }
});

test('the near elements under a node the page changed are all read in that frame, past the budget; the rest wait', () => {
  const { win, watch, seen, el } = setUp({ recheckMs: 1 }); // 1 ms a read: 3 fit in a frame's budget
  const items = Array.from({ length: 12 }, (_, i) => el(`e${i}`));
  for (const x of items) {
    watch.watch(x);
    FakeIO.last.report(x, true);
  }
  win.runFrame();
  seen.length = 0;
  const under = new Set(items.slice(4)); // the last 8, under a re-classed ancestor
  const ancestor = { contains: (x) => under.has(x) };
  const host = { getRootNode: () => ({ host: null }), contains: () => false };
  const inShadow = el('in-shadow');
  inShadow.getRootNode = () => ({ host: items[11] }); // in a shadow root whose host is under the ancestor
  watch.watch(inShadow);
  FakeIO.last.report(inShadow, true);
  win.runFrame();
  seen.length = 0;
  watch.markDirty([ancestor, host]);
  win.runFrame();
  assert.deepEqual(seen.slice(0, 9).sort(), [...items.slice(4).map((x) => x.name), 'in-shadow'].sort());
  assert.equal(seen.length, 9, 'the others wait for the next frame (the budget was spent)');
  win.runFrame();
  win.runFrame();
  win.runFrame();
  assert.deepEqual(new Set(seen), new Set([...items, inShadow].map((x) => x.name)), 'then every near element, within the budget');
});

test('an element running an animation of its picture is read every frame until the animation stops', () => {
  const { win, watch, seen, el } = setUp();
  const running = { playState: 'running', effect: { getKeyframes: () => [{ backgroundImage: 'url(a)' }, { backgroundImage: 'url(b)' }] } };
  const animations = [running];
  const a = el('a', animations);
  running.effect.target = a;
  watch.watch(a);
  FakeIO.last.report(a, true);
  seen.length = 0;
  watch.markDirty();
  for (let i = 0; i < 3; i += 1) win.runFrame();
  assert.equal(seen.length, 3);
  animations.length = 0;
  win.runFrame();
  win.runFrame();
  assert.equal(seen.length, 4, 'one more look, then no frames');
  assert.equal(win.pendingFrames, 0);
});

test("the page's animations are listed once per frame (one style flush, booked apart), however many elements are near", () => {
  const { win, watch, seen, el, flushes } = setUp();
  const items = Array.from({ length: 50 }, (_, i) => el(`e${i}`));
  const running = { playState: 'running', effect: { target: items[7], getKeyframes: () => [{ backgroundImage: 'url(a)' }] } };
  items[7].animations.push(running);
  for (const x of items) {
    watch.watch(x);
    FakeIO.last.report(x, true);
  }
  win.runFrame();
  assert.equal(flushes.length, 1);
  seen.length = 0;
  win.runFrame();
  assert.ok(seen.includes('e7'), 'an element animating its picture keeps the frames coming');
  assert.equal(flushes.length, 2);
  items[7].animations.length = 0;
  win.runFrame();
  win.runFrame();
  assert.equal(win.pendingFrames, 0, 'no frames once nothing animates a picture');
});

test('an element animating its picture is read first in every frame, however many near elements the budget leaves for later', () => {
  const { win, watch, seen, el } = setUp({ recheckMs: 1 }); // 3 or 4 reads fit a frame
  const items = Array.from({ length: 20 }, (_, i) => el(`e${i}`));
  const last = items[19];
  last.animations.push({ playState: 'running', effect: { target: last, getKeyframes: () => [{ backgroundImage: 'url(a)' }] } });
  for (const x of items) {
    watch.watch(x);
    FakeIO.last.report(x, true);
  }
  for (let frame = 0; frame < 8; frame += 1) win.runFrame(); // the first rounds reach e19 and find it animating
  for (let frame = 0; frame < 30; frame += 1) {
    seen.length = 0;
    win.runFrame();
    assert.equal(seen[0], 'e19', `frame ${frame}: ${seen}`);
    assert.ok(seen.length <= 4, 'within the budget');
    assert.ok(watch.queue.length <= items.length, `the queue holds each element once (${watch.queue.length})`);
  }
  const read = new Set();
  for (let frame = 0; frame < 10; frame += 1) { // 2 others a frame
    seen.length = 0;
    win.runFrame();
    for (const name of seen) read.add(name);
  }
  assert.equal(read.size, 20, 'the others are still read in turn');
});

test('an animation of something else (a spinner turning) asks for no frames', () => {
  const { win, watch, el } = setUp();
  const spin = { playState: 'running', effect: { getKeyframes: () => [{ transform: 'rotate(0)' }, { transform: 'rotate(1turn)' }] } };
  const a = el('a', [spin]);
  spin.effect.target = a;
  watch.watch(a);
  FakeIO.last.report(a, true);
  watch.markDirty();
  win.runFrame();
  assert.equal(win.pendingFrames, 0);
});

test('an element in a query container whose size (or an ancestor\'s) animates is read every frame while it runs, past the budget', () => {
  const { win, watch, seen, el } = setUp({ recheckMs: 2 });
  win.getComputedStyle = (x) => ({ containerType: x.containerType ?? 'normal' });
  const grow = (target) => ({ playState: 'running', effect: { target, getKeyframes: () => [{ width: '480px' }, { width: '200px' }] } });
  const sidebar = el('sidebar'); // resized, with a query container under it
  const plain = el('plain'); // resized, with no query container around the picture
  const others = Array.from({ length: 6 }, (_, i) => el(`o${i}`));
  const a = el('a');
  const b = el('b');
  const c = el('c'); // a box resized inside the container, and the container's own ancestor resized too
  a.parentElement = { parentElement: { containerType: 'inline-size', parentElement: sidebar } };
  b.parentElement = { parentElement: plain };
  const page = el('page');
  const inner = el('inner');
  inner.parentElement = { containerType: 'inline-size', parentElement: page };
  c.parentElement = inner;
  sidebar.animations.push(grow(sidebar));
  plain.animations.push(grow(plain));
  inner.animations.push(grow(inner)); // no query container around it: this one cannot switch c's picture...
  page.animations.push(grow(page)); // ...this one resizes the container above it
  for (const x of [...others, a, b, c]) {
    watch.watch(x);
    FakeIO.last.report(x, true);
  }
  for (let i = 0; i < 6; i += 1) win.runFrame(); // every element read once: a found under a resizing container
  for (let i = 0; i < 3; i += 1) {
    seen.length = 0;
    win.runFrame();
    assert.deepEqual(seen.slice(0, 2).sort(), ['a', 'c'], `frame ${i}: ${seen}`);
    assert.ok(!seen.includes('b'), 'no query container between it and the resized box: its picture cannot switch');
  }
  for (const x of [sidebar, inner, page]) x.animations.length = 0;
  for (let i = 0; i < 10; i += 1) win.runFrame(); // what the budget left over, then nothing
  assert.equal(win.pendingFrames, 0, 'no frames once nothing resizes a container');
});

test('an element that asks for frames (a canvas just drawn on) is read every frame while it asks', () => {
  let fresh = true;
  const { win, watch, seen, el } = setUp({ needsFrames: () => fresh });
  const c = el('canvas');
  watch.watch(c);
  FakeIO.last.report(c, true);
  seen.length = 0;
  watch.markDirty();
  win.runFrame();
  win.runFrame();
  fresh = false;
  win.runFrame();
  win.runFrame();
  assert.equal(seen.length, 3);
});

test('an element no longer watched, or removed from the page, is never read again', () => {
  const { win, watch, seen, el } = setUp();
  const [a, b] = [el('a'), el('b')];
  watch.watch(a);
  watch.watch(b);
  FakeIO.last.report(a, true);
  FakeIO.last.report(b, true);
  seen.length = 0;
  watch.unwatch(a);
  b.isConnected = false;
  FakeIO.last.report(b, false);
  watch.markDirty();
  win.runFrame();
  assert.deepEqual(seen, []);
  assert.equal(FakeIO.last.targets.size, 0);
});

test('a stopped watch reads nothing more and leaves no observer, listener or timer behind', () => {
  const { win, watch, seen, el } = setUp();
  const a = el('a');
  watch.watch(a);
  FakeIO.last.report(a, true);
  seen.length = 0;
  watch.stop();
  win.fire('resize');
  watch.markDirty();
  win.runFrame();
  assert.deepEqual(seen, []);
  assert.equal(FakeIO.last.connected, false);
});

test('a change the page makes in its own animation frame after ours is read before that frame is painted, while our next frame is asked for', () => {
  const probes = [];
  globalThis.ResizeObserver = class {
    constructor(callback) { this.callback = callback; this.on = false; }
    observe() { this.on = true; probes.push(this); }
    disconnect() { this.on = false; }
  };
  try {
    const { win, watch, seen, el } = setUp();
    win.document.documentElement = {};
    win.getComputedStyle = () => ({});
    win.innerWidth = 1200;
    win.innerHeight = 800;
    const layout = () => { for (const p of probes.splice(0)) if (p.on) p.callback([]); }; // after the animation frames, before paint
    const moving = el('moving');
    moving.animations.push({ playState: 'running', effect: { target: moving, getKeyframes: () => [{ backgroundImage: 'url(a)' }] } });
    const still = el('still');
    const box = { contains: (x) => x === still };
    for (const x of [moving, still]) {
      watch.watch(x);
      FakeIO.last.report(x, true);
    }
    for (let i = 0; i < 3; i += 1) { // the viewport's first size, the first reads: `moving` is found animating
      layout();
      win.runFrame();
    }
    win.runFrame(); // our callback runs first in this frame's animation-frame step...
    assert.ok(win.pendingFrames > 0, 'the next animation frame is asked for');
    seen.length = 0;
    watch.markDirty([box]); // ...then the page's, which re-classes the box around `still`
    layout();
    assert.ok(seen.includes('still'), `read after the page's callback, in the frame it paints: ${seen}`);
  } finally {
    delete globalThis.ResizeObserver;
  }
});
