// Shared helpers of the browser tests: the stack's URLs (set by ./run), the
// browser, sign-in of demo accounts, API calls that play "other users",
// screenshots.

import { chromium } from 'playwright-core';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';

export const BASE = process.env.BOXOFFICE_URL;
export const CONTROL = process.env.BOXOFFICE_CONTROL_URL;
export const SEED = JSON.parse(process.env.BOXOFFICE_SEED || '{"concerts":3,"schedules":2,"seats":40,"users":40}');
if (!BASE) {
  throw new Error('BOXOFFICE_URL is not set: run the tests with tests/browser/run');
}

export const ARTIFACTS = process.env.BOXOFFICE_ARTIFACTS
  || fs.mkdtempSync(path.join(os.tmpdir(), 'boxoffice-browser-artifacts-'));
fs.mkdirSync(ARTIFACTS, { recursive: true });

const CHROMIUM = process.env.BOXOFFICE_CHROMIUM || '/usr/bin/chromium';

export function userId(i) {
  return '00000000-0000-4000-8000-' + String(i).padStart(12, '0');
}

/** Demo user i's account (boxofficectl seed, docs/identity.md). */
export const DEMO_PASSWORD = 'boxoffice-demo';
export function demoEmail(i) {
  return `user${i}@demo.boxoffice.test`;
}

/** The id of schedule n (1-based) of concert c in the demo data. */
export function scheduleOf(concert, n = 1) {
  return (concert - 1) * SEED.schedules + n;
}

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * A new browser context (its own localStorage and cookies) with one page.
 * opts.user signs demo user opts.user in (as if done earlier: the session
 * cookie is in the context's cookie jar); opts.phone uses a phone
 * viewport. Page errors (uncaught exceptions) are collected in page.errors.
 */
export async function newPage(browser, opts = {}) {
  const context = await browser.newContext({
    viewport: opts.phone ? { width: 390, height: 844 } : { width: 1280, height: 860 },
    deviceScaleFactor: 1,
    isMobile: !!opts.phone,
    hasTouch: !!opts.phone,
    locale: 'en-GB',
    timezoneId: 'UTC',
  });
  if (opts.user) {
    // The context's API requests share its cookie jar: the Set-Cookie of
    // the sign-in is the browser's session from now on.
    const r = await context.request.post(BASE + '/api/sessions', {
      data: { email: demoEmail(opts.user), password: DEMO_PASSWORD },
    });
    assert.equal(r.status(), 201, `sign-in of user ${opts.user}: ${await r.text()}`);
    // What the page itself remembers after signing in: the address shown.
    await context.addInitScript(([id, email]) => {
      if (!localStorage.getItem('boxoffice.email')) {
        localStorage.setItem('boxoffice.email', JSON.stringify({ userId: id, email }));
      }
    }, [userId(opts.user), demoEmail(opts.user)]);
  }
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e));
  return page;
}

const shotNo = new Map();
/**
 * A full-page screenshot into the artifacts directory, numbered per group:
 * <group>-01-<name>.png, <group>-02-... in the order they were taken.
 */
export async function shot(page, group, name) {
  const n = (shotNo.get(group) || 0) + 1;
  shotNo.set(group, n);
  const file = path.join(ARTIFACTS, `${group}-${String(n).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** One API call as a plain client: {status, body, headers}. */
export async function api(method, p, { body, token, key } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = 'Bearer ' + token;
  if (key) headers['Idempotency-Key'] = key;
  const resp = await fetch(BASE + p, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: resp.status, body: json, headers: resp.headers };
}

/** Ask the runner to do something to the stack (stop Redis...). */
export async function control(action, body = {}) {
  const resp = await fetch(CONTROL + '/' + action, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  const out = await resp.json();
  assert.equal(resp.status, 200, `control ${action}: ${JSON.stringify(out)}`);
  return out;
}

/** Demo user i signs in through the API: {userId, token (the session), expiresAt}. */
export async function signIn(i) {
  const r = await api('POST', '/api/sessions', { body: { email: demoEmail(i), password: DEMO_PASSWORD } });
  assert.equal(r.status, 201, `sign-in of user ${i}: ${r.status} ${JSON.stringify(r.body)}`);
  assert.equal(r.body.userId, userId(i));
  return r.body;
}

/**
 * Demo users sign in and join a concert's queue through the API, with
 * their sessions; they must be ACTIVE. Returns [{user, token (the queue
 * pass), session}].
 */
export async function occupy(concert, users) {
  const out = [];
  for (const u of users) {
    const session = (await signIn(u)).token;
    const r = await api('POST', '/api/queues/token', {
      body: { concertId: concert, userId: userId(u) }, token: session,
    });
    assert.ok([200, 201].includes(r.status), `join of user ${u}: ${r.status} ${JSON.stringify(r.body)}`);
    assert.equal(r.body.status, 'ACTIVE', `user ${u} should be admitted at once: ${JSON.stringify(r.body)}`);
    out.push({ user: u, token: r.body.token, session });
  }
  return out;
}

/** Those users end their turns the normal way: hold one seat each and pay. */
export async function finishTurns(turns, scheduleId, seats) {
  for (let i = 0; i < turns.length; i++) {
    const { token } = turns[i];
    const hold = await api('POST', '/api/reservations', { body: { scheduleId, seatNumber: seats[i] }, token });
    assert.equal(hold.status, 201, `hold: ${JSON.stringify(hold.body)}`);
    const pay = await api('POST', '/api/payments', {
      body: { reservationId: hold.body.id }, token, key: randomUUID(),
    });
    assert.equal(pay.status, 201, `payment: ${JSON.stringify(pay.body)}`);
  }
}

/** Wait until fn() is truthy (polling); returns its value. */
export async function until(fn, { timeout = 15000, interval = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** The stored queue record of (user, concert) in the page's localStorage. */
export async function queueRecord(page, user, concert) {
  return page.evaluate(([u, c]) => {
    const raw = localStorage.getItem(`boxoffice.queue.${u}.${c}`);
    return raw ? JSON.parse(raw) : null;
  }, [userId(user), concert]);
}

/** Sign in through the page's form (the page shows a "Sign in" link). */
export async function signInWithForm(page, email, password = DEMO_PASSWORD) {
  await page.locator('#sign-in-link').click();
  await page.locator('#signin-form').waitFor();
  await page.getByLabel('E-mail address').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.locator('#account-submit').click();
}

/** The session cookie of the page's context (the token), or null. */
export async function sessionCookie(page) {
  const c = (await page.context().cookies(BASE + '/api/')).find((x) => x.name === 'boxoffice_session');
  return c ? c.value : null;
}

export function noPageErrors(page) {
  assert.deepEqual(page.errors.map(String), [], 'uncaught errors in the page');
}
