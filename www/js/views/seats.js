// The seat map of one date: every seat, available / held / sold, refreshed
// live, drawn as the venue's plan: sections, and in each its rows, labelled
// on both ends; the legend gives each price tier's price. Choosing an
// available seat holds it and goes on to payment; with "Choose several
// seats" on, each choice holds one more seat here, and all the seats held
// are paid together at the checkout.
// Keyboard: Tab reaches the map once; left and right move along the seats,
// up and down to the same place of the row before or after, Home and End
// to the first and last seat; Enter or Space holds the seat.

import {
  request, authFailure, isTransient, serverNow,
} from '../api.js';
import {
  queueRecord, clearQueueRecord, saveHold, holdsFor,
} from '../store.js';
import { concertInfo, scheduleInfo } from '../catalog.js';
import { messageFor } from '../errors.js';
import {
  h, pageHeading, steps, notice, errorNotice, say, money, countdown, clockTime, link, button, dateTime,
} from '../ui.js';

const REFRESH_MS = 3000;

export async function render(root, ctx) {
  const { concertId, scheduleId } = ctx.params;
  const user = ctx.user;
  const queueRoute = `#/concerts/${concertId}/schedules/${scheduleId}/queue`;
  const head = pageHeading('Choose your seat');
  root.append(h('p', { class: 'back' }, link(`#/concerts/${concertId}`, '← Other dates')), head, steps(3));
  ctx.setTitle('Choose your seat');
  ctx.focusHeading();
  Promise.all([concertInfo(concertId), scheduleInfo(concertId, scheduleId)]).then(([c, s]) => {
    if (ctx.alive()) head.append(h('p', { class: 'page-sub' }, c.title, s ? ` · ${dateTime(s.startsAt)}` : ''));
  });

  if (!user) {
    root.append(notice('info', 'Please sign in to choose a seat.',
      h('p', {}, button('Sign in', () => ctx.askForUser(), 'btn', { id: 'signin-needed' }))));
    return;
  }
  const rec = queueRecord(user, concertId);
  if (!rec || rec.status !== 'ACTIVE' || (rec.activeUntil && Date.parse(rec.activeUntil) <= serverNow())) {
    // Not admitted (yet): the waiting room finds out where we stand.
    ctx.navigate(queueRoute, { replace: true });
    return;
  }
  const token = rec.token;

  // -------------------------------------------------------------- layout
  const turnEl = h('span', { id: 'turn-timer' }, countdown(Date.parse(rec.activeUntil) - serverNow()));
  const turn = h('p', { class: 'turn' }, 'Your turn ends in ', turnEl,
    '. Hold a seat before then; a held seat keeps its own countdown.');
  const holdsEl = h('div', { id: 'my-holds' });
  const multiBox = h('input', { type: 'checkbox', id: 'multi-select' });
  const multi = h('p', { class: 'multi' },
    h('label', { for: 'multi-select' }, multiBox, ' Choose several seats, then pay for them together'));
  const messages = h('div', { class: 'messages', id: 'seat-messages' });
  const legend = h('ul', { class: 'legend', id: 'seat-legend', 'aria-label': 'Legend' });
  const grid = h('div', {
    class: 'seat-grid', id: 'seat-grid', role: 'group',
    'aria-label': 'Seat map. Use the arrow keys to move between seats, Enter to hold one.',
  });
  const updated = h('p', { class: 'updated', id: 'seats-updated', 'aria-live': 'off' }, 'Loading seats…');
  const mapBox = h('section', { class: 'seat-map', 'aria-labelledby': 'seat-map-title' },
    h('h2', { id: 'seat-map-title', class: 'sr-only' }, 'Seat map'),
    h('div', { class: 'stage', 'aria-hidden': 'true' }, 'Stage'),
    grid, updated);
  root.append(turn, multi, holdsEl, messages, legend, mapBox);

  const seats = new Map();     // number -> {number, price, status, section, row, label, tier}
  const buttons = new Map();   // number -> <button>
  let tiers = [];             // [{name, price}], dearest first
  let focusNumber = null;
  let busy = false;
  let ended = false;
  let refreshNow = null;       // wakes the refresh loop

  function myHolds() {
    return holdsFor(user, scheduleId, serverNow());
  }

  // ------------------------------------------------------------ my holds
  function renderHolds() {
    const hs = myHolds();
    holdsEl.replaceChildren();
    if (!hs.length) return;
    holdsEl.append(notice('success', hs.length === 1 ? 'You are holding a seat.' : 'You are holding seats.',
      h('ul', { class: 'hold-list' }, hs.map((x) => h('li', {},
        `Seat ${x.seatNumber} · ${money(x.price)} · `,
        h('span', { class: 'mini-timer', 'data-expires': x.expiresAt }, countdown(Date.parse(x.expiresAt) - serverNow())),
        ' left ',
        h('a', {
          class: 'btn btn-small', href: `#/concerts/${concertId}/schedules/${scheduleId}/reservations/${x.id}`,
        }, `Pay for seat ${x.seatNumber}`)))),
      hs.length > 1 ? h('p', {}, h('a', {
        class: 'btn', id: 'pay-all', href: `#/concerts/${concertId}/schedules/${scheduleId}/checkout`,
      }, `Pay for all ${hs.length} seats · ${money(hs.reduce((t, x) => t + x.price, 0))}`)) : null));
  }

  // ---------------------------------------------------------------- grid
  function statusOf(seat, mine) {
    if (mine.has(seat.number) && seat.status === 'HELD') return 'MINE';
    return seat.status;
  }

  function words(status) {
    return {
      AVAILABLE: 'available', HELD: 'held by someone else', SOLD: 'sold', MINE: 'held by you',
    }[status] || String(status).toLowerCase();
  }

  // A seat's tier: its name, or its price for seats without one.
  function tierOf(seat) {
    return seat.tier || `price-${seat.price}`;
  }

  function renderLegend() {
    legend.replaceChildren(
      ...tiers.map((t, i) => h('li', { 'data-tier': t.name }, h('span', { class: `swatch seat-available tier-${i}`, 'aria-hidden': 'true' }),
        t.name.startsWith('price-') ? `Available, ${money(t.price)}` : `${t.name}: ${money(t.price)}`)),
      h('li', {}, h('span', { class: 'swatch seat-held', 'aria-hidden': 'true' }), 'Held'),
      h('li', {}, h('span', { class: 'swatch seat-sold', 'aria-hidden': 'true' }), 'Sold'),
      h('li', {}, h('span', { class: 'swatch seat-mine', 'aria-hidden': 'true' }), 'Held by you'),
    );
  }

  // Where a seat is, in words: "Stalls, row B, B-4" (empty without a plan).
  function place(s) {
    return [s.section, s.row ? `row ${s.row}` : '', s.label].filter(Boolean).join(', ');
  }

  // Sections in plan order, each with its rows of seat numbers; seats
  // without a plan are rows of ten.
  let rows = [];               // [[number, ...], ...] in map order
  let layoutKey = '';
  function layout(list) {
    const key = list.map((s) => `${s.number}:${s.section}:${s.row}`).join(',');
    if (key === layoutKey) return;
    layoutKey = key;
    rows = [];
    const sections = [];
    for (const s of list) {
      let sec = sections[sections.length - 1];
      if (!sec || sec.name !== (s.section || '')) {
        sec = { name: s.section || '', rows: [] };
        sections.push(sec);
      }
      let row = sec.rows[sec.rows.length - 1];
      if (!row || row.name !== (s.row || '') || (!s.row && row.seats.length >= 10)) {
        row = { name: s.row || '', seats: [] };
        sec.rows.push(row);
        rows.push(row.seats);
      }
      row.seats.push(s.number);
    }
    grid.replaceChildren(...sections.map((sec) => h('div', { class: 'seat-section', 'data-section': sec.name },
      sec.name ? h('h3', { class: 'section-name' }, sec.name) : null,
      ...sec.rows.map((row) => h('div', { class: 'seat-row', 'data-row': row.name },
        h('span', { class: 'row-label', 'aria-hidden': 'true' }, row.name),
        ...row.seats.map((n) => seatButton(n)),
        h('span', { class: 'row-label', 'aria-hidden': 'true' }, row.name))))));
  }

  function seatButton(n) {
    let b = buttons.get(n);
    if (!b) {
      const s = seats.get(n);
      // The seat's place in its row ("12" of "C-12"), else its number.
      const text = s.label && s.label.includes('-') ? s.label.slice(s.label.lastIndexOf('-') + 1) : String(n);
      b = h('button', { type: 'button', class: 'seat', 'data-seat': String(n) }, text);
      b.addEventListener('click', () => choose(n));
      b.addEventListener('focus', () => { focusNumber = n; syncTabIndex(); });
      buttons.set(n, b);
    }
    return b;
  }

  function renderGrid() {
    const mine = new Set(myHolds().map((x) => x.seatNumber));
    const list = [...seats.values()].sort((a, b) => a.number - b.number);
    const byTier = new Map();
    for (const s of list) {
      const t = tierOf(s);
      if (!byTier.has(t)) byTier.set(t, { name: t, price: s.price });
    }
    const found = [...byTier.values()].sort((a, b) => b.price - a.price);
    if (found.map((t) => `${t.name}=${t.price}`).join() !== tiers.map((t) => `${t.name}=${t.price}`).join()) {
      tiers = found;
      renderLegend();
    }
    const tierIndex = new Map(tiers.slice(0, 3).map((t, i) => [t.name, i]));
    layout(list);
    if (focusNumber === null || !seats.has(focusNumber)) {
      const firstFree = list.find((s) => s.status === 'AVAILABLE') || list[0];
      focusNumber = firstFree ? firstFree.number : null;
    }
    for (const s of list) {
      const b = seatButton(s.number);
      const st = statusOf(s, mine);
      const tier = tierIndex.has(tierOf(s)) ? tierIndex.get(tierOf(s)) : -1;
      const where = place(s);
      b.className = `seat seat-${st.toLowerCase()}${tier >= 0 ? ` tier-${tier}` : ''}`;
      b.dataset.status = st;
      b.dataset.tier = s.tier || '';
      b.setAttribute('aria-label', `Seat ${s.number}${where ? ` (${where})` : ''}, ${money(s.price)}, ${words(st)}`);
      b.title = st === 'AVAILABLE' ? `Hold seat ${s.label || s.number} (${money(s.price)})` : `Seat ${s.label || s.number}: ${words(st)}`;
      if (st === 'AVAILABLE' && !ended) b.removeAttribute('aria-disabled');
      else b.setAttribute('aria-disabled', 'true');
    }
    syncTabIndex();
  }

  function syncTabIndex() {
    for (const [n, b] of buttons) b.tabIndex = n === focusNumber ? 0 : -1;
  }

  grid.addEventListener('keydown', (ev) => {
    if (!rows.length) return;
    const order = rows.flat();
    let i = order.indexOf(focusNumber);
    if (i < 0) i = 0;
    const r = rows.findIndex((row) => row.includes(order[i]));
    const c = rows[r].indexOf(order[i]);
    const inRow = (k) => {
      const row = rows[Math.max(0, Math.min(rows.length - 1, k))];
      return order.indexOf(row[Math.min(c, row.length - 1)]);
    };
    const moves = {
      ArrowRight: () => i + 1, ArrowLeft: () => i - 1, ArrowDown: () => inRow(r + 1), ArrowUp: () => inRow(r - 1),
      Home: () => 0, End: () => order.length - 1,
    };
    if (!(ev.key in moves)) return;
    ev.preventDefault();
    const j = Math.max(0, Math.min(order.length - 1, moves[ev.key]()));
    focusNumber = order[j];
    syncTabIndex();
    buttons.get(focusNumber).focus();
  });

  // ------------------------------------------------------------- holding
  async function choose(n) {
    const seat = seats.get(n);
    if (!seat || busy || ended) return;
    const mine = myHolds().find((x) => x.seatNumber === n);
    if (mine) {
      ctx.navigate(`#/concerts/${concertId}/schedules/${scheduleId}/reservations/${mine.id}`);
      return;
    }
    if (seat.status !== 'AVAILABLE') {
      say(messages, notice('info', `Seat ${n} is ${words(seat.status)}. Please choose an available seat.`));
      return;
    }
    busy = true;
    grid.setAttribute('aria-busy', 'true');
    const b = buttons.get(n);
    b.classList.add('seat-pending');
    say(messages, notice('info', `Holding seat ${n}…`));
    const res = await request('POST', '/api/reservations', {
      body: { scheduleId, seatNumber: n }, token, signal: ctx.signal,
    });
    if (!ctx.alive()) return;
    busy = false;
    grid.removeAttribute('aria-busy');
    b.classList.remove('seat-pending');
    if (res.ok) {
      const r = res.data;
      saveHold(r.id, { ...r, userId: user, concertId });
      if (multiBox.checked) {
        seat.status = 'HELD';
        renderHolds();
        renderGrid();
        say(messages, notice('success', `Seat ${n} is held for you. Choose more seats, or pay for them together.`));
        return;
      }
      ctx.navigate(`#/concerts/${concertId}/schedules/${scheduleId}/reservations/${r.id}`);
      return;
    }
    const code = res.error.code;
    if (code === 'SEAT_TAKEN') {
      seat.status = 'HELD';
      renderGrid();
      const box = notice('error', `Seat ${n} is taken. ${messageFor('SEAT_TAKEN')}`);
      box.dataset.code = code;
      box.id = 'seat-taken';
      say(messages, box);
      if (refreshNow) refreshNow();
      return;
    }
    if (authFailure(res)) {
      turnEnded(res);
      return;
    }
    const extra = [];
    if (code === 'HOLD_LIMIT') renderHolds();
    say(messages, errorNotice(res, ...extra));
    if (refreshNow) refreshNow();
  }

  function turnEnded(res) {
    if (ended) return;
    ended = true;
    renderGrid();
    const again = button('Join the queue again', () => {
      clearQueueRecord(user, concertId);
      ctx.navigate(queueRoute);
    }, 'btn', { id: 'rejoin' });
    say(messages, res ? errorNotice(res, h('p', {}, again))
      : notice('warning', 'Your turn has ended: the time to choose a seat ran out.', h('p', {}, again)));
    turn.replaceChildren('Your turn has ended.');
    // A hold cannot be paid for without a turn: no "Pay" links any more.
    holdsEl.replaceChildren();
    mapBox.classList.add('ended');
    clearQueueRecord(user, concertId);
  }

  // ------------------------------------------------------------- timers
  const tick = setInterval(() => {
    if (!ctx.alive()) return;
    const left = Date.parse(rec.activeUntil) - serverNow();
    if (!ended) {
      turnEl.textContent = countdown(left);
      if (left <= 0) turnEnded(null);
    }
    for (const el of ended ? [] : holdsEl.querySelectorAll('.mini-timer')) {
      const l = Date.parse(el.dataset.expires) - serverNow();
      el.textContent = countdown(l);
      if (l <= 0) { renderHolds(); renderGrid(); }
    }
  }, 1000);
  ctx.onCleanup(() => clearInterval(tick));
  renderHolds();

  // ------------------------------------------------------ live refresh
  let delay = REFRESH_MS;
  let first = true;
  while (ctx.alive() && !ended) {
    const res = await request('GET',
      `/api/concerts/${concertId}/schedules/${scheduleId}/seats`, { token, signal: ctx.signal });
    if (!ctx.alive()) return;
    let wait = REFRESH_MS;
    if (res.ok && Array.isArray(res.data.seats)) {
      for (const s of res.data.seats) {
        const old = seats.get(s.number);
        if (old) Object.assign(old, s); else seats.set(s.number, { ...s });
      }
      if (!busy) renderGrid();
      updated.textContent = `Updated ${clockTime(Date.now())} · refreshes every few seconds`;
      if (first) {
        first = false;
        updated.id = 'seats-updated';
        mapBox.dataset.loaded = 'true';
      }
      if (messages.querySelector('[data-code="UNAVAILABLE"], [data-transient]')) say(messages, null);
      delay = REFRESH_MS;
    } else if (authFailure(res)) {
      turnEnded(res);
      return;
    } else if (isTransient(res)) {
      delay = Math.min(30000, delay * 2);
      wait = Math.max(delay, (res.retryAfter || 0) * 1000);
      const box = errorNotice(res, h('p', {}, `The seat map will refresh again in ${Math.round(wait / 1000)} s.`));
      box.dataset.transient = 'true';
      if (!messages.querySelector('[role="alert"]:not([data-transient])')) say(messages, box);
    } else {
      say(messages, errorNotice(res, h('p', {}, link(`#/concerts/${concertId}`, 'Back to the dates'))));
      return;
    }
    await new Promise((resolve) => {
      const wake = () => {
        clearTimeout(t);
        ctx.signal.removeEventListener('abort', wake);
        refreshNow = null;
        resolve();
      };
      const t = setTimeout(wake, wait);
      refreshNow = wake;
      ctx.signal.addEventListener('abort', wake, { once: true });
    });
  }
}
