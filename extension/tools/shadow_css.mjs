/**
 * Builds content/shadow_css.js from content/prehide.css, the one source of the pre-hide rules, as
 * two sheets loader.js adopts:
 *
 * - the rules for shadow roots. The document's sheet scopes every rule under
 *   `html:not([data-simclip-off])`; a shadow root's sheet cannot see the document's <html>, so
 *   the scope is dropped and loader.js switches the sheet off (`disabled`) instead;
 * - the gap rules, for the moment an update or a reload leaves a tab without prehide.css (Firefox
 *   removes an add-on's content-script CSS when it unloads it, before the new version's arrives).
 *   The page keeps an adopted sheet after the add-on's scripts are gone. There, each rule of
 *   prehide.css that hides or covers a picture is copied with the same selector and its hiding
 *   declarations, `!important` as there (an inline style must not win): while prehide.css
 *   applies, the copy matches the same elements and sets the same values, so it changes
 *   nothing. Without it, the copy hides the picture. A clock limits that: the root runs the animation GAP_CLOCK for
 *   GAP_SECONDS only while prehide.css is missing (its `--simclip-prehide: none` stops it), and
 *   shadow_hook.js, in the page's world (which outlives the add-on), switches every rule off
 *   when it ends: a disabled or removed add-on hides nothing for longer than that.
 *
 *   npm run shadow-css        (after any change to prehide.css; a unit test checks it was run)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const PREHIDE_CSS = new URL('../content/prehide.css', import.meta.url);
export const SHADOW_CSS_JS = new URL('../content/shadow_css.js', import.meta.url);
const SCOPE = 'html:not([data-simclip-off]) ';
export const GAP_SECONDS = 30; // as long as an orphan waits for a successor (lifecycle.js HANDOVER_WAIT_MS)
export const GAP_CLOCK = 'simclip-gap-clock'; // the root's animation while prehide.css is missing
// The properties by which prehide.css hides or covers a picture (not the focus ring, the cursor, the pulse).
const HIDING_PROPERTIES = new Set([
  'visibility', 'object-position', 'background', 'background-image', 'filter', 'clip-path', 'content', 'border-image-slice',
]);

/** prehide.css's text -> the same rules without comments and without the document scope. */
export function shadowCssFrom(prehide) {
  const css = prehide.replace(/\/\*[\s\S]*?\*\//g, '').split(SCOPE).join('');
  return css.split('\n').map((line) => line.trimEnd()).filter((line) => line.trim() !== '').join('\n');
}

/** `text` split at each top-level `separator` (not inside quotes or parentheses). */
function splitTopLevel(text, separator) {
  const parts = [];
  let depth = 0;
  let quote = '';
  let start = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i += 1;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '(') depth += 1;
    else if (c === ')') depth -= 1;
    else if (c === separator && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** The top-level style rules of `css` (at-rule blocks skipped) as {selector, declarations: [[property, value]]}. */
export function listStyleRules(css) {
  const text = css.replace(/\/\*[\s\S]*?\*\//g, '');
  const rules = [];
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('{', i);
    if (open < 0) break;
    const selector = text.slice(i, open).trim();
    let depth = 1;
    let close = open + 1;
    for (; close < text.length && depth > 0; close += 1) {
      if (text[close] === '{') depth += 1;
      else if (text[close] === '}') depth -= 1;
    }
    if (!selector.startsWith('@')) {
      const declarations = splitTopLevel(text.slice(open + 1, close - 1), ';')
        .map((d) => d.trim()).filter(Boolean)
        .map((d) => [d.slice(0, d.indexOf(':')).trim(), d.slice(d.indexOf(':') + 1).trim()]);
      rules.push({ selector: selector.replace(/\s+/g, ' '), declarations });
    }
    i = close;
  }
  return rules;
}

/**
 * prehide.css's text -> the gap rules: each rule that hides or covers a picture, with only its
 * hiding declarations, and the clock on the root (zero specificity: a
 * page's own animation of <html> wins, and then no clock runs).
 */
export function gapCssFrom(prehide) {
  const out = [
    `@keyframes ${GAP_CLOCK} { from, to { --simclip-gap: on; } }`,
    `:where(html) { animation: var(--simclip-prehide, ${GAP_CLOCK} ${GAP_SECONDS}s linear); }`,
  ];
  for (const { selector, declarations } of listStyleRules(prehide)) {
    const hiding = declarations.filter(([property]) => HIDING_PROPERTIES.has(property));
    if (hiding.length === 0) continue;
    out.push(`${selector} { ${hiding.map(([property, value]) => `${property}: ${value};`).join(' ')} }`);
  }
  return out.join('\n');
}

/** The classic content script that carries the rules to loader.js (content scripts cannot import). */
export function shadowCssScript(prehide) {
  return [
    '// Generated from prehide.css by `npm run shadow-css` (tools/shadow_css.mjs): do not edit.',
    '// The pre-hide rules for shadow roots, and the gap rules for the document, read by loader.js,',
    '// which runs after this file.',
    `globalThis.simclipShadowCss = ${JSON.stringify(shadowCssFrom(prehide))};`,
    `globalThis.simclipGapCss = ${JSON.stringify(gapCssFrom(prehide))};`,
    '',
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(SHADOW_CSS_JS, shadowCssScript(readFileSync(PREHIDE_CSS, 'utf8')));
}
