// Error handling of the pages: every API error code reads as a clear
// message (never raw JSON), and the waiting room reads the progress
// document at the pace it suggests and honours Retry-After. API answers are faked with page.route() here, so
// that every code and timing can be produced on demand.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, launch, newPage, shot, until, noPageErrors, userId,
} from './lib.mjs';
import fs from 'node:fs';

// The site's own message table (www/ is not a node package: load the module
// from its source text).
const errorsSrc = fs.readFileSync(new URL('../../www/js/errors.js', import.meta.url), 'utf8');
const { messageFor, KNOWN_CODES } = await import('data:text/javascript,' + encodeURIComponent(errorsSrc));

// The codes the API documents (docs/design.md, docs/api.md), with a status each
// comes with.
const CODES = {
  BAD_JSON: 400, INVALID_FIELD: 400, MISSING_FIELD: 400, NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405, UNSUPPORTED_MEDIA_TYPE: 415, BODY_TOO_LARGE: 413,
  TOKEN_MISSING: 401, TOKEN_INVALID: 401, TOKEN_EXPIRED: 401, TOKEN_REVOKED: 401,
  TOKEN_WRONG_CONCERT: 403, TOKEN_WRONG_KIND: 403, NOT_ACTIVE: 403, FORBIDDEN: 403,
  CONCERT_NOT_FOUND: 404, USER_NOT_FOUND: 404, SCHEDULE_NOT_FOUND: 404, SEAT_NOT_FOUND: 404,
  RESERVATION_NOT_FOUND: 404, NOT_ON_SALE: 409, SEAT_TAKEN: 409, HOLD_LIMIT: 409,
  HOLD_EXPIRED: 409, ALREADY_PAID: 409, WRONG_CONCERT: 403, INSUFFICIENT_BALANCE: 402,
  IDEMPOTENCY_MISMATCH: 422, BALANCE_LIMIT: 409, INVALID_AMOUNT: 400, AMOUNT_TOO_LARGE: 400,
  QUEUE_UNAVAILABLE: 503, MAINTENANCE: 503, UNAVAILABLE: 503, RATE_LIMITED: 429,
  UPSTREAM_UNAVAILABLE: 502,
  // documented in docs/api.md too
  BAD_REQUEST: 400, INTERNAL: 500, SERVICE_UNAVAILABLE: 503, UPSTREAM_TIMEOUT: 504,
  URI_TOO_LONG: 414,
  // accounts and sessions
  BAD_CREDENTIALS: 401, TOO_MANY_ATTEMPTS: 429, EMAIL_TAKEN: 409, WEAK_PASSWORD: 400,
  CROSS_SITE: 403,
  // tickets
  TICKET_LIMIT: 409, TICKET_NOT_FOUND: 404, REFUND_CLOSED: 409,
};
const GENERIC = messageFor('SOMETHING_NEW');

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('every documented error code has its own clear message', () => {
  for (const code of Object.keys(CODES)) {
    assert.ok(KNOWN_CODES.includes(code), `${code} has a message`);
    const m = messageFor(code);
    assert.notEqual(m, GENERIC, `${code} gets more than the generic message`);
    assert.doesNotMatch(m, /[{}"]|[A-Z]{3,}_[A-Z]/, `${code}: plain words`);
    assert.match(m, /^[A-Z].*[.!]$/, `${code}: a sentence`);
  }
  assert.match(GENERIC, /went wrong/);
});

test('the page shows each error code as words, never the raw answer', async () => {
  const page = await newPage(browser);
  let current = null;
  await page.route('**/api/concerts', (route) => {
    const status = CODES[current] || 418;
    return route.fulfill({
      status,
      contentType: 'application/json',
      headers: { 'Retry-After': '30' },
      body: JSON.stringify({ error: { code: current, message: `raw {"detail":"${current}"}` } }),
    });
  });
  let first = true;
  for (const code of [...Object.keys(CODES), 'SOMETHING_NEW']) {
    current = code;
    if (first) {
      await page.goto(`${BASE}/#/`);
      first = false;
    } else {
      // Show the page again (as the router does on a navigation) without
      // reloading the document.
      await page.evaluate(() => window.dispatchEvent(new HashChangeEvent('hashchange')));
    }
    const box = page.locator(`#main .notice-error[data-code="${code}"]`);
    await box.waitFor();
    const text = (await box.locator('.notice-text').textContent()).trim();
    assert.equal(text, code === 'SOMETHING_NEW' ? GENERIC : messageFor(code), code);
    const all = await page.locator('#main').textContent();
    assert.doesNotMatch(all, /[{}]|"detail"|raw /, `${code}: no raw JSON on the page`);
    assert.equal(await box.getAttribute('role'), 'alert');
    if (code === 'SEAT_TAKEN') await shot(page, 'errors', 'error-message');
  }
  noPageErrors(page);
  await page.context().close();
});

test('waiting room: reads the progress document at its pollAfterMs and honours Retry-After', async () => {
  const page = await newPage(browser, { user: 30, phone: true });
  const times = [];
  let polls = 0;
  let statusCalls = 0;
  await page.route('**/api/queues/token', (route) => {
    times.push({ at: Date.now(), kind: 'join' });
    return route.fulfill({
      status: 201, contentType: 'application/json', body: JSON.stringify({
        token: 'v1.w.fake', queueNumber: 12, concertId: 1, status: 'WAITING',
        position: 5, etaSeconds: 240, activeUntil: null, opensAt: null,
      }),
    });
  });
  await page.route('**/api/queues/status', (route) => {
    statusCalls++;
    return route.fulfill({ status: 500, contentType: 'application/json', body: '{}' });
  });
  await page.route('**/api/queues/1/progress', (route) => {
    polls++;
    times.push({ at: Date.now(), kind: 'progress', n: polls });
    if (polls === 3) {
      return route.fulfill({
        status: 429, contentType: 'application/json', headers: { 'Retry-After': '3' },
        body: JSON.stringify({ error: { code: 'RATE_LIMITED', message: 'too many requests' } }),
      });
    }
    if (polls === 4) {
      return route.fulfill({
        status: 503, contentType: 'application/json', headers: { 'Retry-After': '30' },
        body: JSON.stringify({ error: { code: 'MAINTENANCE', message: 'maintenance' } }),
      });
    }
    return route.fulfill({
      status: 200, contentType: 'application/json', body: JSON.stringify({
        concertId: 1, nowServing: 6, admittedPerSecond: 0.5, waiting: 40, preQueued: 0,
        saleState: 'ON_SALE', saleOpensAt: null, claimWindowSeconds: 60,
        updatedAt: new Date().toISOString(), pollAfterMs: 1500,
      }),
    });
  });

  await page.goto(`${BASE}/#/concerts/1/schedules/1/queue`);
  await page.locator('#waiting-room[data-state="waiting"]').waitFor();
  // place from the document: number 12, nowServing 6: 5 people ahead
  await until(async () => /5 people are ahead of you/.test(await page.locator('#queue-ahead').textContent()),
    { what: 'the place from the document' });
  assert.match(await page.locator('#queue-eta').textContent(), /minute|Less/);
  await until(() => polls >= 4, { what: 'four reads', timeout: 20000 });
  const gap = (i) => times[i].at - times[i - 1].at;
  // the document's pollAfterMs (1500), with at most 15 % jitter either way
  for (const i of [2, 3]) assert.ok(gap(i) >= 1250 && gap(i) <= 2200, `read ${i}: ${gap(i)} ms`);
  // read 3 answered 429 with Retry-After: 3.
  assert.ok(gap(4) >= 3000, `waited ${gap(4)} ms after Retry-After: 3`);
  // no status call while the document says the turn is far
  assert.equal(statusCalls, 0);

  // Maintenance (503): the static waiting page takes over, and waits as asked.
  await page.waitForURL(/\/waiting\.html\?/, { timeout: 15000 });
  const url = new URL(page.url());
  assert.equal(url.searchParams.get('wait'), '30');
  assert.match(await page.locator('#reason').textContent(), /paused for maintenance/);
  assert.match(await page.locator('#queue-number').textContent(), /#12/);
  await until(async () => /Trying again in (29|30) s/.test(await page.locator('#retry').textContent()),
    { what: 'the 30 s countdown' });
  await shot(page, 'errors', 'maintenance-fallback');
  noPageErrors(page);
  await page.context().close();
});

test('charge and payment: a retried attempt reuses its Idempotency-Key, the next attempt gets a new one', async () => {
  const user = 31;
  const page = await newPage(browser, { user });
  const rid = '11111111-2222-4333-8444-555555555555';
  const pid = '66666666-7777-4888-9999-000000000000';
  await page.addInitScript(([u]) => {
    if (!localStorage.getItem(`boxoffice.queue.${u}.1`)) {
      localStorage.setItem(`boxoffice.queue.${u}.1`, JSON.stringify({
        token: 'v1.a.fake', status: 'ACTIVE', queueNumber: 1,
        activeUntil: new Date(Date.now() + 600000).toISOString(),
      }));
    }
  }, [userId(user)]);
  const json = (status, body, headers) => ({
    status, contentType: 'application/json', headers, body: JSON.stringify(body),
  });
  await page.route(`**/api/reservations/${rid}`, (route) => route.fulfill(json(200, {
    id: rid, scheduleId: 1, seatNumber: 9, status: 'HELD', price: 90000,
    expiresAt: new Date(Date.now() + 300000).toISOString(),
  })));
  let balance = 50000;
  await page.route('**/api/users/*/balance', (route) => route.fulfill(json(200, { userId: userId(user), balance })));
  const charges = [];
  await page.route('**/api/users/*/balance/charge', (route) => {
    const req = route.request();
    charges.push({ key: req.headers()['idempotency-key'], body: req.postDataJSON() });
    // The first answer is lost on the way back: the page retries by itself.
    if (charges.length === 1) return route.abort('connectionreset');
    balance = 90000;
    return route.fulfill(json(200, { userId: userId(user), balance, charged: 40000 }));
  });
  const payments = [];
  await page.route('**/api/payments', (route) => {
    payments.push({ key: route.request().headers()['idempotency-key'], body: route.request().postDataJSON() });
    if (payments.length === 1) {
      return route.fulfill(json(503, { error: { code: 'UNAVAILABLE', message: 'db busy' } }, { 'Retry-After': '1' }));
    }
    if (payments.length === 2) {
      return route.fulfill(json(402, { error: { code: 'INSUFFICIENT_BALANCE', message: 'no money' } }));
    }
    return route.fulfill(json(201, {
      id: pid, reservationId: rid, amount: 90000, balance: 0, scheduleId: 1, seatNumber: 9,
    }));
  });

  await page.goto(`${BASE}/#/concerts/1/schedules/1/reservations/${rid}`);
  await page.locator('#charge-form').waitFor();
  assert.equal(await page.getByLabel('Amount to add (credits)').inputValue(), '40000');
  await page.locator('#charge-submit').click();
  await page.locator('#charge-done').waitFor();
  assert.equal(charges.length, 2);
  assert.equal(charges[0].key, charges[1].key, 'the retry reuses the key');
  assert.deepEqual(charges[1].body, { amount: 40000 });

  // Payment: 503 (retried with the same key), then a definite 402 shown in
  // words; paying again is a new attempt with a new key.
  await page.locator('#pay-submit').click();
  const box = page.locator('#pay-messages .notice-error');
  await box.waitFor();
  assert.equal(await box.getAttribute('data-code'), 'INSUFFICIENT_BALANCE');
  assert.match(await box.textContent(), /balance is too low/);
  assert.equal(payments.length, 2);
  assert.equal(payments[0].key, payments[1].key, 'the retry after 503 reuses the key');
  await shot(page, 'errors', 'payment-insufficient');
  await page.locator('#pay-submit').click();
  await page.waitForURL(new RegExp(`#/payments/${pid}$`));
  assert.equal(payments.length, 3);
  assert.notEqual(payments[2].key, payments[1].key, 'a new attempt gets a new key');
  assert.notEqual(payments[2].key, charges[0].key);
  for (const p of payments) assert.deepEqual(p.body, { reservationId: rid });
  await page.locator('#confirmation').waitFor();
  noPageErrors(page);
  await page.context().close();
});
