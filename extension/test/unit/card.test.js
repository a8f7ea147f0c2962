import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  CARD_LAYOUT, CHIP_TEXT, FULL_MIN_WIDTH, MIN_FONT_PX, SIGN, cardSvg, estimateWidth, fitText, layoutCard, whereOnCard,
} from '../../content/card.js';

const FOUR = ['Harmful', 'Misogyny', 'Hateful', 'Offensive'];
const SIZES = [[120, 90], [200, 150], [300, 225], [600, 450], [120, 120], [199, 60]];

/** Every text's and the chip's extent, from the box's centre: [left, top, right, bottom]. */
function extents(layout) {
  const out = layout.texts.map((t) => {
    const w = estimateWidth(t.text, t.size, t.weight);
    const x = t.x ?? 0;
    return [x - w / 2, t.y - t.size, x + w / 2, t.y + t.size * 0.3];
  });
  const c = layout.chip;
  if (c) out.push([c.x, c.y, c.x + c.width, c.y + c.height]);
  return out;
}

test('at 120, 200, 300 and 600 px with 1 to 4 categories, no text is under 11 px and everything lies inside the box', () => {
  for (const [width, height] of SIZES) {
    for (let n = 1; n <= 4; n += 1) {
      const layout = layoutCard(FOUR.slice(0, n), { width, height });
      for (const t of layout.texts) assert.ok(t.size >= MIN_FONT_PX, `${width}x${height} ${n}: ${t.text} at ${t.size} px`);
      if (layout.chip) assert.ok(layout.chip.size >= MIN_FONT_PX);
      for (const [l, t, r, b] of extents(layout)) {
        assert.ok(l >= -width / 2 && r <= width / 2 && t >= -height / 2 && b <= height / 2,
          `${width}x${height} with ${n}: [${l}, ${t}, ${r}, ${b}] leaves the box`);
      }
    }
  }
});

test('every card at 120 px and up has the "Not harmful?" chip', () => {
  for (const [width, height] of SIZES) {
    for (let n = 1; n <= 4; n += 1) assert.equal(layoutCard(FOUR.slice(0, n), { width, height }).chip?.text, CHIP_TEXT);
  }
});

test('below 200 px the card is compact: the top category and how many more', () => {
  const layout = layoutCard(FOUR.slice(0, 3), { width: FULL_MIN_WIDTH - 1, height: 150 });
  assert.equal(layout.layout, CARD_LAYOUT.COMPACT);
  assert.deepEqual(layout.texts.map((t) => t.text), [`${SIGN} Harmful +2`]);
});

test('a full card wraps the categories over two lines, or lists the top one with +N when they need more', () => {
  const wide = layoutCard(FOUR, { width: 600, height: 450 });
  assert.equal(wide.layout, CARD_LAYOUT.FULL);
  const titles = wide.texts.filter((t) => t.size === 15).map((t) => t.text).join(' · ');
  assert.equal(titles, `${SIGN} ${FOUR.join(' · ')}`);
  const narrow = layoutCard(FOUR, { width: 200, height: 150 });
  assert.deepEqual(narrow.texts.filter((t) => t.size === 15).map((t) => t.text), [`${SIGN} Harmful +3`]);
});

test('a name too long for the box is shortened with an ellipsis, never drawn past its edge', () => {
  const layout = layoutCard(['Extraordinarily offensive material'], { width: 120, height: 90 });
  const [title] = layout.texts;
  assert.match(title.text, /…$/);
  assert.ok(estimateWidth(title.text, title.size, 600) <= 120 - 16);
  assert.equal(fitText('abc', 1, 12, 400, estimateWidth), '');
});

test('a box too small for the chip\'s words gets a "?" chip; smaller still, the sign alone', () => {
  assert.equal(layoutCard(['Harmful'], { width: 60, height: 40 }).chip.text, '?');
  const icon = layoutCard(['Harmful'], { width: 30, height: 30 });
  assert.equal(icon.layout, CARD_LAYOUT.ICON);
  assert.equal(icon.chip, null);
});

test('a card is the same drawing for every box its layout fits: it is shared', () => {
  const a = cardSvg(layoutCard(['Harmful'], { width: 300, height: 225 }));
  const b = cardSvg(layoutCard(['Harmful'], { width: 420, height: 300 }));
  assert.equal(a, b);
  assert.ok(!/viewBox|width="\d|height="100%"/.test(a.slice(0, a.indexOf('<g'))), 'the SVG has no size: it is drawn at the box\'s, unscaled');
  assert.notEqual(a, cardSvg(layoutCard(['Harmful'], { width: 120, height: 90 })));
});

test('the card names categories only and escapes them', () => {
  const svg = cardSvg(layoutCard(['<b>&"'], { width: 300, height: 200 }));
  assert.ok(!svg.includes('<b>'));
  assert.ok(svg.includes('&#60;b&#62;&#38;&#34;'));
});

test('a click on the chip reports, anywhere else shows', () => {
  const rect = { left: 10, top: 20, width: 300, height: 225 };
  const layout = layoutCard(['Harmful'], rect);
  const { chip } = layout;
  const cx = rect.left + rect.width / 2 + chip.x + chip.width / 2;
  const cy = rect.top + rect.height / 2 + chip.y + chip.height / 2;
  assert.equal(whereOnCard(layout, rect, cx, cy), 'report');
  assert.equal(whereOnCard(layout, rect, rect.left + 5, rect.top + 5), 'show');
  assert.equal(whereOnCard(null, rect, cx, cy), 'show');
});
