/* fuzz_header.c: libFuzzer target for the Content-Type and Content-Length validators. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "valid.h"

/* The value of a run of digits as valid_content_length() must give it. */
static int64_t
reference_length(const char *s)
{
	unsigned long long v;

	s += strspn(s, "0");
	if (strlen(s) > 19)
		return INT64_MAX;
	v = strtoull(s, NULL, 10);	/* 19 digits always fit */
	return v > (unsigned long long)INT64_MAX ? INT64_MAX : (int64_t)v;
}

/*
 * The input is a Content-Type, a NUL, then a Content-Length. Whatever a
 * validator accepts must be of its grammar's shape, checked here by
 * simpler means: digits only and the right value; application/json
 * (any case) after optional white space, then the end, white space or
 * ";", and no control character anywhere.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[4096];
	const char *ct, *cl, *p;
	int64_t len = -1;
	size_t i;

	if (size >= sizeof(buf))
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	ct = buf;
	cl = memchr(buf, '\0', size) != NULL && strlen(buf) < size ? buf + strlen(buf) + 1 : "";

	if (valid_content_length(cl, &len)) {
		if (*cl == '\0' || strspn(cl, "0123456789") != strlen(cl) ||
		    len != reference_length(cl))
			abort();
	} else if (len != -1) {
		abort();	/* *out untouched on failure */
	}

	if (valid_media_type(ct, "application/json")) {
		p = ct + strspn(ct, " \t");
		if (strncasecmp(p, "application/json", 16) != 0 ||
		    strchr(" \t;", p[16]) == NULL)	/* also the terminating NUL */
			abort();
		for (i = 0; ct[i] != '\0'; i++)
			if (((unsigned char)ct[i] < 0x20 && ct[i] != '\t') || ct[i] == 0x7f)
				abort();
	}
	return 0;
}
