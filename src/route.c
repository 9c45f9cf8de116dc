/* route.c: the API's route table and path matching. */
#include "route.h"

#include <string.h>

#include "handlers.h"
#include "metrics.h"
#include "pool.h"

#define B(f) (1u << (f))

static const struct route routes[] = {
	{ "GET", "/api/ping", AUTH_NONE, h_ping, 0, 0, 0, 0 },
	{ "GET", "/api/health", AUTH_NONE, h_health, 0, 0, 0, 0 },
	{ "POST", "/api/queues/token", AUTH_SIGNED_IN, h_queue_join,
	  B(F_CONCERT_ID), B(F_USER_ID), R_QUEUE, 0 },
	{ "GET", "/api/queues/status", AUTH_QUEUE, h_queue_status, 0, 0, R_QUEUE, 0 },
	/* Public and cached by nginx; open in maintenance, where it says PAUSED. */
	{ "GET", "/api/queues/{concertId}/progress", AUTH_NONE, h_queue_progress, 0, 0, 0, 0 },
	{ "GET", "/api/concerts", AUTH_NONE, h_concerts, 0, 0, 0, 0 },
	{ "GET", "/api/concerts/{concertId}/schedules", AUTH_NONE, h_schedules, 0, 0, 0, 0 },
	{ "GET", "/api/concerts/{concertId}/schedules/{scheduleId}/seats", AUTH_ACTIVE,
	  h_seats, 0, 0, 0, 0 },
	{ "POST", "/api/reservations", AUTH_ACTIVE, h_hold,
	  B(F_SCHEDULE_ID) | B(F_SEAT_NUMBER), 0, 0, 0 },
	{ "GET", "/api/reservations/{reservationId}", AUTH_TOKEN, h_reservation_get, 0, 0, 0, 0 },
	{ "DELETE", "/api/reservations/{reservationId}", AUTH_TOKEN, h_reservation_release,
	  0, 0, 0, 0 },
	{ "POST", "/api/payments", AUTH_ACTIVE, h_pay, 0,
	  B(F_RESERVATION_ID) | B(F_RESERVATION_IDS), R_IDEMPOTENT_KEY | R_AFTER_TURN,
	  B(F_RESERVATION_ID) | B(F_RESERVATION_IDS) },
	{ "GET", "/api/users/{userId}/balance", AUTH_USER, h_balance, 0, 0, 0, 0 },
	{ "GET", "/api/me/balance", AUTH_TOKEN, h_balance, 0, 0, 0, 0 },
	{ "POST", "/api/users/{userId}/balance/charge", AUTH_USER, h_charge,
	  B(F_AMOUNT), 0, R_IDEMPOTENT_KEY, 0 },
	{ "GET", "/api/users/{userId}/tickets", AUTH_USER, h_tickets, 0, 0, 0, 0 },
	{ "GET", "/api/me/tickets", AUTH_TOKEN, h_tickets, 0, 0, 0, 0 },
	/* The door: a door token of the concert (boxofficectl door-token). */
	{ "GET", "/api/tickets/{code}", AUTH_DOOR, h_ticket_door, 0, 0, 0, 0 },
	{ "POST", "/api/tickets/{ticketId}/refund", AUTH_TOKEN, h_ticket_refund, 0, 0, 0, 0 },
	{ "POST", "/api/accounts", AUTH_NONE, h_account_create, B(F_EMAIL) | B(F_PASSWORD), 0, 0, 0 },
	{ "POST", "/api/sessions", AUTH_NONE, h_session_create, B(F_EMAIL) | B(F_PASSWORD),
	  0, 0, 0 },
	{ "GET", "/api/sessions", AUTH_SESSION, h_session_get, 0, 0, 0, 0 },
	{ "DELETE", "/api/sessions", AUTH_SESSION, h_session_delete, 0, 0, 0, 0 },
	{ "POST", "/api/sessions/oidc", AUTH_PROVIDER, h_session_provider, 0, 0, 0, 0 },
	{ "GET", "/metrics", AUTH_LOOPBACK, h_metrics, 0, 0, 0, 0 },
};

#define NROUTES ((int)(sizeof(routes) / sizeof(routes[0])))
_Static_assert(NROUTES <= METRICS_MAX_ROUTES, "raise METRICS_MAX_ROUTES: every route is counted");

const struct route *
route_table(int *n)
{
	*n = NROUTES;
	return routes;
}

/* Does path start with prefix as whole segments ("/api/queues" but not "/api/queuesx")? */
static int
under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int
route_pool(const struct route *rt)
{
	static const char *const any[] = { "/api/ping", "/api/health", "/metrics" };
	static const char *const signin[] = { "/api/sessions", "/api/accounts", "/api/providers" };
	size_t i;

	for (i = 0; i < sizeof(any) / sizeof(any[0]); i++)
		if (under(rt->pattern, any[i]))
			return POOL_ALL;
	if (under(rt->pattern, "/api/queues"))
		return POOL_QUEUE;
	for (i = 0; i < sizeof(signin) / sizeof(signin[0]); i++)
		if (under(rt->pattern, signin[i]))
			return POOL_SIGNIN;
	return POOL_BOOKING;
}

int
route_index(const struct route *rt)
{
	return rt != NULL ? (int)(rt - routes) : -1;
}

/*
 * Match path against pattern segment by segment. A "{name}" segment
 * captures one non-empty path segment of under 64 bytes for field name.
 * Returns 1 on a match.
 */
static int
match(const char *pattern, const char *path, struct route_captures *caps)
{
	const char *p = pattern, *s = path;
	size_t plen, slen;
	char name[32];
	int f;

	caps->n = 0;
	while (*p != '\0' && *s != '\0') {
		if (*p != '/' || *s != '/')
			return 0;
		p++;
		s++;
		plen = strcspn(p, "/");
		slen = strcspn(s, "/");
		if (*p == '{') {
			if (slen == 0 || slen >= sizeof(caps->value[0]) ||
			    plen - 2 >= sizeof(name) || caps->n >= 4)
				return 0;
			memcpy(name, p + 1, plen - 2);
			name[plen - 2] = '\0';
			if ((f = valid_lookup(name)) < 0)
				return 0;
			caps->field[caps->n] = (enum field)f;
			memcpy(caps->value[caps->n], s, slen);
			caps->value[caps->n][slen] = '\0';
			caps->n++;
		} else if (plen != slen || memcmp(p, s, plen) != 0)
			return 0;
		p += plen;
		s += slen;
	}
	return *p == '\0' && *s == '\0';
}

enum route_result
route_find(const char *method, const char *path, const struct route **out,
	   struct route_captures *caps)
{
	enum route_result res = ROUTE_NO_PATH;
	struct route_captures tmp;
	int i;

	for (i = 0; i < NROUTES; i++) {
		if (!match(routes[i].pattern, path, &tmp))
			continue;
		/* HEAD is answered as GET; FastCGI servers drop the body. */
		if (strcmp(routes[i].method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
			*out = &routes[i];
			*caps = tmp;
			return ROUTE_OK;
		}
		res = ROUTE_NO_METHOD;
	}
	return res;
}
