// The signed-in user's tickets (#/tickets): each with its door code, a
// refund while refunds are open, and the balance the refunds go back to;
// and one ticket as a page to print (#/tickets/T), with its code as text and
// as a QR code drawn by the qrcode-generator library (Debian's
// node-qrcode-generator, served at /javascript/). Everything goes with the
// session (the cookie).

import { request } from '../api.js';
import {
  h, pageHeading, notice, errorNotice, say, money, dateTime, link, button, spinner,
} from '../ui.js';

const QR_LIB = '/javascript/qrcode-generator/qrcode.js';
const SVG = 'http://www.w3.org/2000/svg';
let qrLoading = null;

/** The library's global qrcode(), loaded once (a classic script). */
function qrLibrary() {
  if (typeof window.qrcode === 'function') return Promise.resolve(window.qrcode);
  if (!qrLoading) {
    qrLoading = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = QR_LIB;
      s.onload = () => (typeof window.qrcode === 'function' ? resolve(window.qrcode) : reject(new Error('no qrcode()')));
      s.onerror = () => { qrLoading = null; reject(new Error('could not load ' + QR_LIB)); };
      document.head.append(s);
    });
  }
  return qrLoading;
}

/** An SVG of the QR code of text: one square per dark module, a quiet zone of 4. */
async function qrSvg(text) {
  const qrcode = await qrLibrary();
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const size = n + 8;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  svg.setAttribute('class', 'qr');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `QR code of ${text}`);
  svg.setAttribute('shape-rendering', 'crispEdges');
  const bg = document.createElementNS(SVG, 'rect');
  bg.setAttribute('width', String(size));
  bg.setAttribute('height', String(size));
  bg.setAttribute('fill', '#fff');
  svg.append(bg);
  let d = '';
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) if (qr.isDark(r, c)) d += `M${c + 4} ${r + 4}h1v1h-1z`;
  }
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', '#000');
  svg.append(path);
  return svg;
}

/** "ABCDE-FGHIJ-…": the code in groups of five, easier to read out. */
function grouped(code) {
  return code.replace(/(.{5})(?=.)/g, '$1-');
}

function place(t) {
  const parts = [];
  if (t.section) parts.push(t.section);
  if (t.row) parts.push(`Row ${t.row}`);
  parts.push(t.label ? `Seat ${t.label}` : `Seat ${t.seatNumber}`);
  return parts.join(' · ');
}

export async function render(root, ctx) {
  const user = ctx.user;
  const { ticketId } = ctx.params;
  ctx.setTitle(ticketId ? 'Your ticket' : 'My tickets');
  root.append(h('p', { class: 'back no-print' },
    ticketId ? link('#/tickets', '← My tickets') : link('#/', '← All concerts')),
  pageHeading(ticketId ? 'Your ticket' : 'My tickets'));
  ctx.focusHeading();
  if (!user) {
    const box = notice('info', 'Please sign in to see your tickets.',
      h('p', {}, button('Sign in', () => ctx.askForUser(), 'btn', { id: 'signin-needed' })));
    box.id = 'tickets-signin';
    root.append(box);
    return;
  }
  const messages = h('div', { class: 'messages', id: 'tickets-messages' });
  root.append(messages);
  say(messages, spinner('Loading your tickets…'));
  const res = await request('GET', '/api/me/tickets', { signal: ctx.signal });
  if (!ctx.alive()) return;
  if (!res.ok) {
    say(messages, errorNotice(res));
    if (res.status === 401) ctx.sessionLost();
    return;
  }
  say(messages, null);
  const tickets = Array.isArray(res.data.tickets) ? res.data.tickets : [];
  if (ticketId) {
    printable(root, ctx, tickets.find((t) => t.id === ticketId), messages);
    return;
  }
  list(root, ctx, tickets, messages, user);
}

/** One ticket, print-friendly: what, when, where, and the code twice. */
function printable(root, ctx, t, messages) {
  if (!t) {
    say(messages, notice('error', 'We could not find this ticket among yours.',
      h('p', {}, link('#/tickets', 'My tickets'))));
    return;
  }
  const qrBox = h('div', { class: 'qr-box', id: 'ticket-qr' }, spinner('Drawing the QR code…'));
  root.append(h('section', { class: `ticket-print ticket-${t.state.toLowerCase()}`, id: 'ticket-print', 'aria-labelledby': 'ticket-title' },
    h('h2', { id: 'ticket-title' }, t.concertTitle),
    h('dl', { class: 'facts' },
      h('div', {}, h('dt', {}, 'Date'), h('dd', {}, dateTime(t.startsAt))),
      t.venue ? h('div', {}, h('dt', {}, 'Venue'), h('dd', {}, t.venue)) : null,
      h('div', {}, h('dt', {}, 'Seat'), h('dd', { id: 'ticket-seat' }, place(t))),
      h('div', {}, h('dt', {}, 'Price'), h('dd', {}, money(t.price))),
      t.state !== 'VALID' ? h('div', {}, h('dt', {}, 'State'), h('dd', { id: 'ticket-state' }, 'Refunded: not valid')) : null),
    qrBox,
    h('p', { class: 'ticket-code mono', id: 'ticket-code', 'data-code': t.code }, grouped(t.code)),
    h('p', { class: 'hint' }, 'Show this code at the door, on paper or on your phone.')),
  h('p', { class: 'actions no-print' }, button('Print', () => window.print(), 'btn', { id: 'print' })));
  qrSvg(t.code).then((svg) => {
    if (ctx.alive()) qrBox.replaceChildren(svg);
  }).catch(() => {
    if (ctx.alive()) qrBox.replaceChildren(h('p', { class: 'hint' }, 'The QR code could not be drawn; the code above is enough.'));
  });
}

function list(root, ctx, tickets, messages, user) {
  const balanceEl = h('strong', { id: 'balance' }, '…');
  root.append(h('p', { class: 'balance-line' }, 'Your balance: ', balanceEl, ' ',
    link('#/balance', 'Add money', 'btn btn-small btn-ghost')));
  async function refreshBalance() {
    const b = await request('GET', `/api/users/${user}/balance`, { signal: ctx.signal });
    if (ctx.alive() && b.ok) balanceEl.textContent = money(b.data.balance);
  }
  refreshBalance();
  if (!tickets.length) {
    root.append(notice('info', 'You have no tickets yet.', h('p', {}, link('#/', 'See all concerts', 'btn'))));
    return;
  }
  const ul = h('ul', { class: 'ticket-list', id: 'ticket-list' });
  root.append(ul);

  function item(t) {
    const stateEl = h('span', { class: `ticket-state state-${t.state.toLowerCase()}` },
      t.state === 'VALID' ? 'Valid' : 'Refunded');
    const li = h('li', { class: 'ticket', 'data-ticket': t.id, 'data-state': t.state, 'data-seat': String(t.seatNumber) },
      h('h2', { class: 'ticket-title' }, t.concertTitle),
      h('p', {}, dateTime(t.startsAt), t.venue ? ` · ${t.venue}` : ''),
      h('p', {}, place(t), ' · ', money(t.price), ' · ', stateEl),
      h('p', {}, 'Code: ', h('span', { class: 'ticket-code mono', 'data-code': t.code }, grouped(t.code))));
    const actions = h('p', { class: 'actions' }, link(`#/tickets/${t.id}`, 'Print', 'btn btn-small btn-ghost'));
    if (t.state === 'VALID') {
      const refundBtn = button('Refund', async () => {
        // eslint-disable-next-line no-alert
        if (!window.confirm(`Refund ${place(t)} of ${t.concertTitle} for ${money(t.price)}? The seat goes back on sale.`)) return;
        refundBtn.disabled = true;
        const r = await request('POST', `/api/tickets/${t.id}/refund`, { signal: ctx.signal });
        if (!ctx.alive()) return;
        if (r.ok) {
          li.replaceWith(item(r.data));
          const box = notice('success', `Refunded ${money(t.price)} to your balance.`);
          box.id = 'refund-done';
          say(messages, box);
          refreshBalance();
          return;
        }
        refundBtn.disabled = false;
        say(messages, errorNotice(r));
        if (r.status === 401) ctx.sessionLost();
      }, 'btn btn-small', { 'data-refund': t.id });
      actions.append(' ', refundBtn);
    }
    li.append(actions);
    return li;
  }
  for (const t of tickets) ul.append(item(t));
}
