/**
 * The site allowlist: sites where the extension does nothing ("Pause on this site" adds to it).
 * An entry covers the host itself and its subdomains, compared label by label: the `.${entry}`
 * suffix test stops `evilexample.com` and `example.com.evil.net` from matching `example.com`.
 * Entries and hosts go through the URL parser, so internationalised lookalikes (a Cyrillic "а")
 * become punycode and never equal the ASCII name.
 */

/** A user's entry ("https://www.Example.com/x", "*.example.com", "example.com.") -> "example.com" form, or null. */
export function normalizeSiteEntry(entry) {
  if (typeof entry !== 'string') return null;
  let text = entry.trim().toLowerCase();
  if (!text) return null;
  text = text.replace(/^\*\./, '');
  if (!/^[a-z][a-z0-9+.-]*:\/\//.test(text)) text = `http://${text}`;
  let host;
  try {
    host = new URL(text).hostname;
  } catch {
    return null;
  }
  host = host.replace(/\.$/, '');
  if (!host || host.includes('*') || host.startsWith('.')) return null;
  return host;
}

/** True when `host` is an allowlisted site or a subdomain of one. */
export function isHostAllowlisted(host, entries) {
  const h = normalizeSiteEntry(host ?? '');
  if (!h || !Array.isArray(entries)) return false;
  return entries.some((raw) => {
    const entry = normalizeSiteEntry(raw);
    return entry !== null && (h === entry || h.endsWith(`.${entry}`));
  });
}

/** The list with `entry` added once (normalised), sorted. */
export function addSite(entries, entry) {
  const site = normalizeSiteEntry(entry);
  const list = (entries ?? []).map(normalizeSiteEntry).filter(Boolean);
  if (site && !list.includes(site)) list.push(site);
  return [...new Set(list)].sort();
}

/** The list without `entry` (and without any entry that makes `entry`'s host allowlisted). */
export function removeSite(entries, entry) {
  const site = normalizeSiteEntry(entry);
  return (entries ?? [])
    .map(normalizeSiteEntry)
    .filter((e) => e && !(site && (site === e || site.endsWith(`.${e}`))));
}
