/* sentinel.c: the Redis master found through Redis Sentinel, and replica acknowledgement. */
#include "sentinel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

#define SENTINEL_MAX 8

/* The master the Sentinels named last, and the Sentinel that answered. */
static char master_host[CONFIG_STR_MAX];
static int master_port;
static int sentinel_next;

bool
sentinel_enabled(void)
{
	return cfg.redis_sentinels[0] != '\0';
}

/*
 * Split "host:port,host:port" into at most max entries in buf (in place).
 * Returns the count; entries without a valid port are skipped.
 */
static int
parse_sentinels(char *buf, char **host, int *port, int max)
{
	char *item, *save = NULL, *colon, *end = NULL;
	long p;
	int n = 0;

	for (item = strtok_r(buf, ", ", &save); item != NULL && n < max;
	     item = strtok_r(NULL, ", ", &save)) {
		if ((colon = strrchr(item, ':')) == NULL)
			continue;
		*colon = '\0';
		p = strtol(colon + 1, &end, 10);
		if (*end != '\0' || p < 1 || p > 65535 || item[0] == '\0')
			continue;
		host[n] = item;
		port[n++] = (int)p;
	}
	return n;
}

/*
 * Ask the Sentinels, from the one that answered last, for the master's
 * address. Returns 0 with master_host/master_port set, or -1.
 */
static int
ask_sentinels(struct timeval tv)
{
	char buf[CONFIG_STR_MAX], *host[SENTINEL_MAX];
	int port[SENTINEL_MAX], n, i, k, rc = -1;
	redisContext *c = NULL;
	redisReply *r = NULL;

	snprintf(buf, sizeof(buf), "%s", cfg.redis_sentinels);
	n = parse_sentinels(buf, host, port, SENTINEL_MAX);
	for (i = 0; i < n && rc != 0; i++) {
		k = (sentinel_next + i) % n;
		c = redisConnectWithTimeout(host[k], port[k], tv);
		if (c != NULL && !c->err) {
			redisSetTimeout(c, tv);
			r = redisCommand(c, "SENTINEL get-master-addr-by-name %s",
					 cfg.redis_master_name);
		}
		if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
		    r->element[0]->type == REDIS_REPLY_STRING &&
		    r->element[1]->type == REDIS_REPLY_STRING &&
		    r->element[0]->len < sizeof(master_host)) {
			memcpy(master_host, r->element[0]->str, r->element[0]->len);
			master_host[r->element[0]->len] = '\0';
			master_port = atoi(r->element[1]->str);
			sentinel_next = k;
			rc = 0;
		} else
			log_msg("redis sentinel %s:%d: %s", host[k], port[k],
				c == NULL ? "out of memory" : c->err ? c->errstr :
				"no master of that name");
		if (r != NULL)
			freeReplyObject(r);
		r = NULL;
		if (c != NULL)
			redisFree(c);
		c = NULL;
	}
	return rc;
}

/* Does the server on c say it is a master? */
static bool
is_master(redisContext *c)
{
	redisReply *r = redisCommand(c, "ROLE");
	bool yes = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
		   r->element[0]->type == REDIS_REPLY_STRING &&
		   strcmp(r->element[0]->str, "master") == 0;

	if (r != NULL)
		freeReplyObject(r);
	return yes;
}

redisContext *
sentinel_connect(struct timeval tv)
{
	redisContext *c = NULL;

	if (ask_sentinels(tv) != 0 && master_host[0] == '\0') {
		snprintf(master_host, sizeof(master_host), "%s", cfg.redis_host);
		master_port = (int)cfg.redis_port;
	}
	c = redisConnectWithTimeout(master_host, master_port, tv);
	if (c == NULL || c->err)
		return c;
	redisSetTimeout(c, tv);
	if (!is_master(c)) {
		log_msg("redis %s:%d is not a master (yet); asking the Sentinels again",
			master_host, master_port);
		redisFree(c);
		return NULL;
	}
	return c;
}

bool
sentinel_stale_master(const redisReply *r)
{
	/* Without Sentinels there is nowhere else to go: the reply stands. */
	return sentinel_enabled() && r != NULL && r->type == REDIS_REPLY_ERROR &&
	       strncmp(r->str, "READONLY", 8) == 0;
}
