/* session.h: signed-in sessions' revocation and sign-in throttling, kept in Redis. */
#ifndef BOXOFFICE_SESSION_H
#define BOXOFFICE_SESSION_H

#include <stdint.h>

#include "token.h"

/* Whether a genuine, unexpired session token still stands. */
enum session_state {
	SESSION_ON,		/* neither signed out nor its account disabled */
	SESSION_ENDED,		/* signed out, or issued before its user's
				   sessions_valid_after (account disabled) */
	SESSION_UNKNOWN		/* Redis is unusable: the signed expiry decides */
};

/*
 * The check every request with a session token makes: its session's
 * sign-out marker and its user's sessions_valid_after, read in one Redis
 * command (MGET). Sign-outs this worker kept back during an outage are
 * written first, and refuse their sessions here even while Redis is down.
 */
enum session_state session_check(const struct token *t);

/*
 * Sign the session t stands for out: a marker in Redis that lasts until
 * t's expiry. Returns 0 if Redis has it, 1 if Redis is unusable: then the
 * worker keeps it (a bounded list) and writes it when Redis answers again,
 * refusing the session itself meanwhile.
 */
int session_revoke(const struct token *t);

/*
 * Sign-in throttling of the account of email (canonical) and the client
 * address addr (may be NULL). Returns the seconds to wait (for
 * Retry-After) if either has had auth.max_failures failed sign-ins within
 * auth.failure_window seconds, else 0 (also when Redis is unusable).
 */
int64_t session_throttled(const char *email, const char *addr);

/* Count one failed sign-in for email and addr. */
void session_failed(const char *email, const char *addr);

/* A successful sign-in: the account's failures are forgotten. */
void session_succeeded(const char *email);

#endif
