/* h_account.c: sign-up, sign-in, the current session, sign-out: accounts over HTTP. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "config.h"
#include "db.h"
#include "gate.h"
#include "handlers.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "password.h"
#include "session.h"
#include "token.h"
#include "util.h"

/*
 * Take a place in the password-hashing gate (gate.c) for this request.
 * Returns 0, or -1 with a 503 answer set: all auth.hash_concurrency places
 * are taken, so this worker stays free for the other routes. The caller's
 * cleanup calls gate_leave().
 */
static int
hash_place(struct req *r)
{
	if (gate_enter((int)cfg.hash_concurrency))
		return 0;
	metrics_add(M_SIGNIN_BUSY, 1);
	r->retry_after = 1;
	return http_error(r, 503, "BUSY", "too many sign-ins at this moment; try again in a second");
}

/* POST /api/accounts {email, password}: a new user with an account. */
void
h_account_create(struct req *r)
{
	char hash[PASSWORD_HASH_MAX];
	const char *params[2] = { r->f.email, hash };
	const char *reason;
	struct json_object *o;
	PGresult *res = NULL;

	if ((reason = password_policy(r->f.password, r->f.email)) != NULL) {
		/* The reason never quotes the password (password.c). */
		http_error(r, 400, "WEAK_PASSWORD", "%s", reason);
		goto out;
	}
	if (hash_place(r) != 0)
		goto out;
	if (password_hash(r->f.password, hash) != 0) {
		http_error(r, 503, "UNAVAILABLE", "could not hash the password");
		goto out;
	}
	res = db_exec(ST_ACCOUNT_CREATE, params);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		http_error(r, 503, "UNAVAILABLE", "the database is unavailable");
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "EMAIL_TAKEN") == 0) {
		http_error(r, 409, "EMAIL_TAKEN", "an account with this e-mail address exists");
		goto out;
	}
	metrics_add(M_SIGNUPS, 1);
	o = json_object_new_object();
	json_object_object_add(o, "userId", json_object_new_string(PQgetvalue(res, 0, 1)));
	http_reply(r, 201, o);
out:
	gate_leave();
	if (res != NULL)
		PQclear(res);
}

/*
 * After a successful check of the password against hash: if the cost in
 * force has changed, store a new hash of it, unless the password was
 * changed meanwhile. A failure only postpones it to the next sign-in.
 */
static void
rehash(const char *user, const char *hash, const char *password)
{
	char fresh[PASSWORD_HASH_MAX];
	const char *params[3] = { user, hash, fresh };
	PGresult *res = NULL;

	if (!password_needs_rehash(hash) || password_hash(password, fresh) != 0)
		return;
	res = db_exec(ST_ACCOUNT_REHASH, params);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
		log_msg("account: could not store a password's new hash; next sign-in tries again");
	if (res != NULL)
		PQclear(res);
}

/*
 * Issue a session for user: the token in the answer and in the cookie.
 * Returns 0, or -1 with the error answer set.
 */
static int
issue(struct req *r, const char *user)
{
	struct token t;
	char tok[TOKEN_MAX], when[40];
	struct json_object *o;
	size_t n;

	if (token_session_new(&t, user, time(NULL), cfg.session_ttl) != 0 ||
	    (n = token_sign(&t, tok, sizeof(tok))) == 0)
		return http_error(r, 503, "UNAVAILABLE", "could not sign a session token");
	/* HttpOnly: no script reads it; SameSite=Strict: no other site's page
	 * sends it; Path=/api: only the API gets it. */
	snprintf(r->set_cookie, sizeof(r->set_cookie),
		 "%s=%s; Path=/api; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
		 AUTH_SESSION_COOKIE, tok, (long long)cfg.session_ttl,
		 cfg.cookie_secure ? "; Secure" : "");
	o = json_object_new_object();
	json_object_object_add(o, "userId", json_object_new_string(user));
	json_object_object_add(o, "token", json_object_new_string_len(tok, (int)n));
	json_object_object_add(o, "expiresAt", json_object_new_string(
		util_iso_time(t.exp * 1000, when, sizeof(when))));
	http_reply(r, 201, o);
	return 0;
}

/*
 * POST /api/sessions {email, password}: sign in. A wrong password, an
 * unknown address and a disabled account get the same answer after the
 * same work (a dummy check for an unknown address).
 */
void
h_session_create(struct req *r)
{
	const char *params[1] = { r->f.email };
	PGresult *res = NULL;
	const char *user, *hash;
	int64_t wait;
	int ok;

	/* The gate first: turning a storm away must cost the least. */
	if (hash_place(r) != 0)
		goto out;
	if ((wait = session_throttled(r->f.email, r->remote_addr)) > 0) {
		metrics_add(M_SIGNIN_THROTTLED, 1);
		r->retry_after = (int)(wait < 86400 ? wait : 86400);
		http_error(r, 429, "TOO_MANY_ATTEMPTS",
			   "too many failed sign-ins; try again in %lld seconds", (long long)wait);
		goto out;
	}
	res = db_exec(ST_ACCOUNT_BY_EMAIL, params);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		http_error(r, 503, "UNAVAILABLE", "the database is unavailable");
		goto out;
	}
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 1)) {
		user = PQgetvalue(res, 0, 0);
		hash = PQgetvalue(res, 0, 1);
		ok = password_verify(hash, r->f.password);
		if (ok && strcmp(PQgetvalue(res, 0, 2), "t") == 0)
			ok = 0;		/* disabled: told apart from nothing */
	} else {
		user = hash = NULL;
		ok = password_verify_dummy(r->f.password);
	}
	if (!ok) {
		metrics_add(M_SIGNIN_FAILURES, 1);
		session_failed(r->f.email, r->remote_addr);
		http_error(r, 401, "BAD_CREDENTIALS", "wrong e-mail address or password");
		goto out;
	}
	rehash(user, hash, r->f.password);
	if (issue(r, user) != 0)
		goto out;
	session_succeeded(r->f.email);
	metrics_add(M_SIGNINS, 1);
out:
	gate_leave();
	if (res != NULL)
		PQclear(res);
}

/*
 * POST /api/sessions/oidc: sign in with an identity provider. AUTH_PROVIDER
 * has checked the access token (r->subject is its "sub"); the pair
 * (auth.jwt_issuer, sub) names a user, made at its first sign-in, and the
 * answer is a session of it like a password sign-in's. The access token
 * itself is not kept: from here on the session is the credential, checked
 * without the provider.
 */
void
h_session_provider(struct req *r)
{
	const char *params[2] = { cfg.jwt_issuer, r->subject };
	PGresult *res = NULL;

	res = db_exec(ST_IDENTITY_USER, params);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    PQgetisnull(res, 0, 0)) {
		http_error(r, 503, "UNAVAILABLE", "the database is unavailable");
		goto out;
	}
	if (issue(r, PQgetvalue(res, 0, 0)) != 0)
		goto out;
	metrics_add(M_SIGNINS, 1);
out:
	if (res != NULL)
		PQclear(res);
}

/*
 * GET /api/sessions: who the caller's session (AUTH_SESSION, header or
 * cookie) is signed in as, and until when: how a page that cannot read the
 * HttpOnly cookie learns it after a reload. Read from the verified token
 * alone; no database round trip.
 */
void
h_session_get(struct req *r)
{
	char when[40];
	struct json_object *o;

	o = json_object_new_object();
	json_object_object_add(o, "userId", json_object_new_string(r->token.user));
	json_object_object_add(o, "expiresAt", json_object_new_string(
		util_iso_time(r->token.exp * 1000, when, sizeof(when))));
	http_reply(r, 200, o);
}

/*
 * DELETE /api/sessions: sign the caller's session out (AUTH_SESSION) and
 * clear the cookie. 200 even while Redis is down: the worker keeps the
 * sign-out and stores it later (session.c).
 */
void
h_session_delete(struct req *r)
{
	struct json_object *o;

	session_revoke(&r->token);
	metrics_add(M_SIGNOUTS, 1);
	snprintf(r->set_cookie, sizeof(r->set_cookie),
		 "%s=; Path=/api; Max-Age=0; HttpOnly; SameSite=Strict%s",
		 AUTH_SESSION_COOKIE, cfg.cookie_secure ? "; Secure" : "");
	o = json_object_new_object();
	json_object_object_add(o, "signedOut", json_object_new_boolean(1));
	http_reply(r, 200, o);
}
