import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LRUCache } from '../../shared/lru.js';

test('evicts the least recently used entry once over capacity', () => {
  const c = new LRUCache(2);
  c.set('a', 1).set('b', 2);
  c.get('a'); // a is now the most recent
  c.set('c', 3);
  assert.equal(c.has('b'), false);
  assert.deepEqual([c.get('a'), c.get('c')], [1, 3]);
  assert.equal(c.size, 2);
});

test('overwriting a key refreshes it instead of growing the cache', () => {
  const c = new LRUCache(2);
  c.set('a', 1).set('b', 2).set('a', 10).set('c', 3);
  assert.equal(c.get('a'), 10);
  assert.equal(c.has('b'), false);
});

test('returns undefined for a missing key and refuses a non-positive capacity', () => {
  assert.equal(new LRUCache(1).get('x'), undefined);
  assert.throws(() => new LRUCache(0), RangeError);
});
