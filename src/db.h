/* db.h: persistent PostgreSQL connections (primary, replicas), prepared statements. */
#ifndef BOXOFFICE_DB_H
#define BOXOFFICE_DB_H

#include <libpq-fe.h>
#include <stdbool.h>

struct config;

enum db_target { DB_PRIMARY, DB_REPLICA };

/* Every statement the worker runs; the SQL text is in db.c's table. */
enum db_stmt {
	ST_PING,
	ST_REPLICA_LAG,
	ST_CONCERTS,
	ST_SCHEDULES,
	ST_CONCERT_ON_SALE,
	ST_USER_EXISTS,
	ST_IDEM_LOOKUP,
	ST_SWEEP,
	ST_SEATS,
	ST_HOLD,
	ST_RESERVATION,
	ST_RELEASE,
	ST_PAY,
	ST_BALANCE,
	ST_CHARGE,
	ST_ACCOUNT_CREATE,
	ST_ACCOUNT_BY_EMAIL,
	ST_ACCOUNT_REHASH,
	ST_IDENTITY_USER,
	ST_TICKETS,
	ST_TICKET_DOOR,
	ST_REFUND,
	ST__MAX
};

/*
 * Run a prepared statement on the primary. Returns a result the caller
 * must PQclear(): PGRES_TUPLES_OK, or PGRES_FATAL_ERROR for an SQL error
 * (db_sqlstate() tells which). Returns NULL when the server could not be
 * reached or did not answer in time; the connection is then dropped and
 * re-opened by a later call, and the caller answers 503.
 */
PGresult *db_exec(enum db_stmt st, const char *const *params);

/*
 * The same for a read that may be served by a replica (read routing in
 * the configuration). A failing or lagging replica is skipped for
 * replica_retry_s and the primary answers within the same call. *from
 * tells who answered.
 */
PGresult *db_read(enum db_stmt st, const char *const *params, enum db_target *from);

/* The SQLSTATE of a failed result, "" if none. */
const char *db_sqlstate(const PGresult *res);

/* True if an SQL error means "the server is unavailable" (timeouts, shutdown). */
bool db_unavailable(const PGresult *res);

/* Is the target up right now? Runs one round trip, bypassing back-offs. */
bool db_health(enum db_target t);

/* Close every connection: after a reload that changed DSNs, and at exit. */
void db_close_all(void);

/*
 * Would connections opened under settings a differ from ones opened under
 * b (a DSN, or the statement timeout each session is started with)?
 */
bool db_conn_settings_differ(const struct config *a, const struct config *b);

#endif
