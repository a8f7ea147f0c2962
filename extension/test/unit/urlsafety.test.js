import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkImageUrl, isUnsafeHost, parseIPv4, parseIPv6 } from '../../shared/urlsafety.js';

test('fetches public http and https image URLs (without their fragment)', () => {
  assert.deepEqual(checkImageUrl('https://i.redd.it/meme.png#x'), { ok: true, url: 'https://i.redd.it/meme.png' });
  assert.equal(checkImageUrl('http://feed.test:8000/img/1.png').ok, true);
  assert.equal(checkImageUrl('http://8.8.8.8/a.png').ok, true);
  assert.equal(checkImageUrl('http://[2606:4700::1111]/a.png').ok, true);
});

test('refuses schemes other than http and https', () => {
  for (const url of ['data:image/png;base64,AAAA', 'blob:https://x.com/1', 'file:///etc/passwd', 'ftp://x.com/a.png', 'chrome://settings']) {
    assert.deepEqual(checkImageUrl(url), { ok: false, reason: 'not_http' }, url);
  }
  assert.equal(checkImageUrl('not a url').reason, 'invalid_url');
});

test('refuses loopback, private, link-local and CGNAT IPv4 hosts', () => {
  for (const host of ['127.0.0.1', '127.8.9.10', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1',
    '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255']) {
    assert.equal(checkImageUrl(`http://${host}/a.png`).reason, 'private_host', host);
  }
  assert.equal(checkImageUrl('http://172.32.0.1/a.png').ok, true);
});

test('refuses loopback written in decimal, hex, octal and short IPv4 forms', () => {
  for (const url of ['http://2130706433/', 'http://0x7f000001/', 'http://0x7f.1/', 'http://0177.0.0.1/', 'http://127.1/',
    'http://3232235777/', 'http://0/']) {
    assert.equal(checkImageUrl(url).reason, 'private_host', url);
  }
  assert.deepEqual(parseIPv4('0x7f.0.0.1'), [127, 0, 0, 1]);
  assert.deepEqual(parseIPv4('3232235777'), [192, 168, 1, 1]);
  assert.equal(parseIPv4('256.1.1.1'), null);
  assert.equal(parseIPv4('example.com'), null);
});

test('refuses loopback, unique-local, link-local and IPv4-mapped private IPv6 hosts', () => {
  for (const host of ['[::1]', '[::]', '[fd12:3456::1]', '[fc00::1]', '[fe80::1]', '[::ffff:127.0.0.1]', '[::ffff:10.0.0.1]',
    '[::ffff:7f00:1]', '[64:ff9b::192.168.0.1]', '[ff02::1]', '[0:0:0:0:0:0:0:1]']) {
    assert.equal(checkImageUrl(`http://${host}/a.png`).reason, 'private_host', host);
  }
  assert.equal(checkImageUrl('http://[::ffff:8.8.8.8]/a.png').ok, true);
  assert.deepEqual(parseIPv6('[::1]'), [0, 0, 0, 0, 0, 0, 0, 1]);
  assert.equal(parseIPv6('1::2::3'), null);
});

test('refuses localhost, .local, .internal and single-label intranet names', () => {
  for (const host of ['localhost', 'LOCALHOST.', 'app.localhost', 'printer.local', 'db.internal', 'nas.home.arpa', 'router', 'intranet']) {
    assert.equal(isUnsafeHost(host), true, host);
  }
  assert.equal(isUnsafeHost('localhost.example.com'), false);
  assert.equal(isUnsafeHost('local.com'), false);
});

test('refuses URLs that carry credentials', () => {
  assert.equal(checkImageUrl('https://user:pw@example.com/a.png').reason, 'credentials_in_url');
});
