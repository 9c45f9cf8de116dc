/* fuzz_catalog.c: libFuzzer target for the catalogue file: parse, check, the line of a path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"

/* The line of any path in any JSON text is one of the text's lines. */
static void
line_in_range(const char *text, size_t len, const char *path)
{
	int lines = 1, n;
	size_t i;

	for (i = 0; i < len; i++)
		lines += text[i] == '\n';
	n = catalog_line_of(text, len, path);
	if (n < 1 || n > lines)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *paths[] = {
		"", "venues[0].sections[0].rows[0].seats", "concerts[1].prices.gold",
		"concerts[0].schedules[2].startsAt", "a.b[3].c", "[0][1]", "x[",
	};
	char path[CATALOG_PATH_MAX], msg[CATALOG_MSG_MAX];
	struct json_object *doc;
	char *text;
	size_t i;
	int line;

	if (size > 65536 || (text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	doc = catalog_parse(text, size, &line, msg, sizeof(msg));
	if (doc == NULL) {
		if (line < 1 || msg[0] == '\0')
			abort();
	} else {
		if (catalog_check(doc, path, sizeof(path), msg, sizeof(msg)) != 0) {
			if (msg[0] == '\0')
				abort();
			line_in_range(text, size, path);
		}
		for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
			line_in_range(text, size, paths[i]);
		json_object_put(doc);
	}
	catalog_time_valid(text, NULL);
	free(text);
	return 0;
}
