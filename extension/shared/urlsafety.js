/**
 * Which image URLs the service worker may fetch (THREATS.md T13). Extensions are exempt from
 * Chrome's Local Network Access, so a page could name an image on the user's router, printer
 * or localhost and have the worker request it. Only http(s) is fetched, and a host that is
 * loopback, private, link-local, CGNAT, multicast/reserved, `localhost`, `.local`, `.internal`
 * or a single-label intranet name is refused. IPv4 literals are read in every form the WHATWG URL
 * parser accepts (decimal `2130706433`, hex `0x7f.1`, octal `0177.0.0.1`, short `127.1`).
 * A public name that *resolves* to a private address cannot be seen from an extension; the
 * server's Host check (T1) is the defence there.
 */

const LOCAL_SUFFIXES = ['localhost', 'local', 'internal', 'home.arpa', 'lan', 'intranet', 'corp'];

function parseIPv4Part(part) {
  if (part === '') return NaN;
  if (/^0x[0-9a-f]*$/i.test(part)) return part.length === 2 ? 0 : parseInt(part.slice(2), 16);
  if (/^0[0-7]+$/.test(part)) return parseInt(part, 8);
  if (/^(0|[1-9][0-9]*)$/.test(part)) return parseInt(part, 10);
  return NaN;
}

/** A host in any IPv4 literal form -> [a, b, c, d], else null. */
export function parseIPv4(host) {
  const parts = host.replace(/\.$/, '').split('.');
  if (parts.length === 0 || parts.length > 4) return null;
  const nums = parts.map(parseIPv4Part);
  if (nums.some((n) => !Number.isFinite(n) || n < 0)) return null;
  const last = nums.pop();
  if (nums.some((n) => n > 255) || last >= 256 ** (4 - nums.length)) return null;
  let value = last;
  nums.forEach((n, i) => {
    value += n * 256 ** (3 - i);
  });
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255];
}

/** True for loopback, private, link-local, CGNAT, "this network", benchmark, multicast and reserved IPv4. */
export function isNonPublicIPv4([a, b]) {
  return (
    a === 0 || a === 10 || a === 127 ||
    (a === 100 && b >= 64 && b <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && (b === 168 || b === 0)) ||
    (a === 198 && (b === 18 || b === 19)) ||
    a >= 224
  );
}

/** "[::1]" or "fe80::1%eth0" -> eight 16-bit words, else null. */
export function parseIPv6(host) {
  let text = host.replace(/^\[|\]$/g, '').replace(/%.*$/, '').toLowerCase();
  if (!text.includes(':')) return null;
  let tail = [];
  const v4 = text.match(/^(.*:)(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const quad = parseIPv4(v4[2]);
    if (!quad) return null;
    tail = [(quad[0] << 8) | quad[1], (quad[2] << 8) | quad[3]];
    text = v4[1].endsWith('::') ? v4[1] : v4[1].slice(0, -1);
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const toWords = (s) => (s === '' ? [] : s.split(':').map((w) => (/^[0-9a-f]{1,4}$/.test(w) ? parseInt(w, 16) : NaN)));
  const head = toWords(halves[0]);
  const rest = halves.length === 2 ? toWords(halves[1]) : [];
  if ([...head, ...rest].some(Number.isNaN)) return null;
  const fill = 8 - head.length - rest.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return null;
  return [...head, ...Array(Math.max(fill, 0)).fill(0), ...rest, ...tail];
}

/** True for ::, ::1, IPv4-mapped/compatible/NAT64 forms of non-public IPv4, ULA fc00::/7, link-local fe80::/10, site-local, multicast. */
export function isNonPublicIPv6(words) {
  const [w0, , , , , w5, w6, w7] = words;
  const embedded = [w6 >> 8, w6 & 255, w7 >> 8, w7 & 255];
  if (words.slice(0, 6).every((w) => w === 0)) return true; // ::, ::1 and IPv4-compatible ::a.b.c.d
  if (words.slice(0, 5).every((w) => w === 0) && w5 === 0xffff) return isNonPublicIPv4(embedded);
  if (w0 === 0x64 && words[1] === 0xff9b) return isNonPublicIPv4(embedded);
  return (w0 & 0xfe00) === 0xfc00 || (w0 & 0xffc0) === 0xfe80 || (w0 & 0xffc0) === 0xfec0 || (w0 & 0xff00) === 0xff00;
}

/** True when the worker must not fetch from `hostname` (as URL.hostname gives it). */
export function isUnsafeHost(hostname) {
  const host = String(hostname).toLowerCase().replace(/\.$/, '');
  if (!host) return true;
  const v6 = parseIPv6(host);
  if (v6) return isNonPublicIPv6(v6);
  const v4 = parseIPv4(host);
  if (v4) return isNonPublicIPv4(v4);
  if (!host.includes('.')) return true; // single-label names resolve on the local network
  return LOCAL_SUFFIXES.some((s) => host === s || host.endsWith(`.${s}`));
}

/** `{ok: true, url}` for an image URL the worker may fetch, else `{ok: false, reason}`. */
export function checkImageUrl(rawUrl) {
  let url;
  try {
    url = new URL(rawUrl);
  } catch {
    return { ok: false, reason: 'invalid_url' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, reason: 'not_http' };
  if (url.username || url.password) return { ok: false, reason: 'credentials_in_url' };
  if (isUnsafeHost(url.hostname)) return { ok: false, reason: 'private_host' };
  url.hash = '';
  return { ok: true, url: url.href };
}
