import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  PRIVATE_URL_REGEXES, SERVER_API_REGEX, createRefererRule, isSameSite, listFetchGuardRules, refererFor, registrableDomain,
} from '../../shared/fetch_rules.js';
import { isUnsafeHost } from '../../shared/urlsafety.js';

const blocks = (url) => PRIVATE_URL_REGEXES.some((re) => new RegExp(re).test(url));

test('the redirect guard blocks exactly the hosts urlsafety refuses, for URLs as browsers write them', () => {
  const hosts = [
    '127.0.0.1', '127.1.2.3', '10.0.0.8', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1',
    '100.127.1.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', '198.18.0.1', '192.0.0.1', '[::1]', '[fe80::1]', '[fc00::1]',
    'localhost', 'printer.local', 'db.internal', 'nas.home.arpa', 'router', 'intranet.corp', 'foo.localhost.',
    'example.com', 'i.redd.it', 'pbs.twimg.com', '172.32.0.1', '100.128.0.1', '8.8.8.8', '192.169.0.1', 'cdn.local-news.com',
  ];
  for (const host of hosts) {
    const url = new URL(`http://${host}:8080/a.png?x=1`).href; // canonical, as the browser matches it
    assert.equal(blocks(url), isUnsafeHost(new URL(url).hostname), `${host} -> ${url}`);
  }
});

test('other IPv4 spellings reach the rules already rewritten by the URL parser, and are blocked', () => {
  for (const spelled of ['http://2130706433/a.png', 'http://0x7f.1/a.png', 'http://0177.0.0.1/a.png', 'http://127.1/a.png']) {
    assert.equal(blocks(new URL(spelled).href), true, spelled);
  }
  assert.equal(blocks('https://user:pw@192.168.0.1/a.png'), true);
});

test('the local server API is the one loopback destination let through, and the rules are the extension\'s own requests only', () => {
  const allow = new RegExp(SERVER_API_REGEX);
  assert.equal(allow.test('http://127.0.0.1:8478/v1/classify'), true);
  assert.equal(allow.test('http://127.0.0.1:8478/v1/setup'), true); // issue 15: Set up protection
  assert.equal(allow.test('http://[::1]:8478/v1/health'), true);
  assert.equal(allow.test('http://127.0.0.1:8478/admin'), false);
  assert.equal(allow.test('http://127.0.0.1:8478/v1/classify?x=1'), false);
  const [allowServer, ...blockRules] = listFetchGuardRules('abcdef');
  assert.equal(allowServer.action.type, 'allow');
  for (const block of blockRules) {
    assert.deepEqual(block.condition.initiatorDomains, ['abcdef']);
    assert.equal(block.action.type, 'block');
    assert.ok(allowServer.priority > block.priority);
  }
});

test('the Referer is the page origin, as its referrer policy sent it, never the page path', () => {
  const page = 'https://www.reddit.com/r/memes/comments/xyz?utm=1';
  assert.equal(refererFor(page, 'https://i.redd.it/a.png'), 'https://www.reddit.com/');
  assert.equal(refererFor(page, 'http://i.example/a.png'), ''); // no Referer from https to http
  assert.equal(refererFor(page, 'http://i.example/a.png', 'unsafe-url'), 'https://www.reddit.com/');
  assert.equal(refererFor(page, 'https://i.redd.it/a.png', 'no-referrer'), '');
  assert.equal(refererFor(page, 'https://i.redd.it/a.png', 'same-origin'), '');
  assert.equal(refererFor(page, 'https://www.reddit.com/a.png', 'same-origin'), 'https://www.reddit.com/');
  assert.equal(refererFor('about:blank', 'https://i.redd.it/a.png'), '');
});

test('a Referer rule names exactly one URL, and none is made for a URL a filter cannot name', () => {
  const rule = createRefererRule(1000, 'https://i.example/a.png?x=1', 'https://feed.example/', 'ext');
  assert.equal(rule.condition.urlFilter, '|https://i.example/a.png?x=1|');
  assert.deepEqual(rule.action.requestHeaders, [{ header: 'referer', operation: 'set', value: 'https://feed.example/' }]);
  assert.equal(createRefererRule(1001, 'https://i.example/*.png', 'https://feed.example/', 'ext'), null);
  assert.equal(createRefererRule(1002, 'https://i.example/a.png', '', 'ext'), null);
});

test('cookies go only to an image on the page\'s own site', () => {
  assert.equal(registrableDomain('preview.redd.it'), 'redd.it');
  assert.equal(registrableDomain('a.b.example.co.uk'), 'example.co.uk');
  assert.equal(registrableDomain('alice.github.io'), 'alice.github.io');
  // the whole Public Suffix List, not a short list: wildcards, exceptions, private suffixes
  assert.equal(registrableDomain('www.city.kawasaki.jp'), 'city.kawasaki.jp'); // !city.kawasaki.jp
  assert.equal(registrableDomain('a.b.c.ck'), 'b.c.ck'); // *.ck
  assert.equal(registrableDomain('memes.s3.amazonaws.com'), 'memes.s3.amazonaws.com');
  assert.equal(registrableDomain('cdn.example.com.pl'), 'example.com.pl');
  assert.equal(registrableDomain('WWW.Example.COM.'), 'example.com');
  assert.equal(registrableDomain('localhost'), 'localhost');
  assert.equal(registrableDomain('10.0.0.1'), '10.0.0.1');
  assert.equal(registrableDomain('[::1]'), '[::1]');
  assert.equal(isSameSite('https://alice.s3.amazonaws.com/', 'https://bob.s3.amazonaws.com/p.png'), false);
  assert.equal(isSameSite('https://a.example.com.pl/', 'https://b.other.com.pl/p.png'), false);
  assert.equal(isSameSite('https://www.facebook.com/x', 'https://scontent.facebook.com/p.jpg'), true);
  assert.equal(isSameSite('https://www.reddit.com/x', 'https://i.redd.it/p.jpg'), false);
  assert.equal(isSameSite('https://alice.github.io/', 'https://bob.github.io/p.png'), false);
  assert.equal(isSameSite('http://feed.test:8000/', 'http://feed.test:9000/p.png'), true);
  assert.equal(isSameSite('https://example.com/', 'http://example.com/p.png'), false);
});
