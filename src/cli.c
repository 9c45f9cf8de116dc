/* cli.c: boxofficectl, the operator's command line: schema, data, tokens, queue. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <hiredis/hiredis.h>
#include <json-c/json.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "catalog.h"
#include "config.h"
#include "keys.h"
#include "password.h"
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
		"  migrate [--sql-dir DIR]        apply new sql/NNN_*.sql migrations in order,\n"
		"                                 then every sql/functions/NN_*.sql\n"
		"  seed [--concerts N] [--schedules N] [--seats N] [--users N] [--balance N]\n"
		"                                 load the deterministic demo data\n"
		"  sweep                          tidy expired seat holds\n"
		"  token USER_UUID [SECONDS]      print a signed user token (default 1 hour)\n"
		"  door-token CONCERT [SECONDS]   print a door token: checks the ticket codes of\n"
		"                                 that concert (default 12 hours)\n"
		"  keygen FILE                    write a new random 32-byte token key (mode 0600)\n"
		"  queue stats CONCERT            waiting, active, unclaimed and counters of a queue\n"
		"  queue dump CONCERT FILE        write the exact queue state to FILE (JSON)\n"
		"  queue restore FILE             put a dumped queue state back exactly\n"
		"  queue audit CONCERT            print the pre-queue draw and verify it\n"
		"  cache warm                     fill the read cache after Redis comes back\n"
		"  catalog import FILE            load venues, concerts, schedules and prices\n"
		"                                 (docs/catalog.md); all of it or nothing\n"
		"  catalog export [FILE]          write the catalogue in the same format\n"
		"  account add EMAIL              create an account; the password is read from\n"
		"                                 standard input (one line), never from argv\n"
		"  account disable EMAIL          disable an account and end its sessions\n");
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

/* Files named N*.sql: migrations in sql/, function files in sql/functions/. */
static int
is_sql_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 8 && d->d_name[0] >= '0' && d->d_name[0] <= '9' &&
	       strcmp(d->d_name + n - 4, ".sql") == 0;
}

/*
 * The whole file at path, NUL-terminated (a pipe too: it is read to its
 * end, not measured), or NULL; *len, when len is not NULL, is its size in
 * bytes. The caller frees it.
 */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL, *more;
	size_t n = 0, cap = 0, got;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (cap - n < 65536) {
			cap = cap * 2 + 65536;
			if ((more = realloc(buf, cap + 1)) == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = more;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f)) {
				free(buf);
				buf = NULL;
			}
			break;
		}
	}
	fclose(f);
	if (buf != NULL) {
		buf[n] = '\0';
		if (len != NULL)
			*len = n;
	}
	return buf;
}

/*
 * Open a transaction serialised against every other migrator (an advisory
 * lock held until its end). Returns 0 or -1, the error printed.
 */
static int
migrate_begin(PGconn *c)
{
	return pg_run(c, "BEGIN") == 0 && pg_run(c, "SELECT pg_advisory_xact_lock(4242)") == 0
	       ? 0 : -1;
}

/*
 * COMMIT, and tell whether it did: in a transaction that an error has
 * aborted, COMMIT succeeds as a command but rolls back (its status is
 * "ROLLBACK"). Returns 0 if the transaction committed, else -1.
 */
static int
migrate_commit(PGconn *c)
{
	PGresult *res = PQexec(c, "COMMIT");
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK &&
		 strcmp(PQcmdStatus(res), "COMMIT") == 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fprintf(stderr, "boxofficectl: %s", PQresultErrorMessage(res));
	PQclear(res);
	return ok ? 0 : -1;
}

/* Run the file dir/name in the open transaction. Returns 0 or -1, printed. */
static int
migrate_file(PGconn *c, const char *dir, const char *name)
{
	char path[4096];
	char *sql = NULL;
	int rc = -1;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) ||
	    (sql = slurp(path, NULL)) == NULL) {
		fprintf(stderr, "boxofficectl: cannot read %s/%s\n", dir, name);
		goto out;
	}
	rc = pg_run(c, sql);
out:
	free(sql);
	return rc;
}

/*
 * Apply every migration of dir not yet recorded in schema_migrations, in
 * name order, each in its own transaction with its record; a migration
 * that fails leaves nothing of it behind and stops the run.
 * Returns how many were applied, or -1.
 */
static int
migrate_schema(PGconn *c, const char *dir)
{
	struct dirent **list = NULL;
	const char *params[1];
	PGresult *res;
	int i, n, applied = 0, done, rc = -1;

	n = scandir(dir, &list, is_sql_file, by_name);
	if (n < 0) {
		fprintf(stderr, "boxofficectl: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		params[0] = list[i]->d_name;
		if (migrate_begin(c) != 0)
			goto out;
		res = PQexecParams(c, "SELECT 1 FROM schema_migrations WHERE version = $1",
				   1, NULL, params, NULL, NULL, 0);
		done = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
		PQclear(res);
		if (done) {
			pg_run(c, "ROLLBACK");
			continue;
		}
		if (migrate_file(c, dir, list[i]->d_name) != 0)
			goto failed;
		res = PQexecParams(c, "INSERT INTO schema_migrations (version) VALUES ($1)",
				   1, NULL, params, NULL, NULL, 0);
		done = PQresultStatus(res) == PGRES_COMMAND_OK;
		if (!done)
			fprintf(stderr, "boxofficectl: %s", PQresultErrorMessage(res));
		PQclear(res);
		if (!done || migrate_commit(c) != 0)
			goto failed;
		printf("applied %s\n", list[i]->d_name);
		applied++;
	}
	rc = applied;
	goto out;
failed:
	fprintf(stderr, "boxofficectl: migration %s failed; nothing of it applied\n",
		list[i]->d_name);
	pg_run(c, "ROLLBACK");
out:
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return rc;
}

/*
 * Apply every file of dir (the functions, each CREATE OR REPLACE) in name
 * order, all in one transaction: the functions always match the sources,
 * and a failure leaves the previous ones in place.
 * Returns how many files were applied, or -1.
 */
static int
migrate_functions(PGconn *c, const char *dir)
{
	struct dirent **list = NULL;
	int i, n, rc = -1;

	n = scandir(dir, &list, is_sql_file, by_name);
	if (n < 0) {
		fprintf(stderr, "boxofficectl: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (migrate_begin(c) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		if (migrate_file(c, dir, list[i]->d_name) != 0) {
			fprintf(stderr, "boxofficectl: %s/%s failed; no function changed\n",
				dir, list[i]->d_name);
			pg_run(c, "ROLLBACK");
			goto out;
		}
	}
	if (migrate_commit(c) != 0) {
		fprintf(stderr, "boxofficectl: %s: no function changed\n", dir);
		goto out;
	}
	rc = n;
out:
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return rc;
}

/* The migrations of dir, then the functions of dir/functions. */
static int
cmd_migrate(const char *dir)
{
	char fdir[4096];
	PGconn *c = pg();
	int applied, files, rc = 1;

	if ((size_t)snprintf(fdir, sizeof(fdir), "%s/functions", dir) >= sizeof(fdir)) {
		fprintf(stderr, "boxofficectl: %s: path too long\n", dir);
		goto out;
	}
	if (pg_run(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
		      " version text NOT NULL,"
		      " applied_at timestamptz NOT NULL DEFAULT now(),"
		      " CONSTRAINT schema_migrations_pkey PRIMARY KEY (version))") != 0)
		goto out;
	if ((applied = migrate_schema(c, dir)) < 0)
		goto out;
	printf("migrations: %d applied, schema up to date\n", applied);
	if ((files = migrate_functions(c, fdir)) < 0)
		goto out;
	printf("functions: %d files applied\n", files);
	rc = 0;
out:
	PQfinish(c);
	return rc;
}

/* The password of every demo account (docs/identity.md). */
#define DEMO_PASSWORD "boxoffice-demo"

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
	char text[5][24], hash[PASSWORD_HASH_MAX];
	const char *params[5], *acc[2] = { NULL, hash };
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
	if (rc != 0)
		goto out;
	/* Every demo account has the one demo password: hashed once here, at
	 * the cost in the settings, and handed to SQL as a parameter. */
	rc = 1;
	if (password_hash(DEMO_PASSWORD, hash) != 0) {
		fprintf(stderr, "boxofficectl seed: could not hash the demo password\n");
		goto out;
	}
	acc[0] = text[3];
	res = PQexecParams(c, "SELECT boxoffice_seed_accounts($1::int, $2::text)",
			   2, NULL, acc, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fprintf(stderr, "boxofficectl seed: %s", PQresultErrorMessage(res));
	else {
		printf("demo accounts user<i>@demo.boxoffice.test, password %s\n", DEMO_PASSWORD);
		rc = 0;
	}
	PQclear(res);
out:
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

/*
 * Sign t (kind and subject set by the caller) for life seconds from now
 * and print it. Returns the exit status: 0, or 1 when the keys cannot be
 * read or the token not signed.
 */
static int
print_token(struct token *t, int64_t life)
{
	char buf[TOKEN_MAX];

	if (load_keys() != 0)
		return 1;
	t->iat = time(NULL);
	t->exp = t->iat + life;
	if (token_sign(t, buf, sizeof(buf)) == 0)
		return 1;
	printf("%s\n", buf);
	return 0;
}

static int
cmd_token(const char *user, const char *secs)
{
	struct token t;
	int64_t life = 3600;

	memset(&t, 0, sizeof(t));
	if (!valid_uuid(user, t.user) ||
	    (secs != NULL && !valid_decimal(secs, 1, 31 * 86400, &life))) {
		fprintf(stderr, "boxofficectl token: USER_UUID [SECONDS up to 31 days]\n");
		return 2;
	}
	t.kind = TOKEN_USER;
	return print_token(&t, life);
}

/*
 * A door token: GET /api/tickets/{code} for the concert's door staff. It
 * stands for no user, so it opens nothing else.
 */
static int
cmd_door_token(const char *concert, const char *secs)
{
	struct token t;
	int64_t life = 12 * 3600;

	memset(&t, 0, sizeof(t));
	if (!valid_decimal(concert, 1, 2147483647, &t.concert) ||
	    (secs != NULL && !valid_decimal(secs, 1, 31 * 86400, &life))) {
		fprintf(stderr, "boxofficectl door-token: CONCERT [SECONDS up to 31 days]\n");
		return 2;
	}
	t.kind = TOKEN_DOOR;
	memcpy(t.user, TOKEN_NO_USER, sizeof(TOKEN_NO_USER));
	return print_token(&t, life);
}

/* Write all of buf to fd. Returns 0 or -1 with errno set. */
static int
write_all(int fd, const unsigned char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Write a new random key to path, which must not exist. The key goes to a
 * temporary file beside it (mode 0600), written and synced, then linked to
 * path: path either holds the whole key or does not exist, and an
 * existing file is never replaced. Returns the exit status.
 */
static int
cmd_keygen(const char *path)
{
	unsigned char key[32];
	char tmp[4096];
	int fd = -1, rc = 1;

	tmp[0] = '\0';
	if (sodium_init() < 0) {
		fprintf(stderr, "boxofficectl keygen: libsodium failed to initialise\n");
		goto out;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp)) {
		tmp[0] = '\0';
		fprintf(stderr, "boxofficectl keygen: %s: path too long\n", path);
		goto out;
	}
	randombytes_buf(key, sizeof(key));
	/* mkstemp creates the file with mode 0600. */
	if ((fd = mkstemp(tmp)) < 0) {
		fprintf(stderr, "boxofficectl keygen: %s: %s\n", tmp, strerror(errno));
		tmp[0] = '\0';
		goto out;
	}
	if (write_all(fd, key, sizeof(key)) != 0 || fsync(fd) != 0) {
		fprintf(stderr, "boxofficectl keygen: %s: %s\n", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		fprintf(stderr, "boxofficectl keygen: %s: %s\n", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (link(tmp, path) != 0) {
		fprintf(stderr, "boxofficectl keygen: %s: %s\n", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(key, sizeof(key));
	if (fd >= 0)
		close(fd);
	if (tmp[0] != '\0')
		unlink(tmp);
	return rc;
}

/* The wall clock in Unix milliseconds. */
static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
	keys_queue(key, sizeof(key), concert, KP_WAIT);
	r = rcmd(c, "ZCARD %s", key);
	printf("concert %lld\nwaiting %lld\n", (long long)concert, r->integer);
	freeReplyObject(r);
	keys_queue(key, sizeof(key), concert, KP_ACTIVE);
	r = rcmd(c, "ZCARD %s", key);
	printf("active %lld\n", r->integer);
	freeReplyObject(r);
	keys_queue(key, sizeof(key), concert, KP_CLAIM);
	r = rcmd(c, "ZCARD %s", key);
	printf("unclaimed %lld\n", r->integer);
	freeReplyObject(r);
	keys_queue(key, sizeof(key), concert, KP_PRE);
	r = rcmd(c, "ZCARD %s", key);
	printf("pre_queued %lld\n", r->integer);
	freeReplyObject(r);
	keys_queue(key, sizeof(key), concert, KP_SEQ);
	r = rcmd(c, "GET %s", key);
	printf("last_number %s\n", r->type == REDIS_REPLY_STRING ? r->str : "0");
	freeReplyObject(r);
	keys_queue(key, sizeof(key), concert, KP_STATS);
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
	json_object_object_add(root, "dumpedAtMs", json_object_new_int64(now_ms()));
	/* One MULTI block: a consistent snapshot even while users poll. */
	freeReplyObject(rcmd(c, "MULTI"));
	for (p = 0; p < KP__MAX; p++) {
		keys_queue(key, sizeof(key), concert, (enum keys_part)p);
		if (keys_parts[p].type == KEYS_STRING)
			freeReplyObject(rcmd(c, "GET %s", key));
		else if (keys_parts[p].type == KEYS_HASH)
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
	for (p = 0; p < KP__MAX; p++) {
		redisReply *e = r->element[p];

		if (keys_parts[p].type == KEYS_STRING) {
			part = e->type == REDIS_REPLY_STRING ? json_object_new_string(e->str) : NULL;
		} else if (keys_parts[p].type == KEYS_HASH) {
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
		json_object_object_add(root, keys_parts[p].name, part);
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

/*
 * Put a dump back: the concert's queue keys are replaced in one
 * transaction. When more than a second passed since the dump, the
 * unclaimed turns' deadlines and the admission clock move by that time:
 * nobody could claim while the queue was gone. Otherwise it is exact.
 */
static int
cmd_queue_restore(const char *path)
{
	struct json_object *root = NULL, *part, *v;
	redisContext *c = NULL;
	redisReply *r = NULL;
	char key[64], moved[32];
	int64_t concert, shift = 0;
	size_t i;
	int p, rc = 1;

	root = json_object_from_file(path);
	if (root == NULL || !json_object_object_get_ex(root, "concert", &v) ||
	    (concert = json_object_get_int64(v)) <= 0) {
		fprintf(stderr, "boxofficectl: queue restore: %s is not a queue dump\n", path);
		goto out;
	}
	if (json_object_object_get_ex(root, "dumpedAtMs", &v) &&
	    (shift = now_ms() - json_object_get_int64(v)) <= 1000)
		shift = 0;
	c = rd();
	freeReplyObject(rcmd(c, "MULTI"));
	for (p = 0; p < KP__MAX; p++) {
		keys_queue(key, sizeof(key), concert, (enum keys_part)p);
		freeReplyObject(rcmd(c, "DEL %s", key));
		if (!json_object_object_get_ex(root, keys_parts[p].name, &part) || part == NULL)
			continue;
		if (p == KP_TICK && shift > 0) {
			snprintf(moved, sizeof(moved), "%lld",
				 (long long)(strtoll(json_object_get_string(part), NULL, 10) + shift));
			freeReplyObject(rcmd(c, "SET %s %s", key, moved));
		} else if (keys_parts[p].type == KEYS_STRING) {
			freeReplyObject(rcmd(c, "SET %s %s", key, json_object_get_string(part)));
		} else if (keys_parts[p].type == KEYS_HASH) {
			json_object_object_foreach(part, hk, hv)
				freeReplyObject(rcmd(c, "HSET %s %s %s", key, hk,
						     json_object_get_string(hv)));
		} else {
			for (i = 0; i < json_object_array_length(part); i++) {
				struct json_object *pair = json_object_array_get_idx(part, i);
				const char *score = json_object_get_string(
					json_object_array_get_idx(pair, 1));

				if (p == KP_CLAIM && shift > 0) {
					snprintf(moved, sizeof(moved), "%lld",
						 (long long)(strtoll(score, NULL, 10) + shift));
					score = moved;
				}
				freeReplyObject(rcmd(c, "ZADD %s %s %s", key, score,
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

/*
 * The draw's pick of 1..i, as src/lua/queue_prologue.lua's pick(): the
 * first 52 bits of SHA-1("seed:i:c") for c = 0, 1... until one falls
 * below the largest multiple of i. 0 if SHA-1 is unavailable.
 */
static int64_t
draw_pick(const char *seed, int64_t i)
{
	const uint64_t span = (uint64_t)1 << 52;
	uint64_t limit = span - span % (uint64_t)i, x;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char text[160];
	int64_t c;
	int k, len;

	for (c = 0;; c++) {
		len = snprintf(text, sizeof(text), "%s:%lld:%lld", seed, (long long)i, (long long)c);
		if (len < 0 || (size_t)len >= sizeof(text) ||
		    EVP_Digest(text, (size_t)len, md, &mdlen, EVP_sha1(), NULL) != 1)
			return 0;
		/* 13 hex digits: 6 bytes and the high half of the seventh */
		for (x = 0, k = 0; k < 6; k++)
			x = x << 8 | md[k];
		x = x << 4 | md[6] >> 4;
		if (x < limit)
			return (int64_t)(x % (uint64_t)i) + 1;
	}
}

/*
 * Print the pre-queue draw of one concert (seed, then the drawn order) and
 * check it: the Fisher-Yates shuffle of the pre-queue's arrival order with
 * that seed must give exactly the recorded order, and every drawn user
 * still holding a number must hold the one drawn.
 */
static int
cmd_queue_audit(const char *arg)
{
	redisContext *c = NULL;
	redisReply *seed = NULL, *pre = NULL, *drawn = NULL, *r;
	char key[64];
	const char **order = NULL;
	int64_t concert, base = 0, j, n = 0;
	size_t i;
	int rc = 1, bad = 0, moved = 0;

	if (parse_concert(arg, &concert) != 0)
		return 2;
	c = rd();
	keys_queue(key, sizeof(key), concert, KP_SEED);
	seed = rcmd(c, "GET %s", key);
	keys_queue(key, sizeof(key), concert, KP_PRE);
	pre = rcmd(c, "ZRANGE %s 0 -1", key);
	keys_queue(key, sizeof(key), concert, KP_DRAW);
	drawn = rcmd(c, "ZRANGE %s 0 -1 WITHSCORES", key);
	printf("concert %lld\npre-queued %zu\n", (long long)concert, pre->elements);
	if (seed->type != REDIS_REPLY_STRING) {
		printf("seed none (the pre-queue is not drawn yet)\n");
		rc = drawn->elements == 0 ? 0 : 1;
		goto out;
	}
	printf("seed %s\n", seed->str);
	n = (int64_t)pre->elements;
	if (drawn->elements != 2 * pre->elements) {
		printf("MISMATCH: %zu drawn for %lld pre-queued\n", drawn->elements / 2, (long long)n);
		goto out;
	}
	/* The shuffle again, in the script's order (a[1..n], i from n down). */
	order = calloc((size_t)n + 1, sizeof(*order));
	for (i = 0; i < pre->elements; i++)
		order[i] = pre->element[i]->str;
	for (j = n; j >= 2; j--) {
		int64_t k = draw_pick(seed->str, j);
		const char *tmp;

		if (k == 0) {
			fprintf(stderr, "boxofficectl: queue audit: SHA-1 unavailable\n");
			goto out;
		}
		tmp = order[j - 1];
		order[j - 1] = order[k - 1];
		order[k - 1] = tmp;
	}
	if (n > 0)
		base = strtoll(drawn->element[1]->str, NULL, 10) - 1;
	keys_queue(key, sizeof(key), concert, KP_NUM);
	printf("order (number user):\n");
	for (i = 0; i < pre->elements; i++) {
		const char *user = drawn->element[2 * i]->str;
		int64_t number = strtoll(drawn->element[2 * i + 1]->str, NULL, 10);

		printf("%lld %s\n", (long long)number, user);
		if (number != base + (int64_t)i + 1 || strcmp(user, order[i]) != 0)
			bad++;
		r = rcmd(c, "HGET %s %s", key, user);
		if (r->type != REDIS_REPLY_STRING)
			moved++;	/* the turn is over or was dropped */
		else if (strtoll(r->str, NULL, 10) != number)
			bad++;
		freeReplyObject(r);
	}
	if (bad == 0)
		printf("draw verified: %lld places, the shuffle of the arrival order with this seed; "
		       "%d no longer hold their number\n", (long long)n, moved);
	else
		printf("DRAW MISMATCH: %d places differ from the recorded draw\n", bad);
	rc = bad == 0 ? 0 : 1;
out:
	free(order);
	freeReplyObject(seed);
	freeReplyObject(pre);
	freeReplyObject(drawn);
	redisFree(c);
	return rc;
}

/* Did query res work? If not, says so (what failed) and returns 0. */
static int
warm_pg_ok(PGresult *res, const char *what)
{
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		return 1;
	fprintf(stderr, "boxofficectl cache warm: %s: %s", what, PQresultErrorMessage(res));
	return 0;
}

/* Did Redis take a write? If not, says so and returns 0. r is freed. */
static int
warm_redis_ok(redisReply *r)
{
	int ok = r->type != REDIS_REPLY_ERROR;

	if (!ok)
		fprintf(stderr, "boxofficectl cache warm: redis: %s\n", r->str);
	freeReplyObject(r);
	return ok;
}

/*
 * Fill the read cache with the concert list and every concert's schedules,
 * and the known-users set. All of it or a failure: a query or a write that
 * fails is reported and the command exits 1, so that an operator does not
 * trust a cache that is only partly warm.
 */
static int
cmd_cache_warm(void)
{
	PGconn *pc = pg();
	redisContext *c = rd();
	PGresult *res = NULL, *one = NULL;
	const char *params[1];
	redisReply *reply;
	char key[64];
	int i, n = 0, queued, nusers = 0, rc = 1;

	res = PQexec(pc, "SELECT boxoffice_concerts_json()");
	if (!warm_pg_ok(res, "concert list") || PQntuples(res) != 1)
		goto out;
	if (!warm_redis_ok(rcmd(c, "SET %s %s PX %lld", keys_concerts, PQgetvalue(res, 0, 0),
				(long long)cfg.cache_ttl_ms)))
		goto out;
	PQclear(res);
	res = PQexec(pc, "SELECT id FROM concerts WHERE on_sale ORDER BY id");
	if (!warm_pg_ok(res, "concerts on sale"))
		goto out;
	for (i = 0; i < PQntuples(res); i++) {
		params[0] = PQgetvalue(res, i, 0);
		one = PQexecParams(pc, "SELECT boxoffice_schedules_json($1::bigint)", 1, NULL,
				   params, NULL, NULL, 0);
		if (!warm_pg_ok(one, "schedules"))
			goto out;
		if (PQntuples(one) == 1 && !PQgetisnull(one, 0, 0)) {
			keys_schedules(key, sizeof(key), strtoll(params[0], NULL, 10));
			if (!warm_redis_ok(rcmd(c, "SET %s %s PX %lld", key, PQgetvalue(one, 0, 0),
						(long long)cfg.cache_ttl_ms)))
				goto out;
			n++;
		}
		PQclear(one);
		one = NULL;
	}
	PQclear(res);
	/* Known users let queue joins skip the database look-up. */
	res = PQexec(pc, "SELECT id FROM users");
	if (!warm_pg_ok(res, "users"))
		goto out;
	nusers = PQntuples(res);
	for (i = 0, queued = 0; i < nusers; i++) {
		redisAppendCommand(c, "SADD %s %s", keys_known_users, PQgetvalue(res, i, 0));
		/* Pipelined in batches: one round trip per thousand users. */
		if (++queued < 1000 && i < nusers - 1)
			continue;
		for (; queued > 0; queued--) {
			if (redisGetReply(c, (void **)&reply) != REDIS_OK) {
				fprintf(stderr, "boxofficectl: redis: %s\n", c->errstr);
				goto out;
			}
			if (!warm_redis_ok(reply))
				goto out;
		}
	}
	printf("cache warmed: concert list, %d schedule lists, %d known users\n", n, nusers);
	rc = 0;
out:
	if (one != NULL)
		PQclear(one);
	PQclear(res);
	PQfinish(pc);
	redisFree(c);
	return rc;
}

/*
 * After an import: the cached concert list, schedule lists and seat maps
 * of the catalogue's concerts are stale. Dropped here so that visitors see
 * the new catalogue at once; if Redis does not answer they expire on their
 * own (cache.ttl_ms, booking.seat_cache_ms).
 */
static void
catalog_uncache(PGconn *pc)
{
	struct timeval tv = { 2, 0 };
	redisContext *c = cache_connect(tv);
	PGresult *res = NULL;
	redisReply *r;
	char key[64];
	int i, sent = 0;

	if (c == NULL || c->err) {
		fprintf(stderr, "boxofficectl catalog: redis: cached lists will expire on their own\n");
		goto out;
	}
	res = PQexec(pc, "SELECT c.id, s.id FROM concerts c JOIN schedules s ON s.concert_id = c.id"
		     " WHERE c.venue_id IS NOT NULL");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		goto out;
	redisAppendCommand(c, "DEL %s", keys_concerts);
	sent++;
	for (i = 0; i < PQntuples(res); i++) {
		if (i == 0 || strcmp(PQgetvalue(res, i, 0), PQgetvalue(res, i - 1, 0)) != 0) {
			keys_schedules(key, sizeof(key), strtoll(PQgetvalue(res, i, 0), NULL, 10));
			redisAppendCommand(c, "DEL %s", key);
			sent++;
		}
		keys_seat_version(key, sizeof(key), strtoll(PQgetvalue(res, i, 1), NULL, 10));
		redisAppendCommand(c, "INCR %s", key);
		sent++;
	}
	for (; sent > 0; sent--) {
		if (redisGetReply(c, (void **)&r) != REDIS_OK)
			break;
		freeReplyObject(r);
	}
out:
	if (res != NULL)
		PQclear(res);
	if (c != NULL)
		redisFree(c);
}

/*
 * catalog import FILE: check the file's shape (src/catalog.c), then apply
 * it in one transaction (boxoffice_catalog_import()). Every refusal names
 * the file's line and the path of the value, and changes nothing.
 */
static int
cmd_catalog_import(const char *path)
{
	char where[CATALOG_PATH_MAX], msg[CATALOG_MSG_MAX];
	struct json_object *doc = NULL;
	const char *params[1];
	PGconn *c = NULL;
	PGresult *res = NULL;
	const char *state, *detail;
	char *text = NULL;
	size_t len = 0;
	int line, rc = 1;

	if ((text = slurp(path, &len)) == NULL) {
		fprintf(stderr, "boxofficectl catalog import: %s: %s\n", path, strerror(errno));
		goto out;
	}
	if ((doc = catalog_parse(text, len, &line, msg, sizeof(msg))) == NULL) {
		fprintf(stderr, "%s:%d: %s\n", path, line, msg);
		goto out;
	}
	if (catalog_check(doc, where, sizeof(where), msg, sizeof(msg)) != 0) {
		fprintf(stderr, "%s:%d: %s: %s\n", path, catalog_line_of(text, len, where),
			where[0] != '\0' ? where : "(document)", msg);
		goto out;
	}
	c = pg();
	params[0] = text;
	if (pg_run(c, "BEGIN") != 0)
		goto out;
	res = PQexecParams(c, "SELECT boxoffice_catalog_import($1::jsonb)", 1, NULL, params,
			   NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
		if (state != NULL && strcmp(state, "BXC01") == 0 && detail != NULL)
			fprintf(stderr, "%s:%d: %s: %s\n", path, catalog_line_of(text, len, detail),
				detail, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
		else
			fprintf(stderr, "boxofficectl catalog import: %s", PQresultErrorMessage(res));
		fprintf(stderr, "%s: nothing changed\n", path);
		pg_run(c, "ROLLBACK");
		goto out;
	}
	if (migrate_commit(c) != 0) {
		fprintf(stderr, "%s: nothing changed\n", path);
		goto out;
	}
	printf("%s: imported, %s changed\n", path, PQgetvalue(res, 0, 0));
	if (strcmp(PQgetvalue(res, 0, 0), "0") != 0)
		catalog_uncache(c);
	rc = 0;
out:
	if (res != NULL)
		PQclear(res);
	if (c != NULL)
		PQfinish(c);
	json_object_put(doc);
	free(text);
	return rc;
}

/* catalog export [FILE]: the catalogue in the import's format (stdout without FILE). */
static int
cmd_catalog_export(const char *path)
{
	const int flags = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
			  JSON_C_TO_STRING_NOSLASHESCAPE;
	struct json_object *doc = NULL;
	PGconn *c = pg();
	PGresult *res = PQexec(c, "SELECT boxoffice_catalog_export()");
	int rc = 1;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		fprintf(stderr, "boxofficectl catalog export: %s", PQresultErrorMessage(res));
		goto out;
	}
	if ((doc = json_tokener_parse(PQgetvalue(res, 0, 0))) == NULL) {
		fprintf(stderr, "boxofficectl catalog export: the database's answer is not JSON\n");
		goto out;
	}
	if (path == NULL) {
		printf("%s\n", json_object_to_json_string_ext(doc, flags));
		rc = fflush(stdout) == 0 ? 0 : 1;
	} else if (json_object_to_file_ext(path, doc, flags) != 0)
		fprintf(stderr, "boxofficectl catalog export: cannot write %s\n", path);
	else
		rc = 0;
out:
	json_object_put(doc);
	PQclear(res);
	PQfinish(c);
	return rc;
}

/*
 * Read one line (the password) from standard input into buf, without its
 * line end. Returns 0, or -1 if there is none or it is longer than buf.
 */
static int
read_password(char *buf, size_t len)
{
	size_t n;

	if (fgets(buf, (int)len, stdin) == NULL)
		return -1;
	n = strcspn(buf, "\n");
	if (buf[n] != '\n' && !feof(stdin))
		return -1;	/* longer than buf */
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return 0;
}

/* account add EMAIL: a new user with an account; the password from stdin. */
static int
cmd_account_add(const char *arg)
{
	char email[PASSWORD_EMAIL_MAX + 1], password[1025], hash[PASSWORD_HASH_MAX];
	const char *params[2] = { email, hash };
	const char *reason;
	PGconn *c = NULL;
	PGresult *res = NULL;
	int rc = 1;

	if (password_email_normalize(arg, email, sizeof(email)) != 0) {
		fprintf(stderr, "boxofficectl account add: not an e-mail address we accept\n");
		return 2;
	}
	if (read_password(password, sizeof(password)) != 0) {
		fprintf(stderr, "boxofficectl account add: give the password on standard input\n");
		goto out;
	}
	if ((reason = password_policy(password, email)) != NULL) {
		fprintf(stderr, "boxofficectl account add: %s\n", reason);
		goto out;
	}
	if (password_hash(password, hash) != 0) {
		fprintf(stderr, "boxofficectl account add: could not hash the password\n");
		goto out;
	}
	c = pg();
	res = PQexecParams(c, "SELECT code, user_id FROM boxoffice_account_create($1::text, $2::text)",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		fprintf(stderr, "boxofficectl account add: %s", PQresultErrorMessage(res));
	else if (strcmp(PQgetvalue(res, 0, 0), "OK") != 0)
		fprintf(stderr, "boxofficectl account add: %s already has an account\n", email);
	else {
		printf("%s\n", PQgetvalue(res, 0, 1));
		rc = 0;
	}
out:
	sodium_memzero(password, sizeof(password));
	if (res != NULL)
		PQclear(res);
	if (c != NULL)
		PQfinish(c);
	return rc;
}

/*
 * account disable EMAIL: no more sign-ins, and the user's sessions end:
 * sessions_valid_after in the database and its copy in Redis, which the
 * workers check on every session request.
 */
static int
cmd_account_disable(const char *arg)
{
	char email[PASSWORD_EMAIL_MAX + 1], key[64];
	const char *params[1] = { email };
	struct timeval tv = { 2, 0 };
	redisContext *rdc = NULL;
	redisReply *r = NULL;
	PGconn *c = NULL;
	PGresult *res = NULL;
	int rc = 1;

	if (password_email_normalize(arg, email, sizeof(email)) != 0) {
		fprintf(stderr, "boxofficectl account disable: not an e-mail address we accept\n");
		return 2;
	}
	c = pg();
	res = PQexecParams(c, "SELECT user_id, sessions_valid_after"
			   " FROM boxoffice_account_disable($1::text)",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "boxofficectl account disable: %s", PQresultErrorMessage(res));
		goto out;
	}
	if (PQntuples(res) != 1) {
		fprintf(stderr, "boxofficectl account disable: no account for %s\n", email);
		goto out;
	}
	/* Sessions last at most session_ttl: the marker need not outlive that. */
	keys_sessions_after(key, sizeof(key), PQgetvalue(res, 0, 0));
	rdc = cache_connect(tv);
	if (rdc != NULL && !rdc->err)
		r = redisCommand(rdc, "SET %s %s EX %lld", key, PQgetvalue(res, 0, 1),
				 (long long)cfg.session_ttl);
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "boxofficectl account disable: disabled in the database, but its "
			"sessions could not be ended in redis: run this again when redis answers\n");
		goto out;
	}
	printf("disabled %s (user %s); its sessions are ended\n", email, PQgetvalue(res, 0, 0));
	rc = 0;
out:
	if (r != NULL)
		freeReplyObject(r);
	if (rdc != NULL)
		redisFree(rdc);
	if (res != NULL)
		PQclear(res);
	PQfinish(c);
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
	if (strcmp(argv[0], "door-token") == 0 && (argc == 2 || argc == 3))
		return cmd_door_token(argv[1], argc == 3 ? argv[2] : NULL);
	if (strcmp(argv[0], "queue") == 0 && argc >= 2) {
		if (strcmp(argv[1], "stats") == 0 && argc == 3)
			return cmd_queue_stats(argv[2]);
		if (strcmp(argv[1], "dump") == 0 && argc == 4)
			return cmd_queue_dump(argv[2], argv[3]);
		if (strcmp(argv[1], "restore") == 0 && argc == 3)
			return cmd_queue_restore(argv[2]);
		if (strcmp(argv[1], "audit") == 0 && argc == 3)
			return cmd_queue_audit(argv[2]);
	}
	if (strcmp(argv[0], "cache") == 0 && argc == 2 && strcmp(argv[1], "warm") == 0)
		return cmd_cache_warm();
	if (strcmp(argv[0], "catalog") == 0 && argc == 3 && strcmp(argv[1], "import") == 0)
		return cmd_catalog_import(argv[2]);
	if (strcmp(argv[0], "catalog") == 0 && (argc == 2 || argc == 3) &&
	    strcmp(argv[1], "export") == 0)
		return cmd_catalog_export(argc == 3 ? argv[2] : NULL);
	if (strcmp(argv[0], "account") == 0 && argc == 3) {
		if (strcmp(argv[1], "add") == 0)
			return cmd_account_add(argv[2]);
		if (strcmp(argv[1], "disable") == 0)
			return cmd_account_disable(argv[2]);
	}
	usage();
	return 2;
}
