/* token.c: HMAC-SHA256 token signing and verification with libsodium. */
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define KEY_MIN 32
#define KEY_MAX 1024
#define MAC_B64 44	/* base64url of 32 bytes without padding, and a NUL */

/*
 * A key is kept as the HMAC state after absorbing it: each MAC starts from
 * a copy, which spares the two SHA-256 blocks of key padding per token
 * signed or checked. len is 0 for no key.
 */
struct key {
	crypto_auth_hmacsha256_state keyed;
	size_t len;
};

static struct key keys[2];	/* [0] signs and verifies, [1] only verifies */

/* Read a whole key file into k. Returns 0 or -1 with err filled. */
static int
read_key(const char *path, struct key *k, char *err, size_t errlen)
{
	unsigned char buf[KEY_MAX + 1];
	ssize_t n;
	int fd = -1, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	n = read(fd, buf, sizeof(buf));
	if (n < KEY_MIN || n > KEY_MAX) {
		snprintf(err, errlen, "%s: a key must be %d to %d bytes", path, KEY_MIN, KEY_MAX);
		goto out;
	}
	crypto_auth_hmacsha256_init(&k->keyed, buf, (size_t)n);
	k->len = (size_t)n;
	rc = 0;
out:
	sodium_memzero(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return rc;
}

int
token_load_keys(const char *file, const char *old_file, char *err, size_t errlen)
{
	struct key fresh[2];
	int rc = -1;

	memset(fresh, 0, sizeof(fresh));
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		goto out;
	}
	if (read_key(file, &fresh[0], err, errlen) != 0)
		goto out;
	if (old_file != NULL && *old_file != '\0' &&
	    read_key(old_file, &fresh[1], err, errlen) != 0)
		goto out;
	memcpy(keys, fresh, sizeof(keys));
	rc = 0;
out:
	sodium_memzero(fresh, sizeof(fresh));
	return rc;
}

static void
mac(const struct key *k, const char *msg, size_t len,
    unsigned char out[crypto_auth_hmacsha256_BYTES])
{
	crypto_auth_hmacsha256_state st = k->keyed;

	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, len);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

/* Is s a session id: exactly 32 lower-case hex digits? */
static int
session_id_ok(const char *s)
{
	size_t i;

	for (i = 0; i < TOKEN_SESSION_STR - 1; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[i] == '\0';
}

/*
 * The token is its claims in plain text, then a dot and the MAC in
 * base64url: "v1.a.<user>.<concert>.<number>.<iat>.<exp>.<mac>". A session
 * token has its session id where the others have concert and number:
 * "v1.s.<user>.<session>.<iat>.<exp>.<mac>". Claims are not secret; the
 * MAC makes them unforgeable.
 */
size_t
token_sign(const struct token *t, char *out, size_t outlen)
{
	unsigned char m[crypto_auth_hmacsha256_BYTES];
	int n;

	if (keys[0].len == 0)
		return 0;
	if (t->kind == TOKEN_SESSION) {
		if (!session_id_ok(t->session))
			return 0;
		n = snprintf(out, outlen, "v1.%c.%s.%s.%lld.%lld.", t->kind, t->user,
			     t->session, (long long)t->iat, (long long)t->exp);
	} else
		n = snprintf(out, outlen, "v1.%c.%s.%lld.%lld.%lld.%lld.", t->kind, t->user,
			     (long long)t->concert, (long long)t->number, (long long)t->iat,
			     (long long)t->exp);
	if (n < 0 || (size_t)n + MAC_B64 > outlen)
		return 0;
	mac(&keys[0], out, (size_t)n - 1, m);
	sodium_bin2base64(out + n, outlen - (size_t)n, m, sizeof(m),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return strlen(out);
}

int
token_session_new(struct token *t, const char *user, time_t now, int64_t ttl)
{
	unsigned char id[(TOKEN_SESSION_STR - 1) / 2];

	memset(t, 0, sizeof(*t));
	if (ttl <= 0 || now < 0 || !valid_uuid(user, t->user) || sodium_init() < 0)
		return -1;
	randombytes_buf(id, sizeof(id));
	sodium_bin2hex(t->session, sizeof(t->session), id, sizeof(id));
	t->kind = TOKEN_SESSION;
	t->iat = (int64_t)now;
	t->exp = (int64_t)now + ttl;
	return 0;
}

/* Split s at dots into at most max fields (modifies s). Returns the count. */
static int
split(char *s, char **f, int max)
{
	int n = 0;

	f[n++] = s;
	for (; *s != '\0'; s++)
		if (*s == '.') {
			if (n == max)
				return max + 1;
			*s = '\0';
			f[n++] = s + 1;
		}
	return n;
}

const char *
token_text(const char *header)
{
	/* "Bearer" with nothing after it (proxies trim the space) is no token. */
	if (strncasecmp(header, "Bearer", 6) == 0 && (header[6] == ' ' || header[6] == '\0'))
		header += 6;
	while (*header == ' ')
		header++;
	return header;
}

enum token_err
token_verify(const char *header, time_t now, struct token *t)
{
	return token_verify_kinds(header, now, "wau", t);
}

enum token_err
token_verify_kinds(const char *header, time_t now, const char *kinds, struct token *t)
{
	unsigned char want[crypto_auth_hmacsha256_BYTES], got[crypto_auth_hmacsha256_BYTES];
	char buf[TOKEN_MAX], *f[9];
	const char *tok = header;
	size_t len, maclen, signed_len;
	int i, nf, ok = 0;

	if (keys[0].len == 0)
		return TOKEN_NO_KEY;
	if (tok == NULL || *tok == '\0')
		return TOKEN_MISSING;
	tok = token_text(tok);
	len = strlen(tok);
	if (len == 0)
		return TOKEN_MISSING;
	if (len >= sizeof(buf))
		return TOKEN_MALFORMED;

	/* The signed part ends at the last dot. */
	memcpy(buf, tok, len + 1);
	{
		char *dot = strrchr(buf, '.');

		if (dot == NULL)
			return TOKEN_MALFORMED;
		signed_len = (size_t)(dot - buf);
		if (sodium_base642bin(got, sizeof(got), dot + 1, strlen(dot + 1), NULL,
				      &maclen, NULL,
				      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
		    maclen != sizeof(got))
			return TOKEN_MALFORMED;
	}
	for (i = 0; i < 2; i++) {
		if (keys[i].len == 0)
			continue;
		mac(&keys[i], tok, signed_len, want);
		ok |= sodium_memcmp(want, got, sizeof(want)) == 0;
	}
	if (!ok)
		return TOKEN_BAD_SIGNATURE;

	/* Genuine: now the claims, still parsed strictly. */
	buf[signed_len] = '\0';
	memset(t, 0, sizeof(*t));
	nf = split(buf, f, 7);
	if (nf < 2 || strcmp(f[0], "v1") != 0 || strlen(f[1]) != 1)
		return TOKEN_MALFORMED;
	if (f[1][0] == TOKEN_SESSION) {
		if (nf != 6 || !valid_uuid(f[2], t->user) || !session_id_ok(f[3]) ||
		    !valid_decimal(f[4], 0, INT64_MAX / 2, &t->iat) ||
		    !valid_decimal(f[5], 0, INT64_MAX / 2, &t->exp))
			return TOKEN_MALFORMED;
		memcpy(t->session, f[3], TOKEN_SESSION_STR);
	} else if (nf != 7 || strchr("waud", f[1][0]) == NULL || !valid_uuid(f[2], t->user) ||
		   !valid_decimal(f[3], 0, INT64_MAX / 2, &t->concert) ||
		   !valid_decimal(f[4], 0, INT64_MAX / 2, &t->number) ||
		   !valid_decimal(f[5], 0, INT64_MAX / 2, &t->iat) ||
		   !valid_decimal(f[6], 0, INT64_MAX / 2, &t->exp))
		return TOKEN_MALFORMED;
	t->kind = f[1][0];
	if (strchr(kinds, t->kind) == NULL)
		return TOKEN_WRONG_KIND;
	if ((int64_t)now >= t->exp)
		return TOKEN_EXPIRED;
	return TOKEN_OK;
}

const char *
token_message(enum token_err err)
{
	switch (err) {
	case TOKEN_OK:
		return "token is valid";
	case TOKEN_MISSING:
		return "an Authorization: Bearer token is required";
	case TOKEN_MALFORMED:
		return "the token is malformed";
	case TOKEN_BAD_SIGNATURE:
		return "the token signature is not valid";
	case TOKEN_EXPIRED:
		return "the token has expired";
	case TOKEN_NO_KEY:
		return "tokens cannot be checked: no signing key is loaded";
	case TOKEN_WRONG_KIND:
		return "this kind of token is not accepted here";
	}
	return "the token is not valid";
}
