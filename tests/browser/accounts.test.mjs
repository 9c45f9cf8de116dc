// Accounts on the page: sign-up then sign-in, the session kept over a
// reload, sign-out that ends the session, every refusal of sign-in and
// sign-up in words, and two signed-in browsers that cannot see or touch
// each other's hold or balance.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  BASE, launch, newPage, shot, api, userId, scheduleOf, until, noPageErrors, demoEmail,
  signInWithForm, sessionCookie, queueRecord,
} from './lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const PW = 'correct horse battery';

function freshEmail() {
  return `web-${randomBytes(6).toString('hex')}@accounts.boxoffice.test`;
}

async function assertText(locator, want) {
  await locator.waitFor();
  await until(async () => (await locator.textContent()).trim() === want,
    { what: `text "${want}" (have "${(await locator.textContent()).trim()}")`, timeout: 10000 });
}

async function errorBox(page) {
  const box = page.locator('#account-error');
  await box.waitFor();
  return { code: await box.getAttribute('data-code'), text: (await box.locator('.notice-text').textContent()).trim() };
}

test('sign-up of a new account signs it in; it stays signed in over a reload, and signs in again after signing out', async () => {
  const page = await newPage(browser);
  const email = freshEmail();
  await page.goto(BASE + '/');
  await page.locator('#concert-list').waitFor();
  // No user number field any more: the page asks for an account.
  assert.equal(await page.locator('#user-box input').count(), 0);
  await page.locator('#sign-up-link').click();
  await page.locator('#signup-form').waitFor();
  await page.getByLabel('E-mail address').fill(email);
  await page.getByLabel('Password').fill(PW);
  await shot(page, 'accounts', 'sign-up');
  await page.locator('#account-submit').click();
  await assertText(page.locator('#user-name'), email);
  await page.waitForURL(/#\/$/);
  const user = await page.evaluate(() => JSON.parse(localStorage.getItem('boxoffice.user')));
  assert.match(user, /^[0-9a-f-]{36}$/);
  const cookie = (await page.context().cookies(BASE + '/api/')).find((c) => c.name === 'boxoffice_session');
  assert.ok(cookie, 'the session cookie is set');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');

  // A reload asks the server (GET /api/sessions): still signed in.
  await page.reload();
  await assertText(page.locator('#user-name'), email);
  // ... and its balance page is its own (a new account: 0).
  await page.locator('#user-box a[href="#/balance"]').click();
  await assertText(page.locator('#balance'), '0 credits');

  // The server, not localStorage, says who is signed in.
  await page.evaluate(() => localStorage.setItem('boxoffice.user', JSON.stringify('00000000-0000-4000-8000-000000000001')));
  await page.reload();
  await assertText(page.locator('#user-name'), email);
  assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem('boxoffice.user'))), user);

  await page.locator('#sign-out').click();
  await page.locator('#sign-in-link').waitFor();
  await signInWithForm(page, email, PW);
  await assertText(page.locator('#user-name'), email);
  // Back on the page where "Sign in" was pressed.
  await page.waitForURL(/#\/balance$/);
  await assertText(page.locator('#balance'), '0 credits');
  await shot(page, 'accounts', 'signed-in');
  noPageErrors(page);
  await page.context().close();
});

test('sign-out ends the session: the balance page then asks to sign in', async () => {
  const me = 33;
  const page = await newPage(browser);
  await page.goto(BASE + '/#/balance');
  await page.locator('#balance-signin').waitFor();
  await page.locator('#signin-needed').click();
  await page.locator('#signin-form').waitFor();
  await page.getByLabel('E-mail address').fill(demoEmail(me));
  await page.getByLabel('Password').fill('boxoffice-demo');
  await page.getByLabel('Password').press('Enter');
  await page.waitForURL(/#\/balance$/);
  await assertText(page.locator('#user-name'), demoEmail(me));
  await until(async () => /^[\d,.\s]+ credits$/.test((await page.locator('#balance').textContent()).trim()),
    { what: 'the balance' });
  const token = await sessionCookie(page);
  assert.match(token, new RegExp(`^v1\\.s\\.${userId(me)}\\.`));

  await page.locator('#sign-out').click();
  await page.locator('#balance-signin').waitFor();
  assert.equal(await page.locator('#balance').count(), 0);
  assert.equal(await page.locator('#sign-in-link').count(), 1);
  assert.equal(await sessionCookie(page), null, 'the cookie is cleared');
  assert.equal(await page.evaluate(() => localStorage.getItem('boxoffice.user')), null);
  // The session itself has ended on the server, not only in this browser.
  const r = await api('GET', `/api/users/${userId(me)}/balance`, { token });
  assert.equal(r.status, 401);
  assert.equal(r.body.error.code, 'TOKEN_REVOKED');
  await page.reload();
  await page.locator('#balance-signin').waitFor();
  await shot(page, 'accounts', 'signed-out-balance');
  noPageErrors(page);
  await page.context().close();
});

test('a session ended elsewhere: the next call that needs it brings the page back to "sign in"', async () => {
  const me = 37;
  const page = await newPage(browser, { user: me });
  await page.goto(BASE + '/#/balance');
  await assertText(page.locator('#user-name'), demoEmail(me));
  await until(async () => /credits$/.test(await page.locator('#balance').textContent()), { what: 'the balance' });
  // Signed out from somewhere else (another tab, the API).
  const out = await api('DELETE', '/api/sessions', { token: await sessionCookie(page) });
  assert.equal(out.status, 200);
  await page.getByLabel('Amount to add (credits)').fill('100');
  await page.locator('#charge-submit').click();
  await page.locator('#balance-signin').waitFor();
  assert.equal(await page.locator('#sign-in-link').count(), 1);
  noPageErrors(page);
  await page.context().close();
});

test('sign-in and sign-up refusals read as words: wrong password, throttled, address taken, weak password', async () => {
  const page = await newPage(browser, { phone: true });
  await page.goto(BASE + '/#/signin');
  await page.locator('#signin-form').waitFor();

  // A wrong password (the real server).
  await page.getByLabel('E-mail address').fill(demoEmail(34));
  await page.getByLabel('Password').fill('not the password');
  await page.locator('#account-submit').click();
  let e = await errorBox(page);
  assert.equal(e.code, 'BAD_CREDENTIALS');
  assert.match(e.text, /e-mail address or the password is wrong/);
  assert.equal(await page.getByLabel('E-mail address').inputValue(), demoEmail(34), 'the address is kept');
  assert.equal(await page.locator('#sign-in-link').count(), 1, 'still signed out');
  await shot(page, 'accounts', 'bad-credentials');

  // Too many failed sign-ins: 429 with Retry-After (faked: the test stack
  // allows many failures, and a real pause would hold up the other tests).
  await page.route('**/api/sessions', (route) => (route.request().method() === 'POST'
    ? route.fulfill({
      status: 429, contentType: 'application/json', headers: { 'Retry-After': '125' },
      body: JSON.stringify({ error: { code: 'TOO_MANY_ATTEMPTS', message: 'too many failed sign-ins; try again in 125 seconds' } }),
    })
    : route.continue()));
  await page.locator('#account-submit').click();
  await until(async () => (await errorBox(page)).code === 'TOO_MANY_ATTEMPTS', { what: 'the 429 message' });
  e = await errorBox(page);
  assert.match(e.text, /Too many failed sign-ins/);
  assert.match(e.text, /try again in 2 minutes 5 seconds\.$/);
  assert.doesNotMatch(e.text, /[{}"]/);
  assert.ok(await page.locator('#account-submit').isDisabled(), 'no more attempts until Retry-After has passed');
  await shot(page, 'accounts', 'throttled');
  await page.unroute('**/api/sessions');

  // Sign-up: an address with an account (any case), then a weak password.
  await page.goto(BASE + '/#/signup');
  await page.locator('#signup-form').waitFor();
  await page.getByLabel('E-mail address').fill(demoEmail(34).toUpperCase());
  await page.getByLabel('Password').fill(PW);
  await page.locator('#account-submit').click();
  e = await errorBox(page);
  assert.equal(e.code, 'EMAIL_TAKEN');
  assert.match(e.text, /already exists/);
  assert.equal(await page.locator('#account-error a[href="#/signin"]').count(), 1);

  const email = freshEmail();
  for (const [pw, want] of [
    ['short', /at least 10 characters/],
    [email.toUpperCase(), /must not be your e-mail address/],
  ]) {
    await page.getByLabel('E-mail address').fill(email);
    await page.getByLabel('Password').fill(pw);
    await page.locator('#account-submit').click();
    await until(async () => want.test((await errorBox(page)).text), { what: `the reason ${want}` });
    e = await errorBox(page);
    assert.equal(e.code, 'WEAK_PASSWORD');
    assert.equal(await page.getByLabel('Password').getAttribute('aria-invalid'), 'true');
  }
  await shot(page, 'accounts', 'weak-password');
  // Nothing was created: the address is still free.
  const r = await api('POST', '/api/sessions', { body: { email, password: 'short' } });
  assert.equal(r.status, 401);
  noPageErrors(page);
  await page.context().close();
});

test("another signed-in user cannot see or touch the first user's hold or balance", async () => {
  const concert = 3;
  const schedule = scheduleOf(concert, 2);
  const seat = 7;
  const first = 35;
  const second = 36;
  const a = await newPage(browser, { user: first });
  const b = await newPage(browser, { user: second });

  // The first user holds a seat through the page.
  await a.goto(`${BASE}/#/concerts/${concert}/schedules/${schedule}/queue`);
  await a.waitForURL(/\/seats$/);
  await a.locator('.seat-map[data-loaded="true"]').waitFor();
  await a.locator(`[data-seat="${seat}"]`).click();
  await a.waitForURL(/\/reservations\/[0-9a-f-]{36}$/);
  const holdUrl = a.url();
  const rid = holdUrl.split('/').pop();
  await assertText(a.locator('#hold-seat'), `Seat ${seat}`);
  await until(async () => /credits$/.test(await a.locator('#balance').textContent()), { what: "A's balance" });
  const balanceA = (await a.locator('#balance').textContent()).trim();

  // The second user opens the first user's hold: not found for them.
  await b.goto(holdUrl.replace(/^.*#/, BASE + '/#'));
  const box = b.locator('#pay-messages .notice-error');
  await box.waitFor();
  assert.equal(await box.getAttribute('data-code'), 'RESERVATION_NOT_FOUND');
  assert.equal(await b.locator('#hold-seat').textContent(), '…', "nothing of the other user's hold is shown");
  assert.ok(await b.locator('#release').isDisabled());
  assert.ok(await b.locator('#pay-submit').isDisabled());
  await shot(b, 'accounts', 'other-users-hold');

  // ... and straight at the API with the second user's session cookie
  // (same-origin fetches from the page): refused, every one.
  const tries = await b.evaluate(async ([id, user]) => {
    const call = async (method, path, body) => {
      const r = await fetch(path, {
        method, credentials: 'same-origin',
        headers: { Accept: 'application/json', 'Content-Type': 'application/json', 'Idempotency-Key': crypto.randomUUID() },
        body: body ? JSON.stringify(body) : undefined,
      });
      const j = await r.json().catch(() => null);
      return [r.status, j && j.error ? j.error.code : null];
    };
    return {
      get: await call('GET', `/api/reservations/${id}`),
      release: await call('DELETE', `/api/reservations/${id}`),
      balance: await call('GET', `/api/users/${user}/balance`),
      charge: await call('POST', `/api/users/${user}/balance/charge`, { amount: 1000 }),
    };
  }, [rid, userId(first)]);
  assert.deepEqual(tries, {
    get: [404, 'RESERVATION_NOT_FOUND'],
    release: [404, 'RESERVATION_NOT_FOUND'],
    balance: [403, 'FORBIDDEN'],
    charge: [403, 'FORBIDDEN'],
  });
  // The second user's balance page shows their own account.
  await b.goto(`${BASE}/#/balance`);
  await assertText(b.locator('#user-name'), demoEmail(second));

  // The first user's hold is intact, and so is the balance.
  const sessionA = await sessionCookie(a);
  const look = await api('GET', `/api/reservations/${rid}`, { token: sessionA });
  assert.equal(look.status, 200);
  assert.equal(look.body.status, 'HELD');
  assert.equal(look.body.seatNumber, seat);
  await a.reload();
  await assertText(a.locator('#hold-seat'), `Seat ${seat}`);
  await assertText(a.locator('#balance'), balanceA);
  assert.ok(await a.locator('#release').isEnabled());

  // The first user pays (topping up if short), which ends the turn and
  // leaves the queue of this concert free for the other tests.
  if (await a.locator('#charge-form').isVisible()) {
    await a.locator('#charge-submit').click();
    await a.locator('#charge-done').waitFor();
  }
  await a.locator('#pay-submit').click();
  await a.waitForURL(/#\/payments\/[0-9a-f-]{36}$/);
  assert.equal(await queueRecord(a, first, concert), null);
  noPageErrors(a);
  noPageErrors(b);
  await a.context().close();
  await b.context().close();
});
