// The waiting room: join the queue of a concert, then poll one's place until
// it is one's turn. Polling backs off while nothing changes, honours
// Retry-After, and hands over to the static waiting page (/waiting.html)
// when the queue is down (503), which brings the user back here.

import { request, isOutage, authFailure, sleep } from '../api.js';
import {
  queueRecord, mergeQueueAnswer, clearQueueRecord,
} from '../store.js';
import { concertInfo, scheduleInfo } from '../catalog.js';
import {
  h, pageHeading, steps, notice, errorNotice, say, eta, ordinal, number, clockTime, link, button,
  dateTime,
} from '../ui.js';

const MIN_DELAY = 1000;
const MAX_DELAY = 10000;   // well under the server's abandon_after (60 s by default)

export async function render(root, ctx) {
  const { concertId, scheduleId } = ctx.params;
  const user = ctx.user;
  const head = pageHeading('Waiting room');
  root.append(h('p', { class: 'back' }, link(`#/concerts/${concertId}`, '← Other dates')), head, steps(2));
  ctx.setTitle('Waiting room');
  ctx.focusHeading();
  describe(ctx, head);

  if (!user) {
    root.append(notice('info', 'Please sign in to join the queue. You will join it right after.',
      h('p', { class: 'actions' }, button('Sign in', () => ctx.askForUser(), 'btn', { id: 'signin-needed' }),
        link('#/signup', 'Create an account', 'btn btn-ghost'))));
    return;
  }

  // ---------------------------------------------------------------- panel
  const placeEl = h('span', { class: 'big-number', id: 'queue-place' }, '…');
  const aheadEl = h('p', { class: 'ahead', id: 'queue-ahead' }, 'Joining the queue…');
  const etaEl = h('dd', { id: 'queue-eta' }, 'Estimating…');
  const numberEl = h('dd', { id: 'queue-number' }, '…');
  const checkedEl = h('dd', { id: 'queue-checked' }, '…');
  const bar = h('div', { class: 'progress-fill', style: 'width: 4%' });
  const progress = h('div', {
    class: 'progress', role: 'progressbar', id: 'queue-progress',
    'aria-label': 'Progress in the queue', 'aria-valuemin': '0', 'aria-valuemax': '100',
    'aria-valuenow': '0', 'aria-valuetext': 'Just joined',
  }, bar);
  const live = h('div', { class: 'sr-only', 'aria-live': 'polite', id: 'queue-live' });
  const messages = h('div', { class: 'messages', id: 'queue-messages' });
  const panel = h('section', { class: 'queue-panel', id: 'waiting-room', 'aria-labelledby': 'queue-place-label', 'data-state': 'joining' },
    h('p', { class: 'place' },
      h('span', { class: 'place-label', id: 'queue-place-label' }, 'Your place in line'), placeEl),
    aheadEl,
    progress,
    h('dl', { class: 'facts' },
      h('div', {}, h('dt', {}, 'Estimated wait'), etaEl),
      h('div', {}, h('dt', {}, 'Queue number'), numberEl),
      h('div', {}, h('dt', {}, 'Last checked'), checkedEl)),
    messages,
    h('p', { class: 'hint' }, 'Keep this page open: it updates by itself, and your place is kept while it is open. ',
      'When it is your turn you go straight to the seat map.'),
    live);
  root.append(panel);

  let lastSpoken = '';
  function speak(text) {
    if (text !== lastSpoken) {
      lastSpoken = text;
      live.textContent = text;
    }
  }

  function showWaiting(rec) {
    panel.dataset.state = 'waiting';
    const pos = Math.max(0, Number(rec.position) || 0);
    const start = Math.max(pos, Number(rec.startPosition) || 0);
    placeEl.textContent = number(pos + 1);
    aheadEl.textContent = pos === 0 ? 'You are next in line.'
      : `${number(pos)} ${pos === 1 ? 'person is' : 'people are'} ahead of you.`;
    etaEl.textContent = eta(rec.etaSeconds);
    numberEl.textContent = rec.queueNumber != null ? `#${rec.queueNumber}` : '…';
    checkedEl.textContent = clockTime(Date.now());
    const pct = start > 0 ? Math.round(((start - pos) / (start + 1)) * 100) : 0;
    bar.style.width = `${Math.max(4, pct)}%`;
    progress.setAttribute('aria-valuenow', String(pct));
    progress.setAttribute('aria-valuetext', pos === 0 ? 'You are next' : `${ordinal(pos + 1)} in line`);
    speak(pos === 0 ? 'You are next in line.' : `You are ${ordinal(pos + 1)} in line.`);
  }

  function showActive(rec) {
    panel.dataset.state = 'active';
    placeEl.textContent = '✓';
    aheadEl.textContent = 'It is your turn! Taking you to the seats…';
    etaEl.textContent = 'Now';
    numberEl.textContent = rec.queueNumber != null ? `#${rec.queueNumber}` : '…';
    checkedEl.textContent = clockTime(Date.now());
    bar.style.width = '100%';
    progress.setAttribute('aria-valuenow', '100');
    progress.setAttribute('aria-valuetext', 'Your turn');
    speak('It is your turn. Taking you to the seat map.');
  }

  function stopWith(node, state) {
    panel.dataset.state = state || 'stopped';
    aheadEl.textContent = '';
    say(messages, node);
  }

  // ----------------------------------------------------------------- loop
  let delay = MIN_DELAY;
  let lastPos = null;
  let rejoins = 0;
  let failures = 0;
  for (;;) {
    let rec = queueRecord(user, concertId);
    const res = rec
      ? await request('GET', '/api/queues/status', { token: rec.token, signal: ctx.signal })
      // The session cookie goes along (same origin): the server takes the
      // user from it; the userId in the body is the same user's.
      : await request('POST', '/api/queues/token', {
        body: { concertId, userId: user }, signal: ctx.signal,
      });
    if (!ctx.alive()) return;
    let wait;

    if (res.ok) {
      failures = 0;
      const a = res.data;
      if (a.status === 'EXPIRED') {
        clearQueueRecord(user, concertId);
        stopWith(notice('warning',
          'Your place in the queue has expired. This happens when the waiting page was closed for a while, or when your turn ended.',
          h('p', {}, button('Join the queue again', () => ctx.navigate(location.hash, { replace: true }), 'btn', { id: 'rejoin' }))),
        'expired');
        return;
      }
      rec = mergeQueueAnswer(user, concertId, a);
      if (a.status === 'ACTIVE') {
        showActive(rec);
        say(messages, null);
        await sleep(700, ctx.signal);
        if (ctx.alive()) ctx.navigate(`#/concerts/${concertId}/schedules/${scheduleId}/seats`, { replace: true });
        return;
      }
      showWaiting(rec);
      say(messages, null);
      // Back off while the place does not move; poll sooner when the
      // estimate says the turn is close.
      const cap = Math.min(MAX_DELAY, Math.max(2000, ((a.etaSeconds ?? 30) * 1000) / 3));
      if (lastPos !== null && a.position === lastPos) delay = Math.min(cap, delay * 1.5);
      else delay = Math.min(cap, Math.max(MIN_DELAY, delay));
      lastPos = a.position;
      wait = delay;
    } else if (isOutage(res)) {
      // The queue (Redis) or the app is down: the static waiting page keeps
      // the token and retries by itself.
      ctx.toWaitingPage(concertId, res.retryAfter, res.error.code);
      return;
    } else if (res.status === 429) {
      delay = Math.min(MAX_DELAY * 3, Math.max(delay * 2, (res.retryAfter || 1) * 1000));
      wait = delay;
      say(messages, notice('info', 'Lots of people are checking right now; we check a little less often. Your place is kept.'));
    } else if (res.status === 0) {
      failures++;
      delay = Math.min(30000, Math.max(2000, delay * 2));
      wait = delay;
      say(messages, notice('warning', `We cannot reach the server (attempt ${failures}). Your place is kept; trying again in ${Math.round(wait / 1000)} s.`));
    } else if (!rec && (res.status === 401 || res.error.code === 'FORBIDDEN')) {
      // The join was refused for the session (signed out, expired, or
      // another user's): the app checks who is signed in and shows this
      // page again for them.
      stopWith(notice('warning', 'Your session has ended. Please sign in again to join the queue.',
        h('p', {}, button('Sign in', () => ctx.askForUser(), 'btn', { id: 'signin-needed' }))), 'signed-out');
      ctx.sessionLost();
      return;
    } else if (rec && authFailure(res) && rejoins < 2) {
      // The pass is unusable (expired, rotated key...): asking again gives
      // the same place when it still exists.
      rejoins++;
      clearQueueRecord(user, concertId);
      continue;
    } else {
      const extra = [];
      extra.push(h('p', {}, link(`#/concerts/${concertId}`, 'Back to the dates')));
      stopWith(errorNotice(res, ...extra), 'error');
      return;
    }
    // ±15 % jitter so that many waiting pages do not poll in step, but
    // never sooner than the server's Retry-After.
    await sleep(Math.max(wait * (0.85 + Math.random() * 0.3), (res.retryAfter || 0) * 1000),
      ctx.signal);
    if (!ctx.alive()) return;
  }
}

async function describe(ctx, head) {
  const { concertId, scheduleId } = ctx.params;
  const [c, s] = await Promise.all([concertInfo(concertId), scheduleInfo(concertId, scheduleId)]);
  if (!ctx.alive()) return;
  head.append(h('p', { class: 'page-sub' }, c.title, s ? ` · ${dateTime(s.startsAt)}` : ''));
}
