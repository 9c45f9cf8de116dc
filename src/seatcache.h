/* seatcache.h: the Redis copy of each schedule's seat map, never older than its last change. */
#ifndef BOXOFFICE_SEATCACHE_H
#define BOXOFFICE_SEATCACHE_H

#include <stddef.h>
#include <stdint.h>

/*
 * The cached seat map of schedule as read for concert: a copy of the JSON
 * (caller frees, *len set), or NULL on a miss, when the cache is off or
 * bypassed, or when Redis is unusable. *version is set to the schedule's
 * change count as of this look-up (one Redis call for both), to be given
 * to seatcache_put() after the database read; -1 when unknown, and then
 * nothing may be cached.
 */
char *seatcache_get(int64_t schedule, int64_t concert, size_t *len, int64_t *version);

/*
 * Keep body (the seat map of schedule read for concert, after a
 * seatcache_get() that returned version) for at most ttl_ms. Failures are
 * counted and otherwise ignored.
 */
void seatcache_put(int64_t schedule, int64_t concert, int64_t version, const char *body,
		   size_t len, long ttl_ms);

/*
 * One of schedule's seats changed (held, released, sold): every copy made
 * before is void from now on. Failures are ignored: a copy then lasts its
 * TTL at most.
 */
void seatcache_changed(int64_t schedule);

#endif
