/* h_metrics.c: GET /metrics, the Prometheus text of the counters, breaker and queues. */
#include "handlers.h"

#include <stdlib.h>

#include "cache.h"
#include "http.h"
#include "metrics.h"
#include "pool.h"
#include "queue.h"
#include "route.h"
#include "util.h"

/* The gauges and event counters of one concert's queue. */
static void
queue_gauges(const struct queue_stats *q, void *arg)
{
	struct util_buf *b = arg;
	int e;

	if (q->waiting >= 0)
		util_bprintf(b, "boxoffice_queue_waiting{concert=\"%lld\"} %lld\n",
			     (long long)q->concert, (long long)q->waiting);
	if (q->active >= 0)
		util_bprintf(b, "boxoffice_queue_active{concert=\"%lld\"} %lld\n",
			     (long long)q->concert, (long long)q->active);
	for (e = 0; e < QE__MAX; e++)
		if (q->events[e] >= 0)
			util_bprintf(b, "boxoffice_queue_events_total{concert=\"%lld\","
					"event=\"%s\"} %lld\n", (long long)q->concert,
				     queue_event_names[e], (long long)q->events[e]);
}

/* Loopback only: the route's AUTH_LOOPBACK level, checked by dispatch(). */
void
h_metrics(struct req *r)
{
	const char *names[METRICS_MAX_ROUTES];
	const struct route *table;
	struct util_buf b = { NULL, 0, 0, 0 };
	int i, n;

	table = route_table(&n);
	for (i = 0; i < n && i < METRICS_MAX_ROUTES; i++)
		names[i] = table[i].pattern;
	metrics_text(&b, names, i);
	pool_text(&b);
	util_bprintf(&b, "# HELP boxoffice_redis_breaker_open 1 while this worker's Redis "
			 "breaker is open\n# TYPE boxoffice_redis_breaker_open gauge\n"
			 "boxoffice_redis_breaker_open %d\n", cache_breaker_open() ? 1 : 0);
	/* Queue gauges are read from Redis; none while it is unusable. */
	util_bprintf(&b, "# HELP boxoffice_queue_waiting Users waiting in a concert's queue\n"
			 "# TYPE boxoffice_queue_waiting gauge\n"
			 "# HELP boxoffice_queue_active Users admitted and active\n"
			 "# TYPE boxoffice_queue_active gauge\n"
			 "# HELP boxoffice_queue_events_total Queue admissions, drop-outs, "
			 "expiries and joins\n"
			 "# TYPE boxoffice_queue_events_total counter\n");
	queue_stats(queue_gauges, &b);

	if (b.failed) {
		free(b.p);
		http_error(r, 503, "UNAVAILABLE", "out of memory");
		return;
	}
	r->content_type_out = "text/plain; version=0.0.4; charset=utf-8";
	r->raw_out = b.p;
	r->status = 200;
}
