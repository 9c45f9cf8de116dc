/* catalog.c: the catalogue file (venues, plans, concerts, schedules, prices): parse and check. */
#include "catalog.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsoncheck.h"

/*
 * The shape is checked here, before the database sees anything, so that
 * every mistake of the file is named by its line; what only the database
 * can judge (ids taken, seats held or sold) is judged by
 * boxoffice_catalog_import() (sql/functions/10_venues.sql) in the
 * transaction that applies it, and named by a path of the same form.
 */

/* Nesting of a catalogue: root, venues, venue, sections, section, rows, row. */
#define CATALOG_DEPTH 8

struct json_object *
catalog_parse(const char *text, size_t len, int *line, char *msg, size_t msglen)
{
	struct json_tokener *tok = NULL;
	struct json_object *doc = NULL;
	enum json_tokener_error jerr;
	size_t end = 0, i;

	*line = 1;
	if (len > 0x7fffffff) {
		snprintf(msg, msglen, "file too large");
		goto out;
	}
	tok = json_tokener_new_ex(JSONCHECK_TOKENER_DEPTH(CATALOG_DEPTH));
	if (tok == NULL) {
		snprintf(msg, msglen, "out of memory");
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	doc = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (doc == NULL && jerr == json_tokener_continue) {
		snprintf(msg, msglen, "not JSON: the file ends inside a value");
		end = len;
	} else if (doc == NULL || jerr != json_tokener_success) {
		snprintf(msg, msglen, "not JSON: %s", json_tokener_error_desc(jerr));
	} else {
		/* Only white space may follow the value. */
		for (; end < len && strchr(" \t\r\n", text[end]) != NULL && text[end] != '\0'; end++)
			;
		if (end < len) {
			snprintf(msg, msglen, "not JSON: text after the end of the document");
		} else if (!jsoncheck_valid(text, len, CATALOG_DEPTH)) {
			/* What json-c accepts beyond RFC 8259 (jsoncheck.c), or NUL. */
			snprintf(msg, msglen, "not strict JSON (RFC 8259: double-quoted strings, "
				 "no NaN, no control characters in strings)");
			end = 0;
		} else
			goto out;
	}
	json_object_put(doc);
	doc = NULL;
	for (i = 0; i < end && i < len; i++)
		if (text[i] == '\n')
			(*line)++;
out:
	if (tok != NULL)
		json_tokener_free(tok);
	return doc;
}

/* ---- ISO-8601 times ---- */

static bool
digits_at(const char *s, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		*v = *v * 10 + (s[i] - '0');
	}
	return true;
}

int
catalog_time_valid(const char *s, long long *epoch)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec, zh = 0, zm = 0, sign = 0;
	struct tm tm;
	const char *p;
	bool leap;

	if (strlen(s) < 20 || !digits_at(s, 4, &y) || s[4] != '-' || !digits_at(s + 5, 2, &mo) ||
	    s[7] != '-' || !digits_at(s + 8, 2, &d) || s[10] != 'T' ||
	    !digits_at(s + 11, 2, &h) || s[13] != ':' || !digits_at(s + 14, 2, &mi) ||
	    s[16] != ':' || !digits_at(s + 17, 2, &sec))
		return 0;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 59)
		return 0;
	p = s + 19;
	if (*p == '.') {
		if (!isdigit((unsigned char)p[1]))
			return 0;
		for (p++; isdigit((unsigned char)*p); p++)
			;
	}
	if (*p == 'Z')
		p++;
	else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		if (!digits_at(p + 1, 2, &zh) || p[3] != ':' || !digits_at(p + 4, 2, &zm) ||
		    zh > 23 || zm > 59)
			return 0;
		p += 6;
	} else
		return 0;
	if (*p != '\0')
		return 0;
	if (epoch != NULL) {
		memset(&tm, 0, sizeof(tm));
		tm.tm_year = y - 1900;
		tm.tm_mon = mo - 1;
		tm.tm_mday = d;
		tm.tm_hour = h;
		tm.tm_min = mi;
		tm.tm_sec = sec;
		*epoch = (long long)timegm(&tm) - sign * (zh * 3600LL + zm * 60LL);
	}
	return 1;
}

/* ---- the shape of a catalogue ---- */

struct chk {
	char *path, *msg;
	size_t pathlen, msglen;
};

/* Record the first error: at path (printf format), msg. Returns -1. */
static int
fail(struct chk *c, const char *msg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->path, c->pathlen, fmt, ap);
	va_end(ap);
	snprintf(c->msg, c->msglen, "%s", msg);
	return -1;
}

/* Only these members, each of the kind its letter says: s string, S string
 * or null, i integer, b boolean, a array, o object (members() is told
 * which are required). */
struct member {
	const char *name;
	char kind;
};

static bool
kind_ok(struct json_object *v, char kind)
{
	switch (tolower((unsigned char)kind)) {
	case 's':
		return json_object_is_type(v, json_type_string) ||
		       (kind == 'S' && json_object_is_type(v, json_type_null));
	case 'i':
		return json_object_is_type(v, json_type_int);
	case 'b':
		return json_object_is_type(v, json_type_boolean);
	case 'a':
		return json_object_is_type(v, json_type_array);
	case 'o':
		return json_object_is_type(v, json_type_object);
	}
	return false;
}

static const char *
kind_name(char kind)
{
	switch (tolower((unsigned char)kind)) {
	case 's':
		return kind == 'S' ? "not a string or null" : "not a string";
	case 'i':
		return "not an integer";
	case 'b':
		return "not true or false";
	case 'a':
		return "not an array";
	}
	return "not an object";
}

/*
 * o (at path at) is an object with only the members of list, of their
 * kinds; required names a string of the members that must be there.
 */
static int
members(struct chk *c, struct json_object *o, const char *at, const struct member *list,
	const char *required)
{
	const struct member *m;
	struct json_object *v;
	char need[64];
	const char *p, *q;
	size_t n;

	if (!json_object_is_type(o, json_type_object))
		return fail(c, "not an object", "%s", at);
	json_object_object_foreach(o, name, val) {
		for (m = list; m->name != NULL && strcmp(m->name, name) != 0; m++)
			;
		if (m->name == NULL)
			return fail(c, "unknown member (docs/catalog.md lists them)", "%s.%s",
				    at, name);
		if (!kind_ok(val, m->kind))
			return fail(c, kind_name(m->kind), "%s.%s", at, name);
	}
	for (p = required; *p != '\0'; p = *q == ' ' ? q + 1 : q) {
		q = strchr(p, ' ');
		if (q == NULL)
			q = p + strlen(p);
		n = (size_t)(q - p) < sizeof(need) ? (size_t)(q - p) : sizeof(need) - 1;
		memcpy(need, p, n);
		need[n] = '\0';
		if (!json_object_object_get_ex(o, need, &v))
			return fail(c, "missing (required)", "%s.%s", at, need);
	}
	return 0;
}

/* Is s a word: 1 to max bytes of letters, digits, '-' and '_' (keys, tiers)? */
static bool
is_word(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (!isalnum((unsigned char)s[n]) && s[n] != '-' && s[n] != '_')
			return false;
	return n > 0 && n <= max;
}

/* A string member's text, its bounds checked (between 1 and max bytes, no
 * control characters; with word, a word: is_word()). */
static int
text(struct chk *c, struct json_object *o, const char *at, const char *name, size_t max,
     bool word, const char **out)
{
	struct json_object *v;
	const unsigned char *s;
	size_t n;

	*out = NULL;
	if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null))
		return 0;
	s = (const unsigned char *)json_object_get_string(v);
	n = strlen((const char *)s);
	if (n == 0 || n > max || n != (size_t)json_object_get_string_len(v))
		return fail(c, "empty, too long or has a NUL", "%s.%s", at, name);
	if (word && !is_word((const char *)s, max))
		return fail(c, "only letters, digits, '-' and '_' please", "%s.%s", at, name);
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s == 0x7f)
			return fail(c, "has a control character", "%s.%s", at, name);
	*out = json_object_get_string(v);
	return 0;
}

/* An integer member between lo and hi, or absent (then *out stays). */
static int
integer(struct chk *c, struct json_object *o, const char *at, const char *name,
	int64_t lo, int64_t hi, int64_t *out)
{
	struct json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(o, name, &v))
		return 0;
	n = json_object_get_int64(v);
	if (n < lo || n > hi)
		return fail(c, "out of range", "%s.%s", at, name);
	*out = n;
	return 0;
}

/* Does the array of strings seen (n of them) hold s? */
static bool
seen(const char **list, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

static const struct member venue_members[] = {
	{ "key", 's' }, { "name", 's' }, { "city", 's' }, { "sections", 'a' }, { NULL, 0 }
};
static const struct member section_members[] = {
	{ "name", 's' }, { "rows", 'a' }, { NULL, 0 }
};
static const struct member row_members[] = {
	{ "row", 's' }, { "seats", 'i' }, { "tier", 's' }, { NULL, 0 }
};
static const struct member concert_members[] = {
	{ "key", 's' }, { "id", 'i' }, { "title", 's' }, { "venue", 's' }, { "onSale", 'b' },
	{ "saleOpensAt", 'S' }, { "saleClosesAt", 'S' }, { "prices", 'o' },
	{ "schedules", 'a' }, { NULL, 0 }
};
static const struct member schedule_members[] = {
	{ "key", 's' }, { "id", 'i' }, { "startsAt", 's' }, { NULL, 0 }
};

/* The venues array: keys unique, plans within bounds. */
static int
check_venues(struct chk *c, struct json_object *venues)
{
	char at[64], sat[128], rat[CATALOG_PATH_MAX];
	struct json_object *v, *sections, *sec, *rows, *row;
	const char **keys = NULL, *key, *s;
	size_t i, j, k, n = json_object_array_length(venues);
	int64_t seats, total;
	int rc = -1;

	if ((keys = calloc(n + 1, sizeof(*keys))) == NULL) {
		fail(c, "out of memory", "venues");
		goto out;
	}
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(venues, i);
		snprintf(at, sizeof(at), "venues[%zu]", i);
		if (members(c, v, at, venue_members, "key name sections") != 0 ||
		    text(c, v, at, "key", CATALOG_KEY_MAX, true, &key) != 0 ||
		    text(c, v, at, "name", CATALOG_NAME_MAX, false, &s) != 0 ||
		    text(c, v, at, "city", CATALOG_NAME_MAX, false, &s) != 0)
			goto out;
		if (seen(keys, i, key)) {
			fail(c, "another venue has this key", "%s.key", at);
			goto out;
		}
		keys[i] = key;
		json_object_object_get_ex(v, "sections", &sections);
		total = 0;
		for (j = 0; j < json_object_array_length(sections); j++) {
			sec = json_object_array_get_idx(sections, j);
			snprintf(sat, sizeof(sat), "%s.sections[%zu]", at, j);
			if (members(c, sec, sat, section_members, "name rows") != 0 ||
			    text(c, sec, sat, "name", CATALOG_LABEL_MAX, false, &s) != 0)
				goto out;
			json_object_object_get_ex(sec, "rows", &rows);
			for (k = 0; k < json_object_array_length(rows); k++) {
				row = json_object_array_get_idx(rows, k);
				snprintf(rat, sizeof(rat), "%s.rows[%zu]", sat, k);
				seats = 0;
				if (members(c, row, rat, row_members, "row seats tier") != 0 ||
				    text(c, row, rat, "row", CATALOG_LABEL_MAX, false, &s) != 0 ||
				    text(c, row, rat, "tier", CATALOG_LABEL_MAX, true, &s) != 0 ||
				    integer(c, row, rat, "seats", 1, CATALOG_ROW_SEATS_MAX, &seats) != 0)
					goto out;
				total += seats;
				if (total > CATALOG_VENUE_SEATS_MAX) {
					fail(c, "the venue has more seats than allowed (100000)",
					     "%s.seats", rat);
					goto out;
				}
			}
		}
	}
	rc = 0;
out:
	free(keys);
	return rc;
}

/* Does the venue v's plan have tier in a row? Else, returns the first tier
 * of the plan missing from prices (or NULL if none is). */
static const char *
unpriced_tier(struct json_object *v, struct json_object *prices)
{
	struct json_object *sections, *rows, *tier, *p;
	size_t j, k;

	json_object_object_get_ex(v, "sections", &sections);
	for (j = 0; j < json_object_array_length(sections); j++) {
		json_object_object_get_ex(json_object_array_get_idx(sections, j), "rows", &rows);
		for (k = 0; k < json_object_array_length(rows); k++) {
			json_object_object_get_ex(json_object_array_get_idx(rows, k), "tier", &tier);
			if (prices == NULL ||
			    !json_object_object_get_ex(prices, json_object_get_string(tier), &p))
				return json_object_get_string(tier);
		}
	}
	return NULL;
}

/* One concert (at path at) of the catalogue, venues checked already. */
static int
check_concert(struct chk *c, struct json_object *x, const char *at,
	      struct json_object *venues)
{
	char sat[CATALOG_PATH_MAX];
	struct json_object *v = NULL, *prices = NULL, *schedules, *sc, *w;
	const char **keys = NULL, *key, *s, *missing;
	long long opens = 0, closes = 0;
	bool has_opens = false;
	int64_t id, price;
	size_t i, n;
	int rc = -1;

	if (members(c, x, at, concert_members, "key title venue prices schedules") != 0 ||
	    text(c, x, at, "key", CATALOG_KEY_MAX, true, &key) != 0 ||
	    text(c, x, at, "title", CATALOG_NAME_MAX, false, &s) != 0 ||
	    integer(c, x, at, "id", 1, INT32_MAX, &id) != 0)
		return -1;
	json_object_object_get_ex(x, "venue", &w);
	for (i = 0; i < json_object_array_length(venues); i++) {
		struct json_object *k;

		json_object_object_get_ex(json_object_array_get_idx(venues, i), "key", &k);
		if (strcmp(json_object_get_string(k), json_object_get_string(w)) == 0)
			v = json_object_array_get_idx(venues, i);
	}
	if (v == NULL)
		return fail(c, "no venue of this catalogue has this key", "%s.venue", at);
	if (text(c, x, at, "saleOpensAt", 40, false, &s) != 0)
		return -1;
	if (s != NULL && !(has_opens = catalog_time_valid(s, &opens)))
		return fail(c, "not an ISO-8601 time (2027-06-01T19:30:00Z)", "%s.saleOpensAt", at);
	if (text(c, x, at, "saleClosesAt", 40, false, &s) != 0)
		return -1;
	if (s != NULL && !catalog_time_valid(s, &closes))
		return fail(c, "not an ISO-8601 time (2027-06-01T19:30:00Z)", "%s.saleClosesAt", at);
	if (s != NULL && has_opens && closes <= opens)
		return fail(c, "the sale closes before it opens", "%s.saleClosesAt", at);
	json_object_object_get_ex(x, "prices", &prices);
	json_object_object_foreach(prices, tier, pv) {
		if (!is_word(tier, CATALOG_LABEL_MAX))
			return fail(c, "a tier is letters, digits, '-' and '_'", "%s.prices.%s",
				    at, tier);
		price = json_object_get_int64(pv);
		if (!json_object_is_type(pv, json_type_int) || price < 0 ||
		    price > CATALOG_PRICE_MAX)
			return fail(c, "not an integer amount from 0 (smallest currency unit)",
				    "%s.prices.%s", at, tier);
	}
	if ((missing = unpriced_tier(v, prices)) != NULL) {
		snprintf(sat, sizeof(sat), "no price for tier \"%.*s\" of the venue's plan",
			 CATALOG_LABEL_MAX, missing);
		return fail(c, sat, "%s.prices", at);
	}
	json_object_object_get_ex(x, "schedules", &schedules);
	n = json_object_array_length(schedules);
	if ((keys = calloc(n + 1, sizeof(*keys))) == NULL)
		return fail(c, "out of memory", "%s", at);
	for (i = 0; i < n; i++) {
		sc = json_object_array_get_idx(schedules, i);
		snprintf(sat, sizeof(sat), "%.100s.schedules[%zu]", at, i);
		if (members(c, sc, sat, schedule_members, "key startsAt") != 0 ||
		    text(c, sc, sat, "key", CATALOG_KEY_MAX, true, &keys[i]) != 0 ||
		    integer(c, sc, sat, "id", 1, INT64_MAX / 2, &id) != 0 ||
		    text(c, sc, sat, "startsAt", 40, false, &s) != 0)
			goto out;
		if (seen(keys, i, keys[i])) {
			fail(c, "another schedule of this concert has this key", "%s.key", sat);
			goto out;
		}
		if (!catalog_time_valid(s, NULL)) {
			fail(c, "not an ISO-8601 time (2027-06-01T19:30:00Z)", "%s.startsAt", sat);
			goto out;
		}
	}
	rc = 0;
out:
	free(keys);
	return rc;
}

int
catalog_check(struct json_object *doc, char *path, size_t pathlen, char *msg, size_t msglen)
{
	static const struct member root_members[] = {
		{ "venues", 'a' }, { "concerts", 'a' }, { NULL, 0 }
	};
	struct chk c = { path, msg, pathlen, msglen };
	char at[CATALOG_PATH_MAX];
	struct json_object *venues, *concerts, *x, *k, *y;
	const char **keys = NULL;
	size_t i, j, n;
	int rc = -1;

	path[0] = msg[0] = '\0';
	if (!json_object_is_type(doc, json_type_object))
		return fail(&c, "a catalogue is an object {\"venues\": [...], \"concerts\": [...]}",
			    "%s", "");
	if (members(&c, doc, "", root_members, "venues concerts") != 0)
		goto fixroot;
	json_object_object_get_ex(doc, "venues", &venues);
	json_object_object_get_ex(doc, "concerts", &concerts);
	if (check_venues(&c, venues) != 0)
		return -1;
	n = json_object_array_length(concerts);
	if ((keys = calloc(n + 1, sizeof(*keys))) == NULL)
		return fail(&c, "out of memory", "concerts");
	for (i = 0; i < n; i++) {
		x = json_object_array_get_idx(concerts, i);
		snprintf(at, sizeof(at), "concerts[%zu]", i);
		if (check_concert(&c, x, at, venues) != 0)
			goto out;
		json_object_object_get_ex(x, "key", &k);
		keys[i] = json_object_get_string(k);
		if (seen(keys, i, keys[i])) {
			fail(&c, "another concert has this key", "%s.key", at);
			goto out;
		}
		/* Ids given must be unique in the file (the database judges the rest). */
		if (json_object_object_get_ex(x, "id", &k))
			for (j = 0; j < i; j++)
				if (json_object_object_get_ex(json_object_array_get_idx(concerts, j),
							      "id", &y) &&
				    json_object_get_int64(y) == json_object_get_int64(k)) {
					fail(&c, "another concert has this id", "%s.id", at);
					goto out;
				}
	}
	rc = 0;
	goto out;
fixroot:
	/* Members of the root are "" + ".name": drop the leading dot. */
	if (path[0] == '.')
		memmove(path, path + 1, strlen(path));
	return -1;
out:
	free(keys);
	return rc;
}

/* ---- the line of a path ---- */

struct scan {
	const char *p, *end;
	int line;
};

static void
ws(struct scan *s)
{
	for (; s->p < s->end && strchr(" \t\r\n", *s->p) != NULL && *s->p != '\0'; s->p++)
		if (*s->p == '\n')
			s->line++;
}

/* Skip a string at s->p (its opening quote); copy its raw text into out
 * (escapes of '"', '\\' and '/' undone) if out is not NULL. */
static void
skip_string(struct scan *s, char *out, size_t outlen)
{
	size_t n = 0;
	char ch;

	for (s->p++; s->p < s->end && *s->p != '"'; s->p++) {
		ch = *s->p;
		if (ch == '\\' && s->p + 1 < s->end) {
			s->p++;
			ch = *s->p;
			if (ch != '"' && ch != '\\' && ch != '/' && out != NULL && n + 1 < outlen)
				out[n++] = '\\';
		}
		if (ch == '\n')
			s->line++;
		if (out != NULL && n + 1 < outlen)
			out[n++] = ch;
	}
	if (s->p < s->end)
		s->p++;
	if (out != NULL && outlen > 0)
		out[n] = '\0';
}

static void
skip_value(struct scan *s)
{
	int depth = 0;

	do {
		ws(s);
		if (s->p >= s->end)
			return;
		switch (*s->p) {
		case '"':
			skip_string(s, NULL, 0);
			break;
		case '{':
		case '[':
			depth++;
			s->p++;
			break;
		case '}':
		case ']':
			depth--;
			s->p++;
			break;
		case ',':
		case ':':
			s->p++;
			break;
		default:
			/* a number or a literal, whole */
			while (s->p < s->end && strchr(",:[]{}\" \t\r\n", *s->p) == NULL)
				s->p++;
			break;
		}
	} while (depth > 0 && s->p < s->end);
}

int
catalog_line_of(const char *text, size_t len, const char *path)
{
	struct scan s = { text, text + len, 1 };
	char want[CATALOG_PATH_MAX], name[CATALOG_PATH_MAX];
	const char *p = path;
	int line;
	size_t n, i;
	long idx;
	char *endp;

	ws(&s);
	for (;;) {
		line = s.line;
		if (*p == '.')
			p++;
		if (*p == '\0' || s.p >= s.end)
			return line;
		if (*p == '[') {
			idx = strtol(p + 1, &endp, 10);
			if (*s.p != '[' || endp == p + 1 || *endp != ']' || idx < 0)
				return line;
			p = endp + 1;
			s.p++;
			for (i = 0;; i++) {
				ws(&s);
				if (s.p >= s.end || *s.p == ']')
					return line;
				if (i == (size_t)idx)
					break;
				skip_value(&s);
				ws(&s);
				if (s.p < s.end && *s.p == ',')
					s.p++;
			}
			continue;
		}
		n = strcspn(p, ".[");
		if (n >= sizeof(want) || *s.p != '{')
			return line;
		memcpy(want, p, n);
		want[n] = '\0';
		p += n;
		s.p++;
		for (;;) {
			ws(&s);
			if (s.p >= s.end || *s.p != '"')
				return line;
			skip_string(&s, name, sizeof(name));
			ws(&s);
			if (s.p < s.end && *s.p == ':')
				s.p++;
			ws(&s);
			if (strcmp(name, want) == 0)
				break;
			skip_value(&s);
			ws(&s);
			if (s.p < s.end && *s.p == ',')
				s.p++;
		}
	}
}
