/* h_booking.c: concerts, schedules, seats, holds, payments and balances. */
#include "handlers.h"

#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "config.h"
#include "db.h"
#include "http.h"
#include "keys.h"
#include "lcache.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "seatcache.h"
#include "token.h"
#include "util.h"

/*
 * Error codes of the booking and ticket functions in sql/ and what they
 * mean to a client.
 */
static const struct {
	const char *code;
	int status;
	const char *message;
} outcomes[] = {
	{ "SCHEDULE_NOT_FOUND", 404, "no such schedule for this concert" },
	{ "USER_NOT_FOUND", 404, "no such user" },
	{ "SEAT_NOT_FOUND", 404, "no such seat in this schedule" },
	{ "RESERVATION_NOT_FOUND", 404, "no such reservation" },
	{ "SEAT_TAKEN", 409, "this seat is already held or sold" },
	{ "NOT_ON_SALE", 409, "this concert is not on sale now: its sale has not opened yet "
	  "or has closed" },
	{ "HOLD_LIMIT", 409, "you already hold as many seats in this schedule as allowed" },
	{ "TICKET_LIMIT", 409, "you already hold or bought as many seats of this concert "
	  "as one person may" },
	{ "HOLD_EXPIRED", 409, "the hold has expired or was released; no money moved" },
	{ "ALREADY_PAID", 409, "this reservation is already paid" },
	{ "WRONG_CONCERT", 403, "this reservation belongs to another concert" },
	{ "INSUFFICIENT_BALANCE", 402, "the balance does not cover the price; nothing was charged" },
	{ "IDEMPOTENCY_MISMATCH", 422, "this Idempotency-Key was used for a different request" },
	{ "BALANCE_LIMIT", 409, "the balance would exceed its maximum" },
	{ "INVALID_AMOUNT", 400, "amount must be a positive integer" },
	{ "TICKET_NOT_FOUND", 404, "no such ticket" },
	{ "REFUND_CLOSED", 409, "refunds of this show have closed; nothing changed" },
};

/*
 * Did a booking or ticket statement fail: no answer in time, an error, or
 * not exactly one row? Then the 503 answer (an outage or a timeout) or the
 * 500 (any other error, logged) is set and true returned.
 */
bool
h_failed(struct req *r, const PGresult *res)
{
	if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		return false;
	/* A write cut off by a deadline may still have committed: say so. */
	if (res == NULL)
		http_error(r, 503, "UNAVAILABLE", "the database did not answer in time; retry "
			   "(with the same Idempotency-Key for payments and charges)");
	else if (db_unavailable(res))
		http_error(r, 503, "UNAVAILABLE", "the database is busy; nothing changed");
	else {
		log_msg("booking query failed: %s", PQresultErrorMessage(res));
		http_error(r, 500, "INTERNAL", "the request failed; nothing changed");
	}
	return true;
}

/*
 * Answer from a booking or ticket function's (code, body, ...) result:
 * the body with ok_status for OK or a replayed answer, else the mapped
 * error (503 for an outage, 500 for an unknown outcome).
 */
enum h_outcome
h_answer(struct req *r, PGresult *res, int ok_status)
{
	const char *code, *body;
	size_t i;

	if (h_failed(r, res))
		return OUT_ERROR;
	code = PQgetvalue(res, 0, 0);
	body = PQgetvalue(res, 0, 1);
	if (strcmp(code, "OK") == 0 || strcmp(code, "REPLAY") == 0) {
		http_reply_raw(r, ok_status, body, (size_t)PQgetlength(res, 0, 1));
		if (strcmp(code, "REPLAY") == 0) {
			metrics_add(M_IDEM_REPLAYS, 1);
			return OUT_REPLAY;
		}
		return OUT_DONE;
	}
	for (i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
		if (strcmp(code, outcomes[i].code) == 0) {
			http_error(r, outcomes[i].status, code, "%s", outcomes[i].message);
			return OUT_ERROR;
		}
	log_msg("booking: unknown outcome %s", code);
	http_error(r, 500, "INTERNAL", "the request failed");
	return OUT_ERROR;
}

/* An integer member of a JSON answer body, 0 if absent. */
static int64_t
body_int(const char *body, const char *name)
{
	struct json_object *o = body != NULL ? json_tokener_parse(body) : NULL, *v;
	int64_t n = 0;

	if (o != NULL && json_object_object_get_ex(o, name, &v))
		n = json_object_get_int64(v);
	json_object_put(o);
	return n;
}

/*
 * Integer column col of a booking result's row (the payment's amount and
 * count, returned beside its answer), 0 if NULL.
 */
static int64_t
result_int(const PGresult *res, int col)
{
	return PQgetisnull(res, 0, col) ? 0 : strtoll(PQgetvalue(res, 0, col), NULL, 10);
}

/* Public reads may be kept by browsers and proxies as long as our caches. */
#define PUBLIC_READ "public, max-age=1"

/*
 * A public read (concert list, schedules): Redis cache, else a replica,
 * else the primary. A NULL value means "no such thing" (404 code).
 */
static void
cached_read(struct req *r, const char *key, enum db_stmt st, const char *const *params,
	    const char *missing_code, const char *missing_msg)
{
	enum db_target from;
	PGresult *res = NULL;
	const char *local;
	char *hit = NULL;
	size_t len = 0;

	if ((local = lcache_get(key, &len)) != NULL) {
		http_reply_raw(r, 200, local, len);
		r->cache_control = PUBLIC_READ;
		return;
	}
	if ((hit = cache_get(key, &len)) != NULL) {
		http_reply_raw(r, 200, hit, len);
		r->cache_control = PUBLIC_READ;
		lcache_put(key, hit, len, (long)cfg.micro_cache_ms);
		goto out;
	}
	res = db_read(st, params, &from);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		http_error(r, 503, "UNAVAILABLE", "the database is unavailable");
		goto out;
	}
	if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
		http_error(r, 404, missing_code, "%s", missing_msg);
		goto out;
	}
	len = (size_t)PQgetlength(res, 0, 0);
	http_reply_raw(r, 200, PQgetvalue(res, 0, 0), len);
	r->cache_control = PUBLIC_READ;
	cache_set(key, PQgetvalue(res, 0, 0), len, (long)cfg.cache_ttl_ms);
	lcache_put(key, PQgetvalue(res, 0, 0), len, (long)cfg.micro_cache_ms);
out:
	free(hit);
	if (res != NULL)
		PQclear(res);
}

void
h_concerts(struct req *r)
{
	cached_read(r, keys_concerts, ST_CONCERTS, NULL, "NOT_FOUND", "no concerts");
}

void
h_schedules(struct req *r)
{
	char id[24], key[48];
	const char *params[1] = { id };

	util_i64(id, sizeof(id), r->f.concert_id);
	keys_schedules(key, sizeof(key), r->f.concert_id);
	cached_read(r, key, ST_SCHEDULES, params, "CONCERT_NOT_FOUND", "no such concert");
}

/*
 * The seat map: from its Redis copy while no seat of the schedule has
 * changed since (see seatcache.c), else from the primary, so a hold shows
 * at once. The caller's ACTIVE token is of this concert (AUTH_ACTIVE).
 */
void
h_seats(struct req *r)
{
	char concert[24], schedule[24], *hit = NULL;
	const char *params[2] = { concert, schedule };
	PGresult *res = NULL;
	int64_t version;
	size_t len;
	long ttl;

	if ((hit = seatcache_get(r->f.schedule_id, r->f.concert_id, &len, &version)) != NULL) {
		http_reply_raw(r, 200, hit, len);
		goto out;
	}
	util_i64(concert, sizeof(concert), r->f.concert_id);
	util_i64(schedule, sizeof(schedule), r->f.schedule_id);
	res = db_exec(ST_SEATS, params);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		http_error(r, 503, "UNAVAILABLE", "the database is unavailable");
		goto out;
	}
	if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0)) {
		http_error(r, 404, "SCHEDULE_NOT_FOUND", "no such schedule for this concert");
		goto out;
	}
	len = (size_t)PQgetlength(res, 0, 0);
	http_reply_raw(r, 200, PQgetvalue(res, 0, 0), len);
	/* A schema without the freshness column is served, never cached. */
	ttl = PQnfields(res) > 1 && !PQgetisnull(res, 0, 1) ? atol(PQgetvalue(res, 0, 1)) : 0;
	seatcache_put(r->f.schedule_id, r->f.concert_id, version, PQgetvalue(res, 0, 0), len, ttl);
out:
	free(hit);
	if (res != NULL)
		PQclear(res);
}

/* A hold for the caller's ACTIVE token (AUTH_ACTIVE): its user and concert. */
void
h_hold(struct req *r)
{
	char concert[24], schedule[24], seat[24], ttl[24], max[24], tickets[24];
	const char *params[7] = { concert, schedule, seat, r->token.user, ttl, max, tickets };
	PGresult *res = NULL;

	util_i64(concert, sizeof(concert), r->token.concert);
	util_i64(schedule, sizeof(schedule), r->f.schedule_id);
	util_i64(seat, sizeof(seat), r->f.seat_number);
	util_i64(ttl, sizeof(ttl), cfg.hold_ttl);
	util_i64(max, sizeof(max), cfg.max_holds_per_user);
	util_i64(tickets, sizeof(tickets), cfg.max_tickets_per_user);
	res = db_exec(ST_HOLD, params);
	if (h_answer(r, res, 201) == OUT_DONE) {
		metrics_add(M_HOLDS, 1);
		seatcache_changed(r->f.schedule_id);
	}
	if (res != NULL)
		PQclear(res);
}

/*
 * GET and DELETE of a reservation: any genuine token (AUTH_TOKEN), whose
 * user the SQL function requires to be the holder.
 */
static void
reservation_op(struct req *r, enum db_stmt st)
{
	const char *params[2] = { r->f.reservation_id, r->token.user };
	PGresult *res = NULL;

	res = db_exec(st, params);
	if (h_answer(r, res, 200) == OUT_DONE && st == ST_RELEASE) {
		metrics_add(M_RELEASES, 1);
		seatcache_changed(body_int(r->raw_out, "scheduleId"));
	}
	if (res != NULL)
		PQclear(res);
}

void
h_reservation_get(struct req *r)
{
	reservation_op(r, ST_RESERVATION);
}

void
h_reservation_release(struct req *r)
{
	reservation_op(r, ST_RELEASE);
}

/*
 * The reservations a payment names, as the PostgreSQL array literal the
 * SQL function takes ("{id,id}") and as the text its Idempotency-Key is
 * recorded for: the id of a one-reservation request, "list:" and the ids
 * in the order sent for a list (sql/functions/05_money.sql builds the
 * same). Both buffers hold RESERVATION_IDS_MAX ids. Ids are canonical
 * UUIDs (valid.c), so nothing needs quoting.
 */
static void
pay_request(const struct fields *f, char *array, char *hash, size_t size)
{
	size_t i, alen = 0, hlen = 0;

	if (!FIELD_HAVE(f, F_RESERVATION_IDS)) {
		snprintf(array, size, "{%s}", f->reservation_id);
		snprintf(hash, size, "%s", f->reservation_id);
		return;
	}
	alen = (size_t)snprintf(array, size, "{");
	hlen = (size_t)snprintf(hash, size, "list:");
	for (i = 0; i < f->n_reservation_ids; i++) {
		alen += (size_t)snprintf(array + alen, size - alen, "%s%s", i > 0 ? "," : "",
					 f->reservation_ids[i]);
		hlen += (size_t)snprintf(hash + hlen, size - hlen, "%s%s", i > 0 ? "," : "",
					 f->reservation_ids[i]);
	}
	snprintf(array + alen, size - alen, "}");
}

/* Room for RESERVATION_IDS_MAX ids, their commas and "list:" or "{}". */
#define PAY_REQUEST_MAX (RESERVATION_IDS_MAX * UUID_STR + 8)

/*
 * A payment with the caller's ACTIVE token (AUTH_ACTIVE): its user pays
 * one hold (reservationId) or several (reservationIds, all or none) of
 * its concert. The turn ends when the payment leaves the user no live
 * hold in the concert. Also called when the token's turn has ended
 * (R_AFTER_TURN), with 401 TOKEN_REVOKED as the answer so far.
 */
void
h_pay(struct req *r)
{
	const char *key = FIELD_HAVE(&r->f, F_IDEM_KEY) ? r->f.idem_key : NULL;
	const struct token *t = &r->token;
	char concert[24], *array = NULL, *hash = NULL;
	const char *params[5] = { t->user, NULL, concert, key, NULL };
	const char *lookup[4] = { t->user, "payment", key, NULL };
	const char *sched;
	char *end;
	PGresult *res = NULL;
	enum h_outcome outcome;
	long long id;

	if (FIELD_HAVE(&r->f, F_RESERVATION_IDS) &&
	    r->f.n_reservation_ids > (size_t)cfg.max_holds_per_user) {
		http_error(r, 400, "INVALID_FIELD", "reservationIds may list at most %lld ids",
			   (long long)cfg.max_holds_per_user);
		return;
	}
	if ((array = malloc(PAY_REQUEST_MAX)) == NULL || (hash = malloc(PAY_REQUEST_MAX)) == NULL) {
		http_error(r, 503, "UNAVAILABLE", "out of memory; nothing changed");
		goto out;
	}
	pay_request(&r->f, array, hash, PAY_REQUEST_MAX);
	params[1] = array;
	params[4] = FIELD_HAVE(&r->f, F_RESERVATION_IDS) ? "true" : "false";
	lookup[3] = hash;

	/* A retry of a payment that went through may find the turn ended:
	 * give it the first answer, as the Idempotency-Key promises. Without a
	 * key, or with one never used, the 401 stands. */
	if (r->turn_ended) {
		if (key == NULL)
			goto out;
		res = db_exec(ST_IDEM_LOOKUP, lookup);
		if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
			http_error(r, 503, "UNAVAILABLE", "the database is unavailable");
		else if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
			h_answer(r, res, 201);	/* the first answer, or 422 */
		goto out;
	}
	util_i64(concert, sizeof(concert), t->concert);
	res = db_exec(ST_PAY, params);
	outcome = h_answer(r, res, 201);
	if (outcome != OUT_DONE)
		goto out;	/* a replay may be of an earlier turn: it ends none */
	metrics_add(M_PAYMENTS, (uint64_t)result_int(res, 3));
	metrics_add(M_TICKETS_SOLD, (uint64_t)result_int(res, 3));
	metrics_purchase(result_int(res, 3));
	metrics_add(M_PAYMENT_AMOUNT, (uint64_t)result_int(res, 2));
	/* "1,7": the schedules whose seats were sold. */
	for (sched = PQgetvalue(res, 0, 4); *sched != '\0'; sched = end + (*end == ',')) {
		id = strtoll(sched, &end, 10);
		if (end == sched)
			break;		/* not a number: nothing more to read */
		seatcache_changed(id);
	}
	if (strcmp(PQgetvalue(res, 0, 5), "f") == 0)
		queue_revoke(t);
out:
	free(array);
	free(hash);
	if (res != NULL)
		PQclear(res);
}

/*
 * The balance of the caller's user (r->token.user): the path's user on
 * /api/users/{userId}/balance (AUTH_USER makes them one), the credential's
 * on /api/me/balance (AUTH_TOKEN).
 */
void
h_balance(struct req *r)
{
	const char *params[1] = { r->token.user };
	struct json_object *o;
	PGresult *res = NULL;

	res = db_exec(ST_BALANCE, params);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		http_error(r, 503, "UNAVAILABLE", "the database is unavailable");
		goto out;
	}
	if (PQntuples(res) == 0) {
		http_error(r, 404, "USER_NOT_FOUND", "no such user");
		goto out;
	}
	o = json_object_new_object();
	json_object_object_add(o, "userId", json_object_new_string(r->token.user));
	json_object_object_add(o, "balance",
			       json_object_new_int64(strtoll(PQgetvalue(res, 0, 0), NULL, 10)));
	http_reply(r, 200, o);
out:
	if (res != NULL)
		PQclear(res);
}

/* A top-up of the path's user, whose token the caller holds (AUTH_USER). */
void
h_charge(struct req *r)
{
	const char *key = FIELD_HAVE(&r->f, F_IDEM_KEY) ? r->f.idem_key : NULL;
	char amount[24];
	const char *params[3] = { r->f.user_id, amount, key };
	PGresult *res = NULL;

	if (r->f.amount > cfg.max_charge) {
		http_error(r, 400, "AMOUNT_TOO_LARGE", "amount may be at most %lld",
			   (long long)cfg.max_charge);
		return;
	}
	util_i64(amount, sizeof(amount), r->f.amount);
	res = db_exec(ST_CHARGE, params);
	if (h_answer(r, res, 200) == OUT_DONE) {
		metrics_add(M_CHARGES, 1);
		metrics_add(M_CHARGE_AMOUNT, (uint64_t)r->f.amount);
	}
	if (res != NULL)
		PQclear(res);
}
