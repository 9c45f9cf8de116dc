// A held seat: its countdown, the balance (with a top-up when it is short)
// and the payment. The reservation, the balance and the top-up go with the
// session (the cookie); paying needs the ACTIVE queue pass of the turn. Charge and payment carry an Idempotency-Key that is new
// for each attempt and reused when the same attempt is retried, so a retry
// after a lost answer never moves money twice.

import {
  request, postWithRetry, isTransient, serverNow,
} from '../api.js';
import {
  queueRecord, clearQueueRecord, hold as storedHold, saveHold, clearHold, savePayment,
  attemptKey, finishAttempt,
} from '../store.js';
import { concertInfo, scheduleInfo } from '../catalog.js';
import { messageFor } from '../errors.js';
import {
  h, readAmount, pageHeading, steps, notice, errorNotice, say, money, countdown, countdownWords,
  link, button, dateTime, spinner,
} from '../ui.js';

export async function render(root, ctx) {
  const { concertId, scheduleId, reservationId } = ctx.params;
  const user = ctx.user;
  const seatsRoute = `#/concerts/${concertId}/schedules/${scheduleId}/seats`;
  const head = pageHeading('Your seat is on hold');
  root.append(h('p', { class: 'back' }, link(seatsRoute, '← Seat map')), head, steps(4));
  ctx.setTitle('Pay for your seat');
  ctx.focusHeading();

  if (!user) {
    root.append(notice('info', 'Please sign in to see and pay for your seat.',
      h('p', {}, button('Sign in', () => ctx.askForUser(), 'btn', { id: 'signin-needed' }))));
    return;
  }
  // The queue pass pays; without one the hold can still be seen and released.
  const rec = queueRecord(user, concertId);
  const token = rec ? rec.token : null;
  let r = storedHold(reservationId);
  if (r && r.userId !== user) r = null;

  // -------------------------------------------------------------- layout
  const concertEl = h('dd', { id: 'hold-concert' }, `Concert ${concertId}`);
  const dateEl = h('dd', { id: 'hold-date' }, '…');
  const seatEl = h('dd', { id: 'hold-seat' }, '…');
  const priceEl = h('dd', { id: 'hold-price' }, '…');
  const timerEl = h('span', { class: 'timer-value', id: 'hold-timer', role: 'timer', 'aria-live': 'off' }, '–:––');
  const timerLive = h('span', { class: 'sr-only', 'aria-live': 'assertive' });
  const timerBox = h('p', { class: 'hold-timer' },
    h('span', { class: 'timer-label' }, 'Time left to pay'), timerEl, timerLive);
  const balanceEl = h('strong', { id: 'balance' }, '…');
  const shortEl = h('p', { class: 'shortfall', id: 'shortfall', hidden: true });
  const amountInput = h('input', {
    id: 'charge-amount', name: 'amount', type: 'number', min: '1', step: '1', inputmode: 'numeric',
    required: true, 'aria-describedby': 'charge-hint',
  });
  const chargeBtn = h('button', { type: 'submit', class: 'btn', id: 'charge-submit' }, 'Add to balance');
  const chargeForm = h('form', { class: 'charge-form', id: 'charge-form', hidden: true, novalidate: true },
    h('label', { for: 'charge-amount' }, 'Amount to add (credits)'),
    h('div', { class: 'row' }, amountInput, chargeBtn),
    h('p', { class: 'field-hint', id: 'charge-hint' }, 'We filled in what is missing; you may add more.'));
  const messages = h('div', { class: 'messages', id: 'pay-messages' });
  const payBtn = h('button', { type: 'button', class: 'btn btn-primary', id: 'pay-submit', disabled: true }, 'Pay');
  const releaseBtn = h('button', { type: 'button', class: 'btn btn-ghost', id: 'release' }, 'Release this seat');

  const summary = h('section', { class: 'summary', id: 'hold-summary', 'aria-labelledby': 'summary-title' },
    h('h2', { id: 'summary-title' }, 'Your ticket'),
    h('dl', { class: 'facts' },
      h('div', {}, h('dt', {}, 'Concert'), concertEl),
      h('div', {}, h('dt', {}, 'Date'), dateEl),
      h('div', {}, h('dt', {}, 'Seat'), seatEl),
      h('div', {}, h('dt', {}, 'Price'), priceEl)),
    timerBox);
  const paySection = h('section', { class: 'pay', 'aria-labelledby': 'pay-title' },
    h('h2', { id: 'pay-title' }, 'Payment'),
    h('p', { class: 'balance-line' }, 'Your balance: ', balanceEl),
    shortEl, chargeForm, messages,
    h('div', { class: 'actions' }, payBtn, releaseBtn));
  root.append(h('div', { class: 'two-col' }, summary, paySection));

  Promise.all([concertInfo(concertId), scheduleInfo(concertId, scheduleId)]).then(([c, s]) => {
    if (!ctx.alive()) return;
    concertEl.textContent = c.title;
    dateEl.textContent = s ? dateTime(s.startsAt) : '';
  });

  let balance = null;
  let state = 'loading';     // loading | held | expired | paid | released | busy
  let amountEdited = false;
  amountInput.addEventListener('input', () => { amountEdited = true; });

  function showHold() {
    if (!r) return;
    seatEl.textContent = `Seat ${r.seatNumber}`;
    priceEl.textContent = money(r.price);
    payBtn.textContent = `Pay ${money(r.price)}`;
    tick();
  }

  function updateMoney() {
    if (balance !== null) balanceEl.textContent = money(balance);
    const short = r && balance !== null ? r.price - balance : 0;
    if (state === 'held' && short > 0) {
      shortEl.hidden = false;
      shortEl.textContent = `Your balance is ${money(short)} short of the price. Add money to your balance, then pay.`;
      chargeForm.hidden = false;
      if (!amountEdited) amountInput.value = String(short);
    } else {
      shortEl.hidden = true;
      chargeForm.hidden = true;
    }
    payBtn.disabled = state !== 'held' || balance === null || short > 0 || !token;
    releaseBtn.disabled = state !== 'held';
  }

  const announced = new Set();
  function tick() {
    if (!r || state === 'paid') return;
    const left = Date.parse(r.expiresAt) - serverNow();
    timerEl.textContent = countdown(left);
    timerBox.classList.toggle('urgent', left <= 60000);
    for (const mark of [60000, 10000]) {
      if (left <= mark && left > 0 && !announced.has(mark)) {
        announced.add(mark);
        timerLive.textContent = `${countdownWords(left)} left to pay.`;
      }
    }
    if (left <= 0 && (state === 'held' || state === 'loading')) expired();
  }
  const timer = setInterval(() => { if (ctx.alive()) tick(); }, 1000);
  ctx.onCleanup(() => clearInterval(timer));

  function expired() {
    state = 'expired';
    clearHold(reservationId);
    timerEl.textContent = '0:00';
    timerBox.classList.add('urgent');
    updateMoney();
    const box = notice('error', messageFor('HOLD_EXPIRED'), h('p', {}, link(seatsRoute, 'Choose a seat again', 'btn')));
    box.dataset.code = 'HOLD_EXPIRED';
    say(messages, box);
  }

  // ---------------------------------------------------------- loading
  if (r) {
    state = 'held';
    showHold();
  } else {
    say(messages, spinner('Loading your reservation…'));
  }
  updateMoney();

  const [resv, bal] = await Promise.all([
    request('GET', `/api/reservations/${reservationId}`, { signal: ctx.signal }),
    request('GET', `/api/users/${user}/balance`, { signal: ctx.signal }),
  ]);
  if (!ctx.alive()) return;
  if (resv.status === 401 || bal.status === 401) {
    // The session has ended (signed out elsewhere, expired).
    ctx.sessionLost();
  }
  if (!r && !resv.ok) say(messages, null);
  if (resv.ok) {
    r = { ...resv.data, userId: user, concertId };
    if (r.status === 'HELD' && Date.parse(r.expiresAt) > serverNow()) {
      state = 'held';
      saveHold(reservationId, r);
      say(messages, null);
    } else if (r.status === 'PAID') {
      state = 'paid';
      clearHold(reservationId);
      say(messages, notice('info', messageFor('ALREADY_PAID'), h('p', {}, link('#/', 'See all concerts'))));
    } else if (r.status === 'RELEASED') {
      state = 'released';
      clearHold(reservationId);
      say(messages, notice('info', 'You released this seat.', h('p', {}, link(seatsRoute, 'Choose a seat', 'btn'))));
    } else {
      showHold();
      expired();
    }
    showHold();
  } else if (!isTransient(resv)) {
    state = 'error';
    clearHold(reservationId);
    say(messages, errorNotice(resv, h('p', {}, link(seatsRoute, 'Back to the seat map'))));
  } else if (!r) {
    state = 'error';
    say(messages, errorNotice(resv, h('p', {}, button('Try again', () => ctx.navigate(location.hash, { replace: true })))));
  }
  if (state === 'held' && !token) {
    say(messages, notice('warning', 'To pay, join the queue for this concert again; your hold stays until its time runs out.',
      h('p', {}, link(`#/concerts/${concertId}/schedules/${scheduleId}/queue`, 'Join the queue', 'btn'))));
  }
  if (bal.ok) {
    balance = Number(bal.data.balance);
  } else if (state === 'held') {
    say(messages, errorNotice(bal, h('p', {}, 'We could not read your balance; you can still try to pay.')));
  }
  updateMoney();
  // Balance unknown: let the payment itself tell whether it is enough.
  if (!bal.ok && state === 'held' && token) payBtn.disabled = false;

  // ------------------------------------------------------------- charge
  chargeForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (state !== 'held') return;
    const amount = readAmount(amountInput, messages);
    if (amount === null) return;
    const key = attemptKey('charge', user, String(amount));
    chargeBtn.disabled = true;
    chargeBtn.textContent = 'Adding…';
    const res = await postWithRetry(`/api/users/${user}/balance/charge`, {
      body: { amount }, idempotencyKey: key, signal: ctx.signal,
    });
    if (!ctx.alive()) return;
    chargeBtn.disabled = false;
    chargeBtn.textContent = 'Add to balance';
    if (res.ok) {
      finishAttempt('charge', user);
      balance = Number(res.data.balance);
      amountEdited = false;
      updateMoney();
      const box = notice('success', `Added ${money(amount)}. Your balance is now ${money(balance)}.`);
      box.id = 'charge-done';
      say(messages, box);
      if (!payBtn.disabled) payBtn.focus();
      return;
    }
    if (!isTransient(res)) finishAttempt('charge', user);
    say(messages, errorNotice(res, isTransient(res)
      ? h('p', {}, 'Nothing is charged twice: press "Add to balance" again to retry safely.') : null));
  });

  // ---------------------------------------------------------------- pay
  payBtn.addEventListener('click', async () => {
    if (state !== 'held') return;
    state = 'busy';
    payBtn.disabled = true;
    releaseBtn.disabled = true;
    payBtn.textContent = 'Paying…';
    say(messages, notice('info', 'Paying…'));
    const key = attemptKey('payment', reservationId, reservationId);
    const res = await postWithRetry('/api/payments', {
      body: { reservationId }, token, idempotencyKey: key, signal: ctx.signal,
    });
    if (!ctx.alive()) return;
    payBtn.textContent = `Pay ${money(r.price)}`;
    if (res.ok) {
      finishAttempt('payment', reservationId);
      state = 'paid';
      const [c, s] = await Promise.all([concertInfo(concertId), scheduleInfo(concertId, scheduleId)]);
      const p = res.data;
      savePayment(p.id, {
        ...p, userId: user, concertId, concertTitle: c.title, venue: c.venue || '',
        scheduleId: p.scheduleId ?? scheduleId, startsAt: s ? s.startsAt : null,
        seatNumber: p.seatNumber ?? r.seatNumber, paidAt: new Date().toISOString(),
      });
      clearHold(reservationId);
      // Paying ends the turn: the queue pass is revoked.
      clearQueueRecord(user, concertId);
      ctx.navigate(`#/payments/${p.id}`);
      return;
    }
    const code = res.error.code;
    state = 'held';
    if (!isTransient(res)) finishAttempt('payment', reservationId);
    if (code === 'HOLD_EXPIRED') {
      expired();
      return;
    }
    if (code === 'ALREADY_PAID') {
      state = 'paid';
      updateMoney();
      say(messages, errorNotice(res, h('p', {}, link('#/', 'See all concerts'))));
      return;
    }
    if (code === 'INSUFFICIENT_BALANCE') {
      const b = await request('GET', `/api/users/${user}/balance`, { signal: ctx.signal });
      if (!ctx.alive()) return;
      if (b.ok) balance = Number(b.data.balance);
      updateMoney();
      say(messages, errorNotice(res));
      if (!chargeForm.hidden) amountInput.focus();
      return;
    }
    updateMoney();
    if (isTransient(res)) {
      payBtn.disabled = false;
      say(messages, errorNotice(res, h('p', {},
        'If the payment went through, paying again will not charge you twice: press Pay again to check safely.')));
      return;
    }
    say(messages, errorNotice(res, h('p', {}, link(seatsRoute, 'Back to the seat map'))));
  });

  // ------------------------------------------------------------ release
  releaseBtn.addEventListener('click', async () => {
    if (state !== 'held') return;
    state = 'busy';
    payBtn.disabled = true;
    releaseBtn.disabled = true;
    const res = await request('DELETE', `/api/reservations/${reservationId}`, { signal: ctx.signal });
    if (!ctx.alive()) return;
    if (res.ok || res.error.code === 'HOLD_EXPIRED') {
      state = 'released';
      clearHold(reservationId);
      ctx.navigate(seatsRoute);
      return;
    }
    state = 'held';
    updateMoney();
    say(messages, errorNotice(res));
  });

}
