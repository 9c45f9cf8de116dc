// Sign in and create an account (#/signin, #/signup). The session is the
// HttpOnly cookie the server sets at sign-in; the page only learns the
// user's id. Every refusal reads as words: a wrong address or password, a
// pause after too many failed attempts (with the time to wait, from
// Retry-After), an address that already has an account, a password the
// policy refuses (with the reason).

import { request } from '../api.js';
import { messageFor, messageOf } from '../errors.js';
import { afterSignIn, setAfterSignIn } from '../store.js';
import { h, pageHeading, notice, say, link, countdownWords } from '../ui.js';

export async function render(root, ctx) {
  return form(root, ctx, false);
}

/** The password policy's reason (src/password.c) in the site's words. */
function policyMessage(res) {
  const m = String(res.error && res.error.message || '');
  let k = /at least (\d+) characters/.exec(m);
  if (k) return `Your password must be at least ${k[1]} characters long.`;
  if (/e-mail address/.test(m)) return 'Your password must not be your e-mail address.';
  if (/at most/.test(m)) return 'Your password is too long. Please choose a shorter one.';
  if (/control characters/.test(m)) return 'Your password must not contain control characters such as tabs or line breaks.';
  if (/UTF-8/.test(m)) return 'Your password contains characters that cannot be read. Please choose another one.';
  return messageFor('WEAK_PASSWORD');
}

/** A refused sign-in or sign-up as a notice; code and field for the form. */
function refusal(res, signUp) {
  const code = res.error ? res.error.code : 'UNKNOWN';
  let text = messageOf(res);
  let field = null;
  if (code === 'WEAK_PASSWORD') {
    text = policyMessage(res);
    field = 'password';
  } else if ((code === 'INVALID_FIELD' || code === 'MISSING_FIELD') &&
             /email/.test(String(res.error.message))) {
    text = 'Please enter a valid e-mail address, such as name@example.com.';
    field = 'email';
  } else if ((code === 'INVALID_FIELD' || code === 'MISSING_FIELD') &&
             /password/.test(String(res.error.message))) {
    text = 'Please enter a password of at most 1024 characters.';
    field = 'password';
  } else if (code === 'EMAIL_TAKEN') {
    field = 'email';
  } else if (res.status === 429) {
    const wait = res.retryAfter;
    text = (code === 'TOO_MANY_ATTEMPTS' ? text : 'Too many attempts from this address in a short time.') +
      (wait ? ` Please try again in ${countdownWords(wait * 1000)}.` : ' Please try again later.');
  }
  const box = notice('error', text,
    code === 'EMAIL_TAKEN' ? h('p', {}, link('#/signin', 'Sign in with this address')) : null,
    code === 'BAD_CREDENTIALS' && !signUp ? h('p', {}, 'No account yet? ', link('#/signup', 'Create one')) : null);
  box.dataset.code = code;
  box.id = 'account-error';
  return { box, field };
}

export async function form(root, ctx, signUp) {
  const title = signUp ? 'Create an account' : 'Sign in';
  ctx.setTitle(title);
  root.append(pageHeading(title, signUp
    ? 'One account books seats and keeps your balance.'
    : 'Sign in to join a queue, book seats and see your balance.'));
  ctx.focusHeading();
  if (ctx.user) {
    root.append(notice('info', 'You are signed in.', h('p', {}, link('#/', 'See all concerts', 'btn'))));
    return;
  }

  const email = h('input', {
    id: 'account-email', name: 'email', type: 'email', required: true, spellcheck: 'false',
    autocomplete: signUp ? 'email' : 'username', autocapitalize: 'none',
    'aria-describedby': 'account-error-area',
  });
  const password = h('input', {
    id: 'account-password', name: 'password', type: 'password', required: true,
    autocomplete: signUp ? 'new-password' : 'current-password',
    'aria-describedby': signUp ? 'password-hint account-error-area' : 'account-error-area',
  });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'account-submit' }, title);
  const messages = h('div', { class: 'messages', id: 'account-error-area' });
  const f = h('form', { class: 'account-form', id: signUp ? 'signup-form' : 'signin-form', novalidate: true },
    h('label', { for: 'account-email' }, 'E-mail address'), email,
    h('label', { for: 'account-password' }, 'Password'), password,
    signUp ? h('p', { class: 'field-hint', id: 'password-hint' },
      'At least 10 characters, and not your e-mail address.') : null,
    messages,
    h('div', { class: 'actions' }, submit),
    h('p', { class: 'switch' }, signUp
      ? ['Already have an account? ', link('#/signin', 'Sign in')]
      : ['No account yet? ', link('#/signup', 'Create one')]));
  root.append(f);

  let pausedUntil = 0;
  let timer = null;
  ctx.onCleanup(() => clearInterval(timer));

  /** After a 429: no button presses until Retry-After has passed. */
  function pause(seconds) {
    pausedUntil = Date.now() + seconds * 1000;
    submit.disabled = true;
    clearInterval(timer);
    timer = setInterval(() => {
      if (!ctx.alive() || Date.now() >= pausedUntil) {
        clearInterval(timer);
        submit.disabled = false;
      }
    }, 500);
  }

  function invalid(field) {
    for (const el of [email, password]) el.removeAttribute('aria-invalid');
    const el = field === 'email' ? email : field === 'password' ? password : null;
    if (el) {
      el.setAttribute('aria-invalid', 'true');
      el.focus();
    }
  }

  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (submit.disabled) return;
    const body = { email: email.value.trim(), password: password.value };
    if (!body.email || !body.password) {
      const box = notice('error', !body.email ? 'Please enter your e-mail address.' : 'Please enter your password.');
      box.id = 'account-error';
      box.dataset.code = 'MISSING_FIELD';
      say(messages, box);
      invalid(!body.email ? 'email' : 'password');
      return;
    }
    submit.disabled = true;
    say(messages, notice('info', signUp ? 'Creating your account…' : 'Signing in…'));
    let res;
    if (signUp) {
      res = await request('POST', '/api/accounts', { body, signal: ctx.signal });
      if (!ctx.alive()) return;
    }
    if (!signUp || res.ok) {
      res = await request('POST', '/api/sessions', { body, signal: ctx.signal });
      if (!ctx.alive()) return;
    }
    submit.disabled = false;
    if (res.ok && typeof res.data.userId === 'string') {
      password.value = '';
      const back = afterSignIn();
      setAfterSignIn(null);
      ctx.signedIn(res.data.userId, body.email.toLowerCase());
      ctx.navigate(back || '#/', { replace: true });
      return;
    }
    const { box, field } = refusal(res, signUp);
    say(messages, box);
    invalid(field);
    if (res.status === 429) pause(res.retryAfter || 5);
  });
  email.focus();
}
