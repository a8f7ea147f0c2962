import assert from 'node:assert/strict';
import { test } from 'node:test';

import { areInOnePlace } from '../../content/picture_sources.js';
import { PictureIndex } from '../../content/record_map.js';

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

test('grouping n copies of one picture compares each with the copies near it only, not all n', async () => {
  await Promise.resolve(); // a task of its own
  const reads = { count: 0 };
  const feed = { parentElement: null };
  const posts = Array.from({ length: 300 }, () => {
    const post = { parentElement: { parentElement: { parentElement: { parentElement: { parentElement: feed } } } } };
    const box = { left: 0, top: 0, width: 40, height: 40 };
    return [element(post, box, reads), element(post, box, reads)]; // an avatar and its backdrop
  });
  let compared = 0;
  const inOnePlace = (a, b) => {
    compared += 1;
    return areInOnePlace(a, b);
  };
  const index = new PictureIndex({ inOnePlace });
  const records = posts.flat().map((el, id) => ({ id, el, url: 'https://cdn.example/avatar.png' }));
  for (const r of records) index.rekey(r, null, r.url);
  for (let i = 0; i < records.length; i += 2) {
    assert.deepEqual(index.groupOf(records[i]), [records[i], records[i + 1]]);
  }
  assert.ok(compared <= records.length, `${compared} comparisons for ${records.length / 2} groups`);
  const few = new PictureIndex();
  for (const r of records.slice(0, 4)) few.rekey(r, null, r.url);
  assert.deepEqual(few.groupOf(records[2]), [records[2], records[3]]); // under BUCKET_FROM: all pairs
  index.rekey(records[1], records[1].url, null); // a copy leaves: the next lookup sees it gone
  assert.deepEqual(index.groupOf(records[0]), [records[0]]);
});
