import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import * as events from '../../shared/page_events.js';
import { GAP_CLOCK, GAP_SECONDS, PREHIDE_CSS, SHADOW_CSS_JS, gapCssFrom, listStyleRules, shadowCssFrom, shadowCssScript } from '../../tools/shadow_css.mjs';
import { HANDOVER_WAIT_MS } from '../../content/lifecycle.js';
import { OWN_ANIMATIONS } from '../../content/dom_watcher.js';

const read = (path) => readFileSync(new URL(path, import.meta.url), 'utf8');

test('the classic scripts spell each page event as shared/page_events.js does', () => {
  const copies = {
    SHADOW_ROOT_EVENT: ['../../content/shadow_hook.js', '../../content/loader.js'],
    CANVAS_DRAWN_EVENT: ['../../content/shadow_hook.js'],
    STYLESHEETS_CHANGED_EVENT: ['../../content/shadow_hook.js'],
    STATE_CHANGED_EVENT: ['../../content/shadow_hook.js'],
    PICTURE_RULES_EVENT: ['../../content/shadow_hook.js'],
  };
  for (const [name, files] of Object.entries(copies)) {
    for (const file of files) {
      const m = new RegExp(`const ${name} = '([^']+)'`).exec(read(file));
      assert.ok(m, `${file} declares ${name}`);
      assert.equal(m[1], events[name], `${file}: ${name}`);
    }
  }
  for (const file of ['../../content/dom_watcher.js', '../../content/main.js']) {
    for (const value of Object.values(events)) assert.ok(!read(file).includes(`'${value}'`), `${file} imports ${value}`);
  }
});

test('content/shadow_css.js is built from prehide.css (npm run shadow-css)', () => {
  const prehide = readFileSync(PREHIDE_CSS, 'utf8');
  assert.equal(readFileSync(SHADOW_CSS_JS, 'utf8'), shadowCssScript(prehide));
});

test('the shadow-root rules are every pre-hide rule, without the document scope', () => {
  const prehide = readFileSync(PREHIDE_CSS, 'utf8');
  const shadow = shadowCssFrom(prehide);
  assert.ok(!shadow.includes('data-simclip-off'), 'a shadow root cannot see <html>: its sheet is disabled instead');
  assert.ok(!shadow.includes('/*'));
  const declarations = (css) => css.replace(/\/\*[\s\S]*?\*\//g, '').match(/[a-z-]+\s*:[^;{}]+!important/g);
  assert.deepEqual(declarations(shadow), declarations(prehide));
  assert.match(shadow, /\[data-simclip="flagged"\]:focus-visible/, 'the keyboard focus ring reaches into shadow roots');
  assert.match(shadow, /canvas:not\(\[data-simclip\]\)/);
});

test('the generated rules parse as the same number of rules as prehide.css', () => {
  const count = (css) => css.replace(/\/\*[\s\S]*?\*\//g, '').split('{').length;
  const prehide = readFileSync(PREHIDE_CSS, 'utf8');
  assert.equal(count(shadowCssFrom(prehide)), count(prehide));
});

test("the pulse the watcher ignores is prehide.css's own animation", async () => {
  const { CHECKING_ANIMATION } = await import('../../content/dom_watcher.js');
  const prehide = readFileSync(PREHIDE_CSS, 'utf8');
  assert.match(prehide, new RegExp(`@keyframes ${CHECKING_ANIMATION} `));
  assert.match(prehide, new RegExp(`animation: ${CHECKING_ANIMATION} `));
});

test('the gap rules copy every hiding rule of prehide.css, and the clock runs only while prehide.css is missing', () => {
  const prehide = readFileSync(PREHIDE_CSS, 'utf8');
  const HIDING = ['visibility', 'object-position', 'background', 'background-image', 'filter', 'clip-path', 'content', 'border-image-slice'];
  const [clock, ...copies] = listStyleRules(gapCssFrom(prehide));
  const hiding = listStyleRules(prehide).filter((r) => r.declarations.some(([p]) => HIDING.includes(p)));
  assert.ok(hiding.length >= 10, `${hiding.length} hiding rules`);
  assert.deepEqual(copies, hiding.map(({ selector, declarations }) => ({
    selector, declarations: declarations.filter(([p]) => HIDING.includes(p)),
  })), 'same selectors, same values: nothing changes while prehide.css applies');
  for (const { declarations } of copies) for (const [p, v] of declarations) assert.match(v, / !important$/, `${p}: an inline style must not win`);
  assert.deepEqual(clock, { selector: ':where(html)', declarations: [['animation', `var(--simclip-prehide, ${GAP_CLOCK} ${GAP_SECONDS}s linear)`]] });
  assert.match(gapCssFrom(prehide), new RegExp(`@keyframes ${GAP_CLOCK} `));
  // prehide.css stops the clock at the root while it applies
  assert.deepEqual(listStyleRules(prehide)[0], { selector: 'html', declarations: [['--simclip-prehide', 'none !important']] });
  assert.equal(GAP_SECONDS * 1000, HANDOVER_WAIT_MS);
  assert.ok(GAP_CLOCK.startsWith(OWN_ANIMATIONS), 'the watchers ignore the clock');
  assert.match(read('../../content/shadow_hook.js'), new RegExp(`const GAP_CLOCK = '${GAP_CLOCK}'`), 'shadow_hook.js ends the gap');
});

test('a stylesheet is read as its top-level rules: at-rules skipped, a semicolon inside a url() kept', () => {
  const css = '/* c */ a, b { x: 1; y: url("data:a;b") !important }\n@media print { c { z: 2 } }\n@keyframes k { from { q: 1 } }\nd{w:3}';
  assert.deepEqual(listStyleRules(css), [
    { selector: 'a, b', declarations: [['x', '1'], ['y', 'url("data:a;b") !important']] },
    { selector: 'd', declarations: [['w', '3']] },
  ]);
});
