// Redis stops while a user waits in the queue: the site hands over to the
// static waiting page, which keeps the token, retries by itself (honouring
// Retry-After) and, once Redis is back, returns the user to the waiting room
// with the same place; the user then gets their turn as usual.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, launch, newPage, shot, occupy, finishTurns, scheduleOf, until, control, queueRecord,
  noPageErrors,
} from './lib.mjs';

let browser;
let redisDown = false;
before(async () => { browser = await launch(); });
after(async () => {
  if (redisDown) await control('redis/start').catch(() => {});
  await browser?.close();
});

test('redis down mid-journey: fallback waiting page, then back with the same place', async () => {
  const concert = 3;
  const schedule = scheduleOf(concert, 1);
  const me = 9;
  const others = await occupy(concert, [7, 8]);
  const page = await newPage(browser, { user: me, phone: true });

  await page.goto(`${BASE}/#/concerts/${concert}/schedules/${schedule}/queue`);
  await page.locator('#waiting-room[data-state="waiting"]').waitFor();
  const before = await queueRecord(page, me, concert);
  assert.equal(before.status, 'WAITING');
  const number = `#${before.queueNumber}`;
  await until(async () => (await page.locator('#queue-number').textContent()) === number, { what: 'queue number' });
  await shot(page, 'redis', 'waiting-room');

  // Watch what the fallback page asks for, and when.
  const attempts = [];
  page.on('response', (r) => {
    if (r.url().endsWith('/api/queues/status') && /\/waiting\.html/.test(r.frame().url())) {
      attempts.push({ at: Date.now(), status: r.status(), retryAfter: Number(r.headers()['retry-after'] || 0) });
    }
  });

  // --- Redis goes away: the next poll gets 503 and the fallback page shows.
  await control('redis/stop');
  redisDown = true;
  await page.waitForURL(/\/waiting\.html\?/, { timeout: 20000 });
  await page.locator('#fallback').waitFor();
  assert.match(await page.locator('h1').textContent(), /still in line/);
  await until(async () => (await page.locator('#queue-number').textContent()) === number,
    { what: 'the kept queue number on the fallback page' });
  const kept = await queueRecord(page, me, concert);
  assert.equal(kept.token, before.token, 'the token stays in the browser');
  const ret = new URL(page.url()).searchParams.get('return');
  assert.equal(ret, `/#/concerts/${concert}/schedules/${schedule}/queue`);

  // It retries by itself, no sooner than Retry-After asks.
  await until(() => attempts.length >= 2, { what: 'two retries by the fallback page', timeout: 25000 });
  assert.equal(attempts[0].status, 503);
  assert.ok(attempts[0].retryAfter >= 1, 'the 503 carries Retry-After');
  const gap = (attempts[1].at - attempts[0].at) / 1000;
  assert.ok(gap >= attempts[0].retryAfter * 0.85, `retried after ${gap}s, Retry-After was ${attempts[0].retryAfter}s`);
  assert.match(await page.locator('#retry').textContent(), /Trying again in \d+ s|Checking/);
  await shot(page, 'redis', 'fallback-page');

  // --- Redis is back: the page returns to the waiting room, same place.
  await control('redis/start');
  redisDown = false;
  await page.waitForURL(new RegExp(`/#/concerts/${concert}/schedules/${schedule}/queue$`), { timeout: 30000 });
  await page.locator('#waiting-room[data-state="waiting"]').waitFor({ timeout: 15000 });
  await until(async () => (await page.locator('#queue-number').textContent()) === number,
    { what: 'the same queue number after Redis came back' });
  const afterRec = await queueRecord(page, me, concert);
  assert.equal(afterRec.queueNumber, before.queueNumber, 'same place in the queue');
  await assertPlace(page, '1');
  await shot(page, 'redis', 'back-same-place');

  // --- and the journey goes on: the others finish, our turn comes.
  await finishTurns(others, schedule, [1, 2]);
  await page.waitForURL(new RegExp(`#/concerts/${concert}/schedules/${schedule}/seats$`), { timeout: 20000 });
  await page.locator('.seat-map[data-loaded="true"]').waitFor();
  await shot(page, 'redis', 'turn-after-outage');
  noPageErrors(page);
  await page.context().close();
});

async function assertPlace(page, want) {
  await until(async () => (await page.locator('#queue-place').textContent()) === want, { what: `place ${want}` });
}
