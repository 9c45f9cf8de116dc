/* cache.h: the Redis connection, its circuit breaker, the read cache and Lua scripts. */
#ifndef BOXOFFICE_CACHE_H
#define BOXOFFICE_CACHE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

struct config;

/*
 * A new connection to the configured Redis: TCP, or the Unix socket when
 * redis.host is a path (it starts with '/'), or the master the Sentinels
 * name when redis.sentinels is set (sentinel.c). NULL when out of memory
 * or no master was found; the caller checks ->err and owns the context
 * (redisFree()).
 */
redisContext *cache_connect(struct timeval tv);

/*
 * Send one command (argv form). Returns the reply, which the caller frees
 * with freeReplyObject() (it may be a REDIS_REPLY_ERROR), or NULL when
 * Redis is down, timed out, or the breaker is open: then no time was
 * spent waiting and the caller degrades (503 for the queue, database for
 * reads).
 */
redisReply *cache_argv(int argc, const char **argv, const size_t *lens);

/* printf-style convenience over cache_argv() for fixed commands. */
redisReply *cache_command(const char *fmt, ...);

/* A Lua script run with EVALSHA, loaded on first use or after a flush. */
struct cache_script {
	const char *name;
	const char *source;
	char sha[41];		/* filled on first load */
};

/* The most keys and arguments one cache_eval() passes. */
#define CACHE_EVAL_MAX_ARGS 29

/*
 * Run script s with nkeys keys followed by arguments, all in argv (argc of
 * them, at most CACHE_EVAL_MAX_ARGS; NULL if more).
 */
redisReply *cache_eval(struct cache_script *s, int nkeys, int argc,
		       const char **argv, const size_t *lens);

/*
 * Read cache: a copy of the value (caller frees) or NULL on a miss, when
 * the cache is off or bypassed, or when Redis is unusable.
 */
char *cache_get(const char *key, size_t *len);

/* Store value for ttl_ms; failures are counted and otherwise ignored. */
void cache_set(const char *key, const char *value, size_t len, long ttl_ms);

/* Is Redis usable now (breaker closed and a PING answered)? */
bool cache_health(void);

/* Is the breaker open (calls are being skipped)? */
bool cache_breaker_open(void);

/* Drop the connection: after a reload that moved Redis, and at exit. */
void cache_close(void);

/* Would a connection opened under settings a differ from one under b? */
bool cache_conn_settings_differ(const struct config *a, const struct config *b);

/*
 * With redis.wait_replica_ms set: wait until at least one replica has
 * every write of this connection so far (Redis WAIT), so that a master
 * lost right after cannot take it along. Returns 0 when confirmed or the
 * setting is 0, -1 when no replica confirmed in time or Redis failed.
 */
int cache_wait_replica(void);

#endif
