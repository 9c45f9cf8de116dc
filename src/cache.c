/* cache.c: one Redis connection per worker behind a circuit breaker. */
#include "cache.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "sentinel.h"

static redisContext *ctx;

/*
 * The breaker: after breaker_failures consecutive failures it opens for
 * breaker_open_s seconds, during which nothing is sent; then one call is
 * let through as a probe, and its success closes the breaker.
 */
static int failures;
static time_t open_until;

static time_t
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

bool
cache_breaker_open(void)
{
	return failures >= cfg.breaker_failures && mono_s() < open_until;
}

static void
note_failure(const char *what)
{
	metrics_add(M_REDIS_ERRORS, 1);
	if (ctx != NULL) {
		log_msg("redis %s: %s", what, ctx->errstr);
		redisFree(ctx);
		ctx = NULL;
	}
	if (++failures >= cfg.breaker_failures) {
		if (failures == cfg.breaker_failures)
			metrics_add(M_BREAKER_OPENS, 1);
		open_until = mono_s() + cfg.breaker_open_s;
	}
}

/*
 * Has the server closed the idle connection (a restart)? No reply is
 * pending between commands, so a readable socket means EOF or an error.
 */
static bool
closed_while_idle(void)
{
	struct pollfd pfd = { ctx->fd, POLLIN, 0 };

	return poll(&pfd, 1, 0) > 0;
}

/* Connected context, or NULL when Redis must not be called now. */
redisContext *
cache_connect(struct timeval tv)
{
	if (sentinel_enabled())
		return sentinel_connect(tv);
	if (cfg.redis_host[0] == '/')
		return redisConnectUnixWithTimeout(cfg.redis_host, tv);
	return redisConnectWithTimeout(cfg.redis_host, (int)cfg.redis_port, tv);
}

static redisContext *
conn(void)
{
	struct timeval tv;

	if (ctx != NULL && closed_while_idle()) {
		/* Reconnect at once; not a failure of a command. */
		redisFree(ctx);
		ctx = NULL;
		failures = 0;
	}
	if (ctx != NULL)
		return ctx;
	if (cache_breaker_open())
		return NULL;
	tv.tv_sec = cfg.redis_timeout_ms / 1000;
	tv.tv_usec = (cfg.redis_timeout_ms % 1000) * 1000;
	ctx = cache_connect(tv);
	if (ctx == NULL || ctx->err) {
		if (ctx == NULL)
			metrics_add(M_REDIS_ERRORS, 1);
		note_failure("connect");
		return NULL;
	}
	redisSetTimeout(ctx, tv);
	return ctx;
}

redisReply *
cache_argv(int argc, const char **argv, const size_t *lens)
{
	redisReply *reply;

	if (conn() == NULL) {
		metrics_add(M_CACHE_BYPASSES, 1);
		return NULL;
	}
	reply = redisCommandArgv(ctx, argc, argv, lens);
	if (sentinel_stale_master(reply)) {
		/* The master became a replica: ask the Sentinels again. */
		freeReplyObject(reply);
		reply = NULL;
	}
	if (reply == NULL) {
		note_failure(argv[0]);
		return NULL;
	}
	failures = 0;
	return reply;
}

redisReply *
cache_command(const char *fmt, ...)
{
	redisReply *reply;
	va_list ap;

	if (conn() == NULL) {
		metrics_add(M_CACHE_BYPASSES, 1);
		return NULL;
	}
	va_start(ap, fmt);
	reply = redisvCommand(ctx, fmt, ap);
	va_end(ap);
	if (sentinel_stale_master(reply)) {
		freeReplyObject(reply);
		reply = NULL;
	}
	if (reply == NULL) {
		note_failure("command");
		return NULL;
	}
	failures = 0;
	return reply;
}

/* Load s into Redis and remember its SHA. Returns 0 or -1. */
static int
script_load(struct cache_script *s)
{
	const char *argv[3] = { "SCRIPT", "LOAD", s->source };
	redisReply *r = cache_argv(3, argv, NULL);
	int rc = -1;

	if (r != NULL && r->type == REDIS_REPLY_STRING && r->len == 40) {
		memcpy(s->sha, r->str, 40);
		s->sha[40] = '\0';
		rc = 0;
	} else if (r != NULL)
		log_msg("redis: cannot load script %s: %s", s->name,
			r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}

redisReply *
cache_eval(struct cache_script *s, int nkeys, int argc, const char **argv,
	   const size_t *lens)
{
	const char *av[CACHE_EVAL_MAX_ARGS + 3];	/* EVALSHA sha nkeys, then argv */
	size_t lv[CACHE_EVAL_MAX_ARGS + 3];
	char nk[16];
	redisReply *r = NULL;
	int i, attempt;

	if (argc > CACHE_EVAL_MAX_ARGS)
		return NULL;
	snprintf(nk, sizeof(nk), "%d", nkeys);
	for (attempt = 0; attempt < 2; attempt++) {
		if (s->sha[0] == '\0' && script_load(s) != 0)
			return NULL;
		av[0] = "EVALSHA";
		lv[0] = 7;
		av[1] = s->sha;
		lv[1] = 40;
		av[2] = nk;
		lv[2] = strlen(nk);
		for (i = 0; i < argc; i++) {
			av[i + 3] = argv[i];
			lv[i + 3] = lens ? lens[i] : strlen(argv[i]);
		}
		r = cache_argv(argc + 3, av, lv);
		/* After a restart or FLUSH the script is gone: load it again. */
		if (r != NULL && r->type == REDIS_REPLY_ERROR &&
		    strncmp(r->str, "NOSCRIPT", 8) == 0) {
			freeReplyObject(r);
			r = NULL;
			s->sha[0] = '\0';
			continue;
		}
		break;
	}
	return r;
}

char *
cache_get(const char *key, size_t *len)
{
	redisReply *r = NULL;
	char *val = NULL;

	if (cfg.cache != CACHE_ON) {
		metrics_add(M_CACHE_BYPASSES, 1);
		return NULL;
	}
	r = cache_command("GET %s", key);
	if (r == NULL)
		return NULL;
	if (r->type == REDIS_REPLY_STRING) {
		val = malloc(r->len + 1);
		if (val != NULL) {
			memcpy(val, r->str, r->len);
			val[r->len] = '\0';
			*len = r->len;
			metrics_add(M_CACHE_HITS, 1);
		}
	} else
		metrics_add(M_CACHE_MISSES, 1);
	freeReplyObject(r);
	return val;
}

void
cache_set(const char *key, const char *value, size_t len, long ttl_ms)
{
	redisReply *r;

	if (cfg.cache == CACHE_OFF || ttl_ms <= 0)
		return;
	r = cache_command("SET %s %b PX %ld", key, value, len, ttl_ms);
	if (r != NULL)
		freeReplyObject(r);
}

bool
cache_health(void)
{
	redisReply *r = cache_command("PING");
	bool up = r != NULL && r->type == REDIS_REPLY_STATUS;

	if (r != NULL)
		freeReplyObject(r);
	return up;
}

void
cache_close(void)
{
	if (ctx != NULL)
		redisFree(ctx);
	ctx = NULL;
}

bool
cache_conn_settings_differ(const struct config *a, const struct config *b)
{
	return strcmp(a->redis_host, b->redis_host) != 0 || a->redis_port != b->redis_port ||
	       a->redis_timeout_ms != b->redis_timeout_ms ||
	       strcmp(a->redis_sentinels, b->redis_sentinels) != 0 ||
	       strcmp(a->redis_master_name, b->redis_master_name) != 0;
}

int
cache_wait_replica(void)
{
	redisReply *r = NULL;
	long long ms = cfg.redis_wait_replica_ms;
	int rc = -1;

	if (ms <= 0)
		return 0;
	/* WAIT blocks the connection: keep inside the command timeout. */
	if (ms > cfg.redis_timeout_ms * 3 / 4)
		ms = cfg.redis_timeout_ms * 3 / 4;
	if (ms < 1)
		ms = 1;
	r = cache_command("WAIT 1 %lld", ms);
	if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 1)
		rc = 0;
	if (r != NULL)
		freeReplyObject(r);
	return rc;
}
