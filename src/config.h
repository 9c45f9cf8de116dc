/* config.h: the worker's settings, one table of names, bounds and defaults. */
#ifndef BOXOFFICE_CONFIG_H
#define BOXOFFICE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_REPLICAS 4
#define CONFIG_STR_MAX 512

enum read_routing { ROUTE_REPLICA, ROUTE_PRIMARY };
enum cache_mode { CACHE_ON, CACHE_OFF, CACHE_BYPASS };

struct config {
	/* [database] */
	char primary_dsn[CONFIG_STR_MAX];
	char replica_dsn[CONFIG_MAX_REPLICAS][CONFIG_STR_MAX];
	int replica_count;
	int64_t connect_timeout_ms;
	int64_t statement_timeout_ms;
	int64_t read_routing;		/* enum read_routing */
	int64_t replica_max_lag;
	int64_t replica_retry_s;
	/* [redis] */
	char redis_host[CONFIG_STR_MAX];
	int64_t redis_port;
	int64_t redis_timeout_ms;
	int64_t cache;			/* enum cache_mode */
	int64_t cache_ttl_ms;
	int64_t breaker_failures;
	int64_t breaker_open_s;
	char redis_sentinels[CONFIG_STR_MAX];	/* host:port,... or empty */
	char redis_master_name[CONFIG_STR_MAX];
	int64_t redis_wait_replica_ms;
	/* [http] */
	int64_t max_body;
	char access_log[CONFIG_STR_MAX];
	int64_t maintenance;
	int64_t micro_cache_ms;
	int64_t workers;
	/* [pools] */
	int64_t pool_queue;
	int64_t pool_signin;
	int64_t pool_booking;
	/* [token] */
	char key_file[CONFIG_STR_MAX];
	char key_file_old[CONFIG_STR_MAX];
	/* [queue] */
	int64_t max_active;
	int64_t admit_per_second;
	int64_t active_ttl;
	int64_t claim_window;
	int64_t progress_poll_ms;
	/* [booking] */
	int64_t hold_ttl;
	int64_t max_holds_per_user;
	int64_t max_tickets_per_user;	/* held + paid per user per concert */
	int64_t max_charge;
	int64_t seat_cache_ms;
	int64_t refund_until_hours;	/* refunds close this long before a show */
	/* [auth] */
	int64_t pwhash_opslimit;
	int64_t pwhash_memlimit_kib;
	int64_t session_ttl;
	char jwks_file[CONFIG_STR_MAX];
	char jwt_issuer[CONFIG_STR_MAX];
	char jwt_audience[CONFIG_STR_MAX];
	int64_t jwt_leeway_s;
	int64_t cookie_secure;		/* the session cookie carries Secure */
	int64_t max_failures;		/* failed sign-ins per account or address ... */
	int64_t failure_window;		/* ... within this many seconds, then 429 */
	int64_t hash_concurrency;	/* workers hashing passwords at once, at most */
};

/* The settings in force; replaced as a whole by a successful reload. */
extern struct config cfg;

/* Fill *c with every default. */
void config_defaults(struct config *c);

/*
 * Read the INI file at path into *c, starting from the defaults. Returns 0
 * on success; -1 with a message naming the file and line in err otherwise,
 * in which case *c is unspecified and the caller keeps its old settings.
 */
int config_load(const char *path, struct config *c, char *err, size_t errlen);

/* The same from text in memory (for tests and fuzzing); errors name line N. */
int config_load_string(const char *text, struct config *c, char *err, size_t errlen);

/*
 * Apply one "section.name = value" setting to *c (the loader calls this for
 * every line; tests call it directly). Returns 0, or -1 with err filled.
 */
int config_set(struct config *c, const char *section, const char *name,
	       const char *value, char *err, size_t errlen);

#endif
