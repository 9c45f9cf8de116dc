// The confirmation after a payment.

import { payment } from '../store.js';
import {
  h, pageHeading, steps, notice, money, dateTime, link,
} from '../ui.js';

export async function render(root, ctx) {
  const { paymentId } = ctx.params;
  const p = payment(paymentId);
  ctx.setTitle('Booking confirmed');
  if (!p) {
    root.append(pageHeading('Booking'), steps(5),
      notice('info', 'This booking is not stored in this browser. If you paid, your seat is yours: the payment is kept on our side.',
        h('p', {}, link('#/', 'See all concerts', 'btn'))));
    ctx.focusHeading();
    return;
  }
  root.append(pageHeading('You are going to the show!', 'Your payment went through and the seat is yours.'), steps(5));
  root.append(h('section', { class: 'summary confirmation', id: 'confirmation', 'aria-labelledby': 'ticket-title' },
    h('h2', { id: 'ticket-title' }, p.concertTitle || `Concert ${p.concertId}`),
    h('dl', { class: 'facts' },
      p.venue ? h('div', {}, h('dt', {}, 'Venue'), h('dd', {}, p.venue)) : null,
      p.startsAt ? h('div', {}, h('dt', {}, 'Date'), h('dd', { id: 'done-date' }, dateTime(p.startsAt))) : null,
      h('div', {}, h('dt', {}, 'Seat'), h('dd', { id: 'done-seat' }, `Seat ${p.seatNumber}`)),
      h('div', {}, h('dt', {}, 'Paid'), h('dd', { id: 'done-amount' }, money(p.amount))),
      h('div', {}, h('dt', {}, 'Balance left'), h('dd', { id: 'done-balance' }, money(p.balance))),
      p.ticketCode ? h('div', { class: 'wide' }, h('dt', {}, 'Ticket code'), h('dd', { class: 'mono', id: 'done-code' }, p.ticketCode)) : null,
      h('div', { class: 'wide' }, h('dt', {}, 'Payment reference'), h('dd', { class: 'mono', id: 'done-ref' }, p.id))),
    h('p', { class: 'hint' }, 'Show the ticket code at the door; print it from My tickets. Your place in the queue has ended; to book another seat, join the queue again.')),
  h('p', { class: 'actions' },
    link(`#/concerts/${p.concertId}`, 'Book another seat', 'btn'),
    link('#/tickets', 'My tickets', 'btn btn-ghost'),
    link('#/', 'All concerts', 'btn btn-ghost')));
  ctx.focusHeading();
}
