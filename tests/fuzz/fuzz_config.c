/* fuzz_config.c: libFuzzer target for the configuration parser and its bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char *text, err[512];

	if (size > 65536 || (text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* Accepted settings must be within their bounds. */
	if (config_load_string(text, &c, err, sizeof(err)) == 0 &&
	    (c.max_active < 1 || c.max_body < 64 || c.max_body > 1048576 ||
	     c.replica_count < 0 || c.replica_count > CONFIG_MAX_REPLICAS))
		abort();
	free(text);
	return 0;
}
