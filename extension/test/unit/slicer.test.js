import assert from 'node:assert/strict';
import { test } from 'node:test';

import { listCssImageUrls } from '../../shared/cssurls.js';
import { TimeSlicer } from '../../shared/slicer.js';

test('yields to the page once a slice has used its time budget', () => {
  let clock = 0;
  const scheduled = [];
  const done = [];
  const slicer = new TimeSlicer((item) => {
    done.push(item);
    clock += 3; // each item costs 3 ms
  }, { budgetMs: 8, now: () => clock, schedule: (fn) => scheduled.push(fn) });
  slicer.pushAll([1, 2, 3, 4, 5, 6, 7]);
  assert.equal(scheduled.length, 1);
  scheduled.shift()();
  assert.deepEqual(done, [1, 2, 3]); // 9 ms >= 8 ms budget: yield
  scheduled.shift()();
  scheduled.shift()();
  assert.deepEqual(done, [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(scheduled.length, 0);
  assert.equal(slicer.pending, 0);
  assert.equal(slicer.maxSliceMs, 9);
});

test('reads http(s) URLs out of a CSS background-image value', () => {
  const base = 'https://feed.example/posts/';
  assert.deepEqual(listCssImageUrls('url("a.png"), linear-gradient(red, blue), url(\'/b.jpg\'), url(c.webp)', base),
    ['https://feed.example/posts/a.png', 'https://feed.example/b.jpg', 'https://feed.example/posts/c.webp']);
  assert.deepEqual(listCssImageUrls('none', base), []);
  assert.deepEqual(listCssImageUrls('url("data:image/png;base64,AAAA")', base), []);
});
