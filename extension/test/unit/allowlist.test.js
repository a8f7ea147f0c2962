import assert from 'node:assert/strict';
import { test } from 'node:test';

import { addSite, isHostAllowlisted, normalizeSiteEntry, removeSite } from '../../shared/allowlist.js';

test('matches the listed host and its subdomains', () => {
  assert.equal(isHostAllowlisted('example.com', ['example.com']), true);
  assert.equal(isHostAllowlisted('www.example.com', ['example.com']), true);
  assert.equal(isHostAllowlisted('a.b.example.com', ['example.com']), true);
});

test('does not match a lookalike domain that only ends with the entry text', () => {
  assert.equal(isHostAllowlisted('evilexample.com', ['example.com']), false);
  assert.equal(isHostAllowlisted('example.com.evil.net', ['example.com']), false);
  assert.equal(isHostAllowlisted('example.co', ['example.com']), false);
});

test('does not match an internationalised homograph of the entry', () => {
  // Cyrillic "а" (U+0430) in place of the Latin "a": the URL parser turns it into punycode.
  assert.equal(isHostAllowlisted('ex\u0430mple.com', ['example.com']), false);
  assert.equal(normalizeSiteEntry('ex\u0430mple.com').startsWith('xn--'), true);
});

test('a subdomain entry does not cover its parent domain', () => {
  assert.equal(isHostAllowlisted('example.com', ['news.example.com']), false);
  assert.equal(isHostAllowlisted('news.example.com', ['news.example.com']), true);
});

test('normalises URLs, wildcards, case, ports and trailing dots to a host name', () => {
  assert.equal(normalizeSiteEntry('https://WWW.Example.com:8443/path?q=1'), 'www.example.com');
  assert.equal(normalizeSiteEntry('*.example.com'), 'example.com');
  assert.equal(normalizeSiteEntry('example.com.'), 'example.com');
  assert.equal(isHostAllowlisted('Example.COM.', ['EXAMPLE.com']), true);
});

test('rejects entries that are not host names', () => {
  for (const bad of ['', '   ', 'http://', 'exa mple.com', '*', 42, null]) {
    assert.equal(normalizeSiteEntry(bad), null, String(bad));
  }
});

test('adding a site keeps the list unique and sorted; removing unpauses subdomains too', () => {
  const list = addSite(addSite(['b.com'], 'https://a.com/x'), 'A.com');
  assert.deepEqual(list, ['a.com', 'b.com']);
  assert.deepEqual(removeSite(list, 'www.a.com'), ['b.com']);
});
