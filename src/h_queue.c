/* h_queue.c: joining the waiting queue and polling one's place. */
#include "handlers.h"

#include <string.h>
#include <time.h>

#include "config.h"
#include "db.h"
#include "http.h"
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
		p->status == Q_ACTIVE ? "ACTIVE" : "WAITING"));
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

int
h_queue_join(struct req *r)
{
	char concert[24];
	const char *params[2] = { concert, r->f.user_id };
	struct queue_place p;
	struct json_object *o = NULL;
	enum db_target from;
	PGresult *res = NULL;
	int fresh, rc = -1;

	util_i64(concert, sizeof(concert), r->f.concert_id);
	res = db_read(ST_JOIN_CHECK, params, &from);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		http_error(r, 503, "UNAVAILABLE", "the database is unavailable");
		goto out;
	}
	if (PQgetisnull(res, 0, 0)) {
		http_error(r, 404, "CONCERT_NOT_FOUND", "no such concert");
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
		http_error(r, 404, "USER_NOT_FOUND", "no such user");
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		http_error(r, 409, "NOT_ON_SALE", "this concert is not on sale");
		goto out;
	}
	if ((fresh = queue_join(r->f.concert_id, r->f.user_id, &p)) < 0) {
		queue_down(r);
		goto out;
	}
	if (fresh)
		metrics_add(M_QUEUE_JOINS, 1);
	o = json_object_new_object();
	if (place_json(r, r->f.user_id, r->f.concert_id, &p, o) != 0)
		goto out;
	/* The same place again is not a new resource. */
	http_reply(r, fresh ? 201 : 200, o);
	rc = 0;
out:
	if (res != NULL)
		PQclear(res);
	return rc;
}

int
h_queue_status(struct req *r)
{
	struct queue_place p;
	struct json_object *o = NULL;
	struct token t;
	enum token_err e;

	if ((e = token_verify(r->authorization, time(NULL), &t)) != TOKEN_OK)
		return queue_token_fail(r, e);
	if (t.kind == TOKEN_USER)
		return http_error(r, 403, "TOKEN_WRONG_KIND", "this is not a queue token");
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
