/* h_ticket.c: tickets: one's own list, the door's check of a code, refunds. */
#include "handlers.h"

#include <stdlib.h>

#include "config.h"
#include "db.h"
#include "http.h"
#include "metrics.h"
#include "seatcache.h"
#include "util.h"

/* Never kept by a browser or a proxy: a list and a check are of this moment. */
#define PRIVATE_READ "no-store"

/*
 * A ticket read: statement st's one row holds the JSON answer, private to
 * the caller; a NULL there (an unknown code) is 404 TICKET_NOT_FOUND.
 * From the primary: a ticket just bought or refunded shows at once.
 */
static void
ticket_read(struct req *r, enum db_stmt st, const char *const *params)
{
	PGresult *res = NULL;

	res = db_exec(st, params);
	if (h_failed(r, res))
		goto out;
	if (PQgetisnull(res, 0, 0)) {
		http_error(r, 404, "TICKET_NOT_FOUND", "no ticket has this code");
		goto out;
	}
	http_reply_raw(r, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
	r->cache_control = PRIVATE_READ;
out:
	if (res != NULL)
		PQclear(res);
}

/*
 * The caller's tickets (r->token.user): the path's user on
 * /api/users/{userId}/tickets (AUTH_USER makes them one), the
 * credential's on /api/me/tickets (AUTH_TOKEN).
 */
void
h_tickets(struct req *r)
{
	const char *params[1] = { r->token.user };

	ticket_read(r, ST_TICKETS, params);
}

/*
 * GET /api/tickets/{code}: the door's check, with a door token of one
 * concert (AUTH_DOOR). 200 for a known code, valid or not (refunded, or
 * of another concert); 404 for an unknown one.
 */
void
h_ticket_door(struct req *r)
{
	char concert[24];
	const char *params[2] = { r->f.ticket_code, concert };

	util_i64(concert, sizeof(concert), r->token.concert);
	ticket_read(r, ST_TICKET_DOOR, params);
}

/*
 * POST /api/tickets/{ticketId}/refund by the ticket's owner (AUTH_SIGNED_IN
 * or a user's token; another user's ticket is not found). 200 with the
 * ticket, REFUNDED, also when it already was (no money moves then).
 */
void
h_ticket_refund(struct req *r)
{
	char hours[24];
	const char *params[3] = { r->f.ticket_id, r->token.user, hours };
	PGresult *res = NULL;

	util_i64(hours, sizeof(hours), cfg.refund_until_hours);
	res = db_exec(ST_REFUND, params);
	if (h_answer(r, res, 200) == OUT_DONE && !PQgetisnull(res, 0, 2)) {
		/* Money moved and the seat is on sale again now, not on a replay. */
		metrics_add(M_TICKETS_REFUNDED, 1);
		metrics_add(M_REFUND_AMOUNT, (uint64_t)strtoll(PQgetvalue(res, 0, 2), NULL, 10));
		seatcache_changed(strtoll(PQgetvalue(res, 0, 3), NULL, 10));
	}
	if (res != NULL)
		PQclear(res);
}
