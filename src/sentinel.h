/* sentinel.h: the Redis master found through Redis Sentinel, and replica acknowledgement. */
#ifndef BOXOFFICE_SENTINEL_H
#define BOXOFFICE_SENTINEL_H

#include <hiredis/hiredis.h>
#include <stdbool.h>

/* Are Sentinels configured (redis.sentinels not empty)? */
bool sentinel_enabled(void);

/*
 * A new connection to the master that the Sentinels of redis.sentinels
 * name for redis.master_name, checked with ROLE (a Sentinel that has not
 * yet seen a failover may still name the old master). When no Sentinel
 * answers, the master they named last (at first redis.host:port) is
 * tried. Returns a context the caller owns and checks (->err), or NULL
 * when out of memory or when the server reached is not a master.
 */
redisContext *sentinel_connect(struct timeval tv);

/*
 * With Sentinels, is r the refusal of a master that has been turned into
 * a replica (READONLY)? The caller drops the connection, so the next one
 * asks the Sentinels again. Always false without Sentinels.
 */
bool sentinel_stale_master(const redisReply *r);

#endif
