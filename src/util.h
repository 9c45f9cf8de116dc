/* util.h: small formatting helpers shared by handlers and the CLI. */
#ifndef BOXOFFICE_UTIL_H
#define BOXOFFICE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Decimal text of v in buf (for bound query parameters). Returns buf. */
char *util_i64(char *buf, size_t len, int64_t v);

/* ISO 8601 UTC text of Unix milliseconds, e.g. 2027-06-01T19:30:00.000Z. */
char *util_iso_time(int64_t ms, char *buf, size_t len);

/*
 * Map a zero-filled shared memory segment of size bytes named after what
 * and the real path of config_path, so that every worker of one service
 * (and no other service) shares it. Returns the mapping or NULL.
 */
void *util_shm_open(const char *what, const char *config_path, size_t size);

#endif
