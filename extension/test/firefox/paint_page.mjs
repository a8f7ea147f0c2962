/**
 * Open one page in Firefox without the extension and print what a page-side expression reads
 * there: how Firefox itself paints a page's pictures, for the e2e tests that compare it with the
 * server's decoding (tests/e2e/test_truncation_e2e.py). Driven over WebDriver BiDi
 * (puppeteer-core, no browser download).
 *
 *   node test/firefox/paint_page.mjs CONFIG.json
 *
 * CONFIG: {firefox, url, read, launchTimeoutMs}: `read` is an expression evaluated in the page
 *   once it has loaded (it may return a promise).
 * Prints one JSON object on stdout: {browser, value}.
 */
import { readFile } from 'node:fs/promises';

import puppeteer from 'puppeteer-core';

const config = JSON.parse(await readFile(process.argv[2], 'utf8'));
const browser = await puppeteer.launch({
  browser: 'firefox',
  executablePath: config.firefox,
  headless: true,
  protocolTimeout: 120_000,
  timeout: config.launchTimeoutMs ?? 120_000, // a start can take over 30 s on a loaded machine
});
try {
  const page = await browser.newPage();
  await page.goto(config.url, { waitUntil: 'load' });
  const value = await page.evaluate(config.read);
  process.stdout.write(`${JSON.stringify({ browser: await browser.version(), value })}\n`);
} finally {
  await browser.close();
}
