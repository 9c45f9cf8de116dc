// The signed-in user's balance (#/balance), and adding to it. Both calls go
// with the session (the cookie); a top-up carries an Idempotency-Key that
// is reused when the same attempt is retried.

import { request, postWithRetry, isTransient } from '../api.js';
import { attemptKey, finishAttempt } from '../store.js';
import {
  h, readAmount, pageHeading, notice, errorNotice, say, money, link, button, spinner,
} from '../ui.js';

export async function render(root, ctx) {
  const user = ctx.user;
  ctx.setTitle('Your balance');
  root.append(h('p', { class: 'back' }, link('#/', '← All concerts')), pageHeading('Your balance'));
  ctx.focusHeading();
  if (!user) {
    const box = notice('info', 'Please sign in to see your balance.',
      h('p', {}, button('Sign in', () => ctx.askForUser(), 'btn', { id: 'signin-needed' })));
    box.id = 'balance-signin';
    root.append(box);
    return;
  }

  const balanceEl = h('strong', { id: 'balance' }, '…');
  const amountInput = h('input', {
    id: 'charge-amount', name: 'amount', type: 'number', min: '1', step: '1', inputmode: 'numeric',
    required: true,
  });
  const chargeBtn = h('button', { type: 'submit', class: 'btn', id: 'charge-submit' }, 'Add to balance');
  const messages = h('div', { class: 'messages', id: 'balance-messages' });
  const chargeForm = h('form', { class: 'charge-form', id: 'charge-form', novalidate: true },
    h('label', { for: 'charge-amount' }, 'Amount to add (credits)'),
    h('div', { class: 'row' }, amountInput, chargeBtn));
  const section = h('section', { class: 'pay', id: 'balance-box', 'aria-labelledby': 'page-title' },
    h('p', { class: 'balance-line' }, 'Your balance: ', balanceEl), chargeForm, messages);
  root.append(section);
  say(messages, spinner('Loading your balance…'));

  const bal = await request('GET', `/api/users/${user}/balance`, { signal: ctx.signal });
  if (!ctx.alive()) return;
  if (bal.ok) {
    balanceEl.textContent = money(bal.data.balance);
    say(messages, null);
  } else if (bal.status === 401) {
    say(messages, notice('warning', 'Your session has ended. Please sign in again.'));
    ctx.sessionLost();
    return;
  } else {
    say(messages, errorNotice(bal));
  }

  chargeForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const amount = readAmount(amountInput, messages);
    if (amount === null) return;
    const key = attemptKey('charge', user, String(amount));
    chargeBtn.disabled = true;
    const res = await postWithRetry(`/api/users/${user}/balance/charge`, {
      body: { amount }, idempotencyKey: key, signal: ctx.signal,
    });
    if (!ctx.alive()) return;
    chargeBtn.disabled = false;
    if (res.ok) {
      finishAttempt('charge', user);
      balanceEl.textContent = money(res.data.balance);
      amountInput.value = '';
      const box = notice('success', `Added ${money(amount)}. Your balance is now ${money(res.data.balance)}.`);
      box.id = 'charge-done';
      say(messages, box);
      return;
    }
    if (!isTransient(res)) finishAttempt('charge', user);
    say(messages, errorNotice(res));
    if (res.status === 401) ctx.sessionLost();
  });
}
