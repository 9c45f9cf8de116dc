/* fuzz_route.c: libFuzzer target for routing and path-field validation. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"
#include "valid.h"

/* Input: METHOD, a NUL byte, then the path. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct route_captures caps;
	const struct route *rt = NULL;
	struct fields f;
	char buf[1024];
	const char *method, *path;
	size_t mlen;
	int i;

	if (size >= sizeof(buf))
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	method = buf;
	mlen = strlen(buf);
	path = mlen < size ? buf + mlen + 1 : "/";
	memset(&f, 0, sizeof(f));
	if (route_find(method, path, &rt, &caps) == ROUTE_OK) {
		if (rt == NULL || caps.n < 0 || caps.n > 4)
			abort();
		for (i = 0; i < caps.n; i++)
			(void)valid_field(caps.field[i], NULL, caps.value[i], &f);
	}
	return 0;
}
