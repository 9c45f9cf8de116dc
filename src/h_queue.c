/* h_queue.c: joining the waiting queue, one's place and turn, the progress document. */
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "config.h"
#include "db.h"
#include "http.h"
#include "metrics.h"
#include "queue.h"
#include "token.h"
#include "util.h"

/* Seconds a WAITING token stays usable; the place itself lives in Redis. */
#define WAITING_TOKEN_S 86400

/* A JSON ISO time in quotes for Unix ms, or null for 0. */
static void
iso_or_null(int64_t ms, char *buf, size_t len)
{
	if (ms <= 0) {
		snprintf(buf, len, "null");
		return;
	}
	buf[0] = '"';
	util_iso_time(ms, buf + 1, len - 2);
	strcat(buf, "\"");
}

/*
 * Answer status with the place p of user in concert's queue: a token
 * signed for it and the fields every queue answer has; rejoined is "" or
 * the join's ,"rejoined":true|false. On failure the error is the answer.
 * The token's characters are base64url, digits, dots and hyphens, so
 * nothing in the answer needs escaping.
 */
static void
place_reply(struct req *r, int status, const char *user, int64_t concert,
	    const struct queue_place *p, const char *rejoined)
{
	struct token t;
	char tok[TOKEN_MAX], eta[24], until[40], number[24], opens[40],
	     body[TOKEN_MAX + 448];
	const char *word;
	int n;

	memset(&t, 0, sizeof(t));
	t.kind = p->status == Q_ACTIVE ? TOKEN_ACTIVE : TOKEN_WAITING;
	memcpy(t.user, user, UUID_STR);
	t.concert = concert;
	t.number = p->number;
	t.iat = p->now_ms / 1000;
	t.exp = p->status == Q_ACTIVE ? p->active_until_ms / 1000 : t.iat + WAITING_TOKEN_S;
	if (token_sign(&t, tok, sizeof(tok)) == 0) {
		http_error(r, 503, "UNAVAILABLE", "tokens cannot be signed now");
		return;
	}
	if (p->eta_s < 0)
		strcpy(eta, "null");
	else
		snprintf(eta, sizeof(eta), "%lld", (long long)p->eta_s);
	iso_or_null(p->status == Q_ACTIVE ? p->active_until_ms : 0, until, sizeof(until));
	iso_or_null(p->opens_ms, opens, sizeof(opens));
	/* A pre-queue place has no number until the draw. */
	if (p->status == Q_PRE_QUEUE)
		strcpy(number, "null");
	else
		util_i64(number, sizeof(number), p->number);
	word = p->status == Q_ACTIVE ? "ACTIVE" : p->status == Q_WAITING ? "WAITING" :
		 p->status == Q_PRE_QUEUE ? "PRE_QUEUE" : "EXPIRED";
	n = snprintf(body, sizeof(body),
		     "{\"token\":\"%s\",\"queueNumber\":%s,\"concertId\":%lld,"
		     "\"status\":\"%s\",\"position\":%lld,\"etaSeconds\":%s,"
		     "\"activeUntil\":%s,\"opensAt\":%s%s}", tok, number, (long long)concert,
		     word, (long long)p->position, eta, until, opens, rejoined);
	if (n < 0 || (size_t)n >= sizeof(body)) {
		http_error(r, 500, "INTERNAL", "the answer does not fit");
		return;
	}
	http_reply_raw(r, status, body, (size_t)n);
}

static void
queue_down(struct req *r)
{
	r->retry_after = 5;
	http_error(r, 503, "QUEUE_UNAVAILABLE",
		   "the waiting queue is unavailable; please retry shortly");
}

/*
 * A concert's sale state and window from the database into *sale (see
 * struct queue_sale), for a queue script that asked for it; Redis keeps it
 * for the next ones (see queue_join()). Returns 0, or -1 with the 503
 * answer set when the database cannot say.
 */
static int
concert_state(struct req *r, int64_t concert, struct queue_sale *sale)
{
	char id[24];
	const char *params[1] = { id };
	enum db_target from;
	PGresult *res;
	int rc = -1;

	memset(sale, 0, sizeof(*sale));
	util_i64(id, sizeof(id), concert);
	res = db_read(ST_CONCERT_ON_SALE, params, &from);
	if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK) {
		if (PQntuples(res) == 0) {
			sale->state = 'n';
		} else {
			sale->state = PQgetvalue(res, 0, 0)[0];
			sale->opens_ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
			sale->closes_ms = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
		}
		rc = 0;
	}
	if (res != NULL)
		PQclear(res);
	if (rc != 0)
		http_error(r, 503, "UNAVAILABLE", "the database is unavailable");
	return rc;
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

/*
 * Join for the signed-in user (AUTH_SIGNED_IN): r->token.user, never a
 * user the body names. One queue script in the common case. Redis may first ask for the
 * concert's sale state or to confirm a user it has not seen; each costs
 * one database read and one more script run.
 */
void
h_queue_join(struct req *r)
{
	const char *user = r->token.user;
	struct queue_place p;
	struct queue_sale sale_db, *sale = NULL;
	enum queue_join rc;
	int known, verified = 0, round;

	for (round = 0; round < 3; round++) {
		rc = queue_join(r->f.concert_id, user, verified, sale, &p);
		if (rc == QJ_SALE_UNKNOWN && sale == NULL) {
			sale = &sale_db;
			if (concert_state(r, r->f.concert_id, sale) != 0)
				return;
		} else if (rc == QJ_USER_UNKNOWN && !verified) {
			if ((known = user_exists(user)) < 0) {
				http_error(r, 503, "UNAVAILABLE", "the database is unavailable");
				return;
			}
			if (known == 0) {
				http_error(r, 404, "USER_NOT_FOUND", "no such user");
				return;
			}
			verified = 1;
		} else
			break;
	}
	/* With redis.wait_replica_ms, a place is only given once a replica
	 * has it too; the client's retry finds the same place. */
	if ((rc == QJ_NEW || rc == QJ_AGAIN) && cache_wait_replica() != 0)
		return queue_down(r);
	switch (rc) {
	case QJ_NEW:
		metrics_add(M_QUEUE_JOINS, 1);
		/* The same place again answers like the first time; rejoined tells. */
		place_reply(r, 201, user, r->f.concert_id, &p, ",\"rejoined\":false");
		break;
	case QJ_AGAIN:
		place_reply(r, 201, user, r->f.concert_id, &p, ",\"rejoined\":true");
		break;
	case QJ_NOT_ON_SALE:
		http_error(r, 409, "NOT_ON_SALE", "this concert is not on sale");
		break;
	case QJ_SALE_CLOSED:
		http_error(r, 409, "SALE_CLOSED", "the sale of this concert has closed");
		break;
	case QJ_NO_CONCERT:
		http_error(r, 404, "CONCERT_NOT_FOUND", "no such concert");
		break;
	default:
		queue_down(r);
		break;
	}
}

/*
 * The answer for a still-active ACTIVE token: it is returned as it is (its
 * expiry is the turn's end), so nothing is signed. The token's characters
 * are base64url, digits, dots and hyphens: nothing to escape.
 */
static void
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
	if (n < 0 || (size_t)n >= sizeof(body)) {
		http_error(r, 401, "TOKEN_INVALID", "the token is malformed");
		return;
	}
	http_reply_raw(r, 200, body, (size_t)n);
}

/* The caller's queue token (AUTH_QUEUE) is r->token. */
void
h_queue_status(struct req *r)
{
	const struct token *t = &r->token;
	struct queue_place p;
	struct queue_sale sale;
	struct json_object *o = NULL;
	enum queue_join rc;
	int64_t until;

	/* An admitted user polling: one cheap check, and the token they hold. */
	if (t->kind == TOKEN_ACTIVE && (until = queue_active_until(t)) > 0) {
		active_answer(r, t, until);
		return;
	}
	/* A pre-queue place (number 0) may need the sale state, once. */
	rc = queue_poll(t->concert, t->user, t->number, NULL, &p);
	if (rc == QJ_SALE_UNKNOWN) {
		if (concert_state(r, t->concert, &sale) != 0)
			return;
		rc = queue_poll(t->concert, t->user, t->number, &sale, &p);
	}
	if (rc != QJ_AGAIN) {
		queue_down(r);
		return;
	}
	if (p.status == Q_EXPIRED) {
		o = json_object_new_object();
		json_object_object_add(o, "status", json_object_new_string("EXPIRED"));
		json_object_object_add(o, "queueNumber", json_object_new_int64(t->number));
		json_object_object_add(o, "concertId", json_object_new_int64(t->concert));
		json_object_object_add(o, "position", NULL);
		json_object_object_add(o, "etaSeconds", NULL);
		json_object_object_add(o, "activeUntil", NULL);
		http_reply(r, 200, o);
		return;
	}
	/* ACTIVE answers carry the signed ACTIVE token that booking needs. */
	place_reply(r, 200, t->user, t->concert, &p, "");
}

/*
 * GET /api/queues/{concertId}/progress: the concert's queue as everyone
 * may see it, the same for every caller, so nginx keeps it one second
 * (Cache-Control: public, max-age=1) and a crowd of waiters polling it
 * costs the workers one request per second per concert. One queue script,
 * which also runs admission (so the queue moves while waiters only read
 * this) and, at the opening, the pre-queue's draw; when Redis no longer
 * has the sale state, one database read more.
 * Errors (no such concert, Redis down) are not cached.
 */
void
h_queue_progress(struct req *r)
{
	struct queue_progress p;
	struct queue_sale sale_db, *sale = NULL;
	const char *state;
	char when[40], opens[40], body[512];
	int rc, round, n;

	for (round = 0; round < 2; round++) {
		if ((rc = queue_progress(r->f.concert_id, sale, &p)) != 1)
			break;
		sale = &sale_db;
		if (concert_state(r, r->f.concert_id, sale) != 0)
			return;
	}
	if (rc != 0) {
		queue_down(r);
		return;
	}
	if (p.sale == 'n') {
		http_error(r, 404, "CONCERT_NOT_FOUND", "no such concert");
		return;
	}
	/* Maintenance closes the queue routes (dispatch()): the queue stands still. */
	state = cfg.maintenance ? "PAUSED" : p.sale == 'u' ? "UPCOMING" :
		p.sale == 'o' ? "ON_SALE" : "CLOSED";
	util_iso_time(p.now_ms, when, sizeof(when));
	iso_or_null(p.opens_ms, opens, sizeof(opens));
	n = snprintf(body, sizeof(body),
		     "{\"concertId\":%lld,\"nowServing\":%lld,\"admittedPerSecond\":%.1f,"
		     "\"waiting\":%lld,\"preQueued\":%lld,\"saleState\":\"%s\","
		     "\"saleOpensAt\":%s,\"claimWindowSeconds\":%lld,\"updatedAt\":\"%s\","
		     "\"pollAfterMs\":%lld}", (long long)r->f.concert_id, (long long)p.served,
		     (double)p.admitted_recently / QUEUE_RATE_WINDOW_S, (long long)p.waiting,
		     (long long)p.pre_queued, state, opens, (long long)cfg.claim_window, when,
		     (long long)cfg.progress_poll_ms);
	if (n < 0 || (size_t)n >= sizeof(body)) {
		http_error(r, 500, "INTERNAL", "the answer does not fit");
		return;
	}
	r->cache_control = "public, max-age=1";
	http_reply_raw(r, 200, body, (size_t)n);
}
