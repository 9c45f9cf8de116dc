// The dates (schedules) of one concert.

import { loadSchedules, concertInfo } from '../catalog.js';
import { isTransient, sleep } from '../api.js';
import {
  h, pageHeading, spinner, errorNotice, dateTime, steps, number, link,
} from '../ui.js';

export async function render(root, ctx) {
  const { concertId } = ctx.params;
  const head = pageHeading('Choose a date');
  root.append(h('p', { class: 'back' }, link('#/', '← All concerts')), head, steps(1));
  const body = h('div', { class: 'view-body' }, spinner('Loading dates…'));
  root.append(body);
  ctx.setTitle('Choose a date');
  ctx.focusHeading();

  concertInfo(concertId).then((c) => {
    if (!ctx.alive()) return;
    head.querySelector('h1').textContent = `${c.title}: choose a date`;
    if (c.venue) head.append(h('p', { class: 'page-sub' }, c.venue));
    ctx.setTitle(c.title);
  });

  let delay = 1;
  for (;;) {
    const res = await loadSchedules(concertId, true);
    if (!ctx.alive()) return;
    body.replaceChildren();
    if (res.ok) {
      const list = Array.isArray(res.data.schedules) ? res.data.schedules : [];
      if (!list.length) {
        body.append(h('p', { class: 'empty' }, 'There are no dates for this concert yet.'));
        return;
      }
      body.append(h('ul', { class: 'cards', id: 'schedule-list' }, list.map((s) => {
        const left = Number(s.availableSeats) || 0;
        const when = dateTime(s.startsAt);
        return h('li', { class: 'card' },
          h('h2', { class: 'card-title' }, when),
          h('p', { class: 'card-meta' }, left > 0
            ? `${number(left)} of ${number(s.totalSeats)} seats left`
            : 'Sold out'),
          left > 0
            ? h('a', {
              class: 'btn', href: `#/concerts/${concertId}/schedules/${s.id}/queue`,
              'data-schedule': s.id, 'aria-label': `Join the queue for ${when}`,
            }, 'Join the queue')
            : h('span', { class: 'btn btn-disabled', 'aria-disabled': 'true' }, 'Sold out'));
      })));
      body.append(h('p', { class: 'hint' },
        'Seats are sold through a fair queue: first come, first served. You will see your place and an estimated wait.'));
      return;
    }
    body.append(errorNotice(res, isTransient(res)
      ? h('p', {}, `Trying again in ${Math.max(res.retryAfter || 0, delay)} s…`) : null));
    if (!isTransient(res)) {
      body.append(h('p', {}, link('#/', 'Back to all concerts')));
      return;
    }
    await sleep(Math.max(res.retryAfter || 0, delay) * 1000, ctx.signal);
    if (!ctx.alive()) return;
    delay = Math.min(delay * 2, 30);
  }
}
