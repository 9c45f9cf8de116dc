// Two browsers race for one seat: exactly one holds it; the other is told
// clearly that it was taken, and the seat turns "held" on its map.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, launch, newPage, shot, scheduleOf, until, noPageErrors,
} from './lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('race: two browsers click the same seat at once; one holds it, the other sees "taken"', async () => {
  const concert = 2;
  const schedule = scheduleOf(concert, 1);
  const seat = 20;
  // One at desktop width, one at phone width.
  const a = await newPage(browser, { user: 5 });
  const b = await newPage(browser, { user: 6, phone: true });
  const seatsUrl = new RegExp(`#/concerts/${concert}/schedules/${schedule}/seats$`);

  // Both join (the queue of concert 2 is empty: both are admitted at once).
  await Promise.all([a, b].map((p) => p.goto(`${BASE}/#/concerts/${concert}/schedules/${schedule}/queue`)));
  await Promise.all([a, b].map((p) => p.waitForURL(seatsUrl)));
  await Promise.all([a, b].map((p) => p.locator('.seat-map[data-loaded="true"]').waitFor()));
  for (const p of [a, b]) {
    assert.equal(await p.locator(`[data-seat="${seat}"]`).getAttribute('data-status'), 'AVAILABLE');
  }
  await shot(b, 'race', 'seat-map-phone');

  // Both click the same seat at the same moment.
  await Promise.all([a, b].map((p) => p.locator(`[data-seat="${seat}"]`).click()));

  const outcome = async (p) => {
    if (/\/reservations\/[0-9a-f-]{36}$/.test(p.url())) return 'won';
    if (await p.locator('#seat-taken').count()) return 'lost';
    return null;
  };
  const results = await until(async () => {
    const r = [await outcome(a), await outcome(b)];
    return r[0] && r[1] ? r : null;
  }, { what: 'both browsers to know the outcome' });
  assert.deepEqual([...results].sort(), ['lost', 'won'], `outcomes ${results}`);
  const winner = results[0] === 'won' ? a : b;
  const loser = results[0] === 'won' ? b : a;

  // The winner holds it, with a running countdown.
  await winner.locator('#hold-timer').waitFor();
  await assertText(winner.locator('#hold-seat'), `Seat ${seat}`);
  assert.match(await winner.locator('#hold-timer').textContent(), /^[45]:\d\d$/);

  // The loser is told in words (no raw JSON), and the seat shows as held.
  const msg = loser.locator('#seat-taken');
  assert.equal(await msg.getAttribute('role'), 'alert');
  const text = await msg.textContent();
  assert.match(text, new RegExp(`Seat ${seat} is taken`));
  assert.match(text, /someone else has just taken this seat/);
  assert.doesNotMatch(text, /[{}"]/, 'no raw JSON in the message');
  const cell = loser.locator(`[data-seat="${seat}"]`);
  assert.equal(await cell.getAttribute('data-status'), 'HELD');
  assert.match(await cell.getAttribute('aria-label'), new RegExp(`^Seat ${seat} \\(Stalls, row [A-Z], [A-Z]-\\d+\\), .* held by someone else$`));
  assert.equal(await cell.getAttribute('aria-disabled'), 'true');
  // ... and stays held after the next live refresh from the server.
  const updated = await loser.locator('#seats-updated').textContent();
  await until(async () => (await loser.locator('#seats-updated').textContent()) !== updated,
    { what: 'a live refresh', timeout: 10000 });
  assert.equal(await cell.getAttribute('data-status'), 'HELD');

  // The winner's map, seen from the loser's side, live: another seat the
  // winner does not hold is still available.
  assert.equal(await loser.locator('[data-seat="21"]').getAttribute('data-status'), 'AVAILABLE');

  await shot(winner, 'race', 'winner-hold');
  await shot(loser, 'race', 'loser-taken');
  noPageErrors(a);
  noPageErrors(b);
  await a.context().close();
  await b.context().close();
});

async function assertText(locator, want) {
  await locator.waitFor();
  await until(async () => (await locator.textContent()).trim() === want, { what: `text "${want}"` });
}
