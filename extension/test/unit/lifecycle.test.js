import assert from 'node:assert/strict';
import { test } from 'node:test';

import { INSTANCE_ATTR, createLifecycle } from '../../content/lifecycle.js';

/** A document with `elements` (plain objects) and an <html> whose attributes are `attrs`. */
function fakeDocument(elements, attrs = {}) {
  const map = new Map(Object.entries(attrs));
  return {
    documentElement: {
      isConnected: true,
      getAttribute: (k) => map.get(k) ?? null,
      setAttribute: (k, v) => map.set(k, v),
      removeAttribute: (k) => map.delete(k),
      hasAttribute: (k) => map.has(k),
    },
    querySelectorAll: () => elements,
  };
}

const alive = { runtime: { id: 'ext' } };
const lifecycleOf = (doc, options = {}) => createLifecycle({ ext: alive, timed: (fn) => fn(), doc, token: 'me', timers: { set() {} }, ...options });

test('a script started with the page (document_start) asks about its pictures without loading them again', () => {
  const img = {};
  const life = lifecycleOf(fakeDocument([img]));
  assert.equal(life.predecessor, null);
  assert.equal(life.wasThereBefore(img), false);
});

test('a script injected into a page already parsed loads the pictures found there again (the worker never saw them load)', () => {
  const there = {};
  const later = {};
  const life = lifecycleOf(fakeDocument([there]), { startedLate: true });
  assert.equal(life.predecessor, null);
  assert.equal(life.wasThereBefore(there), true);
  assert.equal(life.wasThereBefore(later), false, 'a picture added afterwards is loaded as the worker watches');
  // in a shadow root: counted by its host
  assert.equal(life.wasThereBefore({ getRootNode: () => ({ host: there }) }), true);
});

test('a successor (another instance stamped the page) loads the pictures it finds again', () => {
  const there = {};
  const doc = fakeDocument([there], { [INSTANCE_ATTR]: 'orphan' });
  const life = lifecycleOf(doc);
  assert.equal(life.predecessor, 'orphan');
  assert.equal(life.wasThereBefore(there), true);
  assert.equal(doc.documentElement.getAttribute(INSTANCE_ATTR), 'me');
});
