/* jsoncheck.h: strict RFC 8259 syntax and UTF-8 check of a request body. */
#ifndef BOXOFFICE_JSONCHECK_H
#define BOXOFFICE_JSONCHECK_H

#include <stdbool.h>
#include <stddef.h>

/* Deeper JSON than this is refused: no request of the API needs more than 2. */
#define JSONCHECK_MAX_DEPTH 8

/*
 * The json-c tokener depth (json_tokener_new_ex()) that allows the same
 * nesting as jsoncheck_valid() with max_depth: json-c counts one level
 * more than the containers (depth 8 takes 7 nested arrays).
 */
#define JSONCHECK_TOKENER_DEPTH(max_depth) ((max_depth) + 1)

/*
 * Is text (len bytes) exactly one JSON value, optionally surrounded by
 * white space, in valid UTF-8, with no NUL (raw or escaped) and arrays and
 * objects nested at most max_depth deep?
 */
bool jsoncheck_valid(const char *text, size_t len, int max_depth);

#endif
