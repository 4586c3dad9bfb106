// src/text/: the markdown subset (including hostile input: it must never yield markup or a
// link other than http(s)), grouping and separators, times, initials avatars.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { text, wireMsg, model } from './fakes.mjs';

const { parse, inline } = text('markdown');
const { layout, GROUP_GAP_MS } = text('layout');
const { clockTime, dayLabel, dayKey, relativeTime, hoverTitle, fullTime } = text('time');
const { initials, avatarColour, contrast, AVATAR_COLOURS } = text('avatar');
const { toMsg } = model('conversation');

/** Every link in a tree. */
function links(tree) {
  const out = [];
  const walk = (n) => {
    if (typeof n === 'string') return;
    if (Array.isArray(n)) return n.forEach(walk);
    if (n.t === 'a') out.push(n.href);
    for (const k of ['c', 'items']) if (n[k]) walk(n[k]);
  };
  walk(tree);
  return out;
}

/** The text a tree shows (what a reader would see). */
function shown(tree) {
  if (typeof tree === 'string') return tree;
  if (Array.isArray(tree)) return tree.map(shown).join('');
  if (tree.text !== undefined) return tree.text;
  return shown(tree.c ?? tree.items ?? []);
}

describe('markdown: inline', () => {
  test('bold, italic, strike, code, nested', () => {
    assert.deepEqual(inline('a **b** *c* _d_ ~~e~~ `f`'), [
      'a ', { t: 'b', c: ['b'] }, ' ', { t: 'i', c: ['c'] }, ' ', { t: 'i', c: ['d'] }, ' ',
      { t: 's', c: ['e'] }, ' ', { t: 'code', text: 'f' },
    ]);
    assert.deepEqual(inline('**bold *and italic***'), [{ t: 'b', c: ['bold ', { t: 'i', c: ['and italic'] }] }]);
  });

  test('code spans are literal', () => {
    assert.deepEqual(inline('`**not bold** <b>`'), [{ t: 'code', text: '**not bold** <b>' }]);
  });

  test('not emphasis: lone marks, spaces inside, snake_case, arithmetic', () => {
    for (const s of ['2 * 3 * 4', 'snake_case_name', 'a ** b', '*', '**', '_', 'x*', '~~ x ~~']) {
      assert.deepEqual(inline(s), [s], s);
    }
  });

  test('http(s) URLs become links without trailing punctuation', () => {
    assert.deepEqual(inline('see https://example.com/a?b=1&c=2.'), [
      'see ', { t: 'a', href: 'https://example.com/a?b=1&c=2', text: 'https://example.com/a?b=1&c=2' }, '.',
    ]);
    assert.deepEqual(links(inline('(http://x.org/wiki/A_(b))')), ['http://x.org/wiki/A_(b)']);
    assert.deepEqual(links(inline('**https://bold.example**')), ['https://bold.example']);
  });
});

describe('markdown: hostile input', () => {
  test('markup stays text', () => {
    const s = '<script>alert(1)</script><img src=x onerror=alert(1)> &lt; "\'';
    assert.deepEqual(parse(s), [{ t: 'p', c: [s] }]);
  });

  test('no link but http(s): javascript:, data:, vbscript:, protocol-relative, obfuscated', () => {
    const s = [
      'javascript:alert(1)', 'JaVaScRiPt:alert(1)', 'data:text/html,<b>x</b>', 'vbscript:msgbox',
      '//evil.example', 'http:/x', 'https://', 'xhttps://evil.example', 'java\tscript:alert(1)',
      '[x](javascript:alert(1))', 'https://"onmouseover=alert(1)',
    ].join(' \n');
    for (const href of links(parse(s))) assert.match(href, /^https?:\/\/[^\s"<>]+$/i, href);
    assert.deepEqual(links(parse(s)), []);
  });

  test('a URL never carries quotes or angle brackets into the href', () => {
    const hrefs = links(parse('https://a.example/"><script> https://b.example/<x>'));
    assert.deepEqual(hrefs, ['https://a.example/', 'https://b.example/']);
    // The href is set as a DOM property, never spliced into markup; still, no tag can start in it.
    for (const h of hrefs) assert.ok(!h.includes('<') && !h.includes('>'));
  });

  test('pathological runs of marks parse fast and keep every character', () => {
    const inputs = [
      '*'.repeat(16_000),
      '**a '.repeat(4_000),
      '_a '.repeat(5_000),
      '`'.repeat(16_000),
      '> '.repeat(8_000),
      '~~x '.repeat(4_000),
      'https://a.example/' + 'x'.repeat(16_000),
      '*a _b ~~c **d `e'.repeat(1000),
    ];
    for (const s of inputs) {
      const t0 = process.hrtime.bigint();
      const tree = parse(s);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      assert.ok(ms < 100, `${s.slice(0, 12)}…: ${ms.toFixed(1)} ms`);
      assert.ok(shown(tree).replace(/[*_~`> \n]/g, '').length <= s.replace(/[*_~`> \n]/g, '').length);
    }
    assert.equal(shown(parse('*'.repeat(1000))), '*'.repeat(1000));
  });

  test('nesting is bounded', () => {
    const deep = '> '.repeat(50) + 'x';
    let depth = 0;
    for (let b = parse(deep)[0]; b && b.t === 'quote'; b = b.c[0]) depth++;
    assert.ok(depth <= 4, `quote depth ${depth}`);
    const nested = '*_~~**'.repeat(20) + 'x' + '**~~_*'.repeat(20);
    assert.doesNotThrow(() => parse(nested));
  });
});

describe('markdown: blocks', () => {
  test('fenced code keeps its text, quotes, lists, paragraphs', () => {
    const s = 'intro\nsecond line\n\n```js\nconst a = **1**;\n<b>\n```\n> quoted **x**\n> more\n- one\n- two *i*\n3. three\n4. four';
    assert.deepEqual(parse(s), [
      { t: 'p', c: ['intro\nsecond line'] },
      { t: 'pre', text: 'const a = **1**;\n<b>' },
      { t: 'quote', c: [{ t: 'p', c: ['quoted ', { t: 'b', c: ['x'] }, '\nmore'] }] },
      { t: 'ul', items: [['one'], ['two ', { t: 'i', c: ['i'] }]] },
      { t: 'ol', start: 3, items: [['three'], ['four']] },
    ]);
  });

  test('an unclosed fence runs to the end', () => {
    assert.deepEqual(parse('```\ncode'), [{ t: 'pre', text: 'code' }]);
  });
});

describe('layout', () => {
  const at = (seq, from, createdAt) => toMsg(wireMsg('channel:1', seq, { from, created_at: createdAt }));
  const t0 = new Date(2026, 2, 3, 10, 0).getTime();

  test('groups an author within 5 minutes; a new author, a gap, a new day or the unread line start a group', () => {
    const msgs = [
      at(1, 'a', t0),
      at(2, 'a', t0 + 60_000),
      at(3, 'b', t0 + 120_000),
      at(4, 'b', t0 + 120_000 + GROUP_GAP_MS + 1),
      at(5, 'b', t0 + 120_000 + GROUP_GAP_MS + 2),
      at(6, 'b', t0 + 86_400_000),
      at(7, 'b', t0 + 86_400_000 + 1),
    ];
    const rows = layout(msgs, 0, msgs.length, 7);
    assert.deepEqual(rows.map((r) => r.head), [true, false, true, true, false, true, true]);
    assert.deepEqual(rows.map((r) => r.day), [true, false, false, false, false, true, false]);
    assert.deepEqual(rows.map((r) => r.unread), [false, false, false, false, false, false, true]);
    // A window that starts mid-group continues it.
    assert.deepEqual(layout(msgs, 1, 3, 0).map((r) => [r.head, r.day]), [[false, false], [true, false]]);
  });

  test('the unread line goes above the first held message at or after the first unread', () => {
    const msgs = [at(1, 'a', t0), at(4, 'a', t0 + 1), at(5, 'a', t0 + 2)];
    assert.deepEqual(layout(msgs, 0, 3, 3).map((r) => r.unread), [false, true, false]);
    assert.deepEqual(layout(msgs, 0, 3, 0).map((r) => r.unread), [false, false, false]);
  });
});

describe('time', () => {
  test('clock time and day labels', () => {
    const now = new Date(2026, 2, 3, 12, 0).getTime();
    assert.match(clockTime(now), /12.00/);
    assert.equal(clockTime(now + 59_000), clockTime(now), 'one text per minute');
    assert.equal(dayLabel(now - 3600_000, now), 'Today');
    assert.equal(dayLabel(now - 86_400_000, now), 'Yesterday');
    assert.notEqual(dayLabel(now - 5 * 86_400_000, now), 'Yesterday');
    assert.equal(dayKey(new Date(2026, 2, 3, 23, 59).getTime()), 20260303);
  });

  test('relative time: seconds, minutes, hours, calendar days, weeks, months, years', () => {
    const now = new Date(2026, 2, 10, 12, 0).getTime();
    const min = 60_000;
    assert.equal(relativeTime(now - 10_000, now), 'just now');
    assert.equal(relativeTime(now - min, now), '1 minute ago');
    assert.equal(relativeTime(now - 3 * min, now), '3 minutes ago');
    assert.equal(relativeTime(now - 59 * min, now), '59 minutes ago');
    assert.equal(relativeTime(now - 5 * 60 * min, now), '5 hours ago');
    assert.equal(relativeTime(new Date(2026, 2, 9, 18, 0).getTime(), now), 'yesterday');
    // By the calendar: 23:50 seen at 00:10 is yesterday (not "20 minutes ago" rounded to an hour).
    const justAfterMidnight = new Date(2026, 2, 10, 0, 10).getTime();
    assert.equal(relativeTime(new Date(2026, 2, 9, 23, 50).getTime(), justAfterMidnight), '20 minutes ago');
    assert.equal(relativeTime(new Date(2026, 2, 9, 22, 0).getTime(), justAfterMidnight), 'yesterday');
    assert.equal(relativeTime(new Date(2026, 2, 7, 9, 0).getTime(), now), '3 days ago');
    assert.equal(relativeTime(now - 14 * 1440 * min, now), '2 weeks ago');
    assert.equal(relativeTime(now - 70 * 1440 * min, now), '2 months ago');
    assert.equal(relativeTime(new Date(2024, 2, 10, 12, 0).getTime(), now), '2 years ago');
  });

  test('the hover title holds the absolute and the relative form, computed for the given now', () => {
    const then = new Date(2026, 2, 10, 11, 57).getTime();
    const title = hoverTitle(then, then + 3 * 60_000);
    assert.ok(title.startsWith(fullTime(then)), title);
    assert.ok(title.endsWith('(3 minutes ago)'), title);
    assert.ok(hoverTitle(then, then + 86_400_000).endsWith('(yesterday)'));
  });
});

describe('avatar', () => {
  test('initials from one or more words, emoji kept whole', () => {
    assert.equal(initials('alice'), 'AL');
    assert.equal(initials('Alice  van Berg'), 'AB');
    assert.equal(initials('😀 smile'), '😀S');
    assert.equal(initials('  '), '?');
  });

  test('a stable colour per user id, every colour readable with white text (AA)', () => {
    assert.equal(avatarColour('12345'), avatarColour('12345'));
    const used = new Set(Array.from({ length: 200 }, (_, i) => avatarColour(String(1000 + i))));
    assert.ok(used.size >= 8, `${used.size} colours over 200 users`);
    for (const c of AVATAR_COLOURS) assert.ok(contrast(c, '#ffffff') >= 4.5, `${c}: ${contrast(c, '#ffffff').toFixed(2)}`);
  });
});

describe('search snippets', () => {
  const { highlight } = text('snippet');
  test('marks become hit pieces between plain ones, by UTF-16 offsets', () => {
    assert.deepEqual(highlight('离线消息缓存', [[2, 2]]), [
      { text: '离线', hit: false },
      { text: '消息', hit: true },
      { text: '缓存', hit: false },
    ]);
    assert.deepEqual(highlight('😀 go go', [[3, 2], [6, 2]]), [
      { text: '😀 ', hit: false },
      { text: 'go', hit: true },
      { text: ' ', hit: false },
      { text: 'go', hit: true },
    ]);
  });
  test('marks that overlap, go backwards or past the end are ignored', () => {
    assert.deepEqual(highlight('abcdef', [[1, 2], [2, 2], [0, 1], [4, 9]]), [
      { text: 'a', hit: false },
      { text: 'bc', hit: true },
      { text: 'def', hit: false },
    ]);
    assert.deepEqual(highlight('<b>x</b>', []), [{ text: '<b>x</b>', hit: false }]);
  });
});
