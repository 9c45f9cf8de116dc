/* jsoncheck.c: strict RFC 8259 syntax and UTF-8 check of a request body, before json-c parses it. */
#include "jsoncheck.h"

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/*
 * json-c 0.16 in strict mode with UTF-8 validation (as http.c parses)
 * still accepts these, which RFC 8259 forbids:
 *   - strings in single quotes: {'a':1}
 *   - raw control characters (U+0000 to U+001F) inside strings
 *   - NaN and Infinity as values: {"a":NaN}
 *   - a number ending in its decimal point: {"a":1.}
 *   - numbers with leading zeros: {"a":00}
 *   - invalid UTF-8 (RFC 8259 section 8.1): overlong forms (C0 AF),
 *     UTF-16 surrogates encoded in UTF-8 (ED A0 80), code points past
 *     U+10FFFF (F5 80 80 80)
 * and these, which RFC 8259's grammar admits but which no well-behaved
 * sender needs:
 *   - escaped lone surrogates ("\ud800", "\udc00", "\ud800\u0041"), whose
 *     meaning RFC 8259 section 8.2 leaves unpredictable (I-JSON, RFC 7493,
 *     forbids them)
 *   - an escaped NUL ("\u0000"), at which json-c cuts keys short
 * A proxy or firewall that parses JSON by the book would see other fields
 * than the worker. tests/unit/test_unit.c shows json-c accepting each case
 * and this check refusing it: when json-c refuses them all, this file can
 * go. This recursive-descent check accepts exactly the JSON grammar, valid
 * UTF-8 only, no NUL anywhere, not even escaped, and arrays and objects
 * nested at most max_depth deep (json-c's tokener depth for the same
 * limit is JSONCHECK_TOKENER_DEPTH(max_depth)).
 */

struct cursor {
	const unsigned char *p, *end;
	int depth, max_depth;
};

static bool value(struct cursor *c);

static void
skip_ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static bool
literal(struct cursor *c, const char *word)
{
	for (; *word != '\0'; word++, c->p++)
		if (c->p >= c->end || *c->p != (unsigned char)*word)
			return false;
	return true;
}

static bool
digits(struct cursor *c)
{
	const unsigned char *start = c->p;

	while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
		c->p++;
	return c->p > start;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool
number(struct cursor *c)
{
	if (c->p < c->end && *c->p == '-')
		c->p++;
	if (c->p < c->end && *c->p == '0')
		c->p++;
	else if (!digits(c))
		return false;
	if (c->p < c->end && *c->p == '.') {
		c->p++;
		if (!digits(c))
			return false;
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		c->p++;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (!digits(c))
			return false;
	}
	return true;
}

/* Four hex digits of a \u escape; returns the code unit or -1. */
static long
hex4(struct cursor *c)
{
	long v = 0;
	int i;

	for (i = 0; i < 4; i++, c->p++) {
		if (c->p >= c->end)
			return -1;
		v <<= 4;
		if (*c->p >= '0' && *c->p <= '9')
			v |= *c->p - '0';
		else if (*c->p >= 'a' && *c->p <= 'f')
			v |= *c->p - 'a' + 10;
		else if (*c->p >= 'A' && *c->p <= 'F')
			v |= *c->p - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* One UTF-8 sequence of two to four bytes, shortest form, no surrogates. */
static bool
utf8(struct cursor *c)
{
	uint32_t cp;
	int n = util_utf8_next(c->p, (size_t)(c->end - c->p), &cp);

	if (n < 2)
		return false;
	c->p += n;
	return true;
}

static bool
string(struct cursor *c)
{
	long u, low;

	if (c->p >= c->end || *c->p != '"')
		return false;
	c->p++;
	while (c->p < c->end) {
		unsigned char b = *c->p;

		if (b == '"') {
			c->p++;
			return true;
		}
		if (b < 0x20)
			return false;	/* raw control characters, NUL included */
		if (b >= 0x80) {
			if (!utf8(c))
				return false;
			continue;
		}
		c->p++;
		if (b != '\\')
			continue;
		if (c->p >= c->end)
			return false;
		b = *c->p++;
		if (b == 'u') {
			if ((u = hex4(c)) <= 0)
				return false;	/* malformed, or an escaped NUL */
			if (u >= 0xdc00 && u <= 0xdfff)
				return false;	/* a lone low surrogate */
			if (u >= 0xd800 && u <= 0xdbff) {
				if (!literal(c, "\\u") || (low = hex4(c)) < 0xdc00 || low > 0xdfff)
					return false;
			}
		} else if (b != '"' && b != '\\' && b != '/' && b != 'b' && b != 'f' &&
			   b != 'n' && b != 'r' && b != 't')
			return false;
	}
	return false;
}

/* A comma-separated list up to close, each item read by one(). */
static bool
list(struct cursor *c, unsigned char close, bool members)
{
	if (++c->depth > c->max_depth)
		return false;
	c->p++;
	skip_ws(c);
	if (c->p < c->end && *c->p == close) {
		c->p++;
		c->depth--;
		return true;
	}
	for (;;) {
		skip_ws(c);
		if (members) {
			if (!string(c))
				return false;
			skip_ws(c);
			if (c->p >= c->end || *c->p != ':')
				return false;
			c->p++;
		}
		if (!value(c))
			return false;
		skip_ws(c);
		if (c->p >= c->end)
			return false;
		if (*c->p == close) {
			c->p++;
			c->depth--;
			return true;
		}
		if (*c->p != ',')
			return false;
		c->p++;
	}
}

static bool
value(struct cursor *c)
{
	skip_ws(c);
	if (c->p >= c->end)
		return false;
	switch (*c->p) {
	case '{':
		return list(c, '}', true);
	case '[':
		return list(c, ']', false);
	case '"':
		return string(c);
	case 't':
		return literal(c, "true");
	case 'f':
		return literal(c, "false");
	case 'n':
		return literal(c, "null");
	default:
		return number(c);
	}
}

bool
jsoncheck_valid(const char *text, size_t len, int max_depth)
{
	struct cursor c = { (const unsigned char *)text, (const unsigned char *)text + len,
			    0, max_depth };

	if (!value(&c))
		return false;
	skip_ws(&c);
	return c.p == c.end;
}
