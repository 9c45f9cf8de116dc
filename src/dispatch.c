/* dispatch.c: route lookup, field validation, the auth level and the call to the handler. */
#include "dispatch.h"

#include <string.h>

#include "auth.h"
#include "config.h"
#include "http.h"
#include "route.h"
#include "valid.h"

int
dispatch_validate_body(struct req *r, const struct route *rt)
{
	uint32_t wanted = rt->body_required | rt->body_optional;
	struct json_object *v;
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
