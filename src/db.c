/* db.c: PostgreSQL connections with client-side deadlines, and read routing. */
#include "db.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "metrics.h"

struct stmt_def {
	const char *name;
	const char *sql;
	int nparams;
};

/*
 * All SQL the worker sends. Domain logic that must be atomic lives in
 * functions defined in sql/functions/; here are only calls with
 * bound parameters.
 */
static const struct stmt_def stmts[ST__MAX] = {
	[ST_PING] = { "ping", "SELECT 1", 0 },
	[ST_REPLICA_LAG] = { "replica_lag",
		"SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0"
		" WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
		" ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)"
		" END::float8", 0 },
	[ST_CONCERTS] = { "concerts", "SELECT boxoffice_concerts_json()", 0 },
	[ST_SCHEDULES] = { "schedules", "SELECT boxoffice_schedules_json($1::bigint)", 1 },
	[ST_CONCERT_ON_SALE] = { "concert_on_sale",
		"SELECT on_sale,"
		" COALESCE((EXTRACT(EPOCH FROM sale_opens_at) * 1000)::bigint, 0),"
		" COALESCE((EXTRACT(EPOCH FROM sale_closes_at) * 1000)::bigint, 0)"
		" FROM concerts WHERE id = $1::bigint", 1 },
	[ST_USER_EXISTS] = { "user_exists", "SELECT 1 FROM users WHERE id = $1::uuid", 1 },
	[ST_IDEM_LOOKUP] = { "idem_lookup",
		"SELECT * FROM boxoffice_idem_lookup($1::uuid, $2::text, $3::text, $4::text)", 4 },
	[ST_SWEEP] = { "sweep", "SELECT boxoffice_sweep()", 0 },
	[ST_SEATS] = { "seats", "SELECT * FROM boxoffice_seats_json($1::bigint, $2::bigint)", 2 },
	[ST_HOLD] = { "hold",
		"SELECT * FROM boxoffice_hold($1::bigint, $2::bigint, $3::integer, $4::uuid,"
		" $5::integer, $6::integer, $7::integer)", 7 },
	[ST_RESERVATION] = { "reservation",
		"SELECT * FROM boxoffice_reservation($1::uuid, $2::uuid)", 2 },
	[ST_RELEASE] = { "release",
		"SELECT * FROM boxoffice_release($1::uuid, $2::uuid)", 2 },
	[ST_PAY] = { "pay",
		"SELECT code, body, paid_amount, paid_count, paid_schedules, holds_left"
		" FROM boxoffice_pay($1::uuid, $2::uuid[], $3::bigint, $4::text, $5::boolean)", 5 },
	[ST_BALANCE] = { "balance", "SELECT balance FROM users WHERE id = $1::uuid", 1 },
	[ST_CHARGE] = { "charge",
		"SELECT * FROM boxoffice_charge($1::uuid, $2::bigint, $3::text)", 3 },
	[ST_ACCOUNT_CREATE] = { "account_create",
		"SELECT code, user_id FROM boxoffice_account_create($1::text, $2::text)", 2 },
	[ST_ACCOUNT_BY_EMAIL] = { "account_by_email",
		"SELECT user_id, password_hash, disabled FROM boxoffice_account_by_email($1::text)", 1 },
	[ST_ACCOUNT_REHASH] = { "account_rehash",
		"SELECT boxoffice_account_rehash($1::uuid, $2::text, $3::text)", 3 },
	[ST_IDENTITY_USER] = { "identity_user",
		"SELECT boxoffice_identity_user($1::text, $2::text)", 2 },
	[ST_TICKETS] = { "tickets", "SELECT boxoffice_tickets_json($1::uuid)", 1 },
	[ST_TICKET_DOOR] = { "ticket_door",
		"SELECT boxoffice_ticket_door($1::text, $2::bigint)", 2 },
	[ST_REFUND] = { "refund",
		"SELECT code, body, refunded_amount, refund_schedule"
		" FROM boxoffice_refund($1::uuid, $2::uuid, $3::integer)", 3 },
};

struct dbconn {
	PGconn *conn;
	uint32_t prepared;		/* bit per statement prepared on conn */
	struct timespec retry_at;	/* do not reconnect before this */
	struct timespec lag_checked;	/* replicas: when lag was last read */
	int host_next;			/* of a multi-host DSN: the one to try first */
};

_Static_assert(ST__MAX <= sizeof(((struct dbconn *)0)->prepared) * CHAR_BIT,
	       "one bit per statement: widen struct dbconn's prepared");

static struct dbconn primary;
static struct dbconn replicas[CONFIG_MAX_REPLICAS];

/* Milliseconds from a to b. */
static long
ms_between(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000;
}

static struct timespec
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

static struct timespec
after_ms(long ms)
{
	struct timespec ts = now_mono();

	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

/*
 * Wait until the connection's socket is ready for events or the deadline
 * passes. Returns 1 if ready, 0 on timeout or error.
 */
static int
wait_socket(PGconn *conn, short events, const struct timespec *deadline)
{
	struct pollfd pfd;
	struct timespec now;
	long left;
	int rc;

	pfd.fd = PQsocket(conn);
	pfd.events = events;
	if (pfd.fd < 0)
		return 0;
	for (;;) {
		now = now_mono();
		left = ms_between(&now, deadline);
		if (left <= 0)
			return 0;
		rc = poll(&pfd, 1, (int)left);
		if (rc > 0)
			return 1;
		if (rc == 0 || errno != EINTR)
			return 0;
	}
}

static void
drop(struct dbconn *c, long backoff_ms)
{
	if (c->conn != NULL)
		PQfinish(c->conn);
	c->conn = NULL;
	c->prepared = 0;
	c->retry_at = after_ms(backoff_ms);
}

/*
 * Open a connection without blocking past connect_timeout_ms: libpq's own
 * connect_timeout has whole-second granularity and a two-second minimum.
 * keys/vals as for PQconnectStartParams (expand: the first value is a
 * connection string). Returns the connection or NULL.
 */
static PGconn *
connect_one(const char *const *keys, const char *const *vals, int expand)
{
	struct timespec deadline = after_ms((long)cfg.connect_timeout_ms);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	PGconn *conn = NULL;

	conn = PQconnectStartParams(keys, vals, expand);
	if (conn == NULL || PQstatus(conn) == CONNECTION_BAD)
		goto fail;
	while (st != PGRES_POLLING_OK) {
		if (st == PGRES_POLLING_FAILED)
			goto fail;
		if (!wait_socket(conn, st == PGRES_POLLING_READING ? POLLIN : POLLOUT,
				 &deadline))
			goto fail;
		st = PQconnectPoll(conn);
	}
	return conn;
fail:
	if (conn != NULL) {
		log_msg("database connection failed: %s", PQerrorMessage(conn));
		PQfinish(conn);
	}
	return NULL;
}

#define DB_MAX_HOSTS 8
#define DB_MAX_KEYS 48

/* Split list at commas in place into at most max items. Returns the count. */
static int
split_list(char *list, char **item, int max)
{
	int n = 0;
	char *p = list;

	while (n < max) {
		item[n++] = p;
		if ((p = strchr(p, ',')) == NULL)
			break;
		*p++ = '\0';
	}
	return n;
}

/*
 * Connect c from dsn. A DSN may name several hosts (host=a,b,c
 * target_session_attrs=read-write: whichever is the primary now). libpq
 * tries them in turn, but when connecting asynchronously it leaves the
 * timeout to the caller, so a dead host that answers nothing would use up
 * the whole deadline and the next host would never be tried. Here each
 * host gets connect_timeout_ms of its own, starting from the one that
 * answered last time (c->host_next), so after a failover the dead host
 * costs one timeout per reconnect at most. Returns the connection or NULL.
 */
static PGconn *
connect_timed(struct dbconn *c, const char *dsn)
{
	const char *keys[DB_MAX_KEYS + 4], *vals[DB_MAX_KEYS + 4];
	char options[64], hostbuf[CONFIG_STR_MAX], portbuf[CONFIG_STR_MAX];
	char *host[DB_MAX_HOSTS], *port[DB_MAX_HOSTS];
	PQconninfoOption *opts = NULL, *o;
	PGconn *conn = NULL;
	int k = 0, hi = -1, pi = -1, nh = 1, np = 0, i, h;

	snprintf(options, sizeof(options), "-c statement_timeout=%lld",
		 (long long)cfg.statement_timeout_ms);
	opts = PQconninfoParse(dsn, NULL);
	for (o = opts; o != NULL && o->keyword != NULL && k < DB_MAX_KEYS; o++) {
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0)
			hi = k;
		else if (strcmp(o->keyword, "port") == 0)
			pi = k;
		keys[k] = o->keyword;
		vals[k++] = o->val;
	}
	if (opts == NULL || hi < 0 || strchr(vals[hi], ',') == NULL ||
	    strlen(vals[hi]) >= sizeof(hostbuf)) {
		/* One host (or a DSN libpq will refuse, with its message). */
		const char *k1[] = { "dbname", "options", "application_name",
				     "keepalives_idle", NULL };
		const char *v1[] = { dsn, options, "boxoffice", "30", NULL };

		conn = connect_one(k1, v1, 1);
		goto done;
	}
	/* Later keys override earlier ones: ours come last. */
	keys[k] = "options";
	vals[k++] = options;
	keys[k] = "application_name";
	vals[k++] = "boxoffice";
	keys[k] = "keepalives_idle";
	vals[k++] = "30";
	keys[k] = NULL;
	vals[k] = NULL;
	strcpy(hostbuf, vals[hi]);
	nh = split_list(hostbuf, host, DB_MAX_HOSTS);
	if (pi >= 0 && strlen(vals[pi]) < sizeof(portbuf)) {
		strcpy(portbuf, vals[pi]);
		np = split_list(portbuf, port, DB_MAX_HOSTS);
	}
	for (i = 0; i < nh && conn == NULL; i++) {
		h = (c->host_next + i) % nh;
		vals[hi] = host[h];
		if (np > 1)
			vals[pi] = port[h < np ? h : np - 1];
		if ((conn = connect_one(keys, vals, 0)) != NULL)
			c->host_next = h;
	}
done:
	if (opts != NULL)
		PQconninfoFree(opts);
	return conn;
}

/*
 * Wait for the whole answer to the query just sent. Returns the last
 * result (the caller clears it) or NULL on timeout or connection loss.
 */
static PGresult *
collect(PGconn *conn, const struct timespec *deadline)
{
	PGresult *res, *last = NULL;

	for (;;) {
		while (PQisBusy(conn)) {
			if (!wait_socket(conn, POLLIN, deadline) || !PQconsumeInput(conn))
				goto fail;
		}
		res = PQgetResult(conn);
		if (res == NULL)
			break;
		if (last != NULL)
			PQclear(last);
		last = res;
	}
	if (last == NULL || PQstatus(conn) == CONNECTION_BAD)
		goto fail;
	return last;
fail:
	if (last != NULL)
		PQclear(last);
	return NULL;
}

/* Prepare st on c if it is not yet. Returns 0 or -1 (connection dropped). */
static int
ensure_prepared(struct dbconn *c, enum db_stmt st, const struct timespec *deadline)
{
	PGresult *res = NULL;
	int ok;

	if (c->prepared & (UINT32_C(1) << st))
		return 0;
	if (!PQsendPrepare(c->conn, stmts[st].name, stmts[st].sql, stmts[st].nparams, NULL))
		return -1;
	res = collect(c->conn, deadline);
	if (res == NULL)
		return -1;
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		log_msg("prepare %s failed: %s", stmts[st].name, PQresultErrorMessage(res));
	PQclear(res);
	if (!ok)
		return -1;
	c->prepared |= UINT32_C(1) << st;
	return 0;
}

/*
 * Run st on connection c (opening it from dsn if needed). Returns a result
 * or NULL; on NULL the connection is closed and not retried for backoff_ms.
 */
static PGresult *
run(struct dbconn *c, const char *dsn, enum db_stmt st, const char *const *params,
    long backoff_ms, bool ignore_backoff)
{
	struct timespec now = now_mono(), deadline, started;
	PGresult *res = NULL;

	/* A kept connection the server closed while it was idle (a restart) is
	 * replaced at once: nothing has been sent on it, so nothing is lost.
	 * libpq's socket is non-blocking, so this costs one recv(). */
	if (c->conn != NULL &&
	    (!PQconsumeInput(c->conn) || PQstatus(c->conn) == CONNECTION_BAD)) {
		log_msg("database connection closed by the server; reconnecting");
		drop(c, 0);
	}
	if (c->conn == NULL) {
		if (!ignore_backoff && ms_between(&now, &c->retry_at) > 0)
			return NULL;
		if ((c->conn = connect_timed(c, dsn)) == NULL) {
			drop(c, backoff_ms);
			return NULL;
		}
	}
	/* The server cancels at statement_timeout; this catches a dead one. */
	started = now_mono();
	deadline = after_ms((long)cfg.statement_timeout_ms + 250);
	if (ensure_prepared(c, st, &deadline) != 0)
		goto fail;
	if (!PQsendQueryPrepared(c->conn, stmts[st].name, stmts[st].nparams, params,
				 NULL, NULL, 0))
		goto fail;
	if ((res = collect(c->conn, &deadline)) == NULL)
		goto fail;
	now = now_mono();
	metrics_db(c != &primary, (double)ms_between(&started, &now));
	return res;
fail:
	log_msg("database %s: %s", stmts[st].name,
		c->conn ? PQerrorMessage(c->conn) : "no connection");
	drop(c, backoff_ms);
	return NULL;
}

/* A short back-off so a dead primary answers 503 at once, not after a timeout. */
#define PRIMARY_BACKOFF_MS 500

PGresult *
db_exec(enum db_stmt st, const char *const *params)
{
	PGresult *res = run(&primary, cfg.primary_dsn, st, params, PRIMARY_BACKOFF_MS, false);

	if (res == NULL || db_unavailable(res))
		metrics_add(M_DB_ERRORS_PRIMARY, 1);
	return res;
}

/*
 * Is replica i usable: connected or due a retry, and not lagging? The lag
 * is read at most once a second per worker.
 */
static bool
replica_fresh(int i)
{
	struct dbconn *c = &replicas[i];
	struct timespec now = now_mono();
	PGresult *res;
	double lag;

	if (c->conn != NULL && ms_between(&c->lag_checked, &now) < 1000)
		return true;
	res = run(c, cfg.replica_dsn[i], ST_REPLICA_LAG, NULL,
		  (long)cfg.replica_retry_s * 1000, false);
	if (res == NULL) {
		metrics_replica_lag(i, -1);
		return false;
	}
	lag = PQresultStatus(res) == PGRES_TUPLES_OK ? atof(PQgetvalue(res, 0, 0)) : 1e9;
	PQclear(res);
	metrics_replica_lag(i, lag);
	c->lag_checked = now;
	if (lag > (double)cfg.replica_max_lag) {
		log_msg("replica %d lags %.1f s; reading from the primary", i, lag);
		drop(c, (long)cfg.replica_retry_s * 1000);
		return false;
	}
	return true;
}

PGresult *
db_read(enum db_stmt st, const char *const *params, enum db_target *from)
{
	PGresult *res;
	int i;

	if (cfg.read_routing == ROUTE_REPLICA) {
		for (i = 0; i < cfg.replica_count; i++) {
			if (!replica_fresh(i))
				continue;
			res = run(&replicas[i], cfg.replica_dsn[i], st, params,
				  (long)cfg.replica_retry_s * 1000, false);
			if (res != NULL && !db_unavailable(res)) {
				*from = DB_REPLICA;
				return res;
			}
			if (res != NULL)
				PQclear(res);
			metrics_add(M_DB_ERRORS_REPLICA, 1);
		}
		if (cfg.replica_count > 0)
			metrics_add(M_REPLICA_FALLBACKS, 1);
	}
	*from = DB_PRIMARY;
	return db_exec(st, params);
}

const char *
db_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return s ? s : "";
}

bool
db_unavailable(const PGresult *res)
{
	const char *s;

	if (PQresultStatus(res) != PGRES_FATAL_ERROR)
		return false;
	s = db_sqlstate(res);
	/* 57xxx operator intervention (timeouts, shutdown), 08xxx connection,
	 * 53xxx insufficient resources, 25006 read-only transaction. */
	return strncmp(s, "57", 2) == 0 || strncmp(s, "08", 2) == 0 ||
	       strncmp(s, "53", 2) == 0 || strcmp(s, "25006") == 0;
}

bool
db_health(enum db_target t)
{
	PGresult *res = NULL;
	bool up = false;
	int i;

	if (t == DB_PRIMARY) {
		res = run(&primary, cfg.primary_dsn, ST_PING, NULL, PRIMARY_BACKOFF_MS, true);
		up = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
		if (res != NULL)
			PQclear(res);
		return up;
	}
	/* Replicas: up if any one answers and is fresh enough. */
	for (i = 0; i < cfg.replica_count && !up; i++) {
		res = run(&replicas[i], cfg.replica_dsn[i], ST_REPLICA_LAG, NULL,
			  (long)cfg.replica_retry_s * 1000, true);
		if (res == NULL)
			continue;
		up = PQresultStatus(res) == PGRES_TUPLES_OK &&
		     atof(PQgetvalue(res, 0, 0)) <= (double)cfg.replica_max_lag;
		PQclear(res);
	}
	return up;
}

void
db_close_all(void)
{
	int i;

	drop(&primary, 0);
	for (i = 0; i < CONFIG_MAX_REPLICAS; i++)
		drop(&replicas[i], 0);
}

bool
db_conn_settings_differ(const struct config *a, const struct config *b)
{
	int i;

	if (strcmp(a->primary_dsn, b->primary_dsn) != 0 ||
	    a->replica_count != b->replica_count ||
	    a->statement_timeout_ms != b->statement_timeout_ms)
		return true;
	for (i = 0; i < a->replica_count; i++)
		if (strcmp(a->replica_dsn[i], b->replica_dsn[i]) != 0)
			return true;
	return false;
}
