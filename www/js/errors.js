// errors.js: what each API error code means to the person using the site.
// Every code the API documents has a message here; anything else gets the
// generic one. The API's own "message" is meant for developers and is never
// shown as such.

const MESSAGES = {
  // request shape
  BAD_JSON: 'The site sent something the server could not read. Please reload the page and try again.',
  BAD_REQUEST: 'The server could not understand this request. Please reload the page and try again.',
  INVALID_FIELD: 'Some of the details sent were not valid. Please check them and try again.',
  MISSING_FIELD: 'Some required details were missing. Please try again.',
  NOT_FOUND: 'We could not find what you were looking for.',
  METHOD_NOT_ALLOWED: 'That action is not possible here.',
  UNSUPPORTED_MEDIA_TYPE: 'The site sent its request in a form the server does not accept. Please reload the page.',
  BODY_TOO_LARGE: 'That request was too large for the server.',
  URI_TOO_LONG: 'That web address is too long. Please go back to the concert list.',
  // queue passes
  TOKEN_MISSING: 'This browser has no place in the queue for this concert yet. Please join the queue.',
  TOKEN_INVALID: 'Your queue pass is no longer valid. Please join the queue again.',
  TOKEN_EXPIRED: 'Your queue pass has expired. Please join the queue again.',
  TOKEN_REVOKED: 'Your turn has ended (you paid, or the time ran out). Join the queue again to book another seat.',
  TOKEN_WRONG_CONCERT: 'Your queue pass is for a different concert. Please join the queue for this one.',
  TOKEN_WRONG_KIND: 'This pass cannot be used here. Please join the queue again.',
  NOT_ACTIVE: 'It is not your turn yet. Please wait in the queue.',
  FORBIDDEN: 'You are not allowed to do that with this account.',
  // accounts and sessions
  BAD_CREDENTIALS: 'The e-mail address or the password is wrong. Please check both and try again.',
  TOO_MANY_ATTEMPTS: 'Too many failed sign-ins, so signing in to this account is paused for a while.',
  EMAIL_TAKEN: 'An account with this e-mail address already exists. Sign in instead, or use another address.',
  WEAK_PASSWORD: 'This password is not allowed. Please choose another one.',
  CROSS_SITE: 'This request did not come from this site, so it was refused. Please reload the page and try again.',
  SIGN_IN_NEEDED: 'Please sign in first.',
  // things that do not exist
  CONCERT_NOT_FOUND: 'This concert does not exist.',
  USER_NOT_FOUND: 'We do not know this account. Please sign in again.',
  SCHEDULE_NOT_FOUND: 'This date is not available for this concert.',
  SEAT_NOT_FOUND: 'This seat does not exist.',
  RESERVATION_NOT_FOUND: 'We could not find this reservation. It may belong to another user.',
  // booking
  NOT_ON_SALE: 'Tickets for this concert are not on sale.',
  SEAT_TAKEN: 'Sorry, someone else has just taken this seat. Please choose another one.',
  HOLD_LIMIT: 'You already hold as many seats as allowed for this date. Pay for or release one first.',
  HOLD_EXPIRED: 'Your hold on this seat has expired, so no money was taken. Please choose a seat again.',
  ALREADY_PAID: 'This seat is already paid for.',
  WRONG_CONCERT: 'This reservation belongs to another concert.',
  TICKET_LIMIT: 'You already hold or bought as many seats of this concert as one person may.',
  // tickets
  TICKET_NOT_FOUND: 'We could not find this ticket among yours.',
  REFUND_CLOSED: 'Refunds for this show have closed, so the ticket stays valid. Nothing was changed.',
  // money
  INSUFFICIENT_BALANCE: 'Your balance is too low for this seat. Nothing was charged: add money to your balance, then pay.',
  IDEMPOTENCY_MISMATCH: 'This request clashed with an earlier one. Please try again.',
  BALANCE_LIMIT: 'Your balance cannot go that high.',
  INVALID_AMOUNT: 'Please enter a whole amount greater than zero.',
  AMOUNT_TOO_LARGE: 'That amount is more than one top-up allows. Please enter a smaller amount.',
  // outages
  QUEUE_UNAVAILABLE: 'The queue is briefly unavailable. Your place is kept and we keep trying.',
  MAINTENANCE: 'The queue is paused for maintenance. Keep this page open: your place is kept.',
  UNAVAILABLE: 'The service is busy or briefly unavailable. Please try again in a moment.',
  SERVICE_UNAVAILABLE: 'The service is briefly unavailable. Please try again in a moment.',
  UPSTREAM_UNAVAILABLE: 'The service is briefly unavailable. Please try again in a moment.',
  UPSTREAM_TIMEOUT: 'The service took too long to answer. Please try again in a moment.',
  RATE_LIMITED: 'Too many requests at once. Please wait a moment; we slow down automatically.',
  INTERNAL: 'Something went wrong on our side. Nothing was changed; please try again.',
  NETWORK: 'We cannot reach the server. Check your connection; we keep trying.',
  BAD_RESPONSE: 'The server sent an answer we could not read. Please try again.',
};

const GENERIC = 'Something went wrong. Please try again.';

/** The message for an error code. */
export function messageFor(code) {
  return Object.prototype.hasOwnProperty.call(MESSAGES, code) ? MESSAGES[code] : GENERIC;
}

/** The message for an api.request() answer that failed. */
export function messageOf(res) {
  return messageFor(res && res.error ? res.error.code : '');
}

export const KNOWN_CODES = Object.keys(MESSAGES);
