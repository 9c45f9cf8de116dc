/* token.h: signed, non-shareable tokens bound to a user (and a concert). */
#ifndef BOXOFFICE_TOKEN_H
#define BOXOFFICE_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "valid.h"

#define TOKEN_MAX 256

/* What a token stands for. */
enum token_kind {
	TOKEN_WAITING = 'w',	/* a place in a concert's queue */
	TOKEN_ACTIVE = 'a',	/* admitted: may book until exp */
	TOKEN_USER = 'u',	/* the user's own identity, for balances */
	TOKEN_SESSION = 's',	/* a signed-in user's session (token_verify_kinds) */
	TOKEN_DOOR = 'd'	/* a concert's door staff: checks ticket codes of that
				   concert; user is TOKEN_NO_USER (token_verify_kinds) */
};

/* The user of a token that stands for no user (a door token). */
#define TOKEN_NO_USER "00000000-0000-0000-0000-000000000000"

/* A session id: 16 random bytes as 32 lower-case hex digits, and a NUL. */
#define TOKEN_SESSION_STR 33

struct token {
	char kind;			/* enum token_kind */
	char user[UUID_STR];
	int64_t concert;		/* 0 for user tokens */
	int64_t number;			/* queue number, 0 for user tokens */
	int64_t iat;			/* issued at, Unix seconds */
	int64_t exp;			/* expires at, Unix seconds */
	char session[TOKEN_SESSION_STR];	/* session tokens only, else "" */
};

enum token_err {
	TOKEN_OK = 0,
	TOKEN_MISSING,		/* no Bearer token */
	TOKEN_MALFORMED,	/* not of the token's form */
	TOKEN_BAD_SIGNATURE,	/* forged or altered */
	TOKEN_EXPIRED,		/* genuine but past exp */
	TOKEN_NO_KEY,		/* no key loaded: the service is misconfigured */
	TOKEN_WRONG_KIND	/* genuine, but of a kind not accepted here */
};

/*
 * Load the signing key and, during a rotation, the old key that is still
 * accepted. Keys are read whole (32 to 1024 bytes). Returns 0, or -1 with
 * a message in err (the previous keys then stay in force).
 */
int token_load_keys(const char *file, const char *old_file, char *err, size_t errlen);

/* Write the signed token for t into out. Returns its length, or 0 on error. */
size_t token_sign(const struct token *t, char *out, size_t outlen);

/*
 * Verify an "Authorization" header value ("Bearer <token>") or a bare
 * token, in constant time with respect to the signature. On TOKEN_OK or
 * TOKEN_EXPIRED *t holds the claims.
 */
enum token_err token_verify(const char *header, time_t now, struct token *t);

/*
 * The same, accepting only the kinds listed in kinds (e.g. "s", or "us"):
 * a genuine token of another kind is TOKEN_WRONG_KIND, its claims in *t.
 * token_verify() is token_verify_kinds() with "wau": session tokens are
 * only taken where a caller asks for them.
 */
enum token_err token_verify_kinds(const char *header, time_t now, const char *kinds,
				  struct token *t);

/*
 * Fill *t as a new session of user (a canonical UUID), issued at now and
 * lasting ttl seconds, with a fresh random session id. Returns 0, or -1
 * if user is not a UUID or ttl is not positive.
 */
int token_session_new(struct token *t, const char *user, time_t now, int64_t ttl);

/* The token in an Authorization header value: past "Bearer" and spaces. */
const char *token_text(const char *header);

/* Short client-facing description of err. */
const char *token_message(enum token_err err);

#endif
