import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

import { PICTURE_RULES_EVENT, STATE_CHANGED_EVENT, STYLESHEETS_CHANGED_EVENT } from '../../shared/page_events.js';

const HOOK = readFileSync(new URL('../../content/shadow_hook.js', import.meta.url), 'utf8');

/** The hook run in a page-like world of stand-ins: the CSSOM's methods and setters, a document that records its events. */
function pageWorld() {
  const dispatched = [];
  class Animation {
    constructor(keyframes = [{ backgroundImage: 'url(a.png)' }]) { this.effect = { getKeyframes: () => keyframes }; }
    cancel() { this.cancelled = true; }
    play() {}
  }
  class Element {
    attachShadow() { return {}; }
    animate(keyframes) { return new Animation(keyframes); }
  }
  class HTMLInputElement extends Element {
    get checked() { return Boolean(this.on); }
    set checked(value) { this.on = value; }
  }
  class StyleSheet {
    constructor() { this.off = false; }
    get disabled() { return this.off; }
    set disabled(value) { this.off = value; }
  }
  class CSSStyleDeclaration {
    constructor(parentRule) { this.parentRule = parentRule; this.values = {}; }
    setProperty(name, value) { this.values[name] = value; }
    get backgroundImage() { return this.values['background-image'] ?? ''; }
    set backgroundImage(value) { this.values['background-image'] = value; }
    get cssText() { return Object.entries(this.values).map(([k, v]) => `${k}: ${v};`).join(' '); }
  }
  /** A style rule from `.x { name: value }` text. */
  const parseRule = (text) => {
    const [, selectorText, body] = /^\s*([^{]+?)\s*\{([^}]*)\}/.exec(text);
    const rule = { selectorText };
    rule.style = new CSSStyleDeclaration(rule);
    for (const decl of body.split(';')) {
      const i = decl.indexOf(':');
      if (i > 0) rule.style.setProperty(decl.slice(0, i).trim(), decl.slice(i + 1).trim());
    }
    return rule;
  };
  class CSSStyleSheet extends StyleSheet {
    constructor() { super(); this.cssRules = []; }
    insertRule(text, index = 0) { this.cssRules.splice(index, 0, parseRule(text)); return index; }
    deleteRule() {}
    replaceSync() {}
    replace() { return Promise.resolve(this); }
  }
  class CSSStyleRule {
    constructor(selectorText, cssText) { this.selector = selectorText; this.style = { cssText }; }
    get selectorText() { return this.selector; }
    set selectorText(value) { this.selector = value; }
  }
  class Document { // adoptedStyleSheets: an array changed in place (the ObservableArray) or set anew
    constructor() { this.sheets = []; }
    get adoptedStyleSheets() { return this.sheets; }
    set adoptedStyleSheets(value) { this.sheets = [...value]; }
  }
  class MediaList {
    constructor() { this.text = 'print'; }
    get mediaText() { return this.text; }
    set mediaText(value) { this.text = value; }
    appendMedium(medium) { this.text += `, ${medium}`; }
    deleteMedium() {}
  }
  class CSSMediaRule { // an @media block: its list is handed out by its `media` getter
    constructor(rules) { this.list = new MediaList(); this.cssRules = rules; }
    get media() { return this.list; }
    set media(value) { this.list.mediaText = value; }
  }
  const world = {
    MediaList, CSSMediaRule, Document, Proxy, Reflect, WeakMap, WeakSet, Object, Animation, Element, HTMLInputElement, StyleSheet, CSSStyleSheet, CSSStyleDeclaration, CSSStyleRule, Promise, queueMicrotask, JSON,
    Event: class { constructor(type) { this.type = type; } },
    CustomEvent: class { constructor(type, init) { this.type = type; this.detail = init?.detail; } },
    document: { dispatchEvent: (e) => dispatched.push(e.detail === undefined ? e.type : [e.type, e.detail]) },
    addEventListener: () => {},
  };
  world.globalThis = world;
  vm.runInNewContext(HOOK, world);
  return { world, dispatched, parseRule };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

test('a stylesheet changed through the CSSOM is announced on the document once per task, after the change', async () => {
  const { world, dispatched } = pageWorld();
  const sheet = new world.CSSStyleSheet();
  sheet.insertRule('.x { background-image: url(a.png) }');
  sheet.deleteRule(0);
  sheet.disabled = true;
  assert.equal(sheet.disabled, true, 'the setter still sets');
  assert.deepEqual(dispatched, [], 'not inside the page\'s script');
  await settle();
  const sheetEvents = () => dispatched.filter((e) => e === STYLESHEETS_CHANGED_EVENT);
  assert.deepEqual(sheetEvents(), [STYLESHEETS_CHANGED_EVENT], 'one event for the three changes');

  new world.CSSStyleDeclaration({ selectorText: '.x' }).backgroundImage = 'url(b.png)';
  await settle();
  new world.CSSStyleDeclaration({ selectorText: '.x' }).setProperty('background-image', 'url(c.png)');
  await settle();
  await sheet.replace('.x {}');
  await settle();
  assert.equal(sheetEvents().length, 4, 'a rule\'s declarations edited, a sheet replaced');
});

test('an element\'s own style attribute (a DOM change the watcher sees) is not announced', async () => {
  const { world, dispatched } = pageWorld();
  const inline = new world.CSSStyleDeclaration(null);
  inline.backgroundImage = 'url(a.png)';
  inline.setProperty('--bg', 'url(b.png)');
  await settle();
  assert.deepEqual(dispatched, []);
  assert.equal(inline.backgroundImage, 'url(a.png)');
});

test('a checkbox checked by a script, an animation started or cancelled by one, are announced as state changes', async () => {
  const { world, dispatched } = pageWorld();
  const box = new world.HTMLInputElement();
  box.checked = true;
  assert.equal(box.checked, true);
  await settle();
  assert.deepEqual(dispatched, [STATE_CHANGED_EVENT]);
  const el = new world.Element();
  assert.deepEqual(el.animate([{ backgroundImage: 'url(a.png)' }]).effect.getKeyframes(), [{ backgroundImage: 'url(a.png)' }],
    'the animation is returned');
  await settle();
  assert.deepEqual(dispatched, [STATE_CHANGED_EVENT, STATE_CHANGED_EVENT]);
  const animation = new world.Animation();
  animation.cancel();
  assert.equal(animation.cancelled, true);
  await settle();
  assert.equal(dispatched.length, 3, 'an animation cancelled by a script');
});

test('an animation of nothing that can change a picture (a spinner, a fade) is not announced; one of a size or a custom property is', async () => {
  const { world, dispatched } = pageWorld();
  const el = new world.Element();
  const spin = el.animate([{ transform: 'rotate(0)', offset: 0, easing: 'linear', composite: 'auto' }, { transform: 'rotate(1turn)' }]);
  el.animate([{ opacity: 0 }, { opacity: 1 }]);
  el.animate([{ backgroundPosition: '0 0' }, { backgroundPosition: '100% 0' }]); // the same picture, moved
  spin.cancel();
  spin.play();
  await settle();
  assert.deepEqual(dispatched, [], 'each announcement costs a read of every near picture');
  el.animate([{ width: '480px' }, { width: '200px' }]); // a query container resized
  await settle();
  el.animate([{ '--bg': 'url(b.png)' }]);
  await settle();
  assert.equal(dispatched.length, 2);
});

test('the selectors of rules a script gives a picture are listed once per task, for the elements that had none', async () => {
  const { world, dispatched, parseRule } = pageWorld();
  const sheet = new world.CSSStyleSheet();
  sheet.insertRule('.post .media { background-image: url(a.png) }');
  sheet.insertRule('.button { color: red }'); // no picture
  sheet.insertRule('.avatar { background: var(--avatar) }');
  await settle();
  const pictureEvents = () => dispatched.filter(Array.isArray); // [type, detail]
  assert.ok(dispatched.includes(STYLESHEETS_CHANGED_EVENT));
  assert.deepEqual(pictureEvents(), [[PICTURE_RULES_EVENT, JSON.stringify(['.post .media', '.avatar'])]]);
  dispatched.length = 0;
  const rule = parseRule('.card { color: blue }');
  rule.style.backgroundImage = 'url(b.png)'; // a declaration set on an existing rule
  await settle();
  assert.deepEqual(pictureEvents(), [[PICTURE_RULES_EVENT, JSON.stringify(['.card'])]]);
  dispatched.length = 0;
  const moved = new world.CSSStyleRule('.old', 'background-image: url(c.png);');
  moved.selectorText = '.new'; // the same picture, on other elements now
  await settle();
  assert.deepEqual(pictureEvents(), [[PICTURE_RULES_EVENT, JSON.stringify(['.new'])]]);
  dispatched.length = 0;
  for (let i = 0; i < 100; i += 1) sheet.insertRule(`.m${i} { background-image: url(m${i}.png) }`);
  await settle();
  assert.deepEqual(pictureEvents(), [[PICTURE_RULES_EVENT, '']], 'too many to list: left to the sweep');
});

test('a sheet adopted by a push, an index written or a new array is announced, and its picture rules listed once per root', async () => {
  const { world, dispatched, parseRule } = pageWorld();
  const built = (text) => { // built in an earlier task: its rules were listed then, for no element
    const sheet = new world.CSSStyleSheet();
    sheet.cssRules.push(parseRule(text));
    return sheet;
  };
  const first = built('.late .media { background-image: url(a.png) }');
  const second = built('.other { background: url(b.png) }');
  await settle();
  dispatched.length = 0;
  const doc = new world.Document();
  const adopted = doc.adoptedStyleSheets;
  assert.equal(doc.adoptedStyleSheets, adopted, 'the same array each time');
  assert.ok(Array.isArray(adopted));
  adopted.push(first);
  assert.deepEqual(doc.sheets, [first], 'the push reached the real array');
  await settle();
  const events = () => new Set(dispatched.map((e) => JSON.stringify(e))); // the two events, in either order
  assert.deepEqual(events(), new Set([STYLESHEETS_CHANGED_EVENT, [PICTURE_RULES_EVENT, JSON.stringify(['.late .media'])]].map((e) => JSON.stringify(e))));
  dispatched.length = 0;
  doc.adoptedStyleSheets = [first, second]; // set anew: only the sheet this root did not have is listed
  await settle();
  assert.deepEqual(events(), new Set([STYLESHEETS_CHANGED_EVENT, [PICTURE_RULES_EVENT, JSON.stringify(['.other'])]].map((e) => JSON.stringify(e))));
  dispatched.length = 0;
  doc.adoptedStyleSheets.length = 1; // removed in place
  await settle();
  assert.deepEqual(dispatched, [STYLESHEETS_CHANGED_EVENT]);
  assert.deepEqual(doc.sheets, [first]);
});

test('a media list changed through the CSSOM lists the picture rules of its @media block', async () => {
  const { world, dispatched, parseRule } = pageWorld();
  const block = new world.CSSMediaRule([parseRule('.wide .hero { background-image: url(h.png) }'), parseRule('.x { color: red }')]);
  await settle();
  dispatched.length = 0;
  const pictureEvents = () => dispatched.filter(Array.isArray);
  block.media.mediaText = 'all';
  await settle();
  assert.ok(dispatched.includes(STYLESHEETS_CHANGED_EVENT));
  assert.deepEqual(pictureEvents(), [[PICTURE_RULES_EVENT, JSON.stringify(['.wide .hero'])]]);
  dispatched.length = 0;
  block.media.appendMedium('screen');
  await settle();
  assert.deepEqual(pictureEvents(), [[PICTURE_RULES_EVENT, JSON.stringify(['.wide .hero'])]]);
  dispatched.length = 0;
  block.media = 'print'; // the owner's setter, forwarded to its list
  await settle();
  assert.deepEqual(pictureEvents(), [[PICTURE_RULES_EVENT, JSON.stringify(['.wide .hero'])]]);
});
