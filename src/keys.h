/* keys.h: the name and Redis type of every key the service and the CLI use. */
#ifndef BOXOFFICE_KEYS_H
#define BOXOFFICE_KEYS_H

#include <stddef.h>
#include <stdint.h>

/* Users the database has confirmed: a queue join then needs no look-up. */
extern const char keys_known_users[];

/* The read cache's concert list. */
extern const char keys_concerts[];

/*
 * The names below are written into buf (len bytes) like snprintf():
 * they return the length the name needs, so >= len means cut short.
 */

/* The read cache's schedule list of concert. */
int keys_schedules(char *buf, size_t len, int64_t concert);

/* The seat map copy of schedule, and the count of its seat changes. */
int keys_seat_map(char *buf, size_t len, int64_t schedule);
int keys_seat_version(char *buf, size_t len, int64_t schedule);

enum keys_type { KEYS_STRING, KEYS_HASH, KEYS_ZSET };

/*
 * The parts of one concert's queue: everything a dump writes and a
 * restore puts back. The queue scripts receive them as KEYS in this
 * order (src/lua/queue_prologue.lua names them so).
 */
enum keys_part {
	KP_SEQ,		/* last queue number given */
	KP_NUM,		/* user -> queue number */
	KP_WAIT,	/* waiting users by queue number */
	KP_CLAIM,	/* admitted users not yet claimed, by claim deadline */
	KP_ACTIVE,	/* admitted users who claimed, by end of turn */
	KP_ADMITS,	/* queue numbers by admission time */
	KP_STATS,	/* event counters */
	KP_TICK,	/* when admission last ran */
	KP_SERVED,	/* highest queue number admitted so far */
	KP_PRE,		/* pre-queue: users who joined before the opening, by arrival */
	KP_SEED,	/* the pre-queue draw's seed (hex), set once drawn */
	KP_DRAW,	/* the draw: pre-queue users by the number drawn */
	KP__MAX
};

struct keys_part_def {
	const char *name;	/* the key's last component, and the dump's field */
	enum keys_type type;
};

extern const struct keys_part_def keys_parts[KP__MAX];

/* A part of concert's queue, q:{concert}:part. */
int keys_queue(char *buf, size_t len, int64_t concert, enum keys_part part);

/* The concert's sale state, cached beside its queue (not part of it). */
int keys_queue_sale(char *buf, size_t len, int64_t concert);

/* A SCAN MATCH pattern for that part of every concert's queue. */
int keys_queue_pattern(char *buf, size_t len, enum keys_part part);

/* The concert whose queue part key is; 0 if key is no such name. */
int64_t keys_queue_concert(const char *key, enum keys_part part);

/* A signed-out session (sess:end:<sessionId>), kept while it could be valid. */
int keys_session_ended(char *buf, size_t len, const char *session);

/*
 * Unix seconds at or before which user's sessions were issued are ended
 * (sess:after:<user>): disabling an account, signing out everywhere.
 */
int keys_sessions_after(char *buf, size_t len, const char *user);

/* Failed sign-in counters of one account (by a digest of its address) and
 * of one client address. */
int keys_signin_fail_account(char *buf, size_t len, const char *digest);
int keys_signin_fail_addr(char *buf, size_t len, const char *addr);

#endif
