/* metrics.c: shared-memory Prometheus counters and the /metrics exposition. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "queue.h"
#include "route.h"
#include "util.h"

#define MAX_ROUTES 24		/* table routes, plus one for "no route" */
#define NSTATUS 20
#define NBUCKETS 14
#define MAGIC 0x626f786d65747232ULL	/* "boxmetr2": bump when struct shm changes */

static const int statuses[NSTATUS] = { 200, 201, 204, 400, 401, 402, 403, 404, 405,
				       409, 413, 415, 422, 429, 500, 502, 503, 504, 0, 0 };
/* Upper bounds in milliseconds; the last bucket is +Inf. */
static const double bounds_ms[NBUCKETS - 1] = { 0.5, 1, 2.5, 5, 10, 25, 50, 100,
						250, 500, 1000, 2500, 5000 };
static const char *const methods[] = { "GET", "POST", "DELETE", "OTHER" };
#define NMETHODS 4

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
};

struct histogram {
	uint64_t buckets[NBUCKETS];
	uint64_t sum_us;
	uint64_t count;
};

struct shm {
	uint64_t magic;
	uint64_t size;
	uint64_t counters[M__MAX];
	uint64_t requests[MAX_ROUTES][NMETHODS][NSTATUS];
	struct histogram latency[MAX_ROUTES];
	struct histogram db[2];
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
	shm = util_shm_open("metrics", config_path, sizeof(struct shm));
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
metrics_request(const struct route *rt, const char *method, int status, double ms)
{
	const struct route *table;
	int n, ri, mi, si;

	if (shm == NULL)
		return;
	table = route_table(&n);
	ri = rt != NULL ? (int)(rt - table) : n;
	if (ri >= MAX_ROUTES)
		return;
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

/* A growing text buffer for the exposition. */
struct buf {
	char *p;
	size_t len, cap;
	int failed;
};

static void
bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = (b->cap + (size_t)n + 1) * 2;
			char *p = realloc(b->p, cap);

			if (p == NULL) {
				b->failed = 1;
				return;
			}
			b->p = p;
			b->cap = cap;
		}
	}
}

static void
histogram_text(struct buf *b, const char *name, const char *label, const char *value,
	       const struct histogram *h)
{
	uint64_t cum = 0;
	int i;

	for (i = 0; i < NBUCKETS; i++) {
		cum += get(&h->buckets[i]);
		if (i < NBUCKETS - 1)
			bprintf(b, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", name, label, value,
				bounds_ms[i] / 1000.0, (unsigned long long)cum);
		else
			bprintf(b, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", name, label, value,
				(unsigned long long)cum);
	}
	bprintf(b, "%s_sum{%s=\"%s\"} %.6f\n", name, label, value,
		(double)get(&h->sum_us) / 1e6);
	bprintf(b, "%s_count{%s=\"%s\"} %llu\n", name, label, value,
		(unsigned long long)get(&h->count));
}

static void queue_page(struct buf *b, const redisReply *keys);

/*
 * Queue gauges per concert, read from Redis; nothing if it is unusable.
 * Queues are found with SCAN (never KEYS, which would stall Redis), a
 * bounded number of steps per scrape.
 */
static void
queue_text(struct buf *b)
{
	redisReply *page = NULL;
	char cursor[32] = "0";
	int steps = 0;

	bprintf(b, "# HELP boxoffice_queue_waiting Users waiting in a concert's queue\n"
		   "# TYPE boxoffice_queue_waiting gauge\n"
		   "# HELP boxoffice_queue_active Users admitted and active\n"
		   "# TYPE boxoffice_queue_active gauge\n"
		   "# HELP boxoffice_queue_events_total Queue admissions, drop-outs, expiries and joins\n"
		   "# TYPE boxoffice_queue_events_total counter\n");
	do {
		page = cache_command("SCAN %s MATCH q:{*}:seq COUNT 1000", cursor);
		if (page == NULL || page->type != REDIS_REPLY_ARRAY || page->elements != 2)
			break;
		snprintf(cursor, sizeof(cursor), "%s", page->element[0]->str);
		queue_page(b, page->element[1]);
		freeReplyObject(page);
		page = NULL;
	} while (strcmp(cursor, "0") != 0 && ++steps < 100);
	if (page != NULL)
		freeReplyObject(page);
}

/* The gauges of the queues whose seq keys are in one SCAN page. */
static void
queue_page(struct buf *b, const redisReply *keys)
{
	static const char *const fields[] = { "admitted", "abandoned", "expired", "joined" };
	redisReply *r;
	char key[64];
	long long concert;
	size_t i, f;

	for (i = 0; i < keys->elements; i++) {
		if (sscanf(keys->element[i]->str, "q:{%lld}:seq", &concert) != 1)
			continue;
		queue_key(key, sizeof(key), concert, "wait");
		if ((r = cache_command("ZCARD %s", key)) != NULL) {
			bprintf(b, "boxoffice_queue_waiting{concert=\"%lld\"} %lld\n", concert, r->integer);
			freeReplyObject(r);
		}
		queue_key(key, sizeof(key), concert, "active");
		if ((r = cache_command("ZCARD %s", key)) != NULL) {
			bprintf(b, "boxoffice_queue_active{concert=\"%lld\"} %lld\n", concert, r->integer);
			freeReplyObject(r);
		}
		queue_key(key, sizeof(key), concert, "stats");
		for (f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
			if ((r = cache_command("HGET %s %s", key, fields[f])) == NULL)
				continue;
			bprintf(b, "boxoffice_queue_events_total{concert=\"%lld\",event=\"%s\"} %s\n",
				concert, fields[f], r->type == REDIS_REPLY_STRING ? r->str : "0");
			freeReplyObject(r);
		}
	}
}

void
h_metrics(struct req *r)
{
	const struct route *table;
	struct buf b = { NULL, 0, 0, 0 };
	char status[8];
	int n, ri, mi, si, m;
	uint64_t v;

	table = route_table(&n);
	for (m = 0; m < M__MAX; m++)
		bprintf(&b, "# HELP boxoffice_%s_total %s\n# TYPE boxoffice_%s_total counter\n"
			    "boxoffice_%s_total %llu\n", metric_defs[m].name, metric_defs[m].help,
			metric_defs[m].name, metric_defs[m].name,
			(unsigned long long)get(&shm->counters[m]));
	bprintf(&b, "# HELP boxoffice_redis_breaker_open 1 while this worker's Redis breaker is open\n"
		    "# TYPE boxoffice_redis_breaker_open gauge\nboxoffice_redis_breaker_open %d\n",
		cache_breaker_open() ? 1 : 0);

	bprintf(&b, "# HELP boxoffice_http_requests_total Requests by route, method and status\n"
		    "# TYPE boxoffice_http_requests_total counter\n");
	for (ri = 0; ri <= n && ri < MAX_ROUTES; ri++)
		for (mi = 0; mi < NMETHODS; mi++)
			for (si = 0; si < NSTATUS; si++) {
				if ((v = get(&shm->requests[ri][mi][si])) == 0)
					continue;
				if (si == NSTATUS - 1)
					snprintf(status, sizeof(status), "other");
				else
					snprintf(status, sizeof(status), "%d", statuses[si]);
				bprintf(&b, "boxoffice_http_requests_total{route=\"%s\",method=\"%s\","
					    "status=\"%s\"} %llu\n",
					ri < n ? table[ri].pattern : "unmatched", methods[mi],
					status, (unsigned long long)v);
			}
	bprintf(&b, "# HELP boxoffice_http_request_duration_seconds Request latency by route\n"
		    "# TYPE boxoffice_http_request_duration_seconds histogram\n");
	for (ri = 0; ri <= n && ri < MAX_ROUTES; ri++)
		if (get(&shm->latency[ri].count) > 0)
			histogram_text(&b, "boxoffice_http_request_duration_seconds", "route",
				       ri < n ? table[ri].pattern : "unmatched", &shm->latency[ri]);
	bprintf(&b, "# HELP boxoffice_db_query_duration_seconds Database round trips by target\n"
		    "# TYPE boxoffice_db_query_duration_seconds histogram\n");
	histogram_text(&b, "boxoffice_db_query_duration_seconds", "target", "primary", &shm->db[0]);
	histogram_text(&b, "boxoffice_db_query_duration_seconds", "target", "replica", &shm->db[1]);
	bprintf(&b, "# HELP boxoffice_replica_lag_seconds Replay lag of each replica as last "
		    "measured (-1: down or not yet measured)\n"
		    "# TYPE boxoffice_replica_lag_seconds gauge\n");
	for (m = 0; m < cfg.replica_count; m++)
		bprintf(&b, "boxoffice_replica_lag_seconds{replica=\"%d\"} %.3f\n", m,
			(double)__atomic_load_n(&shm->replica_lag_ms[m], __ATOMIC_RELAXED) / 1000.0);
	queue_text(&b);

	if (b.failed) {
		free(b.p);
		http_error(r, 503, "UNAVAILABLE", "out of memory");
		return;
	}
	r->content_type_out = "text/plain; version=0.0.4; charset=utf-8";
	r->raw_out = b.p;
	r->status = 200;
}
