import assert from 'node:assert/strict';
import { test } from 'node:test';

import { isPageOnlyUrl, readPageBytes } from '../../content/page_bytes.js';
import { MAX_PAGE_BYTES, VERDICT } from '../../shared/messages.js';

test('data: and blob: pictures are read in the page; http(s) ones are the worker\'s', () => {
  assert.equal(isPageOnlyUrl('data:image/png;base64,AAAA'), true);
  assert.equal(isPageOnlyUrl('blob:https://web.telegram.org/1f2e'), true);
  assert.equal(isPageOnlyUrl('https://i.redd.it/a.png'), false);
});

test('a data: picture of any length is sent as its base64 bytes, never as a URL', async () => {
  const base64 = 'iVBORw0KGgo'.padEnd(20000, 'A');
  assert.deepEqual(await readPageBytes(`data:image/png;base64,${base64}`), { base64, mime: 'image/png' });
  const urlSafe = await readPageBytes('data:image/jpeg;base64,ab-_cd==');
  assert.deepEqual(urlSafe, { base64: 'ab+/cd==', mime: 'image/jpeg' });
});

test('a data: picture over the cap, of a type the server does not decode, or not base64 is unreadable at once', async () => {
  const huge = `data:image/png;base64,${'A'.repeat(Math.ceil((MAX_PAGE_BYTES * 4) / 3) + 4000)}`;
  assert.deepEqual(await readPageBytes(huge), { status: VERDICT.FAILED, reason: 'too_large' });
  assert.equal((await readPageBytes('data:image/x-icon;base64,AAABAA==')).reason, 'unsupported_format');
  assert.equal((await readPageBytes('data:image/png,%89PNG')).reason, 'not_base64');
  assert.equal((await readPageBytes('data:text/html;base64,PGI+')).reason, 'not_image');
  assert.equal((await readPageBytes('data:image/png;base64,***')).reason, 'not_base64');
});

test('an SVG data: picture is sent when it embeds a picture, base64 or percent-encoded; a vector one is skipped', async () => {
  const svg = '<svg xmlns="http://www.w3.org/2000/svg"><image href="data:image/png;base64,iVBORw0KGgo="/></svg>';
  const sent = await readPageBytes(`data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`);
  assert.deepEqual(sent, { base64: Buffer.from(svg).toString('base64'), mime: 'image/svg+xml' });
  const encoded = await readPageBytes(`data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`);
  assert.deepEqual(encoded, sent);
  const icon = '<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0h9v9z"/></svg>';
  assert.deepEqual(await readPageBytes(`data:image/svg+xml,${encodeURIComponent(icon)}`), { status: VERDICT.SKIPPED, reason: 'vector_svg' });
  assert.equal((await readPageBytes('data:image/svg+xml,%E0%A4%A')).reason, 'not_image');
});
