/* jsoncheck.h: strict RFC 8259 syntax and UTF-8 check of a request body. */
#ifndef BOXOFFICE_JSONCHECK_H
#define BOXOFFICE_JSONCHECK_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Is text (len bytes) exactly one JSON value, optionally surrounded by
 * white space, in valid UTF-8, with no NUL (raw or escaped) and arrays and
 * objects nested at most max_depth deep?
 */
bool jsoncheck_valid(const char *text, size_t len, int max_depth);

#endif
