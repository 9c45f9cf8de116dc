/* valid.h: the one table of typed, bounded validators for request fields. */
#ifndef BOXOFFICE_VALID_H
#define BOXOFFICE_VALID_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#define UUID_STR 37		/* 36 characters and the NUL */
#define IDEM_KEY_MAX 128
#define EMAIL_MAX 254		/* bytes of an e-mail address (password.h) */
#define RESERVATION_IDS_MAX 100	/* ids in one payment: the upper bound of
				   booking.max_holds_per_user */
#define TICKET_CODE_LEN 20	/* characters of a door code (sql/010_tickets.sql) */
#define PASSWORD_FIELD_MAX 1024	/* bytes of a password as sent; the policy
				   allows 128, sign-in takes what it gets */

/* Every field a request may carry, whatever its source (body, path, header). */
enum field {
	F_CONCERT_ID,
	F_SCHEDULE_ID,
	F_SEAT_NUMBER,
	F_USER_ID,
	F_RESERVATION_ID,
	F_RESERVATION_IDS,	/* distinct reservation ids, in the order sent */
	F_AMOUNT,
	F_IDEM_KEY,
	F_EMAIL,		/* canonical form (password_email_normalize()) */
	F_PASSWORD,		/* never logged or echoed; wiped after the request */
	F_TICKET_ID,
	F_TICKET_CODE,		/* a door code, canonical (valid_ticket_code()) */
	F__MAX
};

/* Validated values: a handler reads only these, never raw strings. */
struct fields {
	int64_t concert_id;
	int64_t schedule_id;
	int64_t seat_number;
	int64_t amount;
	char user_id[UUID_STR];		/* lower-case canonical form */
	char reservation_id[UUID_STR];
	char reservation_ids[RESERVATION_IDS_MAX][UUID_STR];	/* canonical */
	size_t n_reservation_ids;
	char idem_key[IDEM_KEY_MAX + 1];
	char email[EMAIL_MAX + 1];
	char password[PASSWORD_FIELD_MAX + 1];
	char ticket_id[UUID_STR];
	char ticket_code[TICKET_CODE_LEN + 1];
	uint32_t have;			/* bit (1 << enum field) per field set */
};
/* Sets of fields are uint32_t bitmasks (have, and struct route's). */
_Static_assert(F__MAX <= sizeof(((struct fields *)0)->have) * 8,
	       "one bit per field: widen the field masks");

#define FIELD_HAVE(f, id) (((f)->have & (1u << (id))) != 0)

/* Why a value was refused; valid_message() turns it into words. */
enum valid_err {
	VALID_OK = 0,
	VALID_TYPE,		/* wrong JSON type */
	VALID_RANGE,		/* integer outside its bounds */
	VALID_FORMAT,		/* string not of the required form */
	VALID_LENGTH,		/* string too long or empty; list with too few
				   or too many members */
	VALID_DUPLICATE		/* list with a member twice */
};

/* Look a field up by its wire name ("concertId"); -1 if there is none. */
int valid_lookup(const char *name);

/* The wire name of a field. */
const char *valid_name(enum field id);

/*
 * Validate a JSON value, or a raw string (path segment or header; pass
 * json NULL and str non-NULL), for field id and store it in *out.
 * Returns VALID_OK or the reason; *out is untouched on failure.
 */
enum valid_err valid_field(enum field id, struct json_object *json,
			   const char *str, struct fields *out);

/* A sentence describing err for field id, for the client. */
const char *valid_message(enum valid_err err);

/* The bounds of an integer field (a list's number of members), for error
 * messages and documentation. */
void valid_bounds(enum field id, int64_t *min, int64_t *max);

/* Primitive validators, shared with token parsing and the operator CLI. */
int valid_uuid(const char *s, char out[UUID_STR]);
int valid_decimal(const char *s, int64_t min, int64_t max, int64_t *out);

/*
 * A ticket's door code: TICKET_CODE_LEN characters of Crockford's base32,
 * read as that alphabet says (case ignored, I and L are 1, O is 0, hyphens
 * skipped) and stored in its canonical upper-case form. Returns 1 if valid.
 */
int valid_ticket_code(const char *s, char out[TICKET_CODE_LEN + 1]);

/*
 * Header values of the HTTP layer (RFC 9110), as the FastCGI environment
 * passes them (the front end has cut the field's surrounding white space;
 * more of it is allowed).
 *
 * valid_content_length(): 1*DIGIT, leading zeros allowed ("012" is 12, as
 * for nginx); no sign, space, exponent or other character. A value too
 * large for int64_t saturates to INT64_MAX, so that the caller's size
 * limit refuses it without overflow. Returns 1 and stores the value in
 * *out if s is well formed, else 0.
 *
 * valid_media_type(): type "/" subtype followed by nothing but parameters,
 * each `OWS ";" OWS [ token "=" ( token / quoted-string ) ]`; returns 1
 * if s is of that form and its type/subtype is want (compared without
 * regard to case), else 0. Parameters are checked for form only.
 */
int valid_content_length(const char *s, int64_t *out);
int valid_media_type(const char *s, const char *want);

#endif
