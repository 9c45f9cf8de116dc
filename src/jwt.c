/* jwt.c: verify OpenID Connect access tokens (RS256, ES256, EdDSA JWTs) against a JWKS. */
#include "jwt.h"

#include <errno.h>
#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsoncheck.h"

/*
 * Debian's libjwt (1.10) cannot read a JWKS, so the checks are written
 * here on top of libraries that do the hard parts: OpenSSL's libcrypto for
 * keys and signatures, json-c (after jsoncheck's strict grammar check) for
 * JSON, libsodium for base64url. There is no cryptography of our own.
 *
 * The one rule that matters: the algorithm comes from the key, never from
 * the token. A key is RS256, ES256 or EdDSA by its own type and curve;
 * the header's "alg" must name that algorithm or the token is refused, so
 * "none", HS256 with a public key as the secret, or an RSA header on an EC
 * key get nowhere.
 */

#define JSON_DEPTH 8
#define SIG_MAX 1024		/* an RSA-8192 signature */
#define RSA_MIN_BITS 2048
#define RSA_MAX_BYTES 1024
#define NUMERIC_DATE_MAX 253402300799LL	/* 9999-12-31T23:59:59Z */

enum alg { ALG_RS256, ALG_ES256, ALG_EDDSA };

static const char *const alg_name[] = { "RS256", "ES256", "EdDSA" };

struct jwk {
	char kid[JWT_KID_MAX];
	enum alg alg;
	EVP_PKEY *pkey;
};

struct jwt_keys {
	int n;
	struct jwk k[JWT_KEYS_MAX];
};

static struct jwt_keys *in_force;	/* NULL: no keys, JWT sign-in is off */

/* base64url without padding of s (len bytes) into out. Returns 0 or -1. */
static int
b64url(const char *s, size_t len, unsigned char *out, size_t max, size_t *outlen)
{
	/* libsodium refuses padding, white space and non-zero spare bits. */
	return sodium_base642bin(out, max, s, len, NULL, outlen, NULL,
				 sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 ? 0 : -1;
}

/*
 * Parse text (len bytes) as one JSON object, by the strict grammar first
 * (json-c alone takes more than JSON). Returns it (the caller puts it) or
 * NULL.
 */
static struct json_object *
parse_object(const char *text, size_t len)
{
	struct json_tokener *tok = NULL;
	struct json_object *o = NULL;

	if (len > INT32_MAX || !jsoncheck_valid(text, len, JSON_DEPTH))
		goto out;
	if ((tok = json_tokener_new_ex(JSON_DEPTH)) == NULL)
		goto out;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (o != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
			  !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
out:
	if (tok != NULL)
		json_tokener_free(tok);
	return o;
}

/* The string member key of o, or NULL if it is absent or not a string. */
static const char *
get_string(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/*
 * The base64url member key of o decoded into out: exactly want bytes if
 * want is not 0, else 1 to max. Returns 0 or -1.
 */
static int
get_bytes(struct json_object *o, const char *key, unsigned char *out, size_t max,
	  size_t want, size_t *outlen)
{
	const char *s = get_string(o, key);

	if (s == NULL || *s == '\0' ||
	    b64url(s, strlen(s), out, want != 0 ? want : max, outlen) != 0)
		return -1;
	return want != 0 && *outlen != want ? -1 : 0;
}

/*
 * A public key of type name ("RSA", "EC", "ED25519") from the parameters
 * in bld. Returns it or NULL.
 */
static EVP_PKEY *
key_from(const char *name, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL, *check = NULL;
	EVP_PKEY *pkey = NULL;

	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, name, NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	/* A point off the curve, an even RSA exponent...: not a key. */
	if ((check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL ||
	    EVP_PKEY_public_check(check) != 1) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
out:
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

/* RSA from "n" and "e". Returns the key or NULL with err filled. */
static EVP_PKEY *
rsa_key(struct json_object *o, char *err, size_t errlen)
{
	unsigned char n[RSA_MAX_BYTES], e[8];
	size_t nlen = 0, elen = 0;
	BIGNUM *bn_n = NULL, *bn_e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pkey = NULL;

	if (get_bytes(o, "n", n, sizeof(n), 0, &nlen) != 0 ||
	    get_bytes(o, "e", e, sizeof(e), 0, &elen) != 0) {
		snprintf(err, errlen, "RSA key needs base64url \"n\" (up to 8192 bits) and \"e\"");
		goto out;
	}
	if ((bn_n = BN_bin2bn(n, (int)nlen, NULL)) == NULL ||
	    (bn_e = BN_bin2bn(e, (int)elen, NULL)) == NULL)
		goto oom;
	if (BN_num_bits(bn_n) < RSA_MIN_BITS) {
		snprintf(err, errlen, "RSA key of %d bits: at least %d are required",
			 BN_num_bits(bn_n), RSA_MIN_BITS);
		goto out;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
		goto oom;
	if ((pkey = key_from("RSA", bld)) == NULL)
		snprintf(err, errlen, "RSA key is not valid");
	goto out;
oom:
	snprintf(err, errlen, "out of memory");
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_n);
	BN_free(bn_e);
	return pkey;
}

/* EC P-256 from "x" and "y". Returns the key or NULL with err filled. */
static EVP_PKEY *
p256_key(struct json_object *o, char *err, size_t errlen)
{
	unsigned char point[65];	/* uncompressed: 04 || x || y */
	size_t len = 0;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pkey = NULL;

	point[0] = 0x04;
	if (get_bytes(o, "x", point + 1, 32, 32, &len) != 0 ||
	    get_bytes(o, "y", point + 33, 32, 32, &len) != 0) {
		snprintf(err, errlen, "P-256 key needs 32-byte base64url \"x\" and \"y\"");
		goto out;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point))) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if ((pkey = key_from("EC", bld)) == NULL)
		snprintf(err, errlen, "P-256 key is not a point of the curve");
out:
	OSSL_PARAM_BLD_free(bld);
	return pkey;
}

/* Ed25519 from "x". Returns the key or NULL with err filled. */
static EVP_PKEY *
ed25519_key(struct json_object *o, char *err, size_t errlen)
{
	unsigned char x[32];
	size_t len = 0;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pkey = NULL;

	if (get_bytes(o, "x", x, sizeof(x), sizeof(x), &len) != 0) {
		snprintf(err, errlen, "Ed25519 key needs a 32-byte base64url \"x\"");
		goto out;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, x, sizeof(x))) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if ((pkey = key_from("ED25519", bld)) == NULL)
		snprintf(err, errlen, "Ed25519 key is not valid");
out:
	OSSL_PARAM_BLD_free(bld);
	return pkey;
}

/* Is s a usable key id: 1 to JWT_KID_MAX - 1 printable ASCII bytes? */
static int
kid_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= JWT_KID_MAX - 1 || s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return i > 0;
}

/*
 * Add the JWK o to k, or skip it if it is not a signing key of ours.
 * Returns 0 (added or skipped) or -1 with err filled.
 */
static int
add_key(struct jwt_keys *k, struct json_object *o, int index, char *err, size_t errlen)
{
	const char *kty, *crv, *alg, *use, *kid;
	char why[160];
	struct jwk *key = &k->k[k->n];
	enum alg a;
	int i, rc = -1;

	why[0] = '\0';
	if (!json_object_is_type(o, json_type_object) || (kty = get_string(o, "kty")) == NULL) {
		snprintf(err, errlen, "key %d: not an object with a \"kty\"", index);
		goto out;
	}
	crv = get_string(o, "crv");
	alg = get_string(o, "alg");
	use = get_string(o, "use");
	/* Encryption keys and what we do not verify with are none of ours. */
	if (use != NULL && strcmp(use, "sig") != 0)
		goto skip;
	if (strcmp(kty, "RSA") == 0)
		a = ALG_RS256;
	else if (strcmp(kty, "EC") == 0 && crv != NULL && strcmp(crv, "P-256") == 0)
		a = ALG_ES256;
	else if (strcmp(kty, "OKP") == 0 && crv != NULL && strcmp(crv, "Ed25519") == 0)
		a = ALG_EDDSA;
	else
		goto skip;
	if (alg != NULL && strcmp(alg, alg_name[a]) != 0 &&
	    !(a == ALG_EDDSA && strcmp(alg, "Ed25519") == 0))
		goto skip;	/* e.g. an RSA key for PS256 or RSA-OAEP */

	kid = get_string(o, "kid");
	if (kid == NULL || !kid_ok(kid)) {
		snprintf(err, errlen, "key %d: \"kid\" must be 1 to %d printable characters",
			 index, JWT_KID_MAX - 1);
		goto out;
	}
	for (i = 0; i < k->n; i++)
		if (strcmp(k->k[i].kid, kid) == 0) {
			snprintf(err, errlen, "key %d: \"kid\" %s is used twice", index, kid);
			goto out;
		}
	key->pkey = a == ALG_RS256 ? rsa_key(o, why, sizeof(why)) :
		    a == ALG_ES256 ? p256_key(o, why, sizeof(why)) :
		    ed25519_key(o, why, sizeof(why));
	if (key->pkey == NULL) {
		snprintf(err, errlen, "key %d (%s): %s", index, kid, why);
		goto out;
	}
	snprintf(key->kid, sizeof(key->kid), "%s", kid);
	key->alg = a;
	k->n++;
skip:
	rc = 0;
out:
	return rc;
}

struct jwt_keys *
jwt_keys_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct json_object *root = NULL, *arr = NULL;
	struct jwt_keys *k = NULL;
	size_t i, n;
	int ok = 0;

	if (len > JWT_JWKS_MAX) {
		snprintf(err, errlen, "a JWKS may be at most %d bytes", JWT_JWKS_MAX);
		goto out;
	}
	if ((root = parse_object(text, len)) == NULL ||
	    !json_object_object_get_ex(root, "keys", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		snprintf(err, errlen, "not a JWKS: a JSON object with a \"keys\" array");
		goto out;
	}
	n = json_object_array_length(arr);
	if (n > JWT_KEYS_MAX) {
		snprintf(err, errlen, "%zu keys: at most %d are read", n, JWT_KEYS_MAX);
		goto out;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++)
		if (add_key(k, json_object_array_get_idx(arr, i), (int)i, err, errlen) != 0)
			goto out;
	if (k->n == 0) {
		snprintf(err, errlen, "no usable signing key (RS256, ES256 on P-256, EdDSA on Ed25519)");
		goto out;
	}
	ok = 1;
out:
	ERR_clear_error();
	json_object_put(root);
	if (!ok) {
		jwt_keys_free(k);
		k = NULL;
	}
	return k;
}

struct jwt_keys *
jwt_keys_read(const char *path, char *err, size_t errlen)
{
	struct jwt_keys *k = NULL;
	char *text = NULL, why[256];
	FILE *f = NULL;
	size_t len;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((text = malloc(JWT_JWKS_MAX + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	len = fread(text, 1, JWT_JWKS_MAX + 1, f);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	if ((k = jwt_keys_parse(text, len, why, sizeof(why))) == NULL)
		snprintf(err, errlen, "%s: %s", path, why);
out:
	if (f != NULL)
		fclose(f);
	free(text);
	return k;
}

void
jwt_keys_free(struct jwt_keys *k)
{
	int i;

	if (k == NULL)
		return;
	for (i = 0; i < JWT_KEYS_MAX; i++)
		EVP_PKEY_free(k->k[i].pkey);
	free(k);
}

void
jwt_keys_use(struct jwt_keys *k)
{
	jwt_keys_free(in_force);
	in_force = k;
}

int
jwt_load(const char *path, char *err, size_t errlen)
{
	struct jwt_keys *k = jwt_keys_read(path, err, errlen);

	if (k == NULL)
		return -1;
	jwt_keys_use(k);
	return 0;
}

void
jwt_free(void)
{
	jwt_keys_use(NULL);
}

int
jwt_key_count(void)
{
	return in_force == NULL ? 0 : in_force->n;
}

/*
 * Does sig (len bytes, as the JWS carries it) sign msg under key? ES256
 * signatures are r || s, 32 bytes each; OpenSSL wants them DER-encoded.
 */
static int
signature_ok(const struct jwk *key, const unsigned char *msg, size_t msglen,
	     const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX *md = NULL;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL;
	int derlen, ok = 0;

	if ((md = EVP_MD_CTX_new()) == NULL)
		goto out;
	switch (key->alg) {
	case ALG_RS256:
		if (siglen != (size_t)EVP_PKEY_get_size(key->pkey) ||
		    EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, key->pkey, NULL) != 1)
			goto out;
		ok = EVP_DigestVerify(md, sig, siglen, msg, msglen) == 1;
		break;
	case ALG_ES256:
		if (siglen != 64 || (es = ECDSA_SIG_new()) == NULL ||
		    (r = BN_bin2bn(sig, 32, NULL)) == NULL ||
		    (s = BN_bin2bn(sig + 32, 32, NULL)) == NULL ||
		    ECDSA_SIG_set0(es, r, s) != 1)
			goto out;
		r = s = NULL;	/* es owns them now */
		if ((derlen = i2d_ECDSA_SIG(es, &der)) <= 0 ||
		    EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, key->pkey, NULL) != 1)
			goto out;
		ok = EVP_DigestVerify(md, der, (size_t)derlen, msg, msglen) == 1;
		break;
	case ALG_EDDSA:
		if (siglen != 64 ||
		    EVP_DigestVerifyInit_ex(md, NULL, NULL, NULL, NULL, key->pkey, NULL) != 1)
			goto out;
		ok = EVP_DigestVerify(md, sig, siglen, msg, msglen) == 1;
		break;
	}
out:
	OPENSSL_free(der);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	ERR_clear_error();	/* a failed check must not grow the error queue */
	return ok;
}

/*
 * The NumericDate member key of o into *out: 0 if absent (*out untouched),
 * 1 if present and a number of seconds in 0..year 9999 (a fraction is
 * dropped), -1 otherwise.
 */
static int
get_date(struct json_object *o, const char *key, int64_t *out)
{
	struct json_object *v = NULL;
	double d;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (json_object_is_type(v, json_type_int)) {
		*out = json_object_get_int64(v);
		return *out >= 0 && *out <= NUMERIC_DATE_MAX ? 1 : -1;
	}
	if (json_object_is_type(v, json_type_double)) {
		d = json_object_get_double(v);
		if (!(d >= 0 && d <= (double)NUMERIC_DATE_MAX))	/* NaN fails too */
			return -1;
		*out = (int64_t)d;
		return 1;
	}
	return -1;
}

/* Is the configured audience aud's value, or one of its values? */
static int
audience_ok(struct json_object *payload, const char *want)
{
	struct json_object *aud = NULL, *v;
	size_t i, n;

	if (!json_object_object_get_ex(payload, "aud", &aud))
		return 0;
	if (json_object_is_type(aud, json_type_string))
		return strcmp(json_object_get_string(aud), want) == 0;
	if (!json_object_is_type(aud, json_type_array) ||
	    (n = json_object_array_length(aud)) > JWT_AUD_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(aud, i);
		if (json_object_is_type(v, json_type_string) &&
		    strcmp(json_object_get_string(v), want) == 0)
			return 1;
	}
	return 0;
}

/* Copy s to sub if it is a subject: 1 to 255 bytes of printable ASCII, no space. */
static int
subject_ok(const char *s, char sub[JWT_SUB_MAX])
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= JWT_SUB_MAX - 1 || s[i] <= 0x20 || s[i] > 0x7e)
			return 0;
	if (i == 0)
		return 0;
	memcpy(sub, s, i + 1);
	return 1;
}

/*
 * Does a header's alg name key's algorithm? Ed25519 keys also answer to
 * "Ed25519", the fully specified name (RFC 9864) of what RFC 8037 calls
 * "EdDSA".
 */
static int
alg_ok(const struct jwk *key, const char *alg)
{
	return strcmp(alg, alg_name[key->alg]) == 0 ||
	       (key->alg == ALG_EDDSA && strcmp(alg, "Ed25519") == 0);
}

/* The key whose kid is kid, or NULL. */
static const struct jwk *
find_key(const char *kid)
{
	int i;

	for (i = 0; kid != NULL && i < in_force->n; i++)
		if (strcmp(in_force->k[i].kid, kid) == 0)
			return &in_force->k[i];
	return NULL;
}

/* Is s (len bytes) non-empty and only of the base64url alphabet? */
static int
b64url_chars(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
			return 0;
	return len > 0;
}

enum jwt_err
jwt_verify(const char *token, time_t now, const struct jwt_expect *want,
	   char sub[JWT_SUB_MAX])
{
	char header[JWT_HEADER_MAX], payload[JWT_PAYLOAD_MAX];
	unsigned char sig[SIG_MAX];
	struct json_object *h = NULL, *p = NULL;
	const struct jwk *key;
	const char *dot1, *dot2, *alg, *typ, *s;
	size_t len, hlen, plen, slen;
	int64_t exp = 0, nbf = 0, iat = 0, t = (int64_t)now;
	int has_nbf, has_iat;
	enum jwt_err rc = JWT_MALFORMED;

	sub[0] = '\0';
	if (in_force == NULL || want == NULL || want->issuer == NULL || want->audience == NULL ||
	    *want->issuer == '\0' || *want->audience == '\0') {
		rc = JWT_UNCONFIGURED;
		goto out;
	}

	/* header.payload.signature, base64url each, within the bounds. */
	len = token == NULL ? 0 : strnlen(token, JWT_MAX + 1);
	if (len == 0 || len > JWT_MAX ||
	    (dot1 = memchr(token, '.', len)) == NULL ||
	    (dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token))) == NULL ||
	    !b64url_chars(token, (size_t)(dot1 - token)) ||
	    !b64url_chars(dot1 + 1, (size_t)(dot2 - dot1 - 1)) ||
	    !b64url_chars(dot2 + 1, len - (size_t)(dot2 + 1 - token)) ||
	    b64url(token, (size_t)(dot1 - token), (unsigned char *)header, sizeof(header),
		   &hlen) != 0 ||
	    b64url(dot1 + 1, (size_t)(dot2 - dot1 - 1), (unsigned char *)payload,
		   sizeof(payload), &plen) != 0 ||
	    b64url(dot2 + 1, len - (size_t)(dot2 + 1 - token), sig, sizeof(sig), &slen) != 0)
		goto out;

	/* The header picks the key; the key decides the algorithm. */
	if ((h = parse_object(header, hlen)) == NULL ||
	    (alg = get_string(h, "alg")) == NULL ||
	    json_object_object_get_ex(h, "crit", NULL))
		goto out;
	typ = get_string(h, "typ");
	if (json_object_object_get_ex(h, "typ", NULL) &&
	    (typ == NULL || (strcasecmp(typ, "JWT") != 0 && strcasecmp(typ, "at+jwt") != 0 &&
			     strcasecmp(typ, "application/at+jwt") != 0)))
		goto out;
	if ((key = find_key(get_string(h, "kid"))) == NULL) {
		rc = JWT_UNKNOWN_KEY;
		goto out;
	}
	if (!alg_ok(key, alg)) {
		rc = JWT_BAD_ALG;
		goto out;
	}
	if (!signature_ok(key, (const unsigned char *)token, (size_t)(dot2 - token), sig, slen)) {
		rc = JWT_BAD_SIGNATURE;
		goto out;
	}

	/* Genuine: now the claims. */
	if ((p = parse_object(payload, plen)) == NULL)
		goto out;
	rc = JWT_BAD_CLAIMS;
	if (get_date(p, "exp", &exp) != 1 || (has_nbf = get_date(p, "nbf", &nbf)) < 0 ||
	    (has_iat = get_date(p, "iat", &iat)) < 0)
		goto out;
	rc = JWT_BAD_ISSUER;
	if ((s = get_string(p, "iss")) == NULL || strcmp(s, want->issuer) != 0)
		goto out;
	rc = JWT_BAD_AUDIENCE;
	if (!audience_ok(p, want->audience))
		goto out;
	rc = JWT_EXPIRED;
	if (t >= exp + want->leeway)
		goto out;
	rc = JWT_NOT_YET_VALID;
	if ((has_nbf && t + want->leeway < nbf) || (has_iat && iat > t + want->leeway))
		goto out;
	rc = JWT_BAD_SUBJECT;
	if ((s = get_string(p, "sub")) == NULL || !subject_ok(s, sub))
		goto out;
	rc = JWT_OK;
out:
	json_object_put(h);
	json_object_put(p);
	if (rc != JWT_OK)
		sub[0] = '\0';
	return rc;
}

const char *
jwt_message(enum jwt_err err)
{
	switch (err) {
	case JWT_OK:
		return "token is valid";
	case JWT_UNCONFIGURED:
		return "sign-in with an identity provider is not configured";
	case JWT_MALFORMED:
		return "the token is not a well-formed JWT";
	case JWT_UNKNOWN_KEY:
		return "the token is signed with an unknown key";
	case JWT_BAD_ALG:
		return "the token's algorithm is not its key's";
	case JWT_BAD_SIGNATURE:
		return "the token signature is not valid";
	case JWT_BAD_CLAIMS:
		return "the token's claims are missing or malformed";
	case JWT_EXPIRED:
		return "the token has expired";
	case JWT_NOT_YET_VALID:
		return "the token is not valid yet";
	case JWT_BAD_ISSUER:
		return "the token is from another issuer";
	case JWT_BAD_AUDIENCE:
		return "the token is for another audience";
	case JWT_BAD_SUBJECT:
		return "the token has no usable subject";
	}
	return "the token is not valid";
}
