/* handlers.h: the API's handlers; each reads validated fields, calls the domain, writes JSON. */
#ifndef BOXOFFICE_HANDLERS_H
#define BOXOFFICE_HANDLERS_H

struct req;

/* h_system.c */
int h_ping(struct req *r);
int h_health(struct req *r);

/* h_queue.c */
int h_queue_join(struct req *r);
int h_queue_status(struct req *r);

/* h_metrics.c */
int h_metrics(struct req *r);

/* h_booking.c */
int h_concerts(struct req *r);
int h_schedules(struct req *r);
int h_seats(struct req *r);
int h_hold(struct req *r);
int h_reservation_get(struct req *r);
int h_reservation_release(struct req *r);
int h_pay(struct req *r);
int h_balance(struct req *r);
int h_charge(struct req *r);

#endif
