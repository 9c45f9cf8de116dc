/* cli.c: boxofficectl, the operator's command line: schema, data, tokens, queue. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "queue.h"
#include "token.h"
#include "valid.h"

#ifndef SQLDIR
#define SQLDIR "/usr/local/share/boxoffice/sql"
#endif

static void
usage(void)
{
	fprintf(stderr,
		"usage: boxofficectl [-c CONFIG] COMMAND [ARGS]\n"
		"  migrate [--sql-dir DIR]        apply new sql/NNN_*.sql migrations in order\n"
		"  seed [--concerts N] [--schedules N] [--seats N] [--users N] [--balance N]\n"
		"                                 load the deterministic demo data\n"
		"  sweep                          tidy expired seat holds\n"
		"  token USER_UUID [SECONDS]      print a signed user token (default 1 hour)\n"
		"  keygen FILE                    write a new random 32-byte token key (mode 0600)\n"
		"  queue stats CONCERT            waiting, active and counters of a queue\n"
		"  queue dump CONCERT FILE        write the exact queue state to FILE (JSON)\n"
		"  queue restore FILE             put a dumped queue state back exactly\n"
		"  cache warm                     fill the read cache after Redis comes back\n");
}

/* Connect to the primary or exit. The caller PQfinish()es the result. */
static PGconn *
pg(void)
{
	PGconn *c = PQconnectdb(cfg.primary_dsn);

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "boxofficectl: database: %s", PQerrorMessage(c));
		exit(1);
	}
	return c;
}

static redisContext *
rd(void)
{
	struct timeval tv = { 2, 0 };
	redisContext *c = cache_connect(tv);

	if (c == NULL || c->err) {
		fprintf(stderr, "boxofficectl: redis: %s\n", c ? c->errstr : "no master found");
		exit(1);
	}
	return c;
}

/* Run sql (no parameters); prints the error and returns -1 on failure. */
static int
pg_run(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok)
		fprintf(stderr, "boxofficectl: %s", PQresultErrorMessage(res));
	PQclear(res);
	return ok ? 0 : -1;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Files named NNN_*.sql, applied in name order, each in its own transaction. */
static int
is_migration(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 8 && d->d_name[0] >= '0' && d->d_name[0] <= '9' &&
	       strcmp(d->d_name + n - 4, ".sql") == 0;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) != NULL) {
		if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else
			buf[n] = '\0';
	}
	fclose(f);
	return buf;
}

static int
cmd_migrate(const char *dir)
{
	struct dirent **list = NULL;
	const char *params[1];
	char path[4096];
	PGconn *c = pg();
	PGresult *res;
	char *sql = NULL;
	int i, n = 0, rc = 1, applied = 0, done;

	if (pg_run(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
		      " version text PRIMARY KEY,"
		      " applied_at timestamptz NOT NULL DEFAULT now())") != 0)
		goto out;
	n = scandir(dir, &list, is_migration, by_name);
	if (n < 0) {
		fprintf(stderr, "boxofficectl: %s: %s\n", dir, strerror(errno));
		goto out;
	}
	for (i = 0; i < n; i++) {
		params[0] = list[i]->d_name;
		/* Serialise concurrent migrators on an advisory lock. */
		if (pg_run(c, "BEGIN") != 0 ||
		    pg_run(c, "SELECT pg_advisory_xact_lock(4242)") != 0)
			goto out;
		res = PQexecParams(c, "SELECT 1 FROM schema_migrations WHERE version = $1",
				   1, NULL, params, NULL, NULL, 0);
		done = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
		PQclear(res);
		if (done) {
			pg_run(c, "ROLLBACK");
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
		if ((sql = slurp(path)) == NULL) {
			fprintf(stderr, "boxofficectl: cannot read %s\n", path);
			goto out;
		}
		if (pg_run(c, sql) != 0) {
			fprintf(stderr, "boxofficectl: migration %s failed; nothing of it applied\n",
				list[i]->d_name);
			pg_run(c, "ROLLBACK");
			goto out;
		}
		res = PQexecParams(c, "INSERT INTO schema_migrations (version) VALUES ($1)",
				   1, NULL, params, NULL, NULL, 0);
		PQclear(res);
		if (pg_run(c, "COMMIT") != 0)
			goto out;
		free(sql);
		sql = NULL;
		printf("applied %s\n", list[i]->d_name);
		applied++;
	}
	printf("migrations: %d applied, schema up to date\n", applied);
	rc = 0;
out:
	free(sql);
	if (list != NULL) {
		for (i = 0; i < n; i++)
			free(list[i]);
		free(list);
	}
	PQfinish(c);
	return rc;
}

static int
cmd_seed(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "concerts", required_argument, NULL, 'c' },
		{ "schedules", required_argument, NULL, 's' },
		{ "seats", required_argument, NULL, 'n' },
		{ "users", required_argument, NULL, 'u' },
		{ "balance", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 }
	};
	int64_t v[5] = { 5, 4, 50, 1000, 500000 };
	char text[5][24];
	const char *params[5];
	PGconn *c = NULL;
	PGresult *res;
	int opt, i, rc = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		const char *which = "csnub";
		const char *p = strchr(which, opt);

		if (opt == '?' || p == NULL || !valid_decimal(optarg, 0, 999999999999LL, &v[p - which])) {
			fprintf(stderr, "boxofficectl seed: bad option or number\n");
			return 2;
		}
	}
	for (i = 0; i < 5; i++) {
		snprintf(text[i], sizeof(text[i]), "%lld", (long long)v[i]);
		params[i] = text[i];
	}
	c = pg();
	res = PQexecParams(c, "SELECT boxoffice_seed($1::int, $2::int, $3::int, $4::int, $5::bigint)",
			   5, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fprintf(stderr, "boxofficectl seed: %s", PQresultErrorMessage(res));
	else {
		printf("seeded %s concerts x %s schedules x %s seats, %s users\n",
		       text[0], text[1], text[2], text[3]);
		rc = 0;
	}
	PQclear(res);
	PQfinish(c);
	return rc;
}

static int
cmd_sweep(void)
{
	PGconn *c = pg();
	PGresult *res = PQexec(c, "SELECT boxoffice_sweep()");
	int rc = 1;

	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		printf("expired holds tidied: %s\n", PQgetvalue(res, 0, 0));
		rc = 0;
	} else
		fprintf(stderr, "boxofficectl sweep: %s", PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(c);
	return rc;
}

static int
load_keys(void)
{
	char err[512];

	if (token_load_keys(cfg.key_file, cfg.key_file_old, err, sizeof(err)) != 0) {
		fprintf(stderr, "boxofficectl: %s\n", err);
		return -1;
	}
	return 0;
}

static int
cmd_token(const char *user, const char *secs)
{
	struct token t;
	char buf[TOKEN_MAX];
	int64_t life = 3600;

	memset(&t, 0, sizeof(t));
	if (!valid_uuid(user, t.user) ||
	    (secs != NULL && !valid_decimal(secs, 1, 31 * 86400, &life))) {
		fprintf(stderr, "boxofficectl token: USER_UUID [SECONDS up to 31 days]\n");
		return 2;
	}
	if (load_keys() != 0)
		return 1;
	t.kind = TOKEN_USER;
	t.iat = time(NULL);
	t.exp = t.iat + life;
	if (token_sign(&t, buf, sizeof(buf)) == 0)
		return 1;
	printf("%s\n", buf);
	return 0;
}

static int
cmd_keygen(const char *path)
{
	unsigned char key[32];
	FILE *in = fopen("/dev/urandom", "r");
	FILE *out = NULL;
	int fd = -1, rc = 1;

	if (in == NULL || fread(key, 1, sizeof(key), in) != sizeof(key))
		goto out;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || (out = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "boxofficectl keygen: %s: %s\n", path, strerror(errno));
		goto out;
	}
	fd = -1;
	if (fwrite(key, 1, sizeof(key), out) == sizeof(key))
		rc = 0;
out:
	if (in != NULL)
		fclose(in);
	if (out != NULL)
		fclose(out);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Which Redis type each queue part has, in the order of queue_parts[]. */
enum part_type { P_STRING, P_HASH, P_ZSET };
static const enum part_type part_types[] = { P_STRING, P_HASH, P_ZSET, P_ZSET,
					     P_ZSET, P_ZSET, P_HASH, P_STRING, P_STRING };

static redisReply *
rcmd(redisContext *c, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (r == NULL) {
		fprintf(stderr, "boxofficectl: redis: %s\n", c->errstr);
		exit(1);
	}
	return r;
}

static int
parse_concert(const char *s, int64_t *concert)
{
	if (!valid_decimal(s, 1, 2147483647, concert)) {
		fprintf(stderr, "boxofficectl: CONCERT must be a concert id\n");
		return -1;
	}
	return 0;
}

static int
cmd_queue_stats(const char *arg)
{
	redisContext *c = NULL;
	redisReply *r;
	char key[64];
	int64_t concert;
	size_t i;

	if (parse_concert(arg, &concert) != 0)
		return 2;
	c = rd();
	queue_key(key, sizeof(key), concert, "wait");
	r = rcmd(c, "ZCARD %s", key);
	printf("concert %lld\nwaiting %lld\n", (long long)concert, r->integer);
	freeReplyObject(r);
	queue_key(key, sizeof(key), concert, "active");
	r = rcmd(c, "ZCARD %s", key);
	printf("active %lld\n", r->integer);
	freeReplyObject(r);
	queue_key(key, sizeof(key), concert, "seq");
	r = rcmd(c, "GET %s", key);
	printf("last_number %s\n", r->type == REDIS_REPLY_STRING ? r->str : "0");
	freeReplyObject(r);
	queue_key(key, sizeof(key), concert, "stats");
	r = rcmd(c, "HGETALL %s", key);
	for (i = 0; i + 1 < r->elements; i += 2)
		printf("%s %s\n", r->element[i]->str, r->element[i + 1]->str);
	freeReplyObject(r);
	redisFree(c);
	return 0;
}

/*
 * Write every structure of one concert's queue to a JSON file: numbers,
 * users, waiting and active sets with their scores (times are absolute
 * milliseconds), so that a restore brings back the exact order.
 */
static int
cmd_queue_dump(const char *arg, const char *path)
{
	struct json_object *root = NULL, *part;
	redisContext *c = NULL;
	redisReply *r;
	char key[64];
	int64_t concert;
	size_t i;
	int p, rc = 1;

	if (parse_concert(arg, &concert) != 0)
		return 2;
	c = rd();
	root = json_object_new_object();
	json_object_object_add(root, "concert", json_object_new_int64(concert));
	json_object_object_add(root, "dumpedAt", json_object_new_int64((int64_t)time(NULL)));
	/* One MULTI block: a consistent snapshot even while users poll. */
	freeReplyObject(rcmd(c, "MULTI"));
	for (p = 0; queue_parts[p] != NULL; p++) {
		queue_key(key, sizeof(key), concert, queue_parts[p]);
		if (part_types[p] == P_STRING)
			freeReplyObject(rcmd(c, "GET %s", key));
		else if (part_types[p] == P_HASH)
			freeReplyObject(rcmd(c, "HGETALL %s", key));
		else
			freeReplyObject(rcmd(c, "ZRANGE %s 0 -1 WITHSCORES", key));
	}
	r = rcmd(c, "EXEC");
	if (r->type != REDIS_REPLY_ARRAY) {
		fprintf(stderr, "boxofficectl: queue dump: snapshot failed\n");
		freeReplyObject(r);
		goto out;
	}
	for (p = 0; queue_parts[p] != NULL; p++) {
		redisReply *e = r->element[p];

		if (part_types[p] == P_STRING) {
			part = e->type == REDIS_REPLY_STRING ? json_object_new_string(e->str) : NULL;
		} else if (part_types[p] == P_HASH) {
			part = json_object_new_object();
			for (i = 0; i + 1 < e->elements; i += 2)
				json_object_object_add(part, e->element[i]->str,
						       json_object_new_string(e->element[i + 1]->str));
		} else {
			part = json_object_new_array();
			for (i = 0; i + 1 < e->elements; i += 2) {
				struct json_object *pair = json_object_new_array();

				json_object_array_add(pair, json_object_new_string(e->element[i]->str));
				json_object_array_add(pair, json_object_new_string(e->element[i + 1]->str));
				json_object_array_add(part, pair);
			}
		}
		json_object_object_add(root, queue_parts[p], part);
	}
	freeReplyObject(r);
	if (json_object_to_file_ext(path, root, JSON_C_TO_STRING_PRETTY) != 0) {
		fprintf(stderr, "boxofficectl: queue dump: cannot write %s\n", path);
		goto out;
	}
	printf("queue of concert %lld written to %s\n", (long long)concert, path);
	rc = 0;
out:
	json_object_put(root);
	redisFree(c);
	return rc;
}

/* Put a dump back: the concert's queue keys are replaced in one transaction. */
static int
cmd_queue_restore(const char *path)
{
	struct json_object *root = NULL, *part, *v;
	redisContext *c = NULL;
	redisReply *r = NULL;
	char key[64];
	int64_t concert;
	size_t i;
	int p, rc = 1;

	root = json_object_from_file(path);
	if (root == NULL || !json_object_object_get_ex(root, "concert", &v) ||
	    (concert = json_object_get_int64(v)) <= 0) {
		fprintf(stderr, "boxofficectl: queue restore: %s is not a queue dump\n", path);
		goto out;
	}
	c = rd();
	freeReplyObject(rcmd(c, "MULTI"));
	for (p = 0; queue_parts[p] != NULL; p++) {
		queue_key(key, sizeof(key), concert, queue_parts[p]);
		freeReplyObject(rcmd(c, "DEL %s", key));
		if (!json_object_object_get_ex(root, queue_parts[p], &part) || part == NULL)
			continue;
		if (part_types[p] == P_STRING) {
			freeReplyObject(rcmd(c, "SET %s %s", key, json_object_get_string(part)));
		} else if (part_types[p] == P_HASH) {
			json_object_object_foreach(part, hk, hv)
				freeReplyObject(rcmd(c, "HSET %s %s %s", key, hk,
						     json_object_get_string(hv)));
		} else {
			for (i = 0; i < json_object_array_length(part); i++) {
				struct json_object *pair = json_object_array_get_idx(part, i);

				freeReplyObject(rcmd(c, "ZADD %s %s %s", key,
					json_object_get_string(json_object_array_get_idx(pair, 1)),
					json_object_get_string(json_object_array_get_idx(pair, 0))));
			}
		}
	}
	r = rcmd(c, "EXEC");
	if (r->type != REDIS_REPLY_ARRAY) {
		fprintf(stderr, "boxofficectl: queue restore: transaction failed\n");
		goto out;
	}
	for (i = 0; i < r->elements; i++)
		if (r->element[i]->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "boxofficectl: queue restore: %s\n", r->element[i]->str);
			goto out;
		}
	printf("queue of concert %lld restored from %s\n", (long long)concert, path);
	rc = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	json_object_put(root);
	if (c != NULL)
		redisFree(c);
	return rc;
}

/* Fill the read cache with the concert list and every concert's schedules. */
static int
cmd_cache_warm(void)
{
	PGconn *pc = pg();
	redisContext *c = rd();
	PGresult *res = NULL, *one;
	const char *params[1];
	redisReply *reply;
	char key[64];
	int i, n = 0, queued, rc = 1;

	res = PQexec(pc, "SELECT boxoffice_concerts_json()");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		goto out;
	freeReplyObject(rcmd(c, "SET c:concerts %s PX %lld", PQgetvalue(res, 0, 0),
			     (long long)cfg.cache_ttl_ms));
	PQclear(res);
	res = PQexec(pc, "SELECT id FROM concerts WHERE on_sale ORDER BY id");
	for (i = 0; i < PQntuples(res); i++) {
		params[0] = PQgetvalue(res, i, 0);
		one = PQexecParams(pc, "SELECT boxoffice_schedules_json($1::bigint)", 1, NULL,
				   params, NULL, NULL, 0);
		if (PQresultStatus(one) == PGRES_TUPLES_OK && !PQgetisnull(one, 0, 0)) {
			snprintf(key, sizeof(key), "c:schedules:%s", params[0]);
			freeReplyObject(rcmd(c, "SET %s %s PX %lld", key, PQgetvalue(one, 0, 0),
					     (long long)cfg.cache_ttl_ms));
			n++;
		}
		PQclear(one);
	}
	PQclear(res);
	/* Known users let queue joins skip the database look-up. */
	res = PQexec(pc, "SELECT id FROM users");
	for (i = 0, queued = 0; i < PQntuples(res); i++) {
		redisAppendCommand(c, "SADD users:known %s", PQgetvalue(res, i, 0));
		/* Pipelined in batches: one round trip per thousand users. */
		if (++queued == 1000 || i == PQntuples(res) - 1) {
			for (; queued > 0; queued--) {
				if (redisGetReply(c, (void **)&reply) != REDIS_OK) {
					fprintf(stderr, "boxofficectl: redis: %s\n", c->errstr);
					goto out;
				}
				freeReplyObject(reply);
			}
		}
	}
	printf("cache warmed: concert list, %d schedule lists, %d known users\n", n,
	       PQntuples(res));
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "boxofficectl cache warm: %s", PQerrorMessage(pc));
	PQclear(res);
	PQfinish(pc);
	redisFree(c);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *conf = getenv("BOXOFFICE_CONFIG");
	const char *sqldir = SQLDIR;
	char err[512];
	int opt;

	while ((opt = getopt(argc, argv, "+c:h")) != -1) {
		if (opt == 'c')
			conf = optarg;
		else {
			usage();
			return opt == 'h' ? 0 : 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage();
		return 2;
	}
	if (strcmp(argv[0], "keygen") == 0)
		return argc == 2 ? cmd_keygen(argv[1]) : (usage(), 2);
	if (conf == NULL)
		conf = "/etc/boxoffice/boxoffice.conf";
	if (config_load(conf, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "boxofficectl: %s\n", err);
		return 1;
	}
	if (strcmp(argv[0], "migrate") == 0) {
		if (argc == 3 && strcmp(argv[1], "--sql-dir") == 0)
			sqldir = argv[2];
		else if (argc != 1)
			return usage(), 2;
		return cmd_migrate(sqldir);
	}
	if (strcmp(argv[0], "seed") == 0)
		return cmd_seed(argc, argv);
	if (strcmp(argv[0], "sweep") == 0 && argc == 1)
		return cmd_sweep();
	if (strcmp(argv[0], "token") == 0 && (argc == 2 || argc == 3))
		return cmd_token(argv[1], argc == 3 ? argv[2] : NULL);
	if (strcmp(argv[0], "queue") == 0 && argc >= 2) {
		if (strcmp(argv[1], "stats") == 0 && argc == 3)
			return cmd_queue_stats(argv[2]);
		if (strcmp(argv[1], "dump") == 0 && argc == 4)
			return cmd_queue_dump(argv[2], argv[3]);
		if (strcmp(argv[1], "restore") == 0 && argc == 3)
			return cmd_queue_restore(argv[2]);
	}
	if (strcmp(argv[0], "cache") == 0 && argc == 2 && strcmp(argv[1], "warm") == 0)
		return cmd_cache_warm();
	usage();
	return 2;
}
