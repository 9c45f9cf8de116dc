// The whole journey, concert list to confirmation, as one person would do
// it: sign in as a demo account, a concert, a date, wait in the queue (two other users
// hold the only two active places, then pay and leave), pick a seat with the
// keyboard, see the hold countdown, top up a short balance, pay.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, SEED, launch, newPage, shot, api, occupy, finishTurns, userId, scheduleOf, until,
  noPageErrors, queueRecord, demoEmail, DEMO_PASSWORD,
} from './lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('journey: sign in -> concert list -> dates -> waiting room -> seat map -> hold -> top-up -> payment -> confirmation', async () => {
  const concert = 1;
  const schedule = scheduleOf(concert, 1);
  const me = SEED.poorUsers ? SEED.poorUsers[0] : 41;          // balance 20,000
  const page = await newPage(browser);

  // Others take both active places first (max_active = 2).
  const others = await occupy(concert, [1, 2]);

  // --- concert list; the user signs in with the keyboard, and comes back.
  await page.goto(BASE + '/');
  await page.locator('#concert-list').waitFor();
  await page.locator('#sign-in-link').click();
  await page.locator('#signin-form').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'account-email');
  await page.keyboard.type(demoEmail(me));
  await page.keyboard.press('Tab');
  await page.keyboard.type(DEMO_PASSWORD);
  await page.keyboard.press('Enter');
  await assertText(page.locator('#user-name'), demoEmail(me));
  assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem('boxoffice.user'))), userId(me));
  // Signing in brings the user back to where they were.
  await page.waitForURL(/#\/$/);
  await page.locator('#concert-list').waitFor();
  assert.equal(await page.locator('#concert-list > li').count(), SEED.concerts);
  await shot(page, 'journey', 'concerts');

  // --- dates
  await page.getByRole('link', { name: 'See dates for Concert 1' }).click();
  await page.locator('#schedule-list').waitFor();
  assert.equal(await page.locator('#schedule-list > li').count(), SEED.schedules);
  await shot(page, 'journey', 'dates');

  // --- join the queue: both places are taken, so we wait. The join goes
  // with the session cookie and names the session's own user.
  const joins = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && r.url().endsWith('/api/queues/token')) joins.push(r);
  });
  await page.locator(`#schedule-list a[data-schedule="${schedule}"]`).click();
  await page.locator('#waiting-room[data-state="waiting"]').waitFor();
  await assertText(page.locator('#queue-place'), '1');
  await assertText(page.locator('#queue-ahead'), 'You are next in line.');
  const progress = page.getByRole('progressbar', { name: 'Progress in the queue' });
  assert.ok(await progress.isVisible());
  assert.equal(joins.length, 1);
  assert.deepEqual(joins[0].postDataJSON(), { concertId: concert, userId: userId(me) });
  assert.match((await joins[0].allHeaders()).cookie || '', /(^|; )boxoffice_session=v1\.s\./);
  const rec = await queueRecord(page, me, concert);
  assert.equal(rec.status, 'WAITING');
  assert.match(rec.token, /^v1\.w\./, 'a WAITING token is stored');
  await assertText(page.locator('#queue-number'), `#${rec.queueNumber}`);
  // It polls by itself: "last checked" moves on.
  const checked = await page.locator('#queue-checked').textContent();
  await until(async () => (await page.locator('#queue-checked').textContent()) !== checked,
    { what: 'a second poll', timeout: 8000 });
  await page.locator('#waiting-room[data-state="waiting"]').waitFor();
  await shot(page, 'journey', 'waiting-room');

  // --- the two others pay and leave: our turn comes.
  await finishTurns(others, schedule, [1, 2]);
  await page.waitForURL(/#\/concerts\/1\/schedules\/\d+\/seats$/, { timeout: 20000 });
  const active = await queueRecord(page, me, concert);
  assert.equal(active.status, 'ACTIVE');
  assert.match(active.token, /^v1\.a\./, 'the ACTIVE token replaced the WAITING one');
  await page.locator('.seat-map[data-loaded="true"]').waitFor();
  assert.equal(await page.locator('#seat-grid .seat').count(), SEED.seats);
  await assertAttr(page.locator('[data-seat="1"]'), 'data-status', 'SOLD');
  await assertAttr(page.locator('[data-seat="2"]'), 'data-status', 'SOLD');
  const label = await page.locator('[data-seat="3"]').getAttribute('aria-label');
  assert.match(label, /^Seat 3 \(Front, row A, A-3\), [\d,.\s]+ credits, available$/);
  // the plan: sections, rows labelled, the tiers' prices in the legend
  assert.deepEqual(await page.locator('#seat-grid .section-name').allTextContents(), ['Front', 'Stalls']);
  assert.equal(await page.locator('.seat-row[data-row="B"] .seat').count(), 10);
  assert.equal(await page.locator('[data-seat="14"]').textContent(), '6', 'seat 14 is B-6');
  assert.match(await page.locator('#seat-legend [data-tier="premium"]').textContent(), /^premium: [\d,.\s]+ credits$/);
  assert.match(await page.locator('#seat-legend [data-tier="standard"]').textContent(), /^standard: [\d,.\s]+ credits$/);
  assert.match(await page.locator('#turn-timer').textContent(), /^\d+:\d\d$/);
  await shot(page, 'journey', 'seat-map');

  // --- choose a seat with the keyboard only: the map is one tab stop,
  // arrows move, Enter holds. Seat 3 (A-3, first free) -> down to the same
  // place of row B (B-3, seat 11: row A has the 8 premium seats) -> right
  // three times to B-6, seat 14.
  await page.locator('[data-seat="3"]').focus();
  assert.equal(await page.locator('[data-seat="3"]').getAttribute('tabindex'), '0');
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.seat), '11');
  for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowRight');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.seat), '14');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/reservations\/[0-9a-f-]{36}$/);

  // --- the hold: a running countdown, the price, the balance short.
  await assertText(page.locator('#hold-seat'), 'Seat 14');
  const t1 = await page.locator('#hold-timer').textContent();
  assert.match(t1, /^[45]:\d\d$/, `countdown ${t1}`);
  await until(async () => (await page.locator('#hold-timer').textContent()) !== t1,
    { what: 'the countdown to tick', timeout: 3000 });
  await assertText(page.locator('#hold-price'), '90,000 credits');
  await assertText(page.locator('#balance'), '20,000 credits');
  await shot(page, 'journey', 'hold');
  await page.locator('#charge-form').waitFor();
  assert.match(await page.locator('#shortfall').textContent(), /70,000 credits short/);
  assert.equal(await page.getByLabel('Amount to add (credits)').inputValue(), '70000');
  assert.ok(await page.locator('#pay-submit').isDisabled(), 'pay waits for the top-up');
  await shot(page, 'journey', 'payment-short');

  // --- top up (with an Idempotency-Key), then pay (with another).
  const keys = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && /\/balance\/charge$|\/api\/payments$/.test(r.url())) {
      keys.push(r.headers()['idempotency-key']);
    }
  });
  await page.locator('#charge-submit').click();
  await page.locator('#charge-done').waitFor();
  await assertText(page.locator('#balance'), '90,000 credits');
  assert.ok(await page.locator('#pay-submit').isEnabled());
  await shot(page, 'journey', 'topped-up');
  await page.locator('#pay-submit').click();
  await page.waitForURL(/#\/payments\/[0-9a-f-]{36}$/);
  await page.locator('#confirmation').waitFor();
  await assertText(page.locator('#done-seat'), 'Seat 14');
  await assertText(page.locator('#done-amount'), '90,000 credits');
  await assertText(page.locator('#done-balance'), '0 credits');
  // The seat's ticket: its door code, as "My tickets" lists it.
  assert.match(await page.locator('#done-code').textContent(), /^[0-9A-HJKMNP-TV-Z]{20}$/);
  assert.equal(keys.length, 2);
  for (const k of keys) assert.match(k, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(keys[0], keys[1]);
  await shot(page, 'journey', 'confirmation');

  // The server agrees: seat 14 is sold (seen by a newly admitted user).
  const [look] = await occupy(concert, [3]);
  const seats = await api('GET', `/api/concerts/${concert}/schedules/${schedule}/seats`, { token: look.token });
  assert.equal(seats.body.seats.find((s) => s.number === 14).status, 'SOLD');

  // The same confirmation at phone width.
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, 'journey', 'confirmation-phone');
  noPageErrors(page);
  await page.context().close();
});

async function assertText(locator, want) {
  await locator.waitFor();
  await until(async () => (await locator.textContent()).trim() === want,
    { what: `text "${want}" (have "${(await locator.textContent()).trim()}")`, timeout: 10000 });
}

async function assertAttr(locator, name, want) {
  await until(async () => (await locator.getAttribute(name)) === want,
    { what: `${name}="${want}"`, timeout: 10000 });
}
