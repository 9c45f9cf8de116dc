// The waiting room: join the queue of a concert (or its pre-queue before
// the sale opens, with a countdown), then follow the concert's public
// progress document, cached by nginx, until nowServing reaches one's
// number, and claim the turn with one status call. Honours Retry-After, and
// hands over to the static waiting page (/waiting.html) when the queue is
// down (503), which brings the user back here.

import { request, isOutage, authFailure, sleep, serverNow } from '../api.js';
import {
  queueRecord, mergeQueueAnswer, clearQueueRecord,
} from '../store.js';
import { concertInfo, scheduleInfo } from '../catalog.js';
import {
  h, pageHeading, steps, notice, errorNotice, say, eta, ordinal, number, clockTime, link, button,
  dateTime, countdown,
} from '../ui.js';

const MIN_DELAY = 1000;
const MAX_DELAY = 10000;

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
    h('p', { class: 'hint' }, 'Keep this page open: it updates by itself. When your turn comes you have a short time to take it, which this page does for you. ',
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
    countdownEl.textContent = '';
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

  const countdownEl = h('p', { class: 'countdown', id: 'queue-countdown', 'aria-hidden': 'true' });
  panel.insertBefore(countdownEl, aheadEl);

  function showUpcoming(opensAt) {
    panel.dataset.state = 'upcoming';
    const left = opensAt - serverNow();
    placeEl.textContent = countdown(left);
    aheadEl.textContent = 'The sale has not opened yet. Everyone who is here before it opens gets a place drawn at random when it opens, so there is no need to hurry.';
    etaEl.textContent = `Opens at ${clockTime(opensAt)}`;
    numberEl.textContent = 'Drawn at the opening';
    checkedEl.textContent = clockTime(Date.now());
    countdownEl.textContent = countdown(left);
    bar.style.width = '4%';
    progress.setAttribute('aria-valuenow', '0');
    progress.setAttribute('aria-valuetext', 'Before the opening');
    speak(`The sale opens at ${clockTime(opensAt)}.`);
  }

  // ----------------------------------------------------------------- loop
  // The place is kept without polling it. The page reads the concert's
  // progress document (the same for everyone, cached by nginx) at the
  // interval it suggests, computes the place from nowServing, and calls
  // /api/queues/status only to join, to learn the number drawn at the
  // opening, and to claim the turn once nowServing reaches its number
  // (within the document's claimWindowSeconds).
  let delay = MIN_DELAY;
  let rejoins = 0;
  let failures = 0;
  let needStatus = true;        // check the stored place once on arrival
  for (;;) {
    let rec = queueRecord(user, concertId);
    let res;
    let wait = delay;
    if (!rec || needStatus) {
      res = rec
        ? await request('GET', '/api/queues/status', { token: rec.token, signal: ctx.signal })
        // The session cookie goes along (same origin): the server takes the
        // user from it; the userId in the body is the same user's.
        : await request('POST', '/api/queues/token', {
          body: { concertId, userId: user }, signal: ctx.signal,
        });
      if (!ctx.alive()) return;
      if (res.ok) {
        failures = 0;
        const a = res.data;
        if (a.status === 'EXPIRED') {
          clearQueueRecord(user, concertId);
          stopWith(notice('warning',
            'Your place in the queue has expired. This happens when it was your turn and the page was closed, or when your turn ended.',
            h('p', {}, button('Join the queue again', () => ctx.navigate(location.hash, { replace: true }), 'btn', { id: 'rejoin' }))),
          'expired');
          return;
        }
        rec = mergeQueueAnswer(user, concertId, a);
        if (a.opensAt) rec.opensAt = a.opensAt;
        if (a.status === 'ACTIVE') {
          showActive(rec);
          say(messages, null);
          await sleep(700, ctx.signal);
          if (ctx.alive()) ctx.navigate(`#/concerts/${concertId}/schedules/${scheduleId}/seats`, { replace: true });
          return;
        }
        if (a.status === 'WAITING') showWaiting(rec);
        else if (a.opensAt) showUpcoming(Date.parse(a.opensAt));
        say(messages, null);
        needStatus = false;
        wait = 300;             // then the progress document
      }
    } else {
      res = await request('GET', `/api/queues/${concertId}/progress`, { signal: ctx.signal });
      if (!ctx.alive()) return;
      if (res.ok) {
        failures = 0;
        const d = res.data;
        const poll = Math.max(MIN_DELAY, Number(d.pollAfterMs) || 2000);
        delay = poll;
        wait = poll;
        if (d.saleState === 'UPCOMING' && d.saleOpensAt) {
          const opens = Date.parse(d.saleOpensAt);
          showUpcoming(opens);
          // tick the countdown each second, and be there at the opening
          wait = Math.max(200, Math.min(1000, opens - serverNow()));
        } else if (rec.queueNumber == null) {
          // the opening has passed: the number drawn for us
          needStatus = true;
          wait = 0;
        } else {
          const ahead = rec.queueNumber - (Number(d.nowServing) || 0) - 1;
          if (ahead < 0) {
            // admitted: claim the turn now
            needStatus = true;
            wait = 0;
          } else {
            const rate = Number(d.admittedPerSecond) || 0;
            rec = mergeQueueAnswer(user, concertId, {
              ...rec, position: ahead,
              etaSeconds: rate > 0 ? Math.ceil((ahead + 1) / rate) : null,
            });
            showWaiting(rec);
            // close to the front: read sooner, to claim well within the window
            const claimMs = (Number(d.claimWindowSeconds) || 60) * 1000;
            if (ahead <= rate * (poll / 1000) + 1) wait = Math.max(MIN_DELAY, Math.min(poll, claimMs / 3));
          }
        }
        say(messages, null);
      }
    }
    if (res.ok) {
      // fall through to the pause
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
