// The top-up form (adding credits to one's balance), used by the balance
// page and by the checkout when the balance is short. The charge goes with
// the session (the cookie) and carries an Idempotency-Key that is reused
// when the same attempt is retried, so a retry after a lost answer adds
// the amount once.

import { postWithRetry, isTransient } from './api.js';
import { attemptKey, finishAttempt } from './store.js';
import { h, readAmount, notice, errorNotice, say, money } from './ui.js';

// topUpForm(ctx, user, messages, onBalance, hidden): the form, not yet in
// the page. Answers and errors are written into `messages`; after a
// top-up, onBalance(newBalance) is called. Returns { form, amountInput }:
// the caller may prefill the amount (the checkout's shortfall) or hide
// the form.
export function topUpForm(ctx, user, messages, onBalance, hidden) {
  const amountInput = h('input', {
    id: 'charge-amount', name: 'amount', type: 'number', min: '1', step: '1', inputmode: 'numeric',
    required: true,
  });
  const chargeBtn = h('button', { type: 'submit', class: 'btn', id: 'charge-submit' }, 'Add to balance');
  const form = h('form', { class: 'charge-form', id: 'charge-form', hidden: !!hidden, novalidate: true },
    h('label', { for: 'charge-amount' }, 'Amount to add (credits)'),
    h('div', { class: 'row' }, amountInput, chargeBtn));

  form.addEventListener('submit', async (ev) => {
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
    if (!isTransient(res)) finishAttempt('charge', user);
    if (!res.ok) {
      say(messages, errorNotice(res));
      if (res.status === 401) ctx.sessionLost();
      return;
    }
    const balance = Number(res.data.balance);
    amountInput.value = '';
    const box = notice('success', `Added ${money(amount)}. Your balance is now ${money(balance)}.`);
    box.id = 'charge-done';
    say(messages, box);
    onBalance(balance);
  });
  return { form, amountInput };
}
