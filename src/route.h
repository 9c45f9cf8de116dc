/* route.h: the route table, method + path pattern with {field} captures. */
#ifndef BOXOFFICE_ROUTE_H
#define BOXOFFICE_ROUTE_H

#include <stdint.h>

#include "auth.h"
#include "valid.h"

struct req;

/*
 * A handler gets a request whose route matched, whose fields are
 * validated and whose caller passed the route's auth level; it leaves
 * its answer (success or error) in r.
 */
typedef void (*route_handler)(struct req *r);

/* Route flags. */
#define R_IDEMPOTENT_KEY 0x1	/* reads the Idempotency-Key header */
#define R_QUEUE 0x2		/* part of the queue: closed in maintenance mode */
#define R_AFTER_TURN 0x4	/* AUTH_ACTIVE, but also called when the turn has
				   ended (r->turn_ended, 401 TOKEN_REVOKED set):
				   a retried payment finds its first answer */

struct route {
	const char *method;
	const char *pattern;	/* "/api/concerts/{concertId}/schedules" */
	enum auth_need auth;	/* what the caller must show; dispatch() checks */
	route_handler handler;
	uint32_t body_required;	/* fields the JSON body must have (1u << field) */
	uint32_t body_optional;	/* fields it may have */
	unsigned flags;
	uint32_t body_one_of;	/* of these optional fields, exactly one */
};

/* Raw captures of a matched path, validated by the caller. */
struct route_captures {
	int n;
	enum field field[4];
	char value[4][64];
};

enum route_result { ROUTE_OK, ROUTE_NO_PATH, ROUTE_NO_METHOD };

/*
 * Find the route for method and path. On ROUTE_OK *out is the route and
 * caps holds its captures; ROUTE_NO_METHOD means the path exists with
 * other methods only.
 */
enum route_result route_find(const char *method, const char *path,
			     const struct route **out, struct route_captures *caps);

/* The route table and its size, for metrics and documentation. */
const struct route *route_table(int *n);

/*
 * The worker pool that serves rt (enum pool_class in pool.h), by the
 * pattern's prefix: /api/queues... the queue pool; sessions, accounts and
 * identity providers the sign-in pool; ping, health and /metrics any pool;
 * everything else, new routes included, the booking pool. nginx's
 * upstreams (conf/nginx/boxoffice.conf) follow the same prefixes.
 */
int route_pool(const struct route *rt);

/* rt's position in the route table, -1 for NULL (no route matched). */
int route_index(const struct route *rt);

#endif
