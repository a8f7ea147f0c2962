/** The WebExtension namespace: Firefox exposes `browser`, Chromium only `chrome` (both promise-based in MV3). */
export function getBrowser() {
  return globalThis.browser ?? globalThis.chrome;
}
