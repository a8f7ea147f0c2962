import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

const LOADER = new URL('../../content/loader.js', import.meta.url);

/**
 * Run content/loader.js (a classic script) against a parsed document whose main.js is `mainSource`:
 * resolves with the document's attributes once the loader gave up (it warns), or after main.js started.
 */
async function runLoader(mainSource) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'simclip-loader-'));
  const main = path.join(dir, 'main.mjs');
  await writeFile(main, mainSource);
  const attrs = new Map();
  const saved = { ...globalThis };
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  Object.assign(globalThis, {
    simclipContentScript: undefined,
    chrome: { runtime: { getURL: () => pathToFileURL(main).href } },
    document: {
      readyState: 'complete',
      documentElement: { setAttribute: (k, v) => attrs.set(k, v), getAttribute: (k) => attrs.get(k) ?? null },
      addEventListener() {},
      removeEventListener() {},
    },
    MutationObserver: class { observe() {} disconnect() {} },
    simclipStarted: () => done({ attrs, warned: false }),
  });
  const warn = console.warn;
  console.warn = () => done({ attrs, warned: true });
  try {
    new Function(await readFile(LOADER, 'utf8'))();
    return await finished;
  } finally {
    console.warn = warn;
    for (const key of ['simclipContentScript', 'chrome', 'document', 'MutationObserver', 'simclipStarted']) {
      if (key in saved) globalThis[key] = saved[key];
      else delete globalThis[key];
    }
  }
}

test('main.js failing after it took over from the early watch switches every pre-hide rule off', async () => {
  const { attrs, warned } = await runLoader(
    "export function start({ stopEarlyWatch }) { stopEarlyWatch(); throw new Error('a module failed'); }\n");
  assert.ok(warned);
  assert.equal(attrs.get('data-simclip-off'), 'error', 'the page keeps its images');
});

test('main.js failing to load switches every pre-hide rule off', async () => {
  const { attrs } = await runLoader("throw new Error('a syntax error, say');\n");
  assert.equal(attrs.get('data-simclip-off'), 'error');
});

test('main.js starting leaves the pre-hide rules on', async () => {
  const { attrs, warned } = await runLoader(
    'export function start({ stopEarlyWatch }) { stopEarlyWatch(); globalThis.simclipStarted(); }\n');
  assert.equal(warned, false);
  assert.equal(attrs.has('data-simclip-off'), false);
});
