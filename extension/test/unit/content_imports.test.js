import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const manifest = JSON.parse(readFileSync(path.join(ROOT, 'manifest.json'), 'utf8'));

/** The static imports of the module at `file` (relative to the extension root), resolved the same way. */
function importsOf(file) {
  const source = readFileSync(path.join(ROOT, file), 'utf8');
  return Array.from(source.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'/gm), (m) => m[1])
    .concat(Array.from(source.matchAll(/^\s*import\s+'([^']+)'/gm), (m) => m[1]))
    .map((spec) => path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)));
}

/** Every module reachable from `entry` by static imports. */
function moduleGraph(entry) {
  const seen = new Set();
  const walk = (file) => {
    if (seen.has(file)) return;
    seen.add(file);
    importsOf(file).forEach(walk);
  };
  walk(entry);
  return seen;
}

/** A web_accessible_resources pattern ("content/*.js") as a regular expression on a path. */
const patternRegex = (glob) => new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);

test('every module the content scripts import is web-accessible (the page\'s import of main.js loads them)', () => {
  // loader.js (a classic script) imports content/main.js by URL: that module and all it imports must
  // be listed, or the import fails and the loader switches the pre-hide rules off (pictures unchecked).
  const patterns = manifest.web_accessible_resources.flatMap((entry) => entry.resources).map(patternRegex);
  const modules = moduleGraph('content/main.js');
  assert.ok(modules.size > 10 && modules.has('shared/messages.js'), [...modules].join(', '));
  const hidden = [...modules].filter((file) => !patterns.some((re) => re.test(file)));
  assert.deepEqual(hidden, [], `not web-accessible: ${hidden.join(', ')}`);
});

test('the module walk finds an import that is not web-accessible', () => {
  // the check above can fail: the worker's own modules reach vendor/, which is not listed
  const patterns = manifest.web_accessible_resources.flatMap((entry) => entry.resources).map(patternRegex);
  const worker = moduleGraph('background/service_worker.js');
  assert.ok([...worker].some((file) => !patterns.some((re) => re.test(file))), [...worker].join(', '));
});
