/* h_queue.c: joining the waiting queue and polling one's place. */
#include "handlers.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "db.h"
#include "http.h"
#include "lcache.h"
#include "metrics.h"
#include "queue.h"
#include "token.h"
#include "util.h"

/* Seconds a WAITING token stays usable; the place itself lives in Redis. */
#define WAITING_TOKEN_S 86400

/* Sign the token for place p and add the fields every queue answer has. */
static int
place_json(struct req *r, const char *user, int64_t concert,
	   const struct queue_place *p, struct json_object *o)
{
	struct token t;
	char buf[TOKEN_MAX], when[32];

	memset(&t, 0, sizeof(t));
	t.kind = p->status == Q_ACTIVE ? TOKEN_ACTIVE : TOKEN_WAITING;
	memcpy(t.user, user, UUID_STR);
	t.concert = concert;
	t.number = p->number;
	t.iat = p->now_ms / 1000;
	t.exp = p->status == Q_ACTIVE ? p->active_until_ms / 1000 : t.iat + WAITING_TOKEN_S;
	if (token_sign(&t, buf, sizeof(buf)) == 0) {
		json_object_put(o);
		return http_error(r, 503, "UNAVAILABLE", "tokens cannot be signed now");
	}
	json_object_object_add(o, "token", json_object_new_string(buf));
	json_object_object_add(o, "queueNumber", json_object_new_int64(p->number));
	json_object_object_add(o, "concertId", json_object_new_int64(concert));
	json_object_object_add(o, "status", json_object_new_string(
		p->status == Q_ACTIVE ? "ACTIVE" : p->status == Q_WAITING ? "WAITING" : "EXPIRED"));
	json_object_object_add(o, "position", json_object_new_int64(p->position));
	json_object_object_add(o, "etaSeconds",
			       p->eta_s < 0 ? NULL : json_object_new_int64(p->eta_s));
	if (p->status == Q_ACTIVE) {
		util_iso_time(p->active_until_ms, when, sizeof(when));
		json_object_object_add(o, "activeUntil", json_object_new_string(when));
	} else
		json_object_object_add(o, "activeUntil", NULL);
	return 0;
}

static int
queue_down(struct req *r)
{
	r->retry_after = 5;
	return http_error(r, 503, "QUEUE_UNAVAILABLE",
			  "the waiting queue is unavailable; please retry shortly");
}

/*
 * A concert's sale state: 't' on sale, 'f' not, 'n' no such concert, or
 * 0 when the database cannot say. Kept in the worker's micro-cache.
 */
static char
concert_state(int64_t concert)
{
	char id[24], key[32], st = 0;
	const char *params[1] = { id }, *hit;
	enum db_target from;
	PGresult *res;
	size_t len;

	util_i64(id, sizeof(id), concert);
	snprintf(key, sizeof(key), "sale:%s", id);
	if ((hit = lcache_get(key, &len)) != NULL)
		return hit[0];
	res = db_read(ST_CONCERT_ON_SALE, params, &from);
	if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK) {
		st = PQntuples(res) == 0 ? 'n' : PQgetvalue(res, 0, 0)[0];
		lcache_put(key, &st, 1, (long)cfg.micro_cache_ms);
	}
	if (res != NULL)
		PQclear(res);
	return st;
}

/* Does the user exist? 1 yes, 0 no, -1 the database cannot say. */
static int
user_exists(const char *user)
{
	const char *params[1] = { user };
	enum db_target from;
	PGresult *res = db_read(ST_USER_EXISTS, params, &from);
	int rc = -1;

	if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
		rc = PQntuples(res) == 1;
	if (res != NULL)
		PQclear(res);
	return rc;
}

int
h_queue_join(struct req *r)
{
	struct queue_place p;
	struct json_object *o = NULL;
	int fresh, known;

	switch (concert_state(r->f.concert_id)) {
	case 't':
		break;
	case 'f':
		return http_error(r, 409, "NOT_ON_SALE", "this concert is not on sale");
	case 'n':
		return http_error(r, 404, "CONCERT_NOT_FOUND", "no such concert");
	default:
		return http_error(r, 503, "UNAVAILABLE", "the database is unavailable");
	}
	fresh = queue_join(r->f.concert_id, r->f.user_id, 0, &p);
	if (fresh == -2) {
		/* First sight of this user in Redis: confirm them once. */
		if ((known = user_exists(r->f.user_id)) < 0)
			return http_error(r, 503, "UNAVAILABLE", "the database is unavailable");
		if (known == 0)
			return http_error(r, 404, "USER_NOT_FOUND", "no such user");
		fresh = queue_join(r->f.concert_id, r->f.user_id, 1, &p);
	}
	if (fresh < 0)
		return queue_down(r);
	if (fresh)
		metrics_add(M_QUEUE_JOINS, 1);
	o = json_object_new_object();
	if (place_json(r, r->f.user_id, r->f.concert_id, &p, o) != 0)
		return -1;
	/* The same place again answers like the first time; rejoined tells. */
	json_object_object_add(o, "rejoined", json_object_new_boolean(!fresh));
	http_reply(r, 201, o);
	return 0;
}

/*
 * The answer for a still-active ACTIVE token: it is returned as it is (its
 * expiry is the turn's end), so nothing is signed. The token's characters
 * are base64url, digits, dots and hyphens: nothing to escape.
 */
static int
active_answer(struct req *r, const struct token *t, int64_t until)
{
	const char *tok = token_text(r->authorization);
	char body[TOKEN_MAX + 256], when[32];
	int n;

	util_iso_time(until, when, sizeof(when));
	n = snprintf(body, sizeof(body),
		     "{\"status\":\"ACTIVE\",\"token\":\"%s\",\"queueNumber\":%lld,"
		     "\"concertId\":%lld,\"position\":0,\"etaSeconds\":0,"
		     "\"activeUntil\":\"%s\"}", tok, (long long)t->number,
		     (long long)t->concert, when);
	if (n < 0 || (size_t)n >= sizeof(body))
		return http_error(r, 401, "TOKEN_INVALID", "the token is malformed");
	http_reply_raw(r, 200, body, (size_t)n);
	return 0;
}

int
h_queue_status(struct req *r)
{
	struct queue_place p;
	struct json_object *o = NULL;
	struct token t;
	enum token_err e;
	int64_t until;

	if ((e = token_verify(r->authorization, time(NULL), &t)) != TOKEN_OK)
		return queue_token_fail(r, e);
	if (t.kind == TOKEN_USER)
		return http_error(r, 403, "TOKEN_WRONG_KIND", "this is not a queue token");
	/* An admitted user polling: one cheap check, and the token they hold. */
	if (t.kind == TOKEN_ACTIVE && (until = queue_active_until(&t)) > 0)
		return active_answer(r, &t, until);
	if (queue_poll(t.concert, t.user, t.number, &p) != 0)
		return queue_down(r);

	o = json_object_new_object();
	if (p.status == Q_EXPIRED) {
		json_object_object_add(o, "status", json_object_new_string("EXPIRED"));
		json_object_object_add(o, "queueNumber", json_object_new_int64(t.number));
		json_object_object_add(o, "concertId", json_object_new_int64(t.concert));
		json_object_object_add(o, "position", NULL);
		json_object_object_add(o, "etaSeconds", NULL);
		json_object_object_add(o, "activeUntil", NULL);
		http_reply(r, 200, o);
		return 0;
	}
	/* ACTIVE answers carry the signed ACTIVE token that booking needs. */
	if (place_json(r, t.user, t.concert, &p, o) != 0)
		return -1;
	http_reply(r, 200, o);
	return 0;
}
