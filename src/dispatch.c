/* dispatch.c: route lookup, field validation, the auth level and the call to the handler. */
#include "dispatch.h"

#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "http.h"
#include "metrics.h"
#include "pool.h"
#include "route.h"
#include "valid.h"

/* The wire names of the fields of mask, joined with ", " into buf. */
static const char *
one_of_names(uint32_t mask, char *buf, size_t size)
{
	size_t len = 0;
	int id;

	buf[0] = '\0';
	for (id = 0; id < F__MAX; id++)
		if ((mask & (1u << id)) && len < size)
			len += (size_t)snprintf(buf + len, size - len, "%s%s", len > 0 ? ", " : "",
						valid_name(id));
	return buf;
}

/*
 * Whether the request carried more than one Idempotency-Key header, whose
 * first value is key: nginx before 1.23 passes each header line as its own
 * parameter (FCGX_GetParam() finds the first), later versions join them
 * with ", " into one. So two parameters, or a comma in the one, is two keys,
 * and which one to honour is not ours to guess.
 */
static int
idem_key_repeated(FCGX_ParamArray envp, const char *key)
{
	static const char name[] = "HTTP_IDEMPOTENCY_KEY=";
	int n = 0;

	if (strchr(key, ',') != NULL)
		return 1;
	for (; *envp != NULL; envp++)
		if (strncmp(*envp, name, sizeof(name) - 1) == 0)
			n++;
	return n > 1;
}

int
dispatch_validate_body(struct req *r, const struct route *rt)
{
	uint32_t wanted = rt->body_required | rt->body_optional, have;
	struct json_object *v;
	char names[128];
	enum valid_err e;
	int id;

	for (id = 0; id < F__MAX; id++) {
		if (!(wanted & (1u << id)))
			continue;
		if (!json_object_object_get_ex(r->in, valid_name(id), &v) || v == NULL) {
			if (rt->body_required & (1u << id))
				return http_error(r, 400, "MISSING_FIELD", "%s is required",
						  valid_name(id));
			continue;
		}
		if ((e = valid_field(id, v, NULL, &r->f)) != VALID_OK)
			return http_error(r, 400, "INVALID_FIELD", "%s %s", valid_name(id),
					  valid_message(e));
	}
	if (rt->body_one_of != 0) {
		have = r->f.have & rt->body_one_of;
		if (have == 0)
			return http_error(r, 400, "MISSING_FIELD", "one of %s is required",
					  one_of_names(rt->body_one_of, names, sizeof(names)));
		if ((have & (have - 1)) != 0)
			return http_error(r, 400, "INVALID_FIELD", "only one of %s may be sent",
					  one_of_names(rt->body_one_of, names, sizeof(names)));
	}
	return 0;
}

void
dispatch(struct req *r)
{
	struct route_captures caps;
	const struct route *rt = NULL;
	const char *key;
	enum valid_err e;
	int i;

	if (r->path_too_long) {
		http_error(r, 404, "NOT_FOUND", "no such resource");
		return;
	}
	switch (route_find(r->method, r->path, &rt, &caps)) {
	case ROUTE_NO_PATH:
		http_error(r, 404, "NOT_FOUND", "no such resource");
		return;
	case ROUTE_NO_METHOD:
		http_error(r, 405, "METHOD_NOT_ALLOWED",
			   "method %.16s is not allowed on this resource", r->method);
		return;
	case ROUTE_OK:
		break;
	}
	r->route = rt;
	/*
	 * A route outside this worker's pool means the proxy's routing is
	 * wrong. Serving it anyway would hide that until the day it matters:
	 * a booking request that waits on a stalled primary in the queue
	 * pool holds a queue worker, the very thing the pools are for. So it
	 * is refused, loudly and at once, and counted.
	 */
	if (!pool_serves((enum pool_class)route_pool(rt))) {
		metrics_add(M_WRONG_POOL, 1);
		http_error(r, 500, "WRONG_POOL", "this worker serves the %s pool, not %s routes: "
			   "the proxy's routing is misconfigured", pool_names[pool_mine()],
			   pool_names[route_pool(rt)]);
		return;
	}

	for (i = 0; i < caps.n; i++)
		if ((e = valid_field(caps.field[i], NULL, caps.value[i], &r->f)) != VALID_OK) {
			http_error(r, 400, "INVALID_FIELD", "%s in the path %s",
				   valid_name(caps.field[i]), valid_message(e));
			return;
		}
	if (rt->body_required | rt->body_optional) {
		if (http_read_json(r, cfg.max_body) != 0 || dispatch_validate_body(r, rt) != 0)
			return;
	}
	if (rt->flags & R_IDEMPOTENT_KEY) {
		key = FCGX_GetParam("HTTP_IDEMPOTENCY_KEY", r->fcgx->envp);
		if (key != NULL && idem_key_repeated(r->fcgx->envp, key)) {
			http_error(r, 400, "INVALID_FIELD", "Idempotency-Key was sent more than once");
			return;
		}
		if (key != NULL && (e = valid_field(F_IDEM_KEY, NULL, key, &r->f)) != VALID_OK) {
			http_error(r, 400, "INVALID_FIELD", "Idempotency-Key %s", valid_message(e));
			return;
		}
	}
	if ((rt->flags & R_QUEUE) && cfg.maintenance) {
		r->retry_after = 30;
		http_error(r, 503, "MAINTENANCE", "the queue is paused for maintenance; "
			   "please keep this page open");
		return;
	}
	/* Last, so that a bad request is a 400 whether or not it has a token. */
	switch (auth_check(r, rt->auth)) {
	case AUTH_PASS:
		break;
	case AUTH_TURN_ENDED:
		if (!(rt->flags & R_AFTER_TURN))
			return;
		r->turn_ended = true;
		break;
	case AUTH_DENIED:
		return;
	}
	rt->handler(r);
}
