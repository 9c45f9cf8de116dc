/* metrics.h: Prometheus counters shared by all workers through shared memory. */
#ifndef BOXOFFICE_METRICS_H
#define BOXOFFICE_METRICS_H

#include <stdint.h>

struct util_buf;

/*
 * Routes counted one by one (route.c asserts that its table fits); every
 * request that matched none is counted under "unmatched".
 */
#define METRICS_MAX_ROUTES 32
#define METRICS_UNMATCHED (-1)

/* Plain counters, each exported as boxoffice_<name>_total. */
enum metric {
	M_WORKER_STARTS,
	M_DB_ERRORS_PRIMARY,
	M_DB_ERRORS_REPLICA,
	M_REPLICA_FALLBACKS,
	M_CACHE_HITS,
	M_CACHE_MISSES,
	M_CACHE_BYPASSES,
	M_REDIS_ERRORS,
	M_BREAKER_OPENS,
	M_QUEUE_JOINS,
	M_HOLDS,
	M_RELEASES,
	M_PAYMENTS,
	M_PAYMENT_AMOUNT,
	M_CHARGES,
	M_CHARGE_AMOUNT,
	M_IDEM_REPLAYS,
	M_SIGNUPS,
	M_SIGNINS,
	M_SIGNIN_FAILURES,
	M_SIGNIN_THROTTLED,
	M_SIGNIN_BUSY,
	M_SIGNOUTS,
	M_TICKETS_SOLD,
	M_TICKETS_REFUNDED,
	M_REFUND_AMOUNT,
	M_WRONG_POOL,
	M__MAX
};

/*
 * Attach to the shared counters named after the configuration file, so
 * every worker of one service (and no other service) adds to the same
 * totals. Falls back to private memory, with a log line, if shared memory
 * cannot be had. Call once at start.
 */
void metrics_attach(const char *config_path);

/* Add n to a counter: one relaxed atomic add, no system call. */
void metrics_add(enum metric m, uint64_t n);

/*
 * Count a finished request by route (its index in the route table, or
 * METRICS_UNMATCHED), method and status, with its latency.
 */
void metrics_request(int route, const char *method, int status, double ms);

/* Count one database round trip (target 0 primary, 1 replica) and its latency. */
void metrics_db(int target, double ms);

/* Count one completed purchase (payment request) of seats seats. */
void metrics_purchase(int64_t seats);

/* Record replica i's replay lag in seconds (negative: down). */
void metrics_replica_lag(int replica, double seconds);

/*
 * Append the Prometheus text exposition of all workers' totals to b:
 * counters, requests and latency by route (route_names[i] names route i,
 * for i < nroutes), database latency and replica lag.
 */
void metrics_text(struct util_buf *b, const char *const *route_names, int nroutes);

#endif
