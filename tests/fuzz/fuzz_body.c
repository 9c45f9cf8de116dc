/* fuzz_body.c: libFuzzer target for request body parsing and field validation. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dispatch.h"
#include "http.h"
#include "route.h"

/*
 * The body goes through the JSON parser with the worker's limits, then
 * through the validators of every route that takes a body, exactly as
 * dispatch() would run them.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct route *table;
	struct req r;
	int i, n;

	if (size > 65536)
		return 0;
	config_defaults(&cfg);
	table = route_table(&n);
	for (i = 0; i < n; i++) {
		if ((table[i].body_required | table[i].body_optional) == 0)
			continue;
		memset(&r, 0, sizeof(r));
		r.body = malloc(size + 1);
		if (r.body == NULL)
			return 0;
		memcpy(r.body, data, size);
		r.body[size] = '\0';
		r.body_len = size;
		if (http_parse_json(&r) == 0)
			(void)dispatch_validate_body(&r, &table[i]);
		/* Every outcome is an answer with a status, never a crash. */
		if (r.status != 0 && (r.status < 400 || r.status > 599))
			abort();
		http_req_free(&r);
	}
	return 0;
}
