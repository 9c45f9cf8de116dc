// The checkout of several held seats of one date: the seats, their total,
// the balance (with a top-up when it is short) and one payment of all of
// them (reservationIds: all or none). Paying needs the ACTIVE queue pass of
// the turn; the payment carries an Idempotency-Key that is reused when the
// same attempt is retried. After it, the tickets are under "My tickets".

import { request, postWithRetry, isTransient, serverNow } from '../api.js';
import { topUpForm } from '../topup.js';
import {
  queueRecord, clearQueueRecord, holdsFor, clearHold, attemptKey, finishAttempt,
} from '../store.js';
import { concertInfo, scheduleInfo } from '../catalog.js';
import {
  h, pageHeading, steps, notice, errorNotice, say, money, countdown, link, button,
  dateTime,
} from '../ui.js';

export async function render(root, ctx) {
  const { concertId, scheduleId } = ctx.params;
  const user = ctx.user;
  const seatsRoute = `#/concerts/${concertId}/schedules/${scheduleId}/seats`;
  const head = pageHeading('Pay for your seats');
  root.append(h('p', { class: 'back' }, link(seatsRoute, '← Seat map')), head, steps(4));
  ctx.setTitle('Pay for your seats');
  ctx.focusHeading();
  if (!user) {
    root.append(notice('info', 'Please sign in to pay for your seats.',
      h('p', {}, button('Sign in', () => ctx.askForUser(), 'btn', { id: 'signin-needed' }))));
    return;
  }
  Promise.all([concertInfo(concertId), scheduleInfo(concertId, scheduleId)]).then(([c, s]) => {
    if (ctx.alive()) head.append(h('p', { class: 'page-sub' }, c.title, s ? ` · ${dateTime(s.startsAt)}` : ''));
  });
  const rec = queueRecord(user, concertId);
  const token = rec ? rec.token : null;
  const holds = holdsFor(user, scheduleId, serverNow());
  const messages = h('div', { class: 'messages', id: 'checkout-messages' });
  if (!holds.length) {
    root.append(notice('info', 'You hold no seats of this date.',
      h('p', {}, link(seatsRoute, 'Choose seats', 'btn'))));
    return;
  }
  const total = holds.reduce((t, x) => t + x.price, 0);
  const ids = holds.map((x) => x.id);
  const balanceEl = h('strong', { id: 'balance' }, '…');
  let balance = null;
  const { form: chargeForm, amountInput } = topUpForm(ctx, user, messages, (b) => {
    balance = b;
    update();
  }, true);
  const payBtn = h('button', { type: 'button', class: 'btn btn-primary', id: 'pay-submit', disabled: true },
    `Pay ${money(total)} for ${holds.length} seats`);
  root.append(h('div', { class: 'two-col' },
    h('section', { class: 'summary', id: 'checkout-summary', 'aria-labelledby': 'summary-title' },
      h('h2', { id: 'summary-title' }, 'Your seats'),
      h('ul', { class: 'hold-list', id: 'checkout-seats' }, holds.map((x) => h('li', { 'data-seat': String(x.seatNumber) },
        `Seat ${x.seatNumber} · ${money(x.price)} · `,
        h('span', { class: 'mini-timer', 'data-expires': x.expiresAt }, countdown(Date.parse(x.expiresAt) - serverNow())),
        ' left'))),
      h('p', { class: 'balance-line' }, 'Total: ', h('strong', { id: 'checkout-total' }, money(total)))),
    h('section', { class: 'pay', 'aria-labelledby': 'pay-title' },
      h('h2', { id: 'pay-title' }, 'Payment'),
      h('p', { class: 'balance-line' }, 'Your balance: ', balanceEl),
      chargeForm, messages, h('div', { class: 'actions' }, payBtn))));

  let busy = false;
  function update() {
    if (balance !== null) balanceEl.textContent = money(balance);
    const short = balance !== null ? total - balance : 0;
    chargeForm.hidden = !(short > 0);
    if (short > 0 && !amountInput.value) amountInput.value = String(short);
    payBtn.disabled = busy || !token || balance === null || short > 0;
  }
  const timer = setInterval(() => {
    if (!ctx.alive()) return;
    for (const el of root.querySelectorAll('.mini-timer')) {
      el.textContent = countdown(Date.parse(el.dataset.expires) - serverNow());
    }
  }, 1000);
  ctx.onCleanup(() => clearInterval(timer));
  if (!token) {
    say(messages, notice('warning', 'To pay, join the queue for this concert again; your holds stay until their time runs out.',
      h('p', {}, link(`#/concerts/${concertId}/schedules/${scheduleId}/queue`, 'Join the queue', 'btn'))));
  }

  const bal = await request('GET', `/api/users/${user}/balance`, { signal: ctx.signal });
  if (!ctx.alive()) return;
  if (bal.ok) balance = Number(bal.data.balance);
  else if (bal.status === 401) ctx.sessionLost();
  else say(messages, errorNotice(bal));
  update();

  payBtn.addEventListener('click', async () => {
    if (busy) return;
    busy = true;
    update();
    say(messages, notice('info', 'Paying…'));
    const subject = 'list:' + ids.join(',');
    const key = attemptKey('payment', subject, subject);
    const res = await postWithRetry('/api/payments', {
      body: { reservationIds: ids }, token, idempotencyKey: key, signal: ctx.signal,
    });
    if (!ctx.alive()) return;
    busy = false;
    if (!isTransient(res)) finishAttempt('payment', subject);
    if (res.ok) {
      for (const id of ids) clearHold(id);
      // Paying the last live hold ends the turn: the queue pass is revoked.
      clearQueueRecord(user, concertId);
      ctx.navigate('#/tickets');
      return;
    }
    update();
    say(messages, errorNotice(res, h('p', {}, link(seatsRoute, 'Back to the seat map'))));
  });
}
