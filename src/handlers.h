/* handlers.h: the API's handlers; each reads validated fields, calls the domain, writes JSON. */
#ifndef BOXOFFICE_HANDLERS_H
#define BOXOFFICE_HANDLERS_H

#include <stdbool.h>

struct req;
struct pg_result;

/*
 * dispatch() calls a handler once the request's fields are validated and
 * its caller has passed the route's auth level (route.c); the verified
 * token, if the level needs one, is r->token. Each leaves its answer in r.
 */

/* h_system.c */
/* What a booking or ticket function's call came to (h_answer()). */
enum h_outcome { OUT_ERROR, OUT_DONE, OUT_REPLAY };
enum h_outcome h_answer(struct req *r, struct pg_result *res, int ok_status);
bool h_failed(struct req *r, const struct pg_result *res);

void h_ping(struct req *r);
void h_health(struct req *r);

/* h_queue.c */
void h_queue_join(struct req *r);
void h_queue_status(struct req *r);
void h_queue_progress(struct req *r);

/* h_metrics.c */
void h_metrics(struct req *r);

/* h_booking.c */
void h_concerts(struct req *r);
void h_schedules(struct req *r);
void h_seats(struct req *r);
void h_hold(struct req *r);
void h_reservation_get(struct req *r);
void h_reservation_release(struct req *r);
void h_pay(struct req *r);
void h_balance(struct req *r);
void h_charge(struct req *r);

/* h_account.c */
void h_account_create(struct req *r);
void h_session_create(struct req *r);
void h_session_get(struct req *r);
void h_session_delete(struct req *r);
void h_session_provider(struct req *r);

/* h_ticket.c */
void h_tickets(struct req *r);
void h_ticket_door(struct req *r);
void h_ticket_refund(struct req *r);

#endif
