/** The http(s) URLs in a CSS `background-image` value (`url("a"), linear-gradient(...), url(b)`), resolved against `base`. */
export function listCssImageUrls(value, base) {
  if (typeof value !== 'string' || !value.includes('url(')) return [];
  const out = [];
  const re = /url\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([^)\s]*))\s*\)/g;
  for (const m of value.matchAll(re)) {
    const raw = (m[1] ?? m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1');
    if (!raw) continue;
    try {
      const url = new URL(raw, base);
      if (url.protocol === 'http:' || url.protocol === 'https:') out.push(url.href);
    } catch {
      // not a URL
    }
  }
  return out;
}
