/* catalog.h: the catalogue file (venues, plans, concerts, schedules, prices): parse and check. */
#ifndef BOXOFFICE_CATALOG_H
#define BOXOFFICE_CATALOG_H

#include <json-c/json.h>
#include <stddef.h>

/* Longest path to a value of a catalogue (concerts[12].schedules[3].startsAt). */
#define CATALOG_PATH_MAX 256
#define CATALOG_MSG_MAX 512

/* Bounds of a catalogue, checked by catalog_check(). */
#define CATALOG_KEY_MAX 100		/* bytes of a key (venue, concert, schedule) */
#define CATALOG_NAME_MAX 200		/* bytes of a title or venue name */
#define CATALOG_LABEL_MAX 50		/* bytes of a section, row or tier name */
#define CATALOG_ROW_SEATS_MAX 1000	/* seats in one row of a plan */
#define CATALOG_VENUE_SEATS_MAX 100000	/* seats in one venue */
#define CATALOG_PRICE_MAX 1000000000000LL

/*
 * Parse text (len bytes) as JSON. Returns the document, or NULL with line
 * (1-based) and msg saying where and why it is not JSON.
 */
struct json_object *catalog_parse(const char *text, size_t len, int *line,
				  char *msg, size_t msglen);

/*
 * Is doc a catalogue (docs/catalog.md)? Returns 0, or -1 with path (such
 * as concerts[2].schedules[0].startsAt) and msg saying what is wrong with
 * the first wrong value.
 */
int catalog_check(struct json_object *doc, char *path, size_t pathlen, char *msg, size_t msglen);

/*
 * The line (1-based) at which the value at path starts in the JSON text,
 * or, if there is no such value, the line of the nearest value on the way
 * to it (the object missing a member, the array too short). Paths are
 * member names joined by dots and array indexes in brackets:
 * concerts[2].prices.premium. text must be valid JSON.
 */
int catalog_line_of(const char *text, size_t len, const char *path);

/*
 * Is s an ISO-8601 time with a date, hours, minutes, seconds (optionally
 * a fraction) and a zone (Z or +HH:MM): 2027-06-01T19:30:00Z? If so and
 * epoch is not NULL, *epoch is its Unix time in seconds.
 */
int catalog_time_valid(const char *s, long long *epoch);

#endif
