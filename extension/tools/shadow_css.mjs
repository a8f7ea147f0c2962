/**
 * Builds content/shadow_css.js, the pre-hide rules for shadow roots, from content/prehide.css, the
 * one source of those rules. The document's sheet scopes every rule under
 * `html:not([data-simclip-off])`; a shadow root's sheet cannot see the document's <html>, so the
 * scope is dropped and loader.js switches the sheet off (`disabled`) instead.
 *
 *   npm run shadow-css        (after any change to prehide.css; a unit test checks it was run)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const PREHIDE_CSS = new URL('../content/prehide.css', import.meta.url);
export const SHADOW_CSS_JS = new URL('../content/shadow_css.js', import.meta.url);
const SCOPE = 'html:not([data-simclip-off]) ';

/** prehide.css's text -> the same rules without comments and without the document scope. */
export function shadowCssFrom(prehide) {
  const css = prehide.replace(/\/\*[\s\S]*?\*\//g, '').split(SCOPE).join('');
  return css.split('\n').map((line) => line.trimEnd()).filter((line) => line.trim() !== '').join('\n');
}

/** The classic content script that carries the rules to loader.js (content scripts cannot import). */
export function shadowCssScript(prehide) {
  return [
    '// Generated from prehide.css by `npm run shadow-css` (tools/shadow_css.mjs): do not edit.',
    '// The pre-hide rules for shadow roots, read by loader.js, which runs after this file.',
    `globalThis.simclipShadowCss = ${JSON.stringify(shadowCssFrom(prehide))};`,
    '',
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(SHADOW_CSS_JS, shadowCssScript(readFileSync(PREHIDE_CSS, 'utf8')));
}
