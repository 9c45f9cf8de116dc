/* metrics.c: Prometheus counters shared by all workers, and their text. */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "shm.h"
#include "util.h"

#define NSLOTS (METRICS_MAX_ROUTES + 1)	/* the routes, then "unmatched" */
#define NSTATUS 20
#define NBUCKETS 14
#define MAGIC 0x626f786d65747235ULL	/* "boxmetr5": bump when struct shm changes */

static const int statuses[NSTATUS] = { 200, 201, 204, 400, 401, 402, 403, 404, 405,
				       409, 413, 415, 422, 429, 500, 502, 503, 504, 0, 0 };
/* Upper bounds in milliseconds; the last bucket is +Inf. */
static const double bounds_ms[NBUCKETS - 1] = { 0.5, 1, 2.5, 5, 10, 25, 50, 100,
						250, 500, 1000, 2500, 5000 };
#define NMETHODS 4
static const char *const methods[] = { "GET", "POST", "DELETE", "OTHER" };
_Static_assert(sizeof(methods) / sizeof(methods[0]) == NMETHODS, "NMETHODS methods");

static const struct {
	const char *name;
	const char *help;
} metric_defs[M__MAX] = {
	[M_WORKER_STARTS] = { "worker_starts", "Worker processes started (a rise means respawns)" },
	[M_DB_ERRORS_PRIMARY] = { "db_errors_primary", "Failed primary database round trips" },
	[M_DB_ERRORS_REPLICA] = { "db_errors_replica", "Failed replica database round trips" },
	[M_REPLICA_FALLBACKS] = { "replica_fallbacks", "Reads served by the primary because no replica could" },
	[M_CACHE_HITS] = { "cache_hits", "Read cache hits" },
	[M_CACHE_MISSES] = { "cache_misses", "Read cache misses" },
	[M_CACHE_BYPASSES] = { "cache_bypasses", "Redis calls skipped: cache off or breaker open" },
	[M_REDIS_ERRORS] = { "redis_errors", "Redis connection errors and timeouts" },
	[M_BREAKER_OPENS] = { "breaker_opens", "Times the Redis circuit breaker opened" },
	[M_QUEUE_JOINS] = { "queue_joins", "New places taken in a waiting queue" },
	[M_HOLDS] = { "holds_created", "Seat holds created" },
	[M_RELEASES] = { "holds_released", "Seat holds released by their holder" },
	[M_PAYMENTS] = { "payments", "Payments completed" },
	[M_PAYMENT_AMOUNT] = { "payment_amount", "Sum of payments, smallest currency unit" },
	[M_CHARGES] = { "charges", "Balance charges completed" },
	[M_CHARGE_AMOUNT] = { "charge_amount", "Sum of balance charges, smallest currency unit" },
	[M_IDEM_REPLAYS] = { "idempotent_replays", "Requests answered from an Idempotency-Key record" },
	[M_SIGNUPS] = { "signups", "Accounts created over the API" },
	[M_SIGNINS] = { "signins", "Successful sign-ins (sessions issued)" },
	[M_SIGNIN_FAILURES] = { "signin_failures", "Sign-ins refused for a wrong password, "
				"an unknown address or a disabled account" },
	[M_SIGNIN_THROTTLED] = { "signin_throttled", "Sign-ins answered 429: too many failures "
				 "for the account or the client address" },
	[M_SIGNIN_BUSY] = { "signin_busy", "Sign-ins and sign-ups answered 503: auth.hash_concurrency "
			    "workers were hashing passwords already" },
	[M_SIGNOUTS] = { "signouts", "Sessions signed out" },
	[M_TICKETS_SOLD] = { "tickets_sold", "Tickets issued, one per seat paid" },
	[M_TICKETS_REFUNDED] = { "tickets_refunded", "Tickets refunded by their owner" },
	[M_REFUND_AMOUNT] = { "refund_amount", "Sum of refunds, smallest currency unit" },
	[M_WRONG_POOL] = { "wrong_pool", "Requests refused 500 WRONG_POOL: the proxy sent a "
			   "route to a pool that does not serve it" },
};

/* Upper bounds of the seats-per-purchase buckets; the last bucket is +Inf. */
#define NSEATB 8
static const int seat_bounds[NSEATB - 1] = { 1, 2, 3, 4, 6, 8, 16 };

struct histogram {
	uint64_t buckets[NBUCKETS];
	uint64_t sum_us;
	uint64_t count;
};

struct shm {
	uint64_t magic;
	uint64_t size;
	uint64_t counters[M__MAX];
	uint64_t requests[NSLOTS][NMETHODS][NSTATUS];
	struct histogram latency[NSLOTS];
	struct histogram db[2];
	uint64_t purchase_buckets[NSEATB];	/* seats per purchase */
	uint64_t purchase_seats;
	uint64_t purchase_count;
	int64_t replica_lag_ms[CONFIG_MAX_REPLICAS];	/* -1: unknown or down */
};

static struct shm *shm;

static void
add(uint64_t *p, uint64_t n)
{
	__atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}

static uint64_t
get(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void
metrics_attach(const char *config_path)
{
	shm = shm_map("metrics", config_path, sizeof(struct shm));
	if (shm == NULL) {
		log_msg("metrics: no shared memory; counting for this worker only");
		shm = calloc(1, sizeof(*shm));
		return;
	}
	/* A segment of another layout (an upgrade) starts again from zero. */
	if (__atomic_load_n(&shm->magic, __ATOMIC_ACQUIRE) != MAGIC) {
		memset(shm, 0, sizeof(*shm));
		memset(shm->replica_lag_ms, 0xff, sizeof(shm->replica_lag_ms));
		shm->size = sizeof(struct shm);
		__atomic_store_n(&shm->magic, MAGIC, __ATOMIC_RELEASE);
	}
}

void
metrics_add(enum metric m, uint64_t n)
{
	if (shm != NULL)
		add(&shm->counters[m], n);
}

static void
observe(struct histogram *h, double ms)
{
	int b = 0;

	while (b < NBUCKETS - 1 && ms > bounds_ms[b])
		b++;
	add(&h->buckets[b], 1);
	add(&h->sum_us, (uint64_t)(ms * 1000.0));
	add(&h->count, 1);
}

void
metrics_request(int route, const char *method, int status, double ms)
{
	int ri, mi, si;

	if (shm == NULL)
		return;
	ri = route >= 0 && route < METRICS_MAX_ROUTES ? route : METRICS_MAX_ROUTES;
	for (mi = 0; mi < NMETHODS - 1 && strcmp(method, methods[mi]) != 0; mi++)
		;
	for (si = 0; si < NSTATUS - 1 && statuses[si] != status && statuses[si] != 0; si++)
		;
	if (statuses[si] != status)
		si = NSTATUS - 1;	/* "other" */
	add(&shm->requests[ri][mi][si], 1);
	observe(&shm->latency[ri], ms);
}

void
metrics_purchase(int64_t seats)
{
	int b = 0;

	if (shm == NULL || seats <= 0)
		return;
	while (b < NSEATB - 1 && seats > seat_bounds[b])
		b++;
	add(&shm->purchase_buckets[b], 1);
	add(&shm->purchase_seats, (uint64_t)seats);
	add(&shm->purchase_count, 1);
}

void
metrics_replica_lag(int replica, double seconds)
{
	if (shm != NULL && replica >= 0 && replica < CONFIG_MAX_REPLICAS)
		__atomic_store_n(&shm->replica_lag_ms[replica],
				 seconds < 0 ? -1 : (int64_t)(seconds * 1000.0), __ATOMIC_RELAXED);
}

void
metrics_db(int target, double ms)
{
	if (shm != NULL)
		observe(&shm->db[target != 0], ms);
}

static void
histogram_text(struct util_buf *b, const char *name, const char *label, const char *value,
	       const struct histogram *h)
{
	uint64_t cum = 0;
	int i;

	for (i = 0; i < NBUCKETS; i++) {
		cum += get(&h->buckets[i]);
		if (i < NBUCKETS - 1)
			util_bprintf(b, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", name, label, value,
				bounds_ms[i] / 1000.0, (unsigned long long)cum);
		else
			util_bprintf(b, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", name, label, value,
				(unsigned long long)cum);
	}
	util_bprintf(b, "%s_sum{%s=\"%s\"} %.6f\n", name, label, value,
		(double)get(&h->sum_us) / 1e6);
	util_bprintf(b, "%s_count{%s=\"%s\"} %llu\n", name, label, value,
		(unsigned long long)get(&h->count));
}

/* The slot of route ri's counters: the table's own, or "unmatched". */
static int
slot_of(int ri, int nroutes)
{
	return ri < nroutes ? ri : METRICS_MAX_ROUTES;
}

void
metrics_text(struct util_buf *b, const char *const *route_names, int nroutes)
{
	char status[8];
	int ri, mi, si, m, slot;
	uint64_t v;

	if (nroutes > METRICS_MAX_ROUTES)
		nroutes = METRICS_MAX_ROUTES;
	for (m = 0; m < M__MAX; m++)
		util_bprintf(b, "# HELP boxoffice_%s_total %s\n# TYPE boxoffice_%s_total counter\n"
				"boxoffice_%s_total %llu\n", metric_defs[m].name, metric_defs[m].help,
			     metric_defs[m].name, metric_defs[m].name,
			     (unsigned long long)get(&shm->counters[m]));

	util_bprintf(b, "# HELP boxoffice_http_requests_total Requests by route, method and status\n"
			"# TYPE boxoffice_http_requests_total counter\n");
	/* Route ri == nroutes stands for the unmatched requests. */
	for (ri = 0; ri <= nroutes; ri++)
		for (mi = 0, slot = slot_of(ri, nroutes); mi < NMETHODS; mi++)
			for (si = 0; si < NSTATUS; si++) {
				if ((v = get(&shm->requests[slot][mi][si])) == 0)
					continue;
				if (si == NSTATUS - 1)
					snprintf(status, sizeof(status), "other");
				else
					snprintf(status, sizeof(status), "%d", statuses[si]);
				util_bprintf(b, "boxoffice_http_requests_total{route=\"%s\",method=\"%s\","
						"status=\"%s\"} %llu\n",
					     ri < nroutes ? route_names[ri] : "unmatched", methods[mi],
					     status, (unsigned long long)v);
			}
	util_bprintf(b, "# HELP boxoffice_http_request_duration_seconds Request latency by route\n"
			"# TYPE boxoffice_http_request_duration_seconds histogram\n");
	for (ri = 0; ri <= nroutes; ri++) {
		slot = slot_of(ri, nroutes);
		if (get(&shm->latency[slot].count) > 0)
			histogram_text(b, "boxoffice_http_request_duration_seconds", "route",
				       ri < nroutes ? route_names[ri] : "unmatched", &shm->latency[slot]);
	}
	util_bprintf(b, "# HELP boxoffice_db_query_duration_seconds Database round trips by target\n"
			"# TYPE boxoffice_db_query_duration_seconds histogram\n");
	histogram_text(b, "boxoffice_db_query_duration_seconds", "target", "primary", &shm->db[0]);
	histogram_text(b, "boxoffice_db_query_duration_seconds", "target", "replica", &shm->db[1]);
	util_bprintf(b, "# HELP boxoffice_seats_per_purchase Seats paid by each completed payment\n"
			"# TYPE boxoffice_seats_per_purchase histogram\n");
	for (m = 0, v = 0; m < NSEATB; m++) {
		v += get(&shm->purchase_buckets[m]);
		if (m < NSEATB - 1)
			util_bprintf(b, "boxoffice_seats_per_purchase_bucket{le=\"%d\"} %llu\n",
				     seat_bounds[m], (unsigned long long)v);
		else
			util_bprintf(b, "boxoffice_seats_per_purchase_bucket{le=\"+Inf\"} %llu\n",
				     (unsigned long long)v);
	}
	util_bprintf(b, "boxoffice_seats_per_purchase_sum %llu\n"
			"boxoffice_seats_per_purchase_count %llu\n",
		     (unsigned long long)get(&shm->purchase_seats),
		     (unsigned long long)get(&shm->purchase_count));
	util_bprintf(b, "# HELP boxoffice_replica_lag_seconds Replay lag of each replica as last "
			"measured (-1: down or not yet measured)\n"
			"# TYPE boxoffice_replica_lag_seconds gauge\n");
	for (m = 0; m < cfg.replica_count; m++)
		util_bprintf(b, "boxoffice_replica_lag_seconds{replica=\"%d\"} %.3f\n", m,
			     (double)__atomic_load_n(&shm->replica_lag_ms[m], __ATOMIC_RELAXED) / 1000.0);
}
