import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SHOWN, pageStateOf } from '../../content/hiding.js';
import { STATE } from '../../content/image_state.js';

test('the page sees a clean, a skipped and an unchecked picture alike: it cannot tell a failed fetch from a verdict', () => {
  assert.deepEqual([STATE.CLEAN, STATE.SKIP, STATE.UNCHECKED].map(pageStateOf), [SHOWN, SHOWN, SHOWN]);
  for (const state of [STATE.PENDING, STATE.WAITING, STATE.FLAGGED, STATE.REVEALED]) assert.equal(pageStateOf(state), state);
  assert.equal(pageStateOf(null), null);
});
