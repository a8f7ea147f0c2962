import assert from 'node:assert/strict';
import { test } from 'node:test';

import { isPlainValue, listCssImageUrls, listPictureSelectors, listStyleQueryProperties, readStyleRules } from '../../shared/cssurls.js';
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
});

test('a raster data: image and a blob: image are pictures to check; an SVG data: icon is not', () => {
  const base = 'https://feed.example/';
  assert.deepEqual(listCssImageUrls('url("data:image/png;base64,AAAA"), url("data:image/svg+xml,%3Csvg%3E")', base),
    ['data:image/png;base64,AAAA']);
  assert.deepEqual(listCssImageUrls('url(blob:https://feed.example/7f3a)', base), ['blob:https://feed.example/7f3a']);
});

test('an image-set() shows the candidate for the screen: the smallest at or above its pixel ratio', () => {
  const base = 'https://feed.example/';
  const set = 'image-set(url("a1.png") 1x, url("a2.png") 2x, url("a3.png") 3x)';
  assert.deepEqual(listCssImageUrls(set, base, 1), ['https://feed.example/a1.png']);
  assert.deepEqual(listCssImageUrls(set, base, 1.5), ['https://feed.example/a2.png']);
  assert.deepEqual(listCssImageUrls(set, base, 4), ['https://feed.example/a3.png']);
  assert.deepEqual(listCssImageUrls('-webkit-image-set("s1.png" 1x, "s2.png" 192dpi), url(z.png)', base, 2),
    ['https://feed.example/s2.png', 'https://feed.example/z.png']);
});

test('a stylesheet names the elements it gives a picture: backgrounds and content urls, pseudo-elements as their host, inside @media', () => {
  const rule = (selectorText, style) => ({ selectorText, style });
  const rules = [
    rule('.a, .b::before', { backgroundImage: 'url("x.png")' }),
    rule('.plain', { backgroundImage: 'none', background: 'red', content: '' }),
    rule('.set', { backgroundImage: 'image-set("s.png" 1x)' }),
    { cssRules: [rule(':is(.d, .e)::after', { content: 'url("y.png")' })] }, // @media (...) { ... }
  ];
  assert.deepEqual(listPictureSelectors(rules), ['.a', '.b', '.set', ':is(.d, .e)']);
  assert.deepEqual(listPictureSelectors(undefined), []);
  const others = [
    rule('.frame', { borderImage: 'url("f.png") 30% fill' }),
    rule('.edge', { borderImageSource: 'url("e.png")' }),
    rule('ul.bullets, ol', { listStyleImage: 'url("l.png")' }), // inherited: the items show it
    rule('.short', { listStyle: 'square url("s.png")' }),
    rule('.mask', { maskImage: 'url("m.png")' }), // a mask paints no colour of its picture
    rule('li.x::marker', { content: 'url("k.png")' }),
  ];
  assert.deepEqual(listPictureSelectors(others),
    ['.frame', '.edge', 'ul.bullets', 'ol', 'ul.bullets *', 'ol *', '.short', '.short *', 'li.x']);
});

test('a rule whose picture is var(--name) names its elements, unless every sheet sets that property to a color or a length', () => {
  const declarations = (entries) => Object.assign(Object.keys(entries), { getPropertyValue: (name) => entries[name] });
  const rule = (selectorText, style) => ({ selectorText, style });
  const rules = [
    rule(':root', declarations({ '--accent': '#1d9bf0', '--gap': '12px', '--avatar': 'url("a.png")', '--hero': 'none', '--card': 'var(--hero)' })),
    { cssRules: [rule('.dark', declarations({ '--accent': 'rgb(0 0 0 / 50%)' }))] },
    rule('.button', { background: 'var(--accent)' }),
    rule('.spacer', { backgroundImage: 'var(--gap, none)' }),
    rule('.avatar', { backgroundImage: 'var(--avatar)' }),
    rule('.hero', { backgroundImage: 'var(--hero)' }), // none until a script sets it
    rule('.card::before', { content: 'var(--card)' }),
    rule('.post', { backgroundImage: 'var(--bg)' }), // set from a style attribute only
  ];
  const { declared } = readStyleRules(rules);
  assert.deepEqual(Object.fromEntries(declared),
    { '--accent': false, '--gap': false, '--avatar': true, '--hero': true, '--card': true });
  assert.deepEqual(listPictureSelectors(rules, (name) => declared.get(name) ?? true), ['.avatar', '.hero', '.card', '.post']);
  assert.deepEqual(listPictureSelectors(rules), ['.button', '.spacer', '.avatar', '.hero', '.card', '.post']);
});

test('a custom property value that cannot name a picture, and rules that choose by a value itself', () => {
  for (const plain of ['120px', '-0.5', '#1d9bf0', 'rgb(0 0 0 / 50%)', 'dark', '50%']) assert.equal(isPlainValue(plain), true, plain);
  for (const picture of ['url("a.png")', 'none', 'var(--hero)', 'image-set("a.png" 1x)', 'initial', '']) assert.equal(isPlainValue(picture), false, picture);
  const rule = (selectorText, style) => ({ selectorText, style });
  const queries = (rules) => listStyleQueryProperties(rules).size > 0;
  assert.equal(queries([rule('.a', { backgroundImage: 'var(--bg)' }), { conditionText: '(min-width: 400px)', cssRules: [] }]), false);
  assert.equal(queries([{ conditionText: 'style(--theme: dark)', cssRules: [rule('.a', { backgroundImage: 'url(d.png)' })] }]), true);
  assert.equal(queries([{ cssRules: [rule('.a', { backgroundImage: 'if(style(--theme: dark): url(d.png); else: url(l.png))' })] }]), true);
  assert.equal(queries(undefined), false);
});

test('the custom properties a style query or an if() chooses by are listed, and only those', () => {
  const names = (rules) => [...listStyleQueryProperties(rules)].sort();
  const rule = (selectorText, style) => ({ selectorText, style });
  assert.deepEqual(names([{ conditionText: 'style(--theme: dark)', cssRules: [rule('.a', { backgroundImage: 'url(d.png)' })] }]), ['--theme']);
  assert.deepEqual(names([{ conditionText: '(min-width: 400px) and style((--mode: a) or (--größe: 2))', cssRules: [] }]), ['--größe', '--mode']);
  assert.deepEqual(names([{ cssRules: [rule('.a', { backgroundImage: 'if(style(--theme: dark): url(d.png); else: url(l.png))' })] }]), ['--theme']);
  assert.deepEqual(names([{ conditionText: '(min-width: 400px)', cssRules: [rule('.a', { backgroundImage: 'var(--bg)' })] }]), []);
  // a style query this reader cannot name a property in: any property may be read
  assert.deepEqual(names([{ conditionText: 'style(color: red)', cssRules: [] }]), ['*']);
});
