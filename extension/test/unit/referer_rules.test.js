import assert from 'node:assert/strict';
import { test } from 'node:test';

import { FIRST_REFERER_RULE_ID, RefererRules, pictureOrigin } from '../../background/referer_rules.js';

/** A declarativeNetRequest stand-in: the session rules, and every change made to them. */
function fakeDnr({ fail = false } = {}) {
  const rules = new Map();
  const changes = [];
  return {
    rules,
    changes,
    async updateSessionRules({ removeRuleIds = [], addRules = [] }) {
      changes.push({ removeRuleIds, addRules });
      if (fail) throw new Error('refused');
      for (const id of removeRuleIds) rules.delete(id);
      for (const rule of addRules) rules.set(rule.id, rule);
    },
  };
}

/** The Referer the rules in place give a request of the extension's to `url` (none: ''). */
function refererOf(dnr, url) {
  const matching = [...dnr.rules.values()].filter((r) => url.startsWith(r.condition.urlFilter.slice(1)));
  assert.ok(matching.length <= 1, `more than one rule matches ${url}`);
  return matching[0]?.action.requestHeaders[0].value ?? '';
}

const deferred = () => {
  let resolve;
  const promise = new Promise((r) => { resolve = r; });
  return { promise, resolve };
};

test('a feed\'s pictures from one host with one Referer change the rules once, and the rule stays', async () => {
  const dnr = fakeDnr();
  const rules = new RefererRules(dnr, 'ext-id');
  const seen = await Promise.all(Array.from({ length: 50 }, (_, i) => rules.withReferer(
    `https://i.example/p/${i}.png`, 'https://feed.example/', async () => refererOf(dnr, `https://i.example/p/${i}.png`))));
  assert.deepEqual(new Set(seen), new Set(['https://feed.example/']));
  for (let i = 0; i < 20; i += 1) await rules.withReferer(`https://i.example/q/${i}.png`, 'https://feed.example/', async () => {});
  assert.equal(dnr.changes.length, 1);
  assert.equal(rules.updates, 1);
  const [rule] = dnr.rules.values();
  assert.equal(rule.condition.urlFilter, '|https://i.example/');
  assert.deepEqual(rule.condition.initiatorDomains, ['ext-id']);
  assert.ok(rule.id >= FIRST_REFERER_RULE_ID);
  // another host gets its own rule; neither names the other's pictures
  await rules.withReferer('https://cdn.example:8443/a.jpg', 'https://feed.example/', async () => {});
  assert.equal(dnr.changes.length, 2);
  assert.equal(refererOf(dnr, 'https://cdn.example:8443/a.jpg'), 'https://feed.example/');
  assert.equal(refererOf(dnr, 'https://cdn.example/a.jpg'), '');
  assert.equal(refererOf(dnr, 'http://i.example/a.jpg'), '');
});

test('another page\'s Referer for the same host waits for the fetches in flight, then replaces the rule', async () => {
  const dnr = fakeDnr();
  const rules = new RefererRules(dnr, 'ext-id');
  const slow = deferred();
  const first = rules.withReferer('https://i.example/a.png', 'https://one.example/', () => slow.promise);
  await new Promise((r) => setTimeout(r, 0));
  let secondSaw = null;
  const second = rules.withReferer('https://i.example/b.png', 'https://two.example/', async () => {
    secondSaw = refererOf(dnr, 'https://i.example/b.png');
  });
  // a fetch with the first Referer asked after the second waits its turn too (no starving)
  let thirdSaw = null;
  const third = rules.withReferer('https://i.example/c.png', 'https://one.example/', async () => {
    thirdSaw = refererOf(dnr, 'https://i.example/c.png');
  });
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(secondSaw, null, 'the second Referer was set while the first one\'s fetch was in flight');
  assert.equal(refererOf(dnr, 'https://i.example/a.png'), 'https://one.example/');
  slow.resolve();
  await Promise.all([first, second, third]);
  assert.equal(secondSaw, 'https://two.example/');
  assert.equal(thirdSaw, 'https://one.example/');
  assert.equal(dnr.rules.size, 1);
  assert.equal(dnr.changes.length, 3); // one.example, two.example, one.example: each removes the one before
  assert.deepEqual(dnr.changes[1].removeRuleIds, [dnr.changes[0].addRules[0].id]);
});

test('a fetch with no Referer takes an idle rule off its host first; none in place costs no change', async () => {
  const dnr = fakeDnr();
  const rules = new RefererRules(dnr, 'ext-id');
  await rules.withReferer('https://plain.example/a.png', '', async () => {});
  assert.equal(dnr.changes.length, 0);
  await rules.withReferer('https://i.example/a.png', 'https://feed.example/', async () => {});
  const saw = await rules.withReferer('https://i.example/b.png', '', async () => refererOf(dnr, 'https://i.example/b.png'));
  assert.equal(saw, '');
  assert.equal(dnr.rules.size, 0);
  assert.equal(dnr.changes.length, 2);
});

test('beyond the cap the least recently used idle rules go, in the same change as the new one', async () => {
  const dnr = fakeDnr();
  const rules = new RefererRules(dnr, 'ext-id', { maxRules: 2 });
  for (const host of ['a', 'b']) await rules.withReferer(`https://${host}.example/x.png`, 'https://feed.example/', async () => {});
  await rules.withReferer('https://a.example/y.png', 'https://feed.example/', async () => {}); // a used last
  await rules.withReferer('https://c.example/x.png', 'https://feed.example/', async () => {});
  assert.equal(dnr.changes.length, 3);
  assert.equal(dnr.rules.size, 2);
  assert.equal(refererOf(dnr, 'https://b.example/x.png'), '');
  assert.equal(refererOf(dnr, 'https://a.example/x.png'), 'https://feed.example/');
  assert.equal(dnr.changes[2].removeRuleIds.length, 1);
});

test('a rule the browser refuses leaves the fetch without a Referer, and it is tried again next time', async () => {
  const dnr = fakeDnr({ fail: true });
  const rules = new RefererRules(dnr, 'ext-id');
  assert.equal(await rules.withReferer('https://i.example/a.png', 'https://feed.example/', async () => 'fetched'), 'fetched');
  assert.equal(await rules.withReferer('https://i.example/b.png', 'https://feed.example/', async () => 'again'), 'again');
  assert.equal(dnr.changes.length, 2);
  assert.equal(rules.byOrigin.size, 0);
});

test('a picture URL with no origin gets no rule, and an earlier worker life\'s rules are taken over or found for removal', async () => {
  const dnr = fakeDnr();
  const rules = new RefererRules(dnr, 'ext-id');
  assert.equal(pictureOrigin('data:image/png;base64,AAAA'), null);
  assert.equal(pictureOrigin('not a url'), null);
  assert.equal(await rules.withReferer('blob:null/abc', 'https://feed.example/', async () => 'ok'), 'ok');
  assert.equal(dnr.changes.length, 0);
  const referer = (id, url, value) => ({ id, action: { type: 'modifyHeaders', requestHeaders: [{ header: 'referer', operation: 'set', value }] },
    condition: { urlFilter: `|${url}` } });
  const stale = rules.adoptLeftovers([{ id: 1 }, { id: 12 }, referer(1000, 'https://i.example/', 'https://feed.example/'),
    { id: 4711, action: { type: 'block' }, condition: {} }, referer(4712, 'https://i.example/', 'https://news.example/')]);
  assert.deepEqual(stale, [4711, 4712], 'not a Referer rule, or a second one for an origin');
  assert.equal(rules.byOrigin.get('https://i.example').referrer, 'https://feed.example/');
  assert.equal(await rules.withoutRule('https://i.example/x.png', async () => 'ran'), null, 'the taken-over rule is in place');
  assert.ok(rules.nextId > 1000);
});

test('a fetch under no rule changes no rule, holds off a rule for its origin, and is skipped where a rule is in place', async () => {
  const dnr = fakeDnr();
  const rules = new RefererRules(dnr, 'ext-id');
  const trial = deferred();
  const without = rules.withoutRule('https://i.example/a.png', async () => {
    await trial.promise;
    return refererOf(dnr, 'https://i.example/a.png');
  });
  const withRef = rules.withReferer('https://i.example/b.png', 'https://feed.example/', async () => refererOf(dnr, 'https://i.example/b.png'));
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(dnr.changes.length, 0, 'no rule is set while the fetch without one runs');
  trial.resolve();
  assert.equal(await without, '');
  assert.equal(await withRef, 'https://feed.example/');
  assert.equal(dnr.changes.length, 1);
  assert.equal(await rules.withoutRule('https://i.example/c.png', async () => 'ran'), null, 'the origin has a rule: not run');
  assert.equal(await rules.withoutRule('https://other.example/c.png', async () => 'ran'), 'ran');
  assert.equal(rules.byOrigin.has('https://other.example'), false, 'nothing kept for an origin without a rule');
  assert.equal(dnr.changes.length, 1);
});
