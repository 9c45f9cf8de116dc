// Two seats in one checkout, both under "My tickets" with their door codes;
// one refunded, and the balance goes back up by its price. The printable
// ticket shows the code as text and as a QR code.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, launch, newPage, shot, api, scheduleOf, until, control, noPageErrors, signIn, userId,
} from './lib.mjs';

let browser;
before(async () => {
  browser = await launch();
  // Earlier tests may leave turns open; this one must be admitted at once.
  await control('reload', { set: ['queue.max_active=20'] });
});
after(async () => {
  await control('reload', { set: ['queue.max_active=2'] }).catch(() => {});
  await browser?.close();
});

async function assertText(locator, want) {
  await until(async () => (await locator.textContent()).trim() === want,
    { what: `text "${want}"` }).catch(async () => {
    assert.equal((await locator.textContent()).trim(), want);
  });
}

test('tickets: two seats in one checkout, both listed with codes, one refunded, balance back', async () => {
  const me = 25;
  const concert = 1;
  const schedule = scheduleOf(concert, 2);
  const seatA = 30;
  const seatB = 31;              // 90,000 credits each
  const session = (await signIn(me)).token;
  const before = (await api('GET', `/api/users/${userId(me)}/balance`, { token: session })).body.balance;

  const page = await newPage(browser, { user: me });
  await page.goto(`${BASE}/#/concerts/${concert}/schedules/${schedule}/queue`);
  await page.waitForURL(new RegExp(`#/concerts/${concert}/schedules/${schedule}/seats$`), { timeout: 20000 });
  await page.locator('.seat-map[data-loaded="true"]').waitFor();

  // Several seats: each choice holds one more seat and stays on the map.
  await page.locator('#multi-select').check();
  await page.locator(`[data-seat="${seatA}"]`).click();
  await until(async () => (await page.locator(`[data-seat="${seatA}"]`).getAttribute('data-status')) === 'MINE',
    { what: `seat ${seatA} held` });
  await page.locator(`[data-seat="${seatB}"]`).click();
  await until(async () => (await page.locator(`[data-seat="${seatB}"]`).getAttribute('data-status')) === 'MINE',
    { what: `seat ${seatB} held` });
  assert.match(page.url(), /\/seats$/, 'still on the seat map');
  await assertText(page.locator('#pay-all'), 'Pay for all 2 seats · 180,000 credits');
  await shot(page, 'tickets', 'two-held');

  // One checkout, one payment of both (reservationIds).
  const payments = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && /\/api\/payments$/.test(r.url())) payments.push(r.postDataJSON());
  });
  await page.locator('#pay-all').click();
  await page.waitForURL(/\/checkout$/);
  await assertText(page.locator('#checkout-total'), '180,000 credits');
  assert.equal(await page.locator('#checkout-seats li').count(), 2);
  await until(() => page.locator('#pay-submit').isEnabled(), { what: 'pay enabled' });
  await shot(page, 'tickets', 'checkout');
  await page.locator('#pay-submit').click();
  await page.waitForURL(/#\/tickets$/);
  assert.equal(payments.length, 1, 'one payment request');
  assert.equal(payments[0].reservationIds.length, 2);

  // Both tickets, each with its code.
  await page.locator('#ticket-list').waitFor();
  const items = page.locator(`#ticket-list .ticket`);
  await until(async () => (await items.count()) === 2, { what: 'two tickets' });
  const codes = await page.locator('#ticket-list .ticket-code').evaluateAll(
    (els) => els.map((e) => e.dataset.code));
  assert.equal(codes.length, 2);
  for (const c of codes) assert.match(c, /^[0-9A-HJKMNP-TV-Z]{20}$/);
  assert.notEqual(codes[0], codes[1]);
  const seats = await items.evaluateAll((els) => els.map((e) => Number(e.dataset.seat)).sort());
  assert.deepEqual(seats, [seatA, seatB]);
  await assertText(page.locator('#balance'), `${(before - 180000).toLocaleString('en-GB')} credits`);
  await shot(page, 'tickets', 'my-tickets');

  // The printable ticket: the code as text and a QR code.
  const first = page.locator(`.ticket[data-seat="${seatA}"]`);
  const ticketId = await first.getAttribute('data-ticket');
  await first.getByRole('link', { name: 'Print' }).click();
  await page.waitForURL(new RegExp(`#/tickets/${ticketId}$`));
  await page.locator('#ticket-qr svg.qr').waitFor();
  const code = await page.locator('#ticket-code').getAttribute('data-code');
  assert.ok(codes.includes(code));
  assert.equal((await page.locator('#ticket-code').textContent()).replace(/-/g, ''), code);
  assert.ok((await page.locator('#ticket-qr svg path').getAttribute('d')).length > 100, 'a QR code is drawn');
  await shot(page, 'tickets', 'printable');

  // Refund one: confirm, it says REFUNDED, the balance is back up by its price.
  await page.goto(`${BASE}/#/tickets`);
  await page.locator('#ticket-list').waitFor();
  page.once('dialog', (d) => d.accept());
  await page.locator(`.ticket[data-seat="${seatB}"] [data-refund]`).click();
  await page.locator('#refund-done').waitFor();
  await until(async () => (await page.locator(`.ticket[data-seat="${seatB}"]`).getAttribute('data-state')) === 'REFUNDED',
    { what: 'the ticket refunded' });
  assert.equal(await page.locator(`.ticket[data-seat="${seatA}"]`).getAttribute('data-state'), 'VALID');
  await assertText(page.locator('#balance'), `${(before - 90000).toLocaleString('en-GB')} credits`);
  const server = await api('GET', `/api/users/${userId(me)}/balance`, { token: session });
  assert.equal(server.body.balance, before - 90000);
  await shot(page, 'tickets', 'refunded');
  noPageErrors(page);
  await page.context().close();
});
