/* password.h: password hashing (Argon2id), the password policy and e-mail addresses. */
#ifndef BOXOFFICE_PASSWORD_H
#define BOXOFFICE_PASSWORD_H

#include <stddef.h>

#define PASSWORD_MIN_CHARS 10	/* Unicode characters */
#define PASSWORD_MAX_BYTES 128	/* UTF-8 bytes */
#define PASSWORD_HASH_MAX 128	/* crypto_pwhash_STRBYTES: a hash string and its NUL */
#define PASSWORD_EMAIL_MAX 254	/* bytes of an address (RFC 5321 path limit) */

/*
 * Is password acceptable for the account of email (which may be NULL)?
 * Returns NULL if it is, else a short reason to show the user: at most
 * PASSWORD_MAX_BYTES bytes of valid UTF-8 without control characters, at
 * least PASSWORD_MIN_CHARS characters, and not the e-mail address itself
 * (compared as password_email_normalize() leaves both). The password is
 * never logged nor copied.
 */
const char *password_policy(const char *password, const char *email);

/*
 * Hash password with Argon2id at the cost in cfg (auth.pwhash_opslimit,
 * auth.pwhash_memlimit_kib) into out, a NUL-terminated string that names
 * its algorithm, cost and salt. Returns 0, or -1 if the password is over
 * PASSWORD_MAX_BYTES or the memory could not be had.
 */
int password_hash(const char *password, char out[PASSWORD_HASH_MAX]);

/*
 * Does password match hash (from password_hash(), with any cost)? Returns
 * 1 if it does, 0 if not or if hash is not a hash string.
 */
int password_verify(const char *hash, const char *password);

/*
 * Should hash be replaced by a new password_hash() of the same password
 * (right after a successful password_verify())? Returns 1 if it was made
 * with another algorithm or cost than cfg asks for now, or is no hash
 * string at all; 0 if it is current.
 */
int password_needs_rehash(const char *hash);

/*
 * Spend the time of a password_verify() of password against a hash at the
 * current cost, for a sign-in whose e-mail address has no account, so that
 * the answer's timing does not tell which addresses have one. Always
 * returns 0 ("no match"). The first call after a cost change also makes
 * the dummy hash it verifies against.
 */
int password_verify_dummy(const char *password);

/*
 * The canonical form of an e-mail address: in without surrounding white
 * space, in lower case, into out (outlen bytes). The address must be
 * printable ASCII of at most PASSWORD_EMAIL_MAX bytes, one "@" between a
 * local part of up to 64 bytes (letters, digits, and !#$%&'*+-/=?^_`{|}~
 * between single dots) and a domain of two or more dot-separated labels
 * (letters, digits, inner hyphens; up to 63 bytes each; the last not all
 * digits). Returns 0, or -1 if in is no such address (out is then "").
 */
int password_email_normalize(const char *in, char *out, size_t outlen);

#endif
