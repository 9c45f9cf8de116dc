/* config.c: the configuration table, its INI loader and bounds checks. */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct config cfg;

enum ctype { C_INT, C_STR, C_ENUM, C_LIST };

/* One row per setting. For C_ENUM, words[] maps names to 0, 1, 2... */
struct config_entry {
	const char *section;
	const char *name;
	enum ctype type;
	size_t off;
	int64_t min, max;
	const char *def;
	const char *words[4];
};

#define OFF(f) offsetof(struct config, f)

static const struct config_entry entries[] = {
	{ "database", "primary_dsn", C_STR, OFF(primary_dsn), 0, 0,
	  "host=127.0.0.1 port=5432 dbname=boxoffice user=boxoffice", { NULL } },
	{ "database", "replica_dsn", C_LIST, OFF(replica_dsn), 0, 0, NULL, { NULL } },
	{ "database", "connect_timeout_ms", C_INT, OFF(connect_timeout_ms), 1, 60000, "500", { NULL } },
	{ "database", "statement_timeout_ms", C_INT, OFF(statement_timeout_ms), 1, 600000, "1000", { NULL } },
	{ "database", "read_routing", C_ENUM, OFF(read_routing), 0, 0, "replica", { "replica", "primary", NULL } },
	{ "database", "replica_max_lag", C_INT, OFF(replica_max_lag), 0, 3600, "5", { NULL } },
	{ "database", "replica_retry_s", C_INT, OFF(replica_retry_s), 1, 3600, "5", { NULL } },
	{ "redis", "host", C_STR, OFF(redis_host), 0, 0, "127.0.0.1", { NULL } },
	{ "redis", "port", C_INT, OFF(redis_port), 1, 65535, "6379", { NULL } },
	{ "redis", "timeout_ms", C_INT, OFF(redis_timeout_ms), 1, 60000, "200", { NULL } },
	{ "redis", "cache", C_ENUM, OFF(cache), 0, 0, "on", { "on", "off", "bypass", NULL } },
	{ "redis", "cache_ttl_ms", C_INT, OFF(cache_ttl_ms), 0, 600000, "1000", { NULL } },
	{ "redis", "breaker_failures", C_INT, OFF(breaker_failures), 1, 1000, "3", { NULL } },
	{ "redis", "breaker_open_s", C_INT, OFF(breaker_open_s), 1, 3600, "5", { NULL } },
	{ "redis", "sentinels", C_STR, OFF(redis_sentinels), 0, 0, "", { NULL } },
	{ "redis", "master_name", C_STR, OFF(redis_master_name), 0, 0, "boxoffice", { NULL } },
	{ "redis", "wait_replica_ms", C_INT, OFF(redis_wait_replica_ms), 0, 60000, "0", { NULL } },
	{ "http", "max_body", C_INT, OFF(max_body), 64, 1048576, "8192", { NULL } },
	{ "http", "access_log", C_STR, OFF(access_log), 0, 0, "-", { NULL } },
	{ "http", "maintenance", C_INT, OFF(maintenance), 0, 1, "0", { NULL } },
	{ "http", "workers", C_INT, OFF(workers), 1, 64, "64", { NULL } },
	/* Per-pool sizes of a divided service (workers started with -p); like
	 * http.workers for the undivided one: how many of the processes
	 * started for the pool take requests. */
	{ "pools", "queue", C_INT, OFF(pool_queue), 1, 64, "64", { NULL } },
	{ "pools", "signin", C_INT, OFF(pool_signin), 1, 64, "64", { NULL } },
	{ "pools", "booking", C_INT, OFF(pool_booking), 1, 64, "64", { NULL } },
	{ "http", "micro_cache_ms", C_INT, OFF(micro_cache_ms), 0, 1000, "500", { NULL } },
	{ "token", "key_file", C_STR, OFF(key_file), 0, 0, "/etc/boxoffice/token.key", { NULL } },
	{ "token", "key_file_old", C_STR, OFF(key_file_old), 0, 0, "", { NULL } },
	{ "queue", "max_active", C_INT, OFF(max_active), 1, 1000000, "200", { NULL } },
	{ "queue", "admit_per_second", C_INT, OFF(admit_per_second), 1, 100000, "50", { NULL } },
	{ "queue", "active_ttl", C_INT, OFF(active_ttl), 10, 86400, "600", { NULL } },
	/* Seconds an admitted user has to claim the turn (a status poll). */
	{ "queue", "claim_window", C_INT, OFF(claim_window), 1, 3600, "60", { NULL } },
	/* At least the one second nginx keeps the progress document. */
	{ "queue", "progress_poll_ms", C_INT, OFF(progress_poll_ms), 1000, 60000, "2000", { NULL } },
	{ "booking", "hold_ttl", C_INT, OFF(hold_ttl), 5, 86400, "300", { NULL } },
	{ "booking", "max_holds_per_user", C_INT, OFF(max_holds_per_user), 1, 100, "4", { NULL } },
	{ "booking", "max_tickets_per_user", C_INT, OFF(max_tickets_per_user), 1, 100000, "4",
	  { NULL } },
	{ "booking", "seat_cache_ms", C_INT, OFF(seat_cache_ms), 0, 60000, "5000", { NULL } },
	{ "booking", "refund_until_hours", C_INT, OFF(refund_until_hours), 0, 8760, "48",
	  { NULL } },
	{ "booking", "max_charge", C_INT, OFF(max_charge), 1, 1000000000000LL, "10000000", { NULL } },
	/* Argon2id cost; the lower bounds are libsodium's, for tests and benches. */
	{ "auth", "pwhash_opslimit", C_INT, OFF(pwhash_opslimit), 1, 16, "2", { NULL } },
	{ "auth", "pwhash_memlimit_kib", C_INT, OFF(pwhash_memlimit_kib), 8, 1048576, "65536", { NULL } },
	{ "auth", "session_ttl", C_INT, OFF(session_ttl), 60, 2592000, "43200", { NULL } },
	{ "auth", "jwks_file", C_STR, OFF(jwks_file), 0, 0, "", { NULL } },
	{ "auth", "jwt_issuer", C_STR, OFF(jwt_issuer), 0, 0, "", { NULL } },
	{ "auth", "jwt_audience", C_STR, OFF(jwt_audience), 0, 0, "", { NULL } },
	{ "auth", "jwt_leeway_s", C_INT, OFF(jwt_leeway_s), 0, 300, "30", { NULL } },
	{ "auth", "cookie_secure", C_INT, OFF(cookie_secure), 0, 1, "1", { NULL } },
	{ "auth", "max_failures", C_INT, OFF(max_failures), 1, 1000, "10", { NULL } },
	{ "auth", "failure_window", C_INT, OFF(failure_window), 1, 86400, "900", { NULL } },
	{ "auth", "hash_concurrency", C_INT, OFF(hash_concurrency), 1, 64, "1", { NULL } },
};

#define NENTRIES (sizeof(entries) / sizeof(entries[0]))

/* Parse a whole decimal integer within [min, max]. Returns 0 or -1. */
static int
parse_bounded(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end = NULL;
	long long v;

	if (*s == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
apply(struct config *c, const struct config_entry *e, const char *value,
      char *err, size_t errlen)
{
	char *base = (char *)c;
	size_t i;

	switch (e->type) {
	case C_INT:
		if (parse_bounded(value, e->min, e->max, (int64_t *)(base + e->off)) == 0)
			return 0;
		snprintf(err, errlen, "%s.%s: '%s' is not an integer in %lld..%lld",
			 e->section, e->name, value, (long long)e->min, (long long)e->max);
		return -1;
	case C_ENUM:
		for (i = 0; e->words[i] != NULL; i++)
			if (strcasecmp(value, e->words[i]) == 0) {
				*(int64_t *)(base + e->off) = (int64_t)i;
				return 0;
			}
		snprintf(err, errlen, "%s.%s: '%s' is not one of the allowed words",
			 e->section, e->name, value);
		return -1;
	case C_STR:
		if (strlen(value) >= CONFIG_STR_MAX) {
			snprintf(err, errlen, "%s.%s: value too long", e->section, e->name);
			return -1;
		}
		strcpy(base + e->off, value);
		return 0;
	case C_LIST:
		/* An empty value clears the list, so a file can drop replicas. */
		if (*value == '\0') {
			c->replica_count = 0;
			return 0;
		}
		if (c->replica_count >= CONFIG_MAX_REPLICAS || strlen(value) >= CONFIG_STR_MAX) {
			snprintf(err, errlen, "%s.%s: at most %d values of under %d bytes",
				 e->section, e->name, CONFIG_MAX_REPLICAS, CONFIG_STR_MAX);
			return -1;
		}
		strcpy(c->replica_dsn[c->replica_count++], value);
		return 0;
	}
	return -1;
}

void
config_defaults(struct config *c)
{
	char err[256];
	size_t i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < NENTRIES; i++)
		if (entries[i].def != NULL)
			(void)apply(c, &entries[i], entries[i].def, err, sizeof(err));
}

/*
 * Settings that no longer exist but may be in older files: accepted with a
 * warning on standard error (the worker's log), and ignored.
 */
static const char *const retired[][3] = {
	{ "queue", "abandon_after", "waiters no longer poll to keep a place; see queue.claim_window" },
};

int
config_set(struct config *c, const char *section, const char *name,
	   const char *value, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < sizeof(retired) / sizeof(retired[0]); i++)
		if (strcmp(retired[i][0], section) == 0 && strcmp(retired[i][1], name) == 0) {
			fprintf(stderr, "warning: setting %s.%s is no longer used (%s); ignored\n",
				section, name, retired[i][2]);
			return 0;
		}
	for (i = 0; i < NENTRIES; i++)
		if (strcmp(entries[i].section, section) == 0 &&
		    strcmp(entries[i].name, name) == 0)
			return apply(c, &entries[i], value, err, errlen);
	snprintf(err, errlen, "unknown setting %s.%s", section, name);
	return -1;
}

struct load_state {
	struct config *c;
	char *err;
	size_t errlen;
	int failed;
};

/* inih callback: returns 1 to go on, 0 to stop with the line number. */
static int
on_line(void *user, const char *section, const char *name, const char *value)
{
	struct load_state *st = user;

	if (config_set(st->c, section, name, value, st->err, st->errlen) != 0) {
		st->failed = 1;
		return 0;
	}
	return 1;
}

/* Turn inih's result into ours: 0, or -1 with "where:line: why" in err. */
static int
finish(int rc, const char *where, struct load_state *st, char *err, size_t errlen)
{
	char detail[256];

	if (rc == 0)
		return 0;
	snprintf(detail, sizeof(detail), "%s", st->failed ? err : "syntax error");
	snprintf(err, errlen, "%s:%d: %s", where, rc, detail);
	return -1;
}

int
config_load_string(const char *text, struct config *c, char *err, size_t errlen)
{
	struct load_state st = { c, err, errlen, 0 };

	config_defaults(c);
	err[0] = '\0';
	return finish(ini_parse_string(text, on_line, &st), "(string)", &st, err, errlen);
}

int
config_load(const char *path, struct config *c, char *err, size_t errlen)
{
	struct load_state st = { c, err, errlen, 0 };
	int rc;

	config_defaults(c);
	err[0] = '\0';
	rc = ini_parse(path, on_line, &st);
	if (rc == -1) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	return finish(rc, path, &st, err, errlen);
}
