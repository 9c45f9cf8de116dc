/* auth.c: route access levels checked, and token and turn failures turned into answers. */
#include "auth.h"

#include <string.h>
#include <time.h>

#include "config.h"
#include "http.h"
#include "jwt.h"
#include "queue.h"
#include "session.h"
#include "token.h"

/* Answer a token that failed verification. */
static void
token_fail(struct req *r, enum token_err e)
{
	switch (e) {
	case TOKEN_EXPIRED:
		http_error(r, 401, "TOKEN_EXPIRED", "%s", token_message(e));
		break;
	case TOKEN_MISSING:
		http_error(r, 401, "TOKEN_MISSING", "%s", token_message(e));
		break;
	case TOKEN_NO_KEY:
		http_error(r, 503, "UNAVAILABLE", "%s", token_message(e));
		break;
	default:
		http_error(r, 401, "TOKEN_INVALID", "%s", token_message(e));
		break;
	}
}

/* Is addr (REMOTE_ADDR, may be NULL) a loopback address? */
static int
loopback(const char *addr)
{
	return addr != NULL && (strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0);
}

/*
 * AUTH_ACTIVE on the genuine token t: an ACTIVE token, of the request's
 * concert if it names one, whose turn Redis still holds on. Costs at most
 * one Redis command; when Redis is unusable the signed expiry alone
 * decides, so that admitted users keep booking through an outage.
 */
static enum auth_result
active(struct req *r, const struct token *t)
{
	if (t->kind != TOKEN_ACTIVE) {
		http_error(r, 403, "NOT_ACTIVE", "your turn in the queue has not come yet");
		return AUTH_DENIED;
	}
	if (FIELD_HAVE(&r->f, F_CONCERT_ID) && t->concert != r->f.concert_id) {
		http_error(r, 403, "TOKEN_WRONG_CONCERT", "this token is for another concert");
		return AUTH_DENIED;
	}
	switch (queue_turn(t)) {
	case QT_ON:
	case QT_UNKNOWN:
		return AUTH_PASS;
	case QT_ENDED:
		break;
	}
	http_error(r, 401, "TOKEN_REVOKED",
		   "this turn has ended (paid or expired); join the queue again");
	return AUTH_TURN_ENDED;
}

/*
 * A request with a cookie credential that changes state: does it come
 * from our own origin? Browsers send Sec-Fetch-Site (same-origin, or none
 * when the user typed it) and Origin on such requests; another site can
 * set neither.
 */
static int
same_origin(const struct req *r)
{
	char **env = r->fcgx->envp;
	const char *site = FCGX_GetParam("HTTP_SEC_FETCH_SITE", env);
	const char *origin = FCGX_GetParam("HTTP_ORIGIN", env);
	const char *host = FCGX_GetParam("HTTP_HOST", env);

	if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)
		return 1;
	if (site != NULL && (strcmp(site, "same-origin") == 0 || strcmp(site, "none") == 0))
		return 1;
	if (origin == NULL || host == NULL || *host == '\0')
		return 0;
	if (strncmp(origin, "https://", 8) == 0)
		origin += 8;
	else if (strncmp(origin, "http://", 7) == 0)
		origin += 7;
	else
		return 0;
	return strcmp(origin, host) == 0;
}

/*
 * A genuine session token t: still standing by Redis (one command), and
 * from our own origin if it came in the cookie. Returns AUTH_PASS or
 * AUTH_DENIED with the answer set.
 */
static enum auth_result
session(struct req *r, const struct token *t)
{
	if (session_check(t) == SESSION_ENDED) {
		http_error(r, 401, "TOKEN_REVOKED", "this session has ended; sign in again");
		return AUTH_DENIED;
	}
	if (r->cookie_credential && !same_origin(r)) {
		http_error(r, 403, "CROSS_SITE",
			   "a cookie-authenticated change must come from this site");
		return AUTH_DENIED;
	}
	return AUTH_PASS;
}

/*
 * AUTH_PROVIDER: the Authorization header's bearer token is an access
 * token of the configured identity provider (jwt.c checks it; the
 * algorithm comes from the key, never from the token). On AUTH_PASS its
 * subject is in r->subject.
 */
static enum auth_result
provider(struct req *r)
{
	struct jwt_expect want = { cfg.jwt_issuer, cfg.jwt_audience, cfg.jwt_leeway_s };
	const char *jws = r->authorization != NULL ? token_text(r->authorization) : "";
	enum jwt_err e;

	if (*jws == '\0') {
		token_fail(r, TOKEN_MISSING);
		return AUTH_DENIED;
	}
	switch ((e = jwt_verify(jws, time(NULL), &want, r->subject))) {
	case JWT_OK:
		return AUTH_PASS;
	case JWT_UNCONFIGURED:
		http_error(r, 404, "NOT_CONFIGURED", "%s", jwt_message(e));
		break;
	case JWT_EXPIRED:
		http_error(r, 401, "TOKEN_EXPIRED", "%s", jwt_message(e));
		break;
	default:
		http_error(r, 401, "TOKEN_INVALID", "%s", jwt_message(e));
		break;
	}
	return AUTH_DENIED;
}

enum auth_result
auth_check(struct req *r, enum auth_need need)
{
	struct token *t = &r->token;
	enum auth_result res = AUTH_DENIED;
	const char *kinds = "wau", *cred = r->authorization;
	char cookie[TOKEN_MAX];
	time_t now = time(NULL);
	enum token_err e;

	/* Levels without a token. */
	switch (need) {
	case AUTH_NONE:
		return AUTH_PASS;
	case AUTH_LOOPBACK:
		/* nginx allows loopback only for these; the worker checks again. */
		if (loopback(r->remote_addr))
			return AUTH_PASS;
		http_error(r, 403, "FORBIDDEN", "this resource is served to loopback only");
		return AUTH_DENIED;
	case AUTH_PROVIDER:
		return provider(r);
	case AUTH_TOKEN:
	case AUTH_QUEUE:
	case AUTH_ACTIVE:
	case AUTH_USER:
	case AUTH_SESSION:
	case AUTH_SIGNED_IN:
		break;
	case AUTH_DOOR:
		kinds = "d";
		break;
	}

	/* Sessions are taken where a level accepts them, from the header or,
	 * without one, from the cookie; the queue levels read the header only. */
	if (need == AUTH_TOKEN || need == AUTH_USER || need == AUTH_SESSION ||
	    need == AUTH_SIGNED_IN) {
		kinds = need == AUTH_SESSION ? "s" : need == AUTH_SIGNED_IN ? "us" : "waus";
		if (cred == NULL && http_cookie(r, AUTH_SESSION_COOKIE, cookie, sizeof(cookie)) == 0) {
			cred = cookie;
			r->cookie_credential = true;
		}
	}
	if ((e = token_verify_kinds(cred, now, kinds, t)) != TOKEN_OK) {
		/* An expired token is that, whatever its kind. */
		if (e == TOKEN_WRONG_KIND && now >= t->exp)
			token_fail(r, TOKEN_EXPIRED);
		else if (e == TOKEN_WRONG_KIND && need == AUTH_SESSION)
			http_error(r, 403, "TOKEN_WRONG_KIND", "this needs a session: sign in");
		else if (e == TOKEN_WRONG_KIND && need == AUTH_DOOR)
			http_error(r, 403, "TOKEN_WRONG_KIND", "this needs a door token");
		else if (e == TOKEN_WRONG_KIND && need == AUTH_SIGNED_IN)
			http_error(r, 403, "TOKEN_WRONG_KIND",
				   "this needs a signed-in user (a session or a user token), "
				   "not a queue token: sign in");
		else
			token_fail(r, e);
		goto out;
	}
	if (t->kind == TOKEN_SESSION && session(r, t) != AUTH_PASS)
		goto out;
	switch (need) {
	case AUTH_QUEUE:
		if (t->kind == TOKEN_USER) {
			http_error(r, 403, "TOKEN_WRONG_KIND", "this is not a queue token");
			goto out;
		}
		break;
	case AUTH_ACTIVE:
		if ((res = active(r, t)) != AUTH_PASS)
			goto out;
		break;
	case AUTH_USER:
		if (strcmp(t->user, r->f.user_id) != 0) {
			http_error(r, 403, "FORBIDDEN", "this token belongs to another user");
			goto out;
		}
		break;
	case AUTH_SIGNED_IN:
		/* The user is the credential's; a body naming another is refused
		 * rather than ignored, so that a client's mistake shows. */
		if (FIELD_HAVE(&r->f, F_USER_ID) && strcmp(t->user, r->f.user_id) != 0) {
			http_error(r, 403, "USER_MISMATCH",
				   "userId is not the signed-in user; leave it out or send your own");
			goto out;
		}
		break;
	default:
		break;
	}
	res = AUTH_PASS;
out:
	/* A refused token's claims are no one's to read. */
	if (res == AUTH_DENIED)
		memset(t, 0, sizeof(*t));
	return res;
}
