/**
 * Drive Firefox with the unpacked extension through WebDriver BiDi (puppeteer-core, no browser
 * download): install it as a temporary add-on, pair it through its options page like a user, open
 * a feed page and report what the extension did there. The pytest e2e suite
 * (tests/e2e/test_firefox_e2e.py) starts the server and the feed site, passes the page-side
 * scripts in, and asserts on the report.
 *
 *   node test/firefox/run_feed.mjs CONFIG.json
 *
 * CONFIG: {firefox, extension, serverUrl, token, feedUrl, feedHosts, initScript, statesScript,
 *          decided: [states], memes, timeoutMs, revealAfterSeconds, screenshot, keys: bool,
 *          probes: [{name, url, until, read, timeoutMs, screenshot, pictureDocument}],
 *          cases: [{name, url, settleMs, timeoutMs, decided, initScript, violations, then, viewportThen}]}
 *   A probe opens `url` first (after the pairing), waits until the expression `until` is true and
 *   reports the value of `read` in `probes[name]` (`pictureDocument`: `url` is a picture, shown in
 *   its image document, whose load BiDi does not report). Without `feedUrl`, no feed is opened.
 *   A case's `initScript` replaces the config's, `violations` is the expression that reads its
 *   monitor's violations; `then` is a script run once every meme is decided (it may return a
 *   promise), after the viewport is set to `viewportThen` ({width, height}) if given; the case
 *   then waits until every meme is decided again.
 *   `lifecycle` ({url, newTabUrl, addPost}): after the cases, the add-on is installed again over
 *   itself under an open feed at `url` (what about:debugging's Reload and a store update do: same
 *   id, storage kept), then `addPost` (a main-world expression) adds a harmful post to that feed,
 *   and a new tab opens `newTabUrl`; both feeds' first `memes` memes must be decided again. Then
 *   the add-on is disabled under that feed as about:addons does (AddonManager, in the browser's
 *   chrome window), `addPostOff` adds a harmful post while it is off, and it is enabled again
 *   (`disabled`: the gap rules' clock, the flagged pictures uncovered while off, the feed decided
 *   again with that post, a tab opened at `openedOffUrl` while it was off (`openedWhileOff`), and
 *   a tab opened after at `offTabUrl`). Then the add-on is removed
 *   under the open feed (`removed`: the gap rules' clock, the flagged
 *   pictures uncovered in the gap and once the clock has ended, the page's data-simclip-off).
 *   `backForward` ({url, elsewhereUrl, initScript}): before that, a feed at `url` is left for
 *   `elsewhereUrl` while its verdicts are pending, and Back brings it again; `initScript` records
 *   each pageshow's `persisted` in `window.__pageshows`.
 * Prints one JSON object on stdout: {browser, connection, states, shield, decidedInMs, keys,
 *   cases: {name: {states, violations, decidedInMs, after?: {states, violations, decidedInMs}}},
 *   lifecycle?: {before, reinstalled, newTab: {states, violations, decidedInMs}, coveredMeanwhile: {post: pageState},
 *                disabled: {active, flagged, clockRan, uncoveredWhileOff, enabled, openedWhileOff, newTab},
 *                removed: {flagged, clockRan, uncoveredInGap, violations, off, uncoveredAfter}}
 *   (`coveredMeanwhile`: the page's state, just after the install, of each meme flagged before it),
 *   backForward?: {pendingWhenLeft, pageshows, states, violations, decidedInMs, attempts, firstPageshows}}. Case pages are read in every frame; each
 *   picture's state, reason and warning come from the content script through the options page
 *   (the page itself sees only pending, waiting, flagged, revealed or shown).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import puppeteer from 'puppeteer-core';

const config = JSON.parse(await readFile(process.argv[2], 'utf8'));
const manifest = JSON.parse(await readFile(path.join(config.extension, 'manifest.json'), 'utf8'));
const addonId = manifest.browser_specific_settings.gecko.id;
// A fixed internal UUID makes the moz-extension:// origin known before the install.
const uuid = '5a1ec11b-0000-4000-8000-00000000e2e0';
const log = (...args) => console.error('[firefox]', ...args);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const VIEWPORT = { width: 1200, height: 1600 };

/** The page's viewport at VIEWPORT; where this Firefox cannot set it, the window's size holds. */
async function setViewportSize(page) {
  try {
    await page.setViewport(VIEWPORT);
  } catch (e) {
    if (!/unknown command/.test(String(e))) throw e;
    log('setViewport unsupported here, the window size holds:', String(e).slice(0, 120));
  }
}

const launchOptions = {
  browser: 'firefox',
  executablePath: config.firefox,
  headless: true,
  // Firefox 153+ lets WebDriver open moz-extension:// pages only with system access.
  // The window is the viewport's size: Firefox before 146 has no BiDi command for the screen
  // orientation that puppeteer's setViewport also sets (see setViewportSize).
  args: ['--remote-allow-system-access', `--window-size=${VIEWPORT.width},${VIEWPORT.height}`],
  extraPrefsFirefox: {
    'extensions.webextensions.uuids': JSON.stringify({ [addonId]: uuid }),
    // The feed's made-up host name resolves to loopback, as Chromium's --host-resolver-rules does.
    'network.dns.localDomains': config.feedHosts.join(','),
    // The feed is plain http on a made-up name: no HTTPS-First upgrade of the page itself.
    'dom.security.https_first': false,
    'dom.security.https_first_for_unknown_suffixes': false,
    // A site's service worker on the plain-http feed (a secure context only on https or localhost).
    'dom.serviceWorkers.testing.enabled': true,
  },
  protocolTimeout: 60_000,
  // Puppeteer waits 30 s by default for Firefox to print its BiDi endpoint. A start takes 2-4 s
  // on a quiet machine and can take over 30 s on a loaded one, so wait longer, and start once
  // more on a timeout before failing the run.
  timeout: config.launchTimeoutMs ?? 120_000,
};

/** Start Firefox, once more after a launch timeout (a fresh profile each time). */
async function launch() {
  for (let attempt = 1; ; attempt += 1) {
    const t0 = Date.now();
    try {
      const b = await puppeteer.launch(launchOptions);
      log(`started in ${Date.now() - t0} ms (attempt ${attempt})`);
      return b;
    } catch (e) {
      log(`start failed after ${Date.now() - t0} ms (attempt ${attempt}):`, String(e).slice(0, 300));
      if (attempt >= 2 || e?.name !== 'TimeoutError') throw e;
    }
  }
}

/**
 * Wait until `fn` returns true in an extension page, polling with evaluate: puppeteer's
 * waitForFunction builds its poller with Function(), which an extension page's CSP
 * (script-src 'self') refuses in Firefox 140 ESR. Rejects with a TimeoutError after `timeoutMs`.
 */
async function waitInExtensionPage(page, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await page.evaluate(fn)) return;
    if (Date.now() > deadline) {
      const error = new Error(`waited ${timeoutMs} ms in ${page.url()}`);
      error.name = 'TimeoutError';
      throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const browser = await launch();

const report = { browser: await browser.version(), connection: null, states: [], shield: null, decidedInMs: null, cases: {} };

let extensionPage = null; // an extension page of ours (the options page): it asks the content scripts

/**
 * The pictures of the frame at `frameUrl` in the tab showing `pageUrl`, as the content script
 * sees them ({record id: {state, why, warning}}): asked in the extension's world, never the page's;
 * `holds` ([{id, url}]) picks the frame among several at one URL.
 */
async function extensionPictures(pageUrl, frameUrl, holds) {
  const state = await extensionPage.evaluate(async (p, f, h) => {
    const tabs = (await browser.tabs.query({})).filter((t) => t.url === p).sort((a, b) => b.id - a.id);
    if (tabs.length === 0) return null;
    try {
      return await browser.tabs.sendMessage(tabs[0].id, { type: 'simclip/get-page-state', frameUrl: f, holds: h, picturesOnly: true });
    } catch {
      return null;
    }
  }, pageUrl, frameUrl, holds).catch(() => null);
  return Object.fromEntries((state?.pictures ?? []).map((p) => [String(p.id), p]));
}

/** The page's view of each meme joined with the extension's record of it (as e2e_support.merge_states). */
async function readStates(page, frame) {
  // the extension's records first: the page's DOM, read after, is at least as recent; the ids
  // the DOM carried just before pick this frame's answer among frames at one URL (about:blank)
  const before = await frame.evaluate(`(${config.statesScript})()`);
  const holds = before.filter((s) => s.id).map((s) => ({ id: s.id, url: s.src ?? null }));
  // the documents' own addresses: puppeteer's page.url() is not updated by a Back from Firefox's back/forward cache
  const [pageUrl, frameUrl] = [await page.mainFrame().evaluate('location.href'), await frame.evaluate('location.href')];
  const pictures = await extensionPictures(pageUrl, frameUrl, holds.length > 0 ? holds : undefined);
  const found = await frame.evaluate(`(${config.statesScript})()`);
  return found.map((s) => {
    const rec = s.id ? pictures[String(s.id)] : undefined;
    const state = rec ? rec.state : s.pageState === 'shown' ? 'skip' : s.pageState;
    return { ...s, state, recorded: Boolean(rec), why: rec ? rec.why : null, warning: rec ? rec.warning || null : null };
  });
}

const SHIELD_VIOLATIONS = '(window.__shield || {}).violations || {}';

/** The meme states and the monitor's violations (read by `violationsExpr`) in every frame of `page`. */
async function readFrames(page, violationsExpr = SHIELD_VIOLATIONS) {
  const states = [];
  const violations = {};
  for (const frame of page.frames()) {
    try {
      const url = frame.url().slice(0, 80);
      states.push(...(await readStates(page, frame)).map((s) => ({ ...s, frame: url })));
      Object.assign(violations, await frame.evaluate(violationsExpr));
    } catch (e) {
      log('frame not readable:', frame.url(), String(e).slice(0, 120));
    }
  }
  return { states, violations };
}

/**
 * Keyboard users: two flagged pictures with a card, each focused and shown with a key (Enter,
 * then Space). For each: its [tabIndex, role, aria-label] while flagged and after, whether it
 * had the focus, and its state after the key.
 */
async function pressKeys(page) {
  const a11y = (el) => [el.tabIndex, el.getAttribute('role'), el.getAttribute('aria-label')];
  const out = [];
  for (const key of ['Enter', ' ']) {
    const id = await page.evaluate(() => {
      const el = document.querySelector('[data-simclip="flagged"][role="button"]');
      if (!el) return null;
      el.id ||= `key-target-${Math.random().toString(36).slice(2)}`;
      el.scrollIntoView({ block: 'center' });
      el.focus();
      return el.id;
    });
    if (!id) break;
    const before = await page.$eval(`#${id}`, a11y);
    const focused = await page.evaluate((i) => document.activeElement?.id === i, id);
    await page.keyboard.press(key);
    await page.waitForFunction((i) => document.getElementById(i).getAttribute('data-simclip') === 'revealed',
      { timeout: 5_000 }, id).catch(() => {});
    out.push({ key, before, focused, after: await page.$eval(`#${id}`, a11y),
               state: await page.$eval(`#${id}`, (el) => el.getAttribute('data-simclip')) });
  }
  log('keys:', JSON.stringify(out));
  return out;
}

/** Open a case page and wait until every meme in every frame is decided (or the time is up). */
async function runCase({ name, url, settleMs = 1000, timeoutMs = 60_000, decided: finalStates = null, initScript = null,
  violations = SHIELD_VIOLATIONS, then = null, viewportThen = null }) {
  const t0 = Date.now();
  const page = await openPage(url, initScript ?? config.initScript);
  await sleep(settleMs);
  // a page that changes itself later says when its last change is done (tests/e2e/case_pages.py)
  await page.waitForFunction(() => window.__caseSettled !== false, { timeout: 30_000 });
  const decided = new Set(finalStates ?? config.decided);
  const waitDecided = async (since) => {
    for (;;) {
      const result = await readFrames(page, violations);
      if (result.states.length > 0 && result.states.every((s) => decided.has(s.state))) {
        return { ...result, decidedInMs: Date.now() - since };
      }
      if (Date.now() - since > timeoutMs) return { ...result, decidedInMs: null };
      await sleep(300);
    }
  };
  const result = await waitDecided(t0);
  log(`case ${name}:`, result.decidedInMs === null ? 'NOT decided' : `decided in ${result.decidedInMs} ms`);
  if (then && result.decidedInMs !== null) {
    const t1 = Date.now();
    if (viewportThen) {
      result.viewportSet = await page.setViewport(viewportThen).then(() => true, (e) => {
        log('setViewport unsupported here:', String(e).slice(0, 120));
        return false;
      });
    }
    await page.evaluate(then);
    result.after = await waitDecided(t1);
    log(`case ${name}, then:`, result.after.decidedInMs === null ? 'NOT decided' : `decided in ${result.after.decidedInMs} ms`);
  }
  report.cases[name] = result;
  await page.close();
}
/** The add-on's options page, once its script says it is ready. */
async function openOptionsPage() {
  const options = await browser.newPage();
  // BiDi reports no load event for extension pages: wait for the page's own ready flag instead.
  await options.goto(`moz-extension://${uuid}/options/options.html`, { waitUntil: 'domcontentloaded', timeout: 5_000 })
    .catch(() => {});
  await options.waitForSelector("body[data-ready='true']", { timeout: 20_000 });
  return options;
}

/** A new tab at `url`, with `initScript` (the page-side monitor) run in every document it shows. */
async function openPage(url, initScript = config.initScript) {
  const page = await browser.newPage();
  await setViewportSize(page);
  await page.evaluateOnNewDocument(initScript);
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  return page;
}

/**
 * Until the feed's first `config.memes` memes are decided (or the time is up): {states, decidedInMs}.
 * `recorded`: decided by the content script running now (its record), not only by the state
 * attribute an earlier one left on the element.
 */
async function waitFeedDecided(feed, since, { recorded = false } = {}) {
  const decided = new Set(config.decided);
  for (;;) {
    const states = await readStates(feed, feed.mainFrame());
    const top = states.filter((s) => s.truth === 'harmful' || s.truth === 'neutral').slice(0, config.memes);
    if (top.length === config.memes && top.every((s) => decided.has(s.state) && (s.recorded || !recorded))) {
      return { states, decidedInMs: Date.now() - since };
    }
    if (Date.now() - since > config.timeoutMs) return { states, decidedInMs: null };
    await sleep(250);
  }
}

/**
 * A feed left while its verdicts are pending, then Back (see `backForward` in the header). Firefox
 * keeps no page with a request in its load group when it is left, and a warning card's drawing
 * (an SVG data: URL) is one for the instant it decodes (docs/extension.md): a page left at that
 * instant is loaded again. So a page loaded again is left and shown again once more, with another
 * feed; `attempts` and `firstPageshows` say so, and a page the extension always kept out fails.
 */
async function runBackForward(options) {
  const first = await leaveAndComeBack(options, 1);
  if (first.pageshows.length >= 2) return { ...first, attempts: 1, firstPageshows: first.pageshows };
  log('back/forward: loaded again, not restored; once more');
  const second = await leaveAndComeBack(options, 2);
  return { ...second, attempts: 2, firstPageshows: first.pageshows };
}

async function leaveAndComeBack({ url, elsewhereUrl, initScript }, attempt) {
  // another feed (its seed changed): its verdicts are not cached yet, so some are pending when left
  const page = await openPage(attempt === 1 ? url : url.replace(/([?&]s=)([^&]*)/, `$1$2-again${attempt}`), initScript);
  // Firefox keeps no page still loading (its PAGE_LOADING blocker) nor one with a request in its load
  // group (REQUEST): leave once it has loaded (the test's page loads nothing of its own afterwards).
  let pendingWhenLeft = 0;
  for (const since = Date.now(); pendingWhenLeft === 0 && Date.now() - since < 30_000; await sleep(50)) {
    if (await page.evaluate('document.readyState') !== 'complete') continue;
    pendingWhenLeft = (await page.evaluate(`(${config.statesScript})()`)).filter((s) => s.pageState === 'pending').length;
  }
  await page.goto(elsewhereUrl, { waitUntil: 'load' });
  const t0 = Date.now();
  // history.back(), not page.goBack(): a page shown again from the cache fires no load event for it
  // to wait on, and its 30 s timeout was counted in the page's decision time
  await page.evaluate('history.back()');
  for (const since = Date.now(); Date.now() - since < 30_000; await sleep(100)) {
    if ((await page.evaluate('(window.__pageshows ?? []).length').catch(() => 0)) >= 2) break;
  }
  const result = await waitFeedDecided(page, t0);
  result.pendingWhenLeft = pendingWhenLeft;
  result.pageshows = await page.evaluate('window.__pageshows ?? []');
  result.violations = await page.evaluate(SHIELD_VIOLATIONS);
  log('back/forward:', JSON.stringify(result.pageshows), result.decidedInMs);
  await page.close();
  return result;
}

/**
 * The add-on installed again over itself under an open feed (see `lifecycle` in the header):
 * the open feed's flagged memes never shown meanwhile, a post it adds afterwards decided, a new
 * tab protected.
 */
async function runLifecycle({ url, newTabUrl, addPost, addPostOff, offTabUrl, openedOffUrl }) {
  const t0 = Date.now();
  const feed = await openPage(url);
  const before = await waitFeedDecided(feed, t0);
  const flagged = new Set(before.states.filter((s) => s.state === 'flagged').map((s) => s.post));
  await extensionPage.close();
  await browser.installExtension(config.extension);
  log('installed again over itself');
  const pageStates = async () => Object.fromEntries((await feed.evaluate(`(${config.statesScript})()`))
    .filter((s) => flagged.has(s.post)).map((s) => [s.post, s.pageState]));
  const coveredMeanwhile = await pageStates();
  extensionPage = await openOptionsPage();
  const t1 = Date.now();
  await feed.evaluate(addPost);
  const reinstalled = await waitFeedDecided(feed, t1, { recorded: true });
  reinstalled.violations = await feed.evaluate(SHIELD_VIOLATIONS);
  const t2 = Date.now();
  const fresh = await openPage(newTabUrl);
  const newTab = await waitFeedDecided(fresh, t2);
  newTab.violations = await fresh.evaluate(SHIELD_VIOLATIONS);
  log('lifecycle:', reinstalled.decidedInMs, newTab.decidedInMs);
  await fresh.close();
  const disabled = await runDisableEnable(feed, addPostOff, offTabUrl, openedOffUrl).catch((e) => ({ error: String(e).slice(0, 600) }));
  extensionPage ??= await openOptionsPage().catch(() => null);
  const removed = await runRemoval(feed);
  return { before, coveredMeanwhile, reinstalled, newTab, disabled, removed };
}

/** Runs `expression` (a promise) in the browser's chrome window, where about:addons' buttons run. */
async function inChrome(expression) {
  const tree = await browser.connection.send('browsingContext.getTree', { 'moz:scope': 'chrome' });
  const { result } = await browser.connection.send('script.evaluate', {
    target: { context: tree.result.contexts[0].context }, expression, awaitPromise: true,
  });
  if (result.type !== 'success') throw new Error(`chrome script failed: ${JSON.stringify(result).slice(0, 400)}`);
  return result.result?.value;
}

/** Disables or enables the add-on as about:addons does; whether it is active afterwards. */
const setAddonEnabled = (enabled) => inChrome(`(async () => {
  const { AddonManager } = ChromeUtils.importESModule('resource://gre/modules/AddonManager.sys.mjs');
  const addon = await AddonManager.getAddonByID(${JSON.stringify(addonId)});
  await (${enabled} ? addon.enable() : addon.disable());
  return addon.isActive;
})()`);

/**
 * The add-on disabled under the open feed, a harmful post added while it is off, a tab opened at
 * `openedOffUrl` while it is off (its pictures loaded with no add-on to see them), then enabled
 * again: the flagged pictures covered meanwhile (the gap rules), the feed decided again with the
 * post added while off, the tab opened while off decided, and a tab opened after protected.
 */
async function runDisableEnable(feed, addPostOff, offTabUrl, openedOffUrl) {
  const flagged = await feed.evaluate("document.querySelectorAll('[data-simclip=\"flagged\"]').length");
  await extensionPage.close();
  extensionPage = null;
  const active = await setAddonEnabled(false);
  let clockRan = false;
  for (const since = Date.now(); Date.now() - since < 10_000 && !clockRan; await sleep(50)) clockRan = await feed.evaluate(GAP_CLOCK_RUNNING);
  await feed.evaluate(addPostOff);
  await feed.evaluate('new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))');
  const uncoveredWhileOff = await feed.evaluate(FLAGGED_UNCOVERED);
  const openedOff = await openPage(openedOffUrl);
  await openedOff.waitForFunction(() => document.readyState === 'complete', { timeout: 30_000 });
  const t1 = Date.now();
  const activeAgain = await setAddonEnabled(true);
  extensionPage = await openOptionsPage();
  const enabled = await waitFeedDecided(feed, t1, { recorded: true });
  enabled.violations = await feed.evaluate(SHIELD_VIOLATIONS); // since the page loaded: the reinstall's too
  const openedWhileOff = await waitFeedDecided(openedOff, t1, { recorded: true });
  await openedOff.close();
  const t2 = Date.now();
  const fresh = await openPage(offTabUrl);
  const newTab = await waitFeedDecided(fresh, t2);
  newTab.violations = await fresh.evaluate(SHIELD_VIOLATIONS);
  await fresh.close();
  log('disabled and enabled:', JSON.stringify({ active, activeAgain, flagged, clockRan, uncoveredWhileOff }),
    enabled.decidedInMs, openedWhileOff.decidedInMs, newTab.decidedInMs);
  return { active: [active, activeAgain], flagged, clockRan, uncoveredWhileOff, enabled, openedWhileOff, newTab };
}

const GAP_CLOCK_RUNNING = "document.documentElement.getAnimations().some((a) => a.animationName === 'simclip-gap-clock')";
// the pictures marked flagged that the page paints uncovered (their picture in its box, no card)
const FLAGGED_UNCOVERED = `[...document.querySelectorAll('[data-simclip="flagged"]')].filter((el) => {
  const cs = getComputedStyle(el);
  return cs.objectPosition !== '-100000px -100000px' && !cs.backgroundImage.includes('svg');
}).length`;

/**
 * The add-on removed under the open feed: its content-script CSS goes, the gap rules' clock starts
 * and the flagged pictures stay covered; the clock is then finished at once (30 s by itself) and
 * the page's own world switches every rule off, the pictures back in the page.
 */
async function runRemoval(feed) {
  await extensionPage?.close();
  extensionPage = null;
  await browser.uninstallExtension(addonId);
  // counted once the content script is gone: a verdict still on its way could flag one more
  const flagged = await feed.evaluate("document.querySelectorAll('[data-simclip=\"flagged\"]').length");
  let clockRan = false;
  for (const since = Date.now(); Date.now() - since < 10_000 && !clockRan; await sleep(50)) clockRan = await feed.evaluate(GAP_CLOCK_RUNNING);
  await feed.evaluate('new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))');
  const uncoveredInGap = await feed.evaluate(FLAGGED_UNCOVERED);
  const violations = await feed.evaluate(SHIELD_VIOLATIONS);
  await feed.evaluate("document.documentElement.getAnimations().filter((a) => a.animationName === 'simclip-gap-clock').forEach((a) => a.finish())");
  let off = null;
  for (const since = Date.now(); Date.now() - since < 10_000 && off === null; await sleep(50)) {
    off = await feed.evaluate("document.documentElement.getAttribute('data-simclip-off')");
  }
  const uncoveredAfter = await feed.evaluate(FLAGGED_UNCOVERED);
  log('removed:', JSON.stringify({ flagged, clockRan, uncoveredInGap, off, uncoveredAfter }));
  return { flagged, clockRan, uncoveredInGap, violations, off, uncoveredAfter };
}

/** A page read once it is ready (see `probes` in the header): the value of `read`, or throws after `timeoutMs`. */
async function runProbe({ name, url, until, read, timeoutMs = 60_000, screenshot, pictureDocument = false }) {
  let page;
  if (pictureDocument) { // Firefox's WebDriver BiDi reports no DOMContentLoaded for an image document: `until` waits
    page = await browser.newPage();
    await setViewportSize(page);
    page.goto(url, { waitUntil: 'domcontentloaded', timeout: timeoutMs }).catch(() => {});
  } else {
    page = await openPage(url);
  }
  const since = Date.now();
  while (!(await page.evaluate(until).catch(() => false))) {
    if (Date.now() - since > timeoutMs) throw new Error(`probe ${name}: not ready after ${timeoutMs} ms`);
    await sleep(250);
  }
  const value = await page.evaluate(read);
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  log(`probe ${name}: ready in ${Date.now() - since} ms`);
  await page.close();
  return value;
}

try {
  await browser.installExtension(config.extension);
  log('installed', addonId, report.browser);

  const options = await openOptionsPage();
  await options.$eval('#server-url', (el, v) => { el.value = v; }, config.serverUrl);
  await options.$eval('#token', (el, v) => { el.value = v; }, config.token);
  await options.click('#save-test');
  await waitInExtensionPage(options, () => {
    const kind = document.querySelector('#connection-status')?.dataset.kind;
    return Boolean(kind && kind !== 'testing');
  }, 20_000);
  report.connection = await options.$eval('#connection-status', (el) => el.textContent.trim());
  extensionPage = options;
  log('options page:', report.connection);
  if (config.revealAfterSeconds) {
    await options.$eval('#reveal-after', (el, v) => {
      el.value = String(v);
      el.dispatchEvent(new Event('change', { bubbles: true }));
    }, config.revealAfterSeconds);
    await waitInExtensionPage(options, () => /Saved/.test(document.querySelector('#failure-status')?.textContent ?? ''), 10_000);
  }

  for (const probe of config.probes ?? []) report.probes = { ...report.probes, [probe.name]: await runProbe(probe) };
  if (config.feedUrl) {
    const t0 = Date.now();
    const feed = await openPage(config.feedUrl);
    Object.assign(report, await waitFeedDecided(feed, t0));
    report.shield = await feed.evaluate('window.__shield');
    if (config.screenshot) await feed.screenshot({ path: config.screenshot });
    if (config.keys) report.keys = await pressKeys(feed);
  }
  for (const c of config.cases ?? []) await runCase(c);
  if (config.backForward) report.backForward = await runBackForward(config.backForward);
  if (config.lifecycle) report.lifecycle = await runLifecycle(config.lifecycle);
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(report)}\n`);
