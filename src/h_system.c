/* h_system.c: liveness and health endpoints. */
#include "handlers.h"

#include <stdbool.h>

#include "cache.h"
#include "config.h"
#include "db.h"
#include "http.h"

/* The benchmark baseline: no server is touched. */
void
h_ping(struct req *r)
{
	static const char pong[] = "{\"status\":\"ok\"}";

	http_reply_raw(r, 200, pong, sizeof(pong) - 1);
}

/*
 * Each dependency up or down. 200 while the primary is up (the service can
 * take money), 503 otherwise; "degraded" when a replica or Redis is down.
 * Each check is one round trip within the connect and statement deadlines,
 * so health itself never hangs on a dead server.
 */
void
h_health(struct req *r)
{
	bool primary = db_health(DB_PRIMARY);
	bool replica = cfg.replica_count > 0 && db_health(DB_REPLICA);
	bool redis = cache_health();
	bool none = cfg.replica_count == 0;
	struct json_object *o = json_object_new_object();

	/* With no replica configured there is nothing to be down: "none". */
	json_object_object_add(o, "status", json_object_new_string(
		!primary ? "down" : ((replica || none) && redis) ? "ok" : "degraded"));
	json_object_object_add(o, "primary", json_object_new_string(primary ? "up" : "down"));
	json_object_object_add(o, "replica", json_object_new_string(
		none ? "none" : replica ? "up" : "down"));
	json_object_object_add(o, "redis", json_object_new_string(redis ? "up" : "down"));
	json_object_object_add(o, "breaker", json_object_new_string(
		cache_breaker_open() ? "open" : "closed"));
	json_object_object_add(o, "readRouting", json_object_new_string(
		cfg.read_routing == ROUTE_REPLICA ? "replica" : "primary"));
	json_object_object_add(o, "maintenance", json_object_new_boolean(cfg.maintenance));
	http_reply(r, primary ? 200 : 503, o);
}
