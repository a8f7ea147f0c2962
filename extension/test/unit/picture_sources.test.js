import assert from 'node:assert/strict';
import { test } from 'node:test';

import { areInOnePlace } from '../../content/picture_sources.js';

/** A fake element under `parent`, whose box is `rect`; counts its box reads. */
function element(parent, rect, reads) {
  return {
    parentElement: parent,
    getBoundingClientRect() {
      reads.count += 1;
      return { ...rect, right: rect.left + rect.width, bottom: rect.top + rect.height };
    },
  };
}

test('two copies of a picture are in one place when near in the tree and overlapping by half', () => {
  const reads = { count: 0 };
  const post = { parentElement: null };
  const backdrop = element(post, { left: 0, top: 0, width: 200, height: 100 }, reads);
  const image = element(post, { left: 10, top: 0, width: 200, height: 100 }, reads);
  const elsewhere = element(post, { left: 0, top: 500, width: 200, height: 100 }, reads);
  const farAway = element({ parentElement: { parentElement: { parentElement: { parentElement: { parentElement: null } } } } },
    { left: 0, top: 0, width: 200, height: 100 }, reads);
  assert.equal(areInOnePlace(backdrop, image), true);
  assert.equal(areInOnePlace(backdrop, elsewhere), false); // the same meme posted twice
  assert.equal(areInOnePlace(backdrop, farAway), false); // no ancestor near both: no box read
});

test('comparing n copies of one picture in one task reads each box once, not once a pair', async () => {
  await Promise.resolve(); // a task of its own
  const reads = { count: 0 };
  const grid = { parentElement: null };
  const cells = Array.from({ length: 50 }, (_, i) => element(grid, { left: (i % 10) * 50, top: Math.floor(i / 10) * 50, width: 40, height: 40 }, reads));
  let pairs = 0;
  for (const a of cells) for (const b of cells) if (a !== b && areInOnePlace(a, b)) pairs += 1;
  assert.equal(pairs, 0);
  assert.equal(reads.count, cells.length);
  await Promise.resolve(); // the next task reads again (the page may have moved them)
  areInOnePlace(cells[0], cells[1]);
  assert.equal(reads.count, cells.length + 2);
});
