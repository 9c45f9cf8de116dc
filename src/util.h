/* util.h: small formatting helpers shared by handlers and the CLI. */
#ifndef BOXOFFICE_UTIL_H
#define BOXOFFICE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Decimal text of v in buf (for bound query parameters). Returns buf. */
char *util_i64(char *buf, size_t len, int64_t v);

/* ISO 8601 UTC text of Unix milliseconds, e.g. 2027-06-01T19:30:00.000Z. */
char *util_iso_time(int64_t ms, char *buf, size_t len);

/* The 32-bit FNV-1a hash of s: cheap and even enough for short names. */
uint32_t util_fnv1a(const char *s);

/*
 * Decode the UTF-8 sequence at s, of which len (> 0) bytes are there:
 * shortest form only, no surrogate, at most U+10FFFF. Returns its length,
 * 1 to 4, with *cp set; 0 if it is not valid UTF-8 or is cut short.
 */
int util_utf8_next(const unsigned char *s, size_t len, uint32_t *cp);

/*
 * A growing text buffer. Start it zeroed; p is NUL-terminated once
 * anything was written and belongs to the caller (free()). After a failed
 * allocation, failed is set and further writes do nothing.
 */
struct util_buf {
	char *p;
	size_t len, cap;
	int failed;
};

/* Append printf-style text to b. */
void util_bprintf(struct util_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
