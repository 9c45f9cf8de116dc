// The concerts on sale.

import { loadConcerts } from '../catalog.js';
import { isTransient, sleep } from '../api.js';
import { h, pageHeading, spinner, errorNotice, dateTime, steps, button } from '../ui.js';

export async function render(root, ctx) {
  ctx.setTitle('Concerts');
  root.append(pageHeading('Concerts on sale', 'Pick a concert, then a date. You will then join a short, fair queue.'),
    steps(0));
  const body = h('div', { class: 'view-body' }, spinner('Loading concerts…'));
  root.append(body);
  ctx.focusHeading();

  let delay = 1;
  for (;;) {
    const res = await loadConcerts(true);
    if (!ctx.alive()) return;
    body.replaceChildren();
    if (res.ok) {
      const list = Array.isArray(res.data.concerts) ? res.data.concerts : [];
      if (!list.length) {
        body.append(h('p', { class: 'empty' }, 'No concerts are on sale right now. Please come back later.'));
        return;
      }
      body.append(h('ul', { class: 'cards', id: 'concert-list' }, list.map((c) => h('li', { class: 'card' },
        h('h2', { class: 'card-title' }, c.title || `Concert ${c.id}`),
        h('p', { class: 'card-meta' },
          c.venue ? h('span', {}, c.venue) : null,
          c.firstShow ? h('span', {}, 'From ', dateTime(c.firstShow)) : null),
        h('a', {
          class: 'btn', href: `#/concerts/${c.id}`, 'data-concert': c.id,
          'aria-label': `See dates for ${c.title || 'concert ' + c.id}`,
        }, 'See dates')))));
      return;
    }
    body.append(errorNotice(res, transientHint(res, delay)));
    if (!isTransient(res)) {
      body.append(button('Try again', () => ctx.navigate('#/', { replace: true })));
      return;
    }
    await sleep(Math.max(res.retryAfter || 0, delay) * 1000, ctx.signal);
    if (!ctx.alive()) return;
    delay = Math.min(delay * 2, 30);
  }
}

function transientHint(res, delay) {
  if (!isTransient(res)) return null;
  return h('p', {}, `Trying again in ${Math.max(res.retryAfter || 0, delay)} s…`);
}
