import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import * as events from '../../shared/page_events.js';
import { PREHIDE_CSS, SHADOW_CSS_JS, shadowCssFrom, shadowCssScript } from '../../tools/shadow_css.mjs';

const read = (path) => readFileSync(new URL(path, import.meta.url), 'utf8');

test('the classic scripts spell each page event as shared/page_events.js does', () => {
  const copies = {
    SHADOW_ROOT_EVENT: ['../../content/shadow_hook.js', '../../content/loader.js'],
    CANVAS_DRAWN_EVENT: ['../../content/shadow_hook.js'],
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
