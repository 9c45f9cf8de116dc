/* seatcache.c: the Redis copy of each schedule's seat map, never older than its last change. */
#include "seatcache.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "config.h"
#include "keys.h"
#include "metrics.h"

/*
 * c:seatsv:<schedule> counts the changes to a schedule's seats; every
 * hold, release and sale adds one. c:seats:<schedule> holds the copy as
 * "<count> <concert> <json>": it is served only while the count is still
 * the current one, and only for the concert it was read for, as the
 * database would answer.
 *
 * Deleting the copy on change would not be enough: a reader that took its
 * database snapshot just before a hold committed could store its (now
 * stale) map just after the hold's delete. Here the reader notes the
 * count before it reads the database, in the same call as its look-up,
 * and tags its copy with it; a change committed meanwhile has raised the
 * count, so that copy is never served. The TTL then only has to cover what
 * changes with time alone: a hold running out, which the database reports
 * as the map's freshness.
 *
 * The counters carry no TTL (one small key per schedule that ever
 * changed). Should Redis lose them while copies survive, which a flush of
 * only some keys could do, a copy is trusted for its TTL at most.
 */

static void
keys(char *map, char *count, size_t len, int64_t schedule)
{
	keys_seat_map(map, len, schedule);
	keys_seat_version(count, len, schedule);
}

char *
seatcache_get(int64_t schedule, int64_t concert, size_t *len, int64_t *version)
{
	char map[48], count[48], tag[64];
	redisReply *r = NULL, *m;
	char *body = NULL;
	int n;

	*version = -1;
	if (cfg.seat_cache_ms == 0 || cfg.cache == CACHE_OFF)
		return NULL;
	keys(map, count, sizeof(map), schedule);
	if ((r = cache_command("MGET %s %s", map, count)) == NULL)
		return NULL;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
		goto out;
	*version = r->element[1]->type == REDIS_REPLY_STRING ?
		   strtoll(r->element[1]->str, NULL, 10) : 0;
	if (cfg.cache != CACHE_ON) {
		metrics_add(M_CACHE_BYPASSES, 1);
		goto out;
	}
	m = r->element[0];
	n = snprintf(tag, sizeof(tag), "%" PRId64 " %" PRId64 " ", *version, concert);
	if (m->type != REDIS_REPLY_STRING || m->len <= (size_t)n ||
	    memcmp(m->str, tag, (size_t)n) != 0) {
		metrics_add(M_CACHE_MISSES, 1);
		goto out;
	}
	*len = m->len - (size_t)n;
	if ((body = malloc(*len + 1)) != NULL) {
		memcpy(body, m->str + n, *len);
		body[*len] = '\0';
		metrics_add(M_CACHE_HITS, 1);
	}
out:
	freeReplyObject(r);
	return body;
}

void
seatcache_put(int64_t schedule, int64_t concert, int64_t version, const char *body,
	      size_t len, long ttl_ms)
{
	char map[48], count[48], tag[64], *value = NULL;
	int n;

	if (version < 0 || ttl_ms <= 0 || cfg.cache == CACHE_OFF)
		return;
	if (ttl_ms > cfg.seat_cache_ms)
		ttl_ms = (long)cfg.seat_cache_ms;
	keys(map, count, sizeof(map), schedule);
	n = snprintf(tag, sizeof(tag), "%" PRId64 " %" PRId64 " ", version, concert);
	if ((value = malloc((size_t)n + len)) == NULL)
		return;
	memcpy(value, tag, (size_t)n);
	memcpy(value + n, body, len);
	cache_set(map, value, (size_t)n + len, ttl_ms);
	free(value);
}

void
seatcache_changed(int64_t schedule)
{
	char map[48], count[48];
	redisReply *r;

	if (cfg.seat_cache_ms == 0 || schedule <= 0)
		return;
	keys(map, count, sizeof(map), schedule);
	if ((r = cache_command("INCR %s", count)) != NULL)
		freeReplyObject(r);
}
