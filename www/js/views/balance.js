// The signed-in user's balance (#/balance), and adding to it (../topup.js).
// Both calls go with the session (the cookie).

import { request } from '../api.js';
import { topUpForm } from '../topup.js';
import {
  h, pageHeading, notice, errorNotice, say, money, link, button, spinner,
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
  const messages = h('div', { class: 'messages', id: 'balance-messages' });
  const { form: chargeForm } = topUpForm(ctx, user, messages, (balance) => {
    balanceEl.textContent = money(balance);
  });
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
}
