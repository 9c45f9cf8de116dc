/* valid.c: typed, bounded validators for every request field (after kcgi's kvalid). */
#include "valid.h"


#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "password.h"

enum vtype { V_INT, V_UUID, V_UUID_LIST, V_TOKEN_STR, V_EMAIL, V_SECRET, V_TICKET_CODE };

struct field_spec {
	const char *name;
	enum vtype type;
	int64_t min, max;	/* V_INT bounds; V_TOKEN_STR length bounds;
				   V_UUID_LIST member count bounds */
	size_t off;		/* where the value goes in struct fields */
	size_t count_off;	/* V_UUID_LIST: where its member count goes */
};

#define FOFF(f) offsetof(struct fields, f)
#define I32 2147483647LL

/*
 * Bounds are the domain's, not the machine's: ids fit the database's bigint
 * and integer columns, and amounts stay far below 2^63 so sums cannot wrap.
 * The charge limit from the configuration is checked on top by the domain.
 */
static const struct field_spec specs[F__MAX] = {
	[F_CONCERT_ID] = { "concertId", V_INT, 1, I32, FOFF(concert_id) },
	[F_SCHEDULE_ID] = { "scheduleId", V_INT, 1, I32, FOFF(schedule_id) },
	[F_SEAT_NUMBER] = { "seatNumber", V_INT, 1, 100000, FOFF(seat_number) },
	[F_USER_ID] = { "userId", V_UUID, 0, 0, FOFF(user_id) },
	[F_RESERVATION_ID] = { "reservationId", V_UUID, 0, 0, FOFF(reservation_id) },
	[F_RESERVATION_IDS] = { "reservationIds", V_UUID_LIST, 1, RESERVATION_IDS_MAX,
				FOFF(reservation_ids), FOFF(n_reservation_ids) },
	[F_AMOUNT] = { "amount", V_INT, 1, 1000000000000LL, FOFF(amount) },
	[F_IDEM_KEY] = { "Idempotency-Key", V_TOKEN_STR, 1, IDEM_KEY_MAX, FOFF(idem_key) },
	[F_EMAIL] = { "email", V_EMAIL, 1, EMAIL_MAX, FOFF(email) },
	[F_PASSWORD] = { "password", V_SECRET, 1, PASSWORD_FIELD_MAX, FOFF(password) },
	[F_TICKET_ID] = { "ticketId", V_UUID, 0, 0, FOFF(ticket_id) },
	[F_TICKET_CODE] = { "code", V_TICKET_CODE, 0, 0, FOFF(ticket_code) },
};

int
valid_lookup(const char *name)
{
	int i;

	for (i = 0; i < F__MAX; i++)
		if (strcmp(specs[i].name, name) == 0)
			return i;
	return -1;
}

const char *
valid_name(enum field id)
{
	return specs[id].name;
}

void
valid_bounds(enum field id, int64_t *min, int64_t *max)
{
	*min = specs[id].min;
	*max = specs[id].max;
}

/*
 * Accept only the canonical 8-4-4-4-12 hexadecimal form and store it in
 * lower case, so that one user has exactly one spelling everywhere.
 * Returns 1 if valid.
 */
int
valid_uuid(const char *s, char out[UUID_STR])
{
	char tmp[UUID_STR];
	size_t i;

	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
			tmp[i] = '-';
		} else if (isxdigit((unsigned char)s[i])) {
			tmp[i] = (char)tolower((unsigned char)s[i]);
		} else
			return 0;
	}
	tmp[36] = '\0';
	memcpy(out, tmp, UUID_STR);
	return 1;
}

int
valid_ticket_code(const char *s, char out[TICKET_CODE_LEN + 1])
{
	static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	char tmp[TICKET_CODE_LEN + 1];
	size_t n = 0;
	int c;

	for (; *s != '\0'; s++) {
		if (*s == '-')
			continue;
		c = toupper((unsigned char)*s);
		if (c == 'I' || c == 'L')
			c = '1';
		else if (c == 'O')
			c = '0';
		if (c == '\0' || strchr(alphabet, c) == NULL || n == TICKET_CODE_LEN)
			return 0;
		tmp[n++] = (char)c;
	}
	if (n != TICKET_CODE_LEN)
		return 0;
	tmp[n] = '\0';
	memcpy(out, tmp, sizeof(tmp));
	return 1;
}

/*
 * A plain decimal: digits only (no sign, space or leading zero), at most
 * 18 digits so it cannot overflow, within [min, max]. Returns 1 if valid.
 */
int
valid_decimal(const char *s, int64_t min, int64_t max, int64_t *out)
{
	int64_t v = 0;
	size_t n = strlen(s), i;

	if (n == 0 || n > 18 || (s[0] == '0' && n > 1))
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	if (v < min || v > max)
		return 0;
	*out = v;
	return 1;
}

int
valid_content_length(const char *s, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	if (*s == '\0')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		/* Saturate rather than wrap; every digit is still checked. */
		if (v > (INT64_MAX - (s[i] - '0')) / 10)
			v = INT64_MAX;
		else
			v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 1;
}

/*
 * The characters of RFC 9110's grammar that media types are made of, one
 * class bit each; every other byte (controls, DEL, NUL) is in none.
 */
enum { C_TCHAR = 1, C_QDTEXT = 2, C_QPAIR = 4, C_OWS = 8 };
static unsigned char
char_class(unsigned char c)
{
	unsigned char cls = 0;

	/* tchar: ALPHA / DIGIT / "!#$%&'*+-.^_`|~" */
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL))
		cls |= C_TCHAR;
	/* quoted-pair: "\" ( HTAB / SP / VCHAR / obs-text ) */
	if (c == '\t' || (c >= 0x20 && c != 0x7f))
		cls |= C_QPAIR;
	/* qdtext: the same without DQUOTE and backslash */
	if ((cls & C_QPAIR) && c != '"' && c != '\\')
		cls |= C_QDTEXT;
	if (c == ' ' || c == '\t')
		cls |= C_OWS;
	return cls;
}

/* The length of the run of characters of class cls at the start of s. */
static size_t
span(const char *s, unsigned char cls)
{
	size_t n = 0;

	while (s[n] != '\0' && (char_class((unsigned char)s[n]) & cls))
		n++;
	return n;
}

int
valid_media_type(const char *s, const char *want)
{
	const char *p = s + span(s, C_OWS);
	size_t n, sub;

	/* type "/" subtype, the whole of it compared with want */
	n = span(p, C_TCHAR);
	if (n == 0 || p[n] != '/')
		return 0;
	sub = span(p + n + 1, C_TCHAR);
	if (sub == 0)
		return 0;
	n += 1 + sub;
	if (n != strlen(want) || strncasecmp(p, want, n) != 0)
		return 0;
	p += n;

	/* parameters = *( OWS ";" OWS [ parameter ] ) */
	for (;;) {
		p += span(p, C_OWS);
		if (*p == '\0')
			return 1;
		if (*p++ != ';')
			return 0;
		p += span(p, C_OWS);
		if (*p == ';' || *p == '\0')
			continue;		/* an empty parameter */
		n = span(p, C_TCHAR);
		if (n == 0 || p[n] != '=')
			return 0;
		p += n + 1;
		if (*p == '"') {
			for (p++; *p != '"'; p++) {
				if (*p == '\\' && (char_class((unsigned char)p[1]) & C_QPAIR))
					p++;
				else if (!(char_class((unsigned char)*p) & C_QDTEXT))
					return 0;	/* also the NUL of an unclosed string */
			}
			p++;
		} else {
			n = span(p, C_TCHAR);
			if (n == 0)
				return 0;
			p += n;
		}
	}
}

/* Printable ASCII without spaces: what a header token may be. */
static bool
token_chars(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			return false;
	return true;
}

/*
 * A JSON array of min to max distinct UUIDs (sp's bounds), stored in
 * canonical form in the order sent, so that two spellings of one id are
 * one duplicate. Returns VALID_OK or the reason; *out is untouched on
 * failure.
 */
static enum valid_err
uuid_list(const struct field_spec *sp, struct json_object *json, struct fields *out)
{
	char (*dst)[UUID_STR] = (char (*)[UUID_STR])((char *)out + sp->off);
	char ids[RESERVATION_IDS_MAX][UUID_STR];
	struct json_object *m;
	const char *s;
	size_t n, i, j;

	if (json == NULL || !json_object_is_type(json, json_type_array))
		return VALID_TYPE;
	n = json_object_array_length(json);
	if ((int64_t)n < sp->min || (int64_t)n > sp->max || n > RESERVATION_IDS_MAX)
		return VALID_LENGTH;
	for (i = 0; i < n; i++) {
		m = json_object_array_get_idx(json, i);
		if (!json_object_is_type(m, json_type_string))
			return VALID_TYPE;
		s = json_object_get_string(m);
		if ((size_t)json_object_get_string_len(m) != strlen(s) || !valid_uuid(s, ids[i]))
			return VALID_FORMAT;
		for (j = 0; j < i; j++)
			if (strcmp(ids[j], ids[i]) == 0)
				return VALID_DUPLICATE;
	}
	memcpy(dst, ids, n * UUID_STR);
	*(size_t *)((char *)out + sp->count_off) = n;
	return VALID_OK;
}

enum valid_err
valid_field(enum field id, struct json_object *json, const char *str,
	    struct fields *out)
{
	const struct field_spec *sp = &specs[id];
	char *dst = (char *)out + sp->off, email[EMAIL_MAX + 1];
	enum valid_err e;
	int64_t v = 0;
	size_t len;

	if (sp->type == V_UUID_LIST) {
		/* Only a JSON body carries a list. */
		if ((e = uuid_list(sp, json, out)) == VALID_OK)
			out->have |= 1u << id;
		return e;
	}
	if (json != NULL) {
		if (sp->type == V_INT) {
			/* json-c saturates huge numbers; the bounds reject them. */
			if (!json_object_is_type(json, json_type_int))
				return VALID_TYPE;
			v = json_object_get_int64(json);
			if (v < sp->min || v > sp->max)
				return VALID_RANGE;
			*(int64_t *)dst = v;
			out->have |= 1u << id;
			return VALID_OK;
		}
		if (!json_object_is_type(json, json_type_string))
			return VALID_TYPE;
		/* A string with an embedded NUL is never valid. */
		if ((size_t)json_object_get_string_len(json) !=
		    strlen(json_object_get_string(json)))
			return VALID_FORMAT;
		str = json_object_get_string(json);
	}
	if (str == NULL)
		return VALID_TYPE;

	switch (sp->type) {
	case V_INT:
		if (!valid_decimal(str, sp->min, sp->max, &v))
			return VALID_FORMAT;
		*(int64_t *)dst = v;
		break;
	case V_UUID:
		if (!valid_uuid(str, dst))
			return VALID_FORMAT;
		break;
	case V_UUID_LIST:	/* answered above */
		return VALID_TYPE;
	case V_TOKEN_STR:
		len = strlen(str);
		if ((int64_t)len < sp->min || (int64_t)len > sp->max)
			return VALID_LENGTH;
		if (!token_chars(str))
			return VALID_FORMAT;
		memcpy(dst, str, len + 1);
		break;
	case V_EMAIL:
		/* Stored canonical, so that one mailbox has one spelling. */
		if (strlen(str) > 2 * (size_t)sp->max)
			return VALID_LENGTH;
		if (password_email_normalize(str, email, sizeof(email)) != 0)
			return VALID_FORMAT;
		memcpy(dst, email, strlen(email) + 1);
		break;
	case V_TICKET_CODE:
		if (!valid_ticket_code(str, dst))
			return VALID_FORMAT;
		break;
	case V_SECRET:
		/* Any text: the password policy judges it, and only at sign-up. */
		len = strlen(str);
		if ((int64_t)len < sp->min || (int64_t)len > sp->max)
			return VALID_LENGTH;
		memcpy(dst, str, len + 1);
		break;
	}
	out->have |= 1u << id;
	return VALID_OK;
}

const char *
valid_message(enum valid_err err)
{
	switch (err) {
	case VALID_OK:
		return "is valid";
	case VALID_TYPE:
		return "has the wrong type";
	case VALID_RANGE:
		return "is out of range";
	case VALID_FORMAT:
		return "is not well formed";
	case VALID_LENGTH:
		return "has a bad length";
	case VALID_DUPLICATE:
		return "lists a value twice";
	}
	return "is invalid";
}
