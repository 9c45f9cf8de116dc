/* jwt.h: OpenID Connect access tokens (JWT) checked against a JWKS file. */
#ifndef BOXOFFICE_JWT_H
#define BOXOFFICE_JWT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define JWT_MAX 8192		/* bytes of a compact token */
#define JWT_HEADER_MAX 1024	/* bytes of its decoded header */
#define JWT_PAYLOAD_MAX 6144	/* bytes of its decoded payload */
#define JWT_JWKS_MAX 131072	/* bytes of a JWKS file */
#define JWT_KEYS_MAX 32		/* keys in a JWKS file, usable or not */
#define JWT_KID_MAX 128		/* a key id and its NUL */
#define JWT_SUB_MAX 256		/* a subject (OpenID: up to 255 ASCII) and its NUL */
#define JWT_AUD_MAX 16		/* audiences in an "aud" array */

/* What a token must say, from the settings (auth.jwt_*). */
struct jwt_expect {
	const char *issuer;	/* "iss" must equal it */
	const char *audience;	/* "aud" must be it or contain it */
	int64_t leeway;		/* seconds of clock difference allowed */
};

enum jwt_err {
	JWT_OK = 0,
	JWT_UNCONFIGURED,	/* no keys loaded, or no issuer or audience set */
	JWT_MALFORMED,		/* not a compact JWS of JSON within the bounds */
	JWT_UNKNOWN_KEY,	/* no "kid", or none of the loaded keys has it */
	JWT_BAD_ALG,		/* header "alg" is not the algorithm of that key */
	JWT_BAD_SIGNATURE,	/* forged or altered */
	JWT_BAD_CLAIMS,		/* "exp" missing, or a claim of the wrong type */
	JWT_EXPIRED,		/* past "exp" (and the leeway) */
	JWT_NOT_YET_VALID,	/* before "nbf", or "iat" in the future */
	JWT_BAD_ISSUER,		/* "iss" is not the configured issuer */
	JWT_BAD_AUDIENCE,	/* the configured audience is not in "aud" */
	JWT_BAD_SUBJECT		/* "sub" missing, too long or of odd characters */
};

/* A set of verification keys, read from a JWKS. */
struct jwt_keys;

/*
 * Read the JWKS (RFC 7517) in text (len bytes) or in the file at path.
 * Keys of kty RSA (RS256, 2048 to 8192 bits), EC P-256 (ES256) and OKP
 * Ed25519 (EdDSA) are kept; keys for encryption ("use" other than "sig"),
 * of other curves, types or algorithms are skipped. Every kept key needs
 * a unique "kid". Returns a new set (free with jwt_keys_free()), or NULL
 * with a message in err if the file cannot be read, is not a JWKS, has a
 * broken key or no usable key at all.
 */
struct jwt_keys *jwt_keys_parse(const char *text, size_t len, char *err, size_t errlen);
struct jwt_keys *jwt_keys_read(const char *path, char *err, size_t errlen);
void jwt_keys_free(struct jwt_keys *k);

/* Put k in force (it is owned from then on) and free the set it replaces. */
void jwt_keys_use(struct jwt_keys *k);

/*
 * jwt_keys_read() and jwt_keys_use() in one: returns 0, or -1 with err
 * filled, the keys in force staying as they were.
 */
int jwt_load(const char *path, char *err, size_t errlen);

/* Drop the keys in force: every token is then JWT_UNCONFIGURED. */
void jwt_free(void);

/* How many keys are in force. */
int jwt_key_count(void);

/*
 * Verify token (a compact JWS, without "Bearer") at time now against the
 * keys in force and want. The key is found by the header's "kid"; the
 * algorithm is the key's own, and a header "alg" naming another one is
 * refused, as is any "crit" header; "jwk", "jku", "x5u" and "x5c" headers
 * are ignored. Only then are the claims read: "iss", "aud", "exp"
 * (required), "nbf" and "iat" (if present), and "sub". On JWT_OK sub holds
 * the subject (1 to 255 printable ASCII characters, no spaces); otherwise
 * sub is "".
 */
enum jwt_err jwt_verify(const char *token, time_t now, const struct jwt_expect *want,
			char sub[JWT_SUB_MAX]);

/* Short client-facing description of err. */
const char *jwt_message(enum jwt_err err);

#endif
