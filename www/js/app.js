// app.js: the page shell: who is signed in, and a hash router that shows one
// step of the journey at a time.
//
//   #/                                              concerts on sale
//   #/signin, #/signup                              sign in, create an account
//   #/balance                                       the signed-in user's balance
//   #/concerts/C                                    dates (schedules) of concert C
//   #/concerts/C/schedules/S/queue                  waiting room
//   #/concerts/C/schedules/S/seats                  seat map
//   #/concerts/C/schedules/S/reservations/R         hold countdown and payment
//   #/concerts/C/schedules/S/checkout               several holds paid together
//   #/payments/P                                    confirmation
//   #/tickets, #/tickets/T                          one's tickets; one to print

import {
  currentUser, setCurrentUser, userLabel, setLastRoute, forgetUser, setAfterSignIn,
} from './store.js';
import { request } from './api.js';
import { h, clear, notice, pageHeading, link } from './ui.js';

const ROUTES = [
  { re: /^#\/?$/, view: 'concerts', keys: [] },
  { re: /^#\/signin$/, view: 'signin', keys: [] },
  { re: /^#\/signup$/, view: 'signup', keys: [] },
  { re: /^#\/balance$/, view: 'balance', keys: [] },
  { re: /^#\/concerts\/(\d{1,15})\/?$/, view: 'schedules', keys: ['concertId'] },
  { re: /^#\/concerts\/(\d{1,15})\/schedules\/(\d{1,15})\/queue$/, view: 'queue', keys: ['concertId', 'scheduleId'] },
  { re: /^#\/concerts\/(\d{1,15})\/schedules\/(\d{1,15})\/seats$/, view: 'seats', keys: ['concertId', 'scheduleId'] },
  {
    re: /^#\/concerts\/(\d{1,15})\/schedules\/(\d{1,15})\/reservations\/([0-9a-fA-F-]{36})$/,
    view: 'hold', keys: ['concertId', 'scheduleId', 'reservationId'],
  },
  { re: /^#\/concerts\/(\d{1,15})\/schedules\/(\d{1,15})\/checkout$/, view: 'checkout', keys: ['concertId', 'scheduleId'] },
  { re: /^#\/payments\/([0-9a-fA-F-]{36})$/, view: 'done', keys: ['paymentId'] },
  { re: /^#\/tickets$/, view: 'tickets', keys: [] },
  { re: /^#\/tickets\/([0-9a-fA-F-]{36})$/, view: 'tickets', keys: ['ticketId'] },
];
// Pages that are about signing in: never the page to come back to after it.
const ACCOUNT_VIEWS = ['signin', 'signup'];

const main = document.getElementById('main');
const userBox = document.getElementById('user-box');
let current = null;          // {abort, cleanups}

// ------------------------------------------------------------------ user

function renderUserBox() {
  clear(userBox);
  const user = currentUser();
  if (user) {
    userBox.append(h('p', { class: 'user-current' },
      'Signed in as ', h('strong', { id: 'user-name' }, userLabel(user)), ' ',
      link('#/balance', 'Balance', 'btn btn-small btn-ghost'), ' ',
      h('a', { href: '#/tickets', class: 'btn btn-small btn-ghost', id: 'my-tickets-link' }, 'My tickets'), ' ',
      h('button', {
        type: 'button', class: 'btn btn-small btn-ghost', id: 'sign-out',
        onclick: signOut,
      }, 'Sign out')),
    h('p', { class: 'field-error', id: 'sign-out-error', 'aria-live': 'polite' }));
    return;
  }
  userBox.append(h('p', { class: 'user-current' },
    h('a', { href: '#/signin', class: 'btn btn-small', id: 'sign-in-link', onclick: rememberPage }, 'Sign in'), ' ',
    h('a', { href: '#/signup', class: 'btn btn-small btn-ghost', id: 'sign-up-link', onclick: rememberPage }, 'Create account')));
}

/** Come back to the page the user is on after signing in. */
function rememberPage() {
  const found = match(location.hash || '#/');
  if (found && !ACCOUNT_VIEWS.includes(found.view)) setAfterSignIn(location.hash || '#/');
}

/**
 * The signed-in user changed (or nobody is): show the page again for them,
 * unless the caller is about to navigate anyway (reroute false).
 */
function userChanged(id, email, reroute = true) {
  const before = currentUser();
  setCurrentUser(id, email);
  renderUserBox();
  if (reroute && before !== currentUser()) route();
}

/**
 * Ask the server who the session cookie belongs to. Nobody on a 401;
 * when the server cannot tell (unreachable, 5xx), the remembered user
 * stands until a call that needs the session says otherwise.
 */
async function checkSession() {
  const res = await request('GET', '/api/sessions', { timeoutMs: 4000 });
  if (res.ok && typeof res.data.userId === 'string') {
    if (res.data.userId !== currentUser()) setCurrentUser(res.data.userId);
  } else if (res.status === 401 || res.status === 403) {
    setCurrentUser(null);
  }
}

async function signOut() {
  const user = currentUser();
  const btn = document.getElementById('sign-out');
  if (btn) btn.disabled = true;
  const res = await request('DELETE', '/api/sessions');
  // 401: the session had already ended; either way nobody is signed in.
  if (!res.ok && res.status !== 401) {
    if (btn) btn.disabled = false;
    const err = document.getElementById('sign-out-error');
    if (err) err.textContent = 'We could not sign you out. Please try again.';
    return;
  }
  if (user) forgetUser(user);
  userChanged(null);
}

/** A page needs a signed-in user: go to the sign-in form, and back after. */
function askForUser() {
  rememberPage();
  navigate('#/signin');
}

/**
 * A call that needed the session was refused (signed out elsewhere,
 * expired): check with the server, and show the page again if it ended.
 */
async function sessionLost() {
  const before = currentUser();
  await checkSession();
  if (currentUser() !== before) {
    renderUserBox();
    route();
  }
}

// ---------------------------------------------------------------- router

function match(hash) {
  for (const r of ROUTES) {
    const m = r.re.exec(hash);
    if (m) {
      const params = {};
      r.keys.forEach((k, i) => { params[k] = /Id$/.test(k) && /^\d+$/.test(m[i + 1]) ? Number(m[i + 1]) : m[i + 1].toLowerCase(); });
      return { view: r.view, params };
    }
  }
  return null;
}

function navigate(hash, opts = {}) {
  if (opts.replace) {
    history.replaceState(null, '', hash);
    route();
  } else if (location.hash === hash) {
    route();
  } else {
    location.hash = hash;
  }
}

/** Leave for the static waiting page; it keeps retrying and brings the user back. */
function toWaitingPage(concertId, retryAfter, code) {
  const hash = location.hash.startsWith('#/') ? location.hash : '#/';
  setLastRoute(hash);
  const q = new URLSearchParams({ return: '/' + hash });
  if (concertId) q.set('concert', String(concertId));
  if (retryAfter) q.set('wait', String(retryAfter));
  if (code) q.set('reason', code);
  location.assign('/waiting.html?' + q.toString());
}

async function route() {
  const hash = location.hash || '#/';
  if (!hash.startsWith('#/') && hash !== '#') return;   // an in-page anchor
  if (current) {
    current.abort.abort();
    for (const fn of current.cleanups) {
      try { fn(); } catch { /* ignore */ }
    }
  }
  const abort = new AbortController();
  const me = { abort, cleanups: [] };
  current = me;
  const found = match(hash);
  clear(main);
  main.setAttribute('aria-busy', 'true');
  if (!found) {
    document.title = 'Page not found · boxoffice';
    main.append(pageHeading('Page not found'),
      notice('error', 'There is no such page.', h('p', {}, link('#/', 'See all concerts'))));
    main.removeAttribute('aria-busy');
    focusHeading();
    return;
  }
  if (!ACCOUNT_VIEWS.includes(found.view)) setLastRoute(hash);
  const ctx = {
    params: found.params,
    signal: abort.signal,
    alive: () => current === me && !abort.signal.aborted,
    onCleanup: (fn) => me.cleanups.push(fn),
    navigate,
    toWaitingPage,
    askForUser,
    sessionLost,
    signedIn: (id, email) => userChanged(id, email, false),
    user: currentUser(),
    setTitle: (t) => { document.title = `${t} · boxoffice`; },
    focusHeading,
  };
  try {
    const mod = await import(`./views/${found.view}.js`);
    if (!ctx.alive()) return;
    await mod.render(main, ctx);
  } catch (e) {
    if (!ctx.alive()) return;
    console.error(e);
    clear(main);
    main.append(pageHeading('Something went wrong'),
      notice('error', 'This page could not be shown. Please reload it.',
        h('p', {}, h('button', { type: 'button', class: 'btn', onclick: () => location.reload() }, 'Reload'))));
  } finally {
    if (ctx.alive()) main.removeAttribute('aria-busy');
  }
}

let firstRoute = true;
function focusHeading() {
  // Move focus to the new page's heading (not on the very first load, where
  // the browser's own focus handling is better for screen readers).
  if (firstRoute) { firstRoute = false; return; }
  const el = document.getElementById('page-title');
  if (el) el.focus({ preventScroll: false });
}

window.addEventListener('hashchange', route);
// Another tab signed in or out: follow it.
window.addEventListener('storage', (ev) => {
  if (ev.key === 'boxoffice.user' || ev.key === null) {
    renderUserBox();
    route();
  }
});
document.querySelector('.skip')?.addEventListener('click', (ev) => {
  ev.preventDefault();
  main.focus();
});

renderUserBox();
checkSession().then(() => {
  renderUserBox();
  route();
});
