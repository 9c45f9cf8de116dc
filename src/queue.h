/* queue.h: the fair waiting queue of each concert, kept in Redis. */
#ifndef BOXOFFICE_QUEUE_H
#define BOXOFFICE_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "token.h"

/* PRE_QUEUE: joined before the sale opened, no number until the draw. */
enum queue_status { Q_WAITING, Q_ACTIVE, Q_EXPIRED, Q_PRE_QUEUE };

/*
 * A concert's sale state as the database has it: state 't' on sale (the
 * operator's switch), 'f' not, 'n' no such concert; the sale window in
 * Unix ms, 0 for no limit on that side.
 */
struct queue_sale {
	char state;
	int64_t opens_ms;
	int64_t closes_ms;
};

/* A user's place as one atomic script saw it. */
struct queue_place {
	int64_t number;			/* queue number, 0 if none */
	enum queue_status status;
	int64_t position;		/* people ahead while WAITING */
	int64_t active_until_ms;	/* Unix ms while ACTIVE */
	int64_t now_ms;			/* Redis clock when read */
	int64_t eta_s;			/* estimated wait, -1 if unknown */
	int64_t opens_ms;		/* the sale's opening, Unix ms, 0 if none */
};

/*
 * Take the settings the queue scripts are given (limits, lifetimes, the
 * cache lever) from cfg: at start and after every reload.
 */
void queue_configure(void);

/* What a join found. */
enum queue_join {
	QJ_NEW,			/* a new place */
	QJ_AGAIN,		/* the user's existing place */
	QJ_DOWN,		/* Redis is unusable */
	QJ_USER_UNKNOWN,	/* Redis does not know the user yet */
	QJ_SALE_UNKNOWN,	/* Redis does not know the concert's sale state */
	QJ_NOT_ON_SALE,
	QJ_SALE_CLOSED,		/* past the sale window's end */
	QJ_NO_CONCERT
};

/*
 * Join concert's queue (or find the user's live place). Admission runs in
 * the same script. On QJ_USER_UNKNOWN the caller checks the user in the
 * database and calls again with verified; on QJ_SALE_UNKNOWN it reads the
 * concert's sale state and calls again with it as sale, which Redis then
 * keeps for the read cache's lifetime. sale NULL: use the state Redis
 * has. Before the sale window opens the place is Q_PRE_QUEUE (number 0);
 * the first join, poll or progress read after it draws the pre-queue's
 * order (see src/lua/queue_prologue.lua). *p is set for QJ_NEW and
 * QJ_AGAIN only.
 */
enum queue_join queue_join(int64_t concert, const char *user, int verified,
			   const struct queue_sale *sale, struct queue_place *p);

/*
 * The place of token number for user (0: a pre-queue place); an admitted
 * turn is claimed by it (ACTIVE from then on, for queue.active_ttl).
 * QJ_AGAIN when *p is set; QJ_SALE_UNKNOWN (number 0 only) as for
 * queue_join(); QJ_DOWN.
 */
enum queue_join queue_poll(int64_t concert, const char *user, int64_t number,
			   const struct queue_sale *sale, struct queue_place *p);

/* The window over which the admission rate is measured, seconds. */
#define QUEUE_RATE_WINDOW_S 10

/* A concert's queue as everyone may see it (the progress document). */
struct queue_progress {
	char sale;			/* 'u' upcoming, 'o' on sale, 'c' closed (the
					 * window), 'f' not on sale, 'n' no such concert */
	int64_t opens_ms;		/* the sale's opening, Unix ms, 0 if none */
	int64_t pre_queued;		/* in the pre-queue, not yet drawn */
	int64_t served;			/* highest queue number admitted, 0 if none */
	int64_t waiting;		/* people waiting */
	int64_t admitted_recently;	/* admissions over QUEUE_RATE_WINDOW_S */
	int64_t now_ms;			/* Redis clock when read */
};

/*
 * Read concert's progress into *p in one script, which also runs
 * admission (and the pre-queue's draw at the opening), so that the queue
 * moves when nobody polls their own place; nobody's place is kept or
 * claimed by it. sale as for queue_join(): NULL uses the state Redis has.
 * Returns 0 when *p is set, 1 when Redis does not know the sale state
 * (read it from the database and call again with it), -1 when Redis is
 * unusable.
 */
int queue_progress(int64_t concert, const struct queue_sale *sale, struct queue_progress *p);

/* Whether the turn an ACTIVE token stands for is still on. */
enum queue_turn {
	QT_ON,		/* admitted, and neither paid nor past its end */
	QT_ENDED,	/* ended by payment or at its end, or never admitted */
	QT_UNKNOWN	/* Redis is unusable: the caller decides on the signed expiry */
};

/*
 * The check the booking routes make on a genuine ACTIVE token t: is its
 * turn on by the concert's active set in Redis? Writes first the turn
 * ends an outage kept back (see queue_revoke()). One Redis command when
 * nothing was kept back.
 */
enum queue_turn queue_turn(const struct token *t);

/*
 * When the turn t stands for ends, in Unix milliseconds: 0 if it is not
 * (or no longer) active, -1 if Redis is unusable. One Redis command.
 */
int64_t queue_active_until(const struct token *t);

/*
 * End the turn t stands for, after payment; a later turn of the same user
 * is left alone. Failure is logged, not fatal: the turn then ends at its
 * expiry.
 */
void queue_revoke(const struct token *t);

/* The events each queue counts, as the queue scripts name them. */
enum queue_event { QE_ADMITTED, QE_ABANDONED, QE_EXPIRED, QE_JOINED, QE__MAX };
extern const char *const queue_event_names[QE__MAX];

/* One concert's queue as queue_stats() read it; -1: could not be read. */
struct queue_stats {
	int64_t concert;
	int64_t waiting;
	int64_t active;
	int64_t events[QE__MAX];
};

/*
 * Call each(s, arg) for every concert that has a queue in Redis. Queues
 * are found with SCAN (never KEYS, which would stall Redis), a bounded
 * number of steps per call; nothing is called while Redis is unusable.
 */
void queue_stats(void (*each)(const struct queue_stats *s, void *arg), void *arg);

#endif
