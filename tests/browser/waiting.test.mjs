// The waiting room before and at a sale's opening: a countdown to
// saleOpensAt, the pre-queue's draw at the opening, the place following
// the public progress document (not per-user polls), the claim of the
// turn with one status call, and the seat map.
//
// Concert 2's sale is set to open a few seconds from now (the runner's
// /sale control, through psql); claim_window is 5 s so that turns the API
// users never claim are dropped quickly and the queue moves.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE, launch, newPage, shot, api, signIn, userId, scheduleOf, until, control,
  noPageErrors, queueRecord,
} from './lib.mjs';

const concert = 2;
const schedule = scheduleOf(concert, 1);
const CLAIM = 5;

let browser;
before(async () => {
  browser = await launch();
  await control('reload', { set: [`queue.claim_window=${CLAIM}`] });
});
after(async () => {
  await control('sale', { concert, opensInSeconds: null });
  await control('reload', { set: ['queue.claim_window=60'] });
  await browser?.close();
});

async function join(user) {
  const session = (await signIn(user)).token;
  const r = await api('POST', '/api/queues/token', { body: { concertId: concert }, token: session });
  assert.equal(r.status, 201, `join of user ${user}: ${JSON.stringify(r.body)}`);
  return r.body;
}

async function progressDoc() {
  const r = await api('GET', `/api/queues/${concert}/progress`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

test('waiting room: countdown, opening draw, place from the progress document, claim, seat map', async () => {
  await control('sale', { concert, opensInSeconds: 8 });
  const me = 11;
  const late = 15;
  const page = await newPage(browser, { user: me });
  const requests = [];
  page.on('request', (r) => {
    if (r.url().includes('/api/queues/')) requests.push({ url: r.url(), at: Date.now() });
  });

  // --- before the opening: a countdown, no number yet
  await page.goto(`${BASE}/#/concerts/${concert}/schedules/${schedule}/queue`);
  await page.locator('#waiting-room[data-state="upcoming"]').waitFor();
  const first = await page.locator('#queue-countdown').textContent();
  assert.match(first, /^\d+:\d\d$/, first);
  await until(async () => (await page.locator('#queue-countdown').textContent()) !== first,
    { timeout: 3000, what: 'the countdown to tick' });
  const pre = await queueRecord(page, me, concert);
  assert.equal(pre.status, 'PRE_QUEUE');
  assert.equal(pre.queueNumber, undefined);
  await shot(page, 'waiting', 'countdown');
  // three more join the pre-queue through the API; none will claim
  for (const u of [12, 13, 14]) assert.equal((await join(u)).status, 'PRE_QUEUE');
  assert.equal((await progressDoc()).saleState, 'UPCOMING');

  // --- the opening: the first read after it draws the pre-queue
  await until(async () => (await progressDoc()).saleState === 'ON_SALE',
    { timeout: 15000, interval: 300, what: 'the opening' });

  // --- a late joiner, behind the whole pre-queue: its place follows the
  // progress document (nowServing) and it claims when that reaches it
  const page2 = await newPage(browser, { user: late });
  const statusCalls = [];
  let progressReads = 0;
  page2.on('request', (r) => {
    if (r.url().endsWith('/api/queues/status')) statusCalls.push(Date.now());
    if (r.url().endsWith(`/api/queues/${concert}/progress`)) progressReads++;
  });
  await page2.goto(`${BASE}/#/concerts/${concert}/schedules/${schedule}/queue`);
  await page2.locator('#waiting-room[data-state="waiting"]').waitFor();
  const rec2 = await queueRecord(page2, late, concert);
  assert.equal(rec2.queueNumber, 5);
  const doc = await progressDoc();
  assert.equal(doc.claimWindowSeconds, CLAIM);
  await shot(page2, 'waiting', 'late-joiner-waiting');

  // --- the first page learns its drawn number (1..4) and claims its turn
  // when the document reaches it: the API users never claim, so their
  // turns are dropped after the claim window and the queue moves on
  const drawn = await until(async () => (await queueRecord(page, me, concert))?.queueNumber,
    { timeout: 15000, what: 'the drawn number' });
  assert.ok(drawn >= 1 && drawn <= 4, `drawn ${drawn}`);
  await page.waitForURL(/\/seats$/, { timeout: 30000 });
  await page.locator('.seat-map[data-loaded="true"]').waitFor();
  assert.equal((await queueRecord(page, me, concert)).status, 'ACTIVE');
  await shot(page, 'waiting', 'seat-map-after-draw');

  // --- and the late joiner follows: its shown place shrinks with the
  // document, then it claims and gets the seat map
  const places = new Set();
  await until(async () => {
    if (page2.url().endsWith('/seats')) return true;
    const shown = await page2.locator('#queue-place').textContent({ timeout: 300 }).catch(() => '');
    if (/^\d+$/.test(shown)) places.add(Number(shown));
    return false;
  }, { timeout: 40000, interval: 100, what: 'the late joiner admitted' });
  // How many different places show depends on when the dropped turns
  // fall between two reads of the document (on a loaded machine several
  // can fall between two); at least one shows, and it came from reads of
  // the document, not from status calls.
  assert.ok(places.size >= 1, `places shown: ${[...places]}`);
  assert.ok(progressReads >= 2, `${progressReads} progress reads`);
  assert.ok([...places].every((p) => p >= 1 && p <= 4), `places shown: ${[...places]}`);
  await page2.locator('.seat-map[data-loaded="true"]').waitFor();
  assert.equal((await queueRecord(page2, late, concert)).status, 'ACTIVE');
  // status calls: the arrival check and the claim, not one per poll
  assert.ok(statusCalls.length <= 3, `${statusCalls.length} status calls`);
  assert.ok(requests.some((r) => r.url.endsWith(`/api/queues/${concert}/progress`)));
  await shot(page2, 'waiting', 'seat-map-late-joiner');
  noPageErrors(page);
  noPageErrors(page2);
  await page.context().close();
  await page2.context().close();
});
