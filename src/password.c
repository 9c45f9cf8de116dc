/* password.c: Argon2id password hashing with libsodium, the password policy and e-mail checks. */
#include "password.h"

#include <sodium.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "util.h"

_Static_assert(PASSWORD_HASH_MAX == crypto_pwhash_STRBYTES, "hash string size");

/*
 * Nothing here logs: a password only ever goes to libsodium, and a reason
 * from password_policy() never quotes it.
 */

/* The cost asked for now, from the settings in force. */
static unsigned long long
opslimit(void)
{
	return (unsigned long long)cfg.pwhash_opslimit;
}

static size_t
memlimit(void)
{
	return (size_t)cfg.pwhash_memlimit_kib * 1024;
}

/*
 * Count the characters of s (len bytes) if it is valid UTF-8 (shortest
 * forms, no surrogates) without control characters (C0, DEL, C1).
 * Returns the count, -1 for invalid UTF-8, -2 for a control character.
 */
static long
utf8_chars(const unsigned char *s, size_t len)
{
	size_t i = 0;
	long chars = 0;

	while (i < len) {
		uint32_t cp;
		int n = util_utf8_next(s + i, len - i, &cp);

		if (n == 0)
			return -1;
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return -2;
		i += (size_t)n;
		chars++;
	}
	return chars;
}

const char *
password_policy(const char *password, const char *email)
{
	char pw_as_email[PASSWORD_EMAIL_MAX + 1], canon[PASSWORD_EMAIL_MAX + 1];
	const char *reason = NULL;
	size_t len = strlen(password);
	long chars;

	if (len > PASSWORD_MAX_BYTES) {
		reason = "the password must be at most 128 bytes long";
		goto out;
	}
	chars = utf8_chars((const unsigned char *)password, len);
	if (chars == -1) {
		reason = "the password must be valid UTF-8 text";
		goto out;
	}
	if (chars == -2) {
		reason = "the password must not contain control characters";
		goto out;
	}
	if (chars < PASSWORD_MIN_CHARS) {
		reason = "the password must be at least 10 characters long";
		goto out;
	}
	/* Both in canonical form: case and surrounding spaces do not count. */
	if (email != NULL &&
	    password_email_normalize(email, canon, sizeof(canon)) == 0 &&
	    password_email_normalize(password, pw_as_email, sizeof(pw_as_email)) == 0 &&
	    strcmp(canon, pw_as_email) == 0)
		reason = "the password must not be the e-mail address";
out:
	sodium_memzero(pw_as_email, sizeof(pw_as_email));
	return reason;
}

int
password_hash(const char *password, char out[PASSWORD_HASH_MAX])
{
	size_t len = strlen(password);

	out[0] = '\0';
	if (len > PASSWORD_MAX_BYTES || sodium_init() < 0)
		return -1;
	if (crypto_pwhash_str(out, password, len, opslimit(), memlimit()) != 0) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

/* Is hash a NUL-terminated string that fits a hash string's buffer? */
static int
hash_ok(const char *hash)
{
	return hash != NULL && memchr(hash, '\0', PASSWORD_HASH_MAX) != NULL;
}

int
password_verify(const char *hash, const char *password)
{
	size_t len = strlen(password);

	if (!hash_ok(hash) || len > PASSWORD_MAX_BYTES || sodium_init() < 0)
		return 0;
	return crypto_pwhash_str_verify(hash, password, len) == 0;
}

int
password_needs_rehash(const char *hash)
{
	if (!hash_ok(hash))
		return 1;
	/* 1 for another algorithm or cost, -1 for no hash string: both rehash. */
	return crypto_pwhash_str_needs_rehash(hash, opslimit(), memlimit()) != 0;
}

int
password_verify_dummy(const char *password)
{
	/* A hash of a random password, made again when the cost changes. */
	static char dummy[PASSWORD_HASH_MAX];
	static unsigned long long dummy_ops;
	static size_t dummy_mem;
	unsigned char secret[32];
	char hex[sizeof(secret) * 2 + 1];

	if (sodium_init() < 0)
		return 0;
	if (dummy[0] == '\0' || dummy_ops != opslimit() || dummy_mem != memlimit()) {
		randombytes_buf(secret, sizeof(secret));
		sodium_bin2hex(hex, sizeof(hex), secret, sizeof(secret));
		if (password_hash(hex, dummy) == 0) {
			dummy_ops = opslimit();
			dummy_mem = memlimit();
		}
		sodium_memzero(hex, sizeof(hex));
		sodium_memzero(secret, sizeof(secret));
	}
	if (dummy[0] != '\0')
		(void)password_verify(dummy, password);
	return 0;
}

/* May c appear in the local part of an address (dots aside)? */
static int
local_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* May c appear in a domain label (hyphens aside)? */
static int
label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Is s (len bytes) a local part: atoms of local_char joined by single dots? */
static int
local_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 64 || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] == '.' ? s[i + 1] == '.' : !local_char((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Is s (len bytes) a domain of two or more labels, the last not all digits? */
static int
domain_ok(const char *s, size_t len)
{
	size_t i, start = 0, labels = 0;
	int digits_only = 1;

	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (i == start || i - start > 63 || s[start] == '-' || s[i - 1] == '-')
				return 0;
			labels++;
			if (i == len)
				break;
			start = i + 1;
			digits_only = 1;
			continue;
		}
		if (s[i] != '-' && !label_char((unsigned char)s[i]))
			return 0;
		if (s[i] < '0' || s[i] > '9')
			digits_only = 0;
	}
	return labels >= 2 && !digits_only;
}

int
password_email_normalize(const char *in, char *out, size_t outlen)
{
	const char *start = in, *end, *at;
	size_t len, i;

	if (outlen > 0)
		out[0] = '\0';
	while (*start == ' ' || *start == '\t' || *start == '\r' || *start == '\n')
		start++;
	/* Bounded scan: an address longer than the limit is refused unread. */
	len = strnlen(start, PASSWORD_EMAIL_MAX + 64);
	end = start + len;
	while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
			       end[-1] == '\n'))
		end--;
	len = (size_t)(end - start);
	if (len == 0 || len > PASSWORD_EMAIL_MAX || len >= outlen)
		return -1;
	at = memchr(start, '@', len);
	if (at == NULL || memchr(at + 1, '@', (size_t)(end - at - 1)) != NULL ||
	    !local_ok(start, (size_t)(at - start)) ||
	    !domain_ok(at + 1, (size_t)(end - at - 1)))
		return -1;
	for (i = 0; i < len; i++)
		out[i] = (start[i] >= 'A' && start[i] <= 'Z') ? (char)(start[i] - 'A' + 'a') : start[i];
	out[len] = '\0';
	return 0;
}
