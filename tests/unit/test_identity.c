/* test_identity.c: unit tests for passwords, e-mail addresses, session tokens and JWT checks. */
#include <check.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "jwt.h"
#include "password.h"
#include "token.h"

/*
 * Keys are made once per run (an RSA key takes a while, more so under
 * valgrind), in main() before the suite runs, and written as JWKS files
 * into a temporary directory as each test needs them.
 */
static EVP_PKEY *rsa1, *ec1, *ed1, *evil;
static char dir[] = "/tmp/boxoffice-identity-XXXXXX";

#define NOW 1700000000
#define ISSUER "https://id.example.test/realms/boxoffice"
#define AUDIENCE "boxoffice"
#define SUB "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"

static const struct jwt_expect want = { ISSUER, AUDIENCE, 30 };

/* ---------------------------------------------------------------- helpers */

/* base64url without padding of len bytes, into a static buffer of each call. */
static char *
b64(const void *data, size_t len)
{
	static char bufs[4][16384];
	static int next;
	char *out = bufs[next++ % 4];

	ck_assert_uint_lt(sodium_base64_encoded_len(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
			  sizeof(bufs[0]));
	sodium_bin2base64(out, sizeof(bufs[0]), data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return out;
}

static EVP_PKEY *
keygen(const char *type, const char *arg)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *k = NULL;

	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1)
		abort();
	if (arg != NULL && strcmp(type, "RSA") == 0 &&
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, atoi(arg)) != 1)
		abort();
	if (arg != NULL && strcmp(type, "EC") == 0 &&
	    EVP_PKEY_CTX_set_group_name(ctx, arg) != 1)
		abort();
	if (EVP_PKEY_generate(ctx, &k) != 1)
		abort();
	EVP_PKEY_CTX_free(ctx);
	return k;
}

/* A big-number parameter of k as exactly pad bytes (0: as few as needed). */
static char *
bn_b64(EVP_PKEY *k, const char *param, int pad)
{
	unsigned char buf[1024];
	BIGNUM *bn = NULL;
	int n;

	ck_assert_int_eq(EVP_PKEY_get_bn_param(k, param, &bn), 1);
	n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
	BN_free(bn);
	return b64(buf, (size_t)n);
}

/* The JWK of k's public half, with kid and any extra members, into out. */
static void
jwk(EVP_PKEY *k, const char *kid, const char *extra, char *out, size_t outlen)
{
	unsigned char raw[32];
	size_t rawlen = sizeof(raw);

	if (EVP_PKEY_is_a(k, "RSA"))
		snprintf(out, outlen, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"%s}",
			 kid, bn_b64(k, OSSL_PKEY_PARAM_RSA_N, 0),
			 bn_b64(k, OSSL_PKEY_PARAM_RSA_E, 0), extra);
	else if (EVP_PKEY_is_a(k, "EC"))
		snprintf(out, outlen, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\","
			 "\"x\":\"%s\",\"y\":\"%s\"%s}", kid,
			 bn_b64(k, OSSL_PKEY_PARAM_EC_PUB_X, 32),
			 bn_b64(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32), extra);
	else {
		ck_assert_int_eq(EVP_PKEY_get_raw_public_key(k, raw, &rawlen), 1);
		snprintf(out, outlen, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"%s\","
			 "\"x\":\"%s\"%s}", kid, b64(raw, rawlen), extra);
	}
}

/* Write text to DIR/name; returns the path (static). */
static const char *
write_file(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	fclose(f);
	return path;
}

/* Write a JWKS of the keys given (kid, key pairs, NULL-terminated) and load it. */
static void
load_jwks(const char *kid, ...)
{
	char text[16384], one[4096], err[256];
	size_t len;
	va_list ap;

	strcpy(text, "{\"keys\":[");
	va_start(ap, kid);
	while (kid != NULL) {
		EVP_PKEY *k = va_arg(ap, EVP_PKEY *);

		jwk(k, kid, "", one, sizeof(one));
		len = strlen(text);
		snprintf(text + len, sizeof(text) - len, "%s%s", text[len - 1] == '[' ? "" : ",", one);
		kid = va_arg(ap, const char *);
	}
	va_end(ap);
	strcat(text, "]}");
	ck_assert_msg(jwt_load(write_file("jwks.json", text), err, sizeof(err)) == 0, "%s", err);
}

/* The three keys every JWT test starts with. */
static void
load_standard(void)
{
	load_jwks("rsa1", rsa1, "ec1", ec1, "ed1", ed1, NULL);
	ck_assert_int_eq(jwt_key_count(), 3);
}

/*
 * Sign "b64(header).b64(payload)" with key as alg ("RS256", "ES256",
 * "EdDSA", "HS256" with hmac_key, or "" for an empty signature). Returns
 * a malloc'd token.
 */
static char *
sign_raw(const char *header, const char *payload, EVP_PKEY *key, const char *alg,
	 const unsigned char *hmac_key, size_t hmac_len)
{
	unsigned char sig[1024], *der = NULL;
	size_t siglen = sizeof(sig), derlen = 0;
	char input[8192], *out;
	EVP_MD_CTX *md = NULL;

	snprintf(input, sizeof(input), "%s.%s", b64(header, strlen(header)),
		 b64(payload, strlen(payload)));
	if (strcmp(alg, "HS256") == 0) {
		crypto_auth_hmacsha256_state st;

		crypto_auth_hmacsha256_init(&st, hmac_key, hmac_len);
		crypto_auth_hmacsha256_update(&st, (unsigned char *)input, strlen(input));
		crypto_auth_hmacsha256_final(&st, sig);
		siglen = crypto_auth_hmacsha256_BYTES;
	} else if (*alg == '\0') {
		siglen = 0;
	} else {
		md = EVP_MD_CTX_new();
		ck_assert_int_eq(EVP_DigestSignInit_ex(md, NULL, strcmp(alg, "EdDSA") == 0 ?
						       NULL : "SHA256", NULL, NULL, key, NULL), 1);
		if (strcmp(alg, "ES256") == 0) {
			ECDSA_SIG *es;
			const unsigned char *p;

			ck_assert_int_eq(EVP_DigestSign(md, NULL, &derlen,
							 (unsigned char *)input, strlen(input)), 1);
			der = OPENSSL_malloc(derlen);
			ck_assert_int_eq(EVP_DigestSign(md, der, &derlen,
							 (unsigned char *)input, strlen(input)), 1);
			p = der;
			es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
			ck_assert_ptr_nonnull(es);
			BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
			BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
			siglen = 64;
			ECDSA_SIG_free(es);
			OPENSSL_free(der);
		} else
			ck_assert_int_eq(EVP_DigestSign(md, sig, &siglen,
							 (unsigned char *)input, strlen(input)), 1);
		EVP_MD_CTX_free(md);
	}
	out = malloc(strlen(input) + 2 + siglen * 2);
	sprintf(out, "%s.%s", input, siglen ? b64(sig, siglen) : "");
	return out;
}

/* A token with the usual header for alg and kid. */
static char *
sign(const char *alg, const char *kid, EVP_PKEY *key, const char *payload)
{
	char header[256];

	snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid);
	return sign_raw(header, payload, key, alg, NULL, 0);
}

/* Claims with the given exp, an issuer, audience and subject that pass. */
static const char *
claims(long long exp)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\","
		 "\"sub\":\"" SUB "\",\"iat\":%d,\"exp\":%lld}", NOW - 10, exp);
	return buf;
}

/* jwt_verify() of token at NOW; frees token. */
static enum jwt_err
check(char *token)
{
	char sub[JWT_SUB_MAX];
	enum jwt_err e = jwt_verify(token, NOW, &want, sub);

	if (e == JWT_OK)
		ck_assert_str_eq(sub, SUB);
	else
		ck_assert_str_eq(sub, "");
	free(token);
	return e;
}

/* ---------------------------------------------------------------- JWT: valid */

START_TEST(jwt_valid_tokens_of_each_algorithm)
{
	char sub[JWT_SUB_MAX];
	char *t;

	load_standard();
	ck_assert_int_eq(check(sign("RS256", "rsa1", rsa1, claims(NOW + 300))), JWT_OK);
	ck_assert_int_eq(check(sign("ES256", "ec1", ec1, claims(NOW + 300))), JWT_OK);
	ck_assert_int_eq(check(sign("EdDSA", "ed1", ed1, claims(NOW + 300))), JWT_OK);
	ck_assert_int_eq(check(sign_raw("{\"alg\":\"Ed25519\",\"kid\":\"ed1\"}", claims(NOW + 300),
					ed1, "EdDSA", NULL, 0)), JWT_OK);
	/* aud as an array, exp as a fraction, nbf just passed, typ at+jwt. */
	t = sign_raw("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"ec1\"}",
		     "{\"iss\":\"" ISSUER "\",\"aud\":[\"account\",\"" AUDIENCE "\"],"
		     "\"sub\":\"" SUB "\",\"nbf\":1699999999,\"exp\":1700000300.5}",
		     ec1, "ES256", NULL, 0);
	ck_assert_int_eq(check(t), JWT_OK);
	/* A subject of 255 bytes is the longest. */
	{
		char payload[1024], s[256];

		memset(s, 'a', 255);
		s[255] = '\0';
		snprintf(payload, sizeof(payload), "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\","
			 "\"sub\":\"%s\",\"exp\":%d}", s, NOW + 60);
		t = sign("EdDSA", "ed1", ed1, payload);
		ck_assert_int_eq(jwt_verify(t, NOW, &want, sub), JWT_OK);
		ck_assert_str_eq(sub, s);
		free(t);
	}
	jwt_free();
}
END_TEST

/* ---------------------------------------------------------------- JWT: attacks */

START_TEST(jwt_alg_none_is_refused)
{
	char *good;
	const char *none[] = { "none", "None", "NONE", "" };
	char header[128];
	size_t i;

	load_standard();
	good = sign("RS256", "rsa1", rsa1, claims(NOW + 300));
	for (i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		char *t, *sig = strrchr(good, '.');

		snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"kid\":\"rsa1\"}", none[i]);
		/* With no signature at all, and with a genuine one of another token. */
		t = sign_raw(header, claims(NOW + 300), NULL, "", NULL, 0);
		ck_assert_int_ne(check(t), JWT_OK);
		t = sign_raw(header, claims(NOW + 300), NULL, "", NULL, 0);
		t = realloc(t, strlen(t) + strlen(sig) + 1);
		strcat(t, sig + 1);
		ck_assert_int_eq(check(t), JWT_BAD_ALG);
	}
	free(good);
	jwt_free();
}
END_TEST

START_TEST(jwt_hs256_with_the_public_key_as_secret_is_refused)
{
	unsigned char n[512];
	BIGNUM *bn = NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL, jwk_text[2048];
	long pemlen;
	int nlen;
	const char *header = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"rsa1\"}";

	load_standard();
	/* The PEM of the public key, its modulus, and its JWK as the secret. */
	ck_assert_int_eq(PEM_write_bio_PUBKEY(bio, rsa1), 1);
	pemlen = BIO_get_mem_data(bio, &pem);
	ck_assert_int_eq(check(sign_raw(header, claims(NOW + 300), NULL, "HS256",
					(unsigned char *)pem, (size_t)pemlen)), JWT_BAD_ALG);
	ck_assert_int_eq(EVP_PKEY_get_bn_param(rsa1, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
	nlen = BN_bn2bin(bn, n);
	ck_assert_int_eq(check(sign_raw(header, claims(NOW + 300), NULL, "HS256", n, (size_t)nlen)),
			 JWT_BAD_ALG);
	jwk(rsa1, "rsa1", "", jwk_text, sizeof(jwk_text));
	ck_assert_int_eq(check(sign_raw(header, claims(NOW + 300), NULL, "HS256",
					(unsigned char *)jwk_text, strlen(jwk_text))), JWT_BAD_ALG);
	BN_free(bn);
	BIO_free(bio);
	jwt_free();
}
END_TEST

START_TEST(jwt_rsa_header_on_an_ec_key_is_refused)
{
	load_standard();
	/* Signed with the RSA key, pointed at the EC key. */
	ck_assert_int_eq(check(sign("RS256", "ec1", rsa1, claims(NOW + 300))), JWT_BAD_ALG);
	/* A genuine ES256 token whose header was changed to RS256. */
	ck_assert_int_eq(check(sign_raw("{\"alg\":\"RS256\",\"kid\":\"ec1\"}", claims(NOW + 300),
					ec1, "ES256", NULL, 0)), JWT_BAD_ALG);
	/* EdDSA signed, claiming RS256 on the Ed25519 key. */
	ck_assert_int_eq(check(sign_raw("{\"alg\":\"RS256\",\"kid\":\"ed1\"}", claims(NOW + 300),
					ed1, "EdDSA", NULL, 0)), JWT_BAD_ALG);
	jwt_free();
}
END_TEST

START_TEST(jwt_ec_header_on_an_rsa_key_is_refused)
{
	load_standard();
	ck_assert_int_eq(check(sign("ES256", "rsa1", ec1, claims(NOW + 300))), JWT_BAD_ALG);
	ck_assert_int_eq(check(sign_raw("{\"alg\":\"ES256\",\"kid\":\"rsa1\"}", claims(NOW + 300),
					rsa1, "RS256", NULL, 0)), JWT_BAD_ALG);
	ck_assert_int_eq(check(sign("EdDSA", "rsa1", ed1, claims(NOW + 300))), JWT_BAD_ALG);
	ck_assert_int_eq(check(sign("ES256", "ed1", ec1, claims(NOW + 300))), JWT_BAD_ALG);
	jwt_free();
}
END_TEST

START_TEST(jwt_wrong_issuer_is_refused)
{
	const char *iss[] = { "https://evil.example.test/realms/boxoffice", ISSUER "/",
			      "https://id.example.test/realms/boxoffic", "" };
	char payload[512];
	size_t i;

	load_standard();
	for (i = 0; i < sizeof(iss) / sizeof(iss[0]); i++) {
		snprintf(payload, sizeof(payload), "{\"iss\":\"%s\",\"aud\":\"" AUDIENCE "\","
			 "\"sub\":\"" SUB "\",\"exp\":%d}", iss[i], NOW + 60);
		ck_assert_int_eq(check(sign("RS256", "rsa1", rsa1, payload)), JWT_BAD_ISSUER);
	}
	ck_assert_int_eq(check(sign("RS256", "rsa1", rsa1, "{\"aud\":\"" AUDIENCE "\","
				    "\"sub\":\"" SUB "\",\"exp\":1700000060}")), JWT_BAD_ISSUER);
	ck_assert_int_eq(check(sign("RS256", "rsa1", rsa1, "{\"iss\":7,\"aud\":\"" AUDIENCE "\","
				    "\"sub\":\"" SUB "\",\"exp\":1700000060}")), JWT_BAD_ISSUER);
	jwt_free();
}
END_TEST

START_TEST(jwt_wrong_audience_is_refused)
{
	const char *aud[] = { "\"account\"", "\"boxoffice-admin\"", "\"boxoffic\"",
			      "[\"account\",\"other\"]", "[]", "null", "1", "[[\"boxoffice\"]]",
			      "{\"boxoffice\":1}" };
	char payload[512];
	size_t i;

	load_standard();
	for (i = 0; i < sizeof(aud) / sizeof(aud[0]); i++) {
		snprintf(payload, sizeof(payload), "{\"iss\":\"" ISSUER "\",\"aud\":%s,"
			 "\"sub\":\"" SUB "\",\"exp\":%d}", aud[i], NOW + 60);
		ck_assert_msg(check(sign("ES256", "ec1", ec1, payload)) == JWT_BAD_AUDIENCE,
			      "aud %s", aud[i]);
	}
	ck_assert_int_eq(check(sign("ES256", "ec1", ec1, "{\"iss\":\"" ISSUER "\","
				    "\"sub\":\"" SUB "\",\"exp\":1700000060}")), JWT_BAD_AUDIENCE);
	jwt_free();
}
END_TEST

START_TEST(jwt_expired_is_refused)
{
	load_standard();
	/* exp is exclusive, and the leeway (30 s) is honoured both ways. */
	ck_assert_int_eq(check(sign("EdDSA", "ed1", ed1, claims(NOW - 30))), JWT_EXPIRED);
	ck_assert_int_eq(check(sign("EdDSA", "ed1", ed1, claims(NOW - 3600))), JWT_EXPIRED);
	ck_assert_int_eq(check(sign("EdDSA", "ed1", ed1, claims(NOW - 29))), JWT_OK);
	/* An access token without exp, or with one that is no date. */
	ck_assert_int_eq(check(sign("EdDSA", "ed1", ed1, "{\"iss\":\"" ISSUER "\",\"aud\":\""
				    AUDIENCE "\",\"sub\":\"" SUB "\"}")), JWT_BAD_CLAIMS);
	ck_assert_int_eq(check(sign("EdDSA", "ed1", ed1, "{\"iss\":\"" ISSUER "\",\"aud\":\""
				    AUDIENCE "\",\"sub\":\"" SUB "\",\"exp\":\"1800000000\"}")),
			 JWT_BAD_CLAIMS);
	ck_assert_int_eq(check(sign("EdDSA", "ed1", ed1, "{\"iss\":\"" ISSUER "\",\"aud\":\""
				    AUDIENCE "\",\"sub\":\"" SUB "\",\"exp\":1e300}")),
			 JWT_BAD_CLAIMS);
	jwt_free();
}
END_TEST

START_TEST(jwt_not_yet_valid_is_refused)
{
	char payload[512];

	load_standard();
	snprintf(payload, sizeof(payload), "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\","
		 "\"sub\":\"" SUB "\",\"nbf\":%d,\"exp\":%d}", NOW + 31, NOW + 600);
	ck_assert_int_eq(check(sign("RS256", "rsa1", rsa1, payload)), JWT_NOT_YET_VALID);
	snprintf(payload, sizeof(payload), "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\","
		 "\"sub\":\"" SUB "\",\"nbf\":%d,\"exp\":%d}", NOW + 30, NOW + 600);
	ck_assert_int_eq(check(sign("RS256", "rsa1", rsa1, payload)), JWT_OK);
	/* Issued in the future, beyond the leeway. */
	snprintf(payload, sizeof(payload), "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\","
		 "\"sub\":\"" SUB "\",\"iat\":%d,\"exp\":%d}", NOW + 3600, NOW + 7200);
	ck_assert_int_eq(check(sign("RS256", "rsa1", rsa1, payload)), JWT_NOT_YET_VALID);
	jwt_free();
}
END_TEST

START_TEST(jwt_unknown_kid_is_refused)
{
	load_standard();
	ck_assert_int_eq(check(sign("RS256", "rsa2", rsa1, claims(NOW + 60))), JWT_UNKNOWN_KEY);
	ck_assert_int_eq(check(sign("RS256", "RSA1", rsa1, claims(NOW + 60))), JWT_UNKNOWN_KEY);
	ck_assert_int_eq(check(sign_raw("{\"alg\":\"RS256\"}", claims(NOW + 60), rsa1, "RS256",
					NULL, 0)), JWT_UNKNOWN_KEY);
	ck_assert_int_eq(check(sign_raw("{\"alg\":\"RS256\",\"kid\":1}", claims(NOW + 60), rsa1,
					"RS256", NULL, 0)), JWT_UNKNOWN_KEY);
	jwt_free();
}
END_TEST

START_TEST(jwt_key_removed_from_the_jwks_is_refused_after_reload)
{
	char *es, *rs, err[256];

	load_standard();
	es = sign("ES256", "ec1", ec1, claims(NOW + 60));
	rs = sign("RS256", "rsa1", rsa1, claims(NOW + 60));
	ck_assert_int_eq(check(strdup(es)), JWT_OK);
	load_jwks("rsa1", rsa1, "ed1", ed1, NULL);
	ck_assert_int_eq(jwt_key_count(), 2);
	ck_assert_int_eq(check(strdup(es)), JWT_UNKNOWN_KEY);
	ck_assert_int_eq(check(strdup(rs)), JWT_OK);
	/* A reload that fails keeps the keys in force. */
	ck_assert_int_eq(jwt_load(write_file("jwks.json", "{\"keys\":["), err, sizeof(err)), -1);
	ck_assert_int_eq(jwt_key_count(), 2);
	ck_assert_int_eq(check(strdup(rs)), JWT_OK);
	ck_assert_int_eq(jwt_load("/nonexistent/jwks.json", err, sizeof(err)), -1);
	ck_assert_int_eq(check(strdup(rs)), JWT_OK);
	/* The same kid now names another key: the old signatures fail. */
	load_jwks("rsa1", ed1, NULL);
	ck_assert_int_eq(check(strdup(rs)), JWT_BAD_ALG);
	jwt_free();
	ck_assert_int_eq(check(rs), JWT_UNCONFIGURED);
	free(es);
}
END_TEST

START_TEST(jwt_tampered_payload_is_refused)
{
	struct { const char *alg, *kid; EVP_PKEY **key; } k[] = {
		{ "RS256", "rsa1", &rsa1 }, { "ES256", "ec1", &ec1 }, { "EdDSA", "ed1", &ed1 } };
	char other[512];
	size_t i, j;

	load_standard();
	snprintf(other, sizeof(other), "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\","
		 "\"sub\":\"someone-else\",\"iat\":%d,\"exp\":%d}", NOW - 10, NOW + 300);
	for (i = 0; i < 3; i++) {
		char *good = sign(k[i].alg, k[i].kid, *k[i].key, claims(NOW + 300));
		char *forged = sign(k[i].alg, k[i].kid, *k[i].key, other);
		char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
		char *f1 = strchr(forged, '.'), *f2 = strrchr(forged, '.');
		char *t = malloc(strlen(good) + strlen(forged) + 1);

		/* Another payload under the genuine header and signature. */
		sprintf(t, "%.*s%.*s%s", (int)(d1 - good), good, (int)(f2 - f1), f1, d2);
		ck_assert_int_eq(check(t), JWT_BAD_SIGNATURE);
		/* Every flipped character of the payload and signature. */
		for (j = (size_t)(d1 - good) + 1; good[j] != '\0'; j++) {
			char *bad;

			if (good[j] == '.')
				continue;
			bad = strdup(good);
			bad[j] = bad[j] == 'A' ? 'B' : 'A';
			ck_assert_msg(check(bad) != JWT_OK, "%s byte %zu", k[i].alg, j);
		}
		free(good);
		free(forged);
	}
	jwt_free();
}
END_TEST

START_TEST(jwt_header_jwk_and_jku_are_ignored)
{
	char header[2048], key[1024];

	load_standard();
	/* Signed by another key that the header itself offers. */
	jwk(evil, "ed1", "", key, sizeof(key));
	snprintf(header, sizeof(header), "{\"alg\":\"EdDSA\",\"kid\":\"ed1\",\"jwk\":%s,"
		 "\"jku\":\"https://evil.example.test/jwks.json\"}", key);
	ck_assert_int_eq(check(sign_raw(header, claims(NOW + 60), evil, "EdDSA", NULL, 0)),
			 JWT_BAD_SIGNATURE);
	/* A critical extension we do not know, on a genuine token. */
	ck_assert_int_eq(check(sign_raw("{\"alg\":\"EdDSA\",\"kid\":\"ed1\",\"crit\":[\"b64\"],"
					"\"b64\":false}", claims(NOW + 60), ed1, "EdDSA", NULL, 0)),
			 JWT_MALFORMED);
	/* Not a JWT: an encrypted or nested token's typ. */
	ck_assert_int_eq(check(sign_raw("{\"alg\":\"EdDSA\",\"kid\":\"ed1\",\"typ\":\"JWE\"}",
					claims(NOW + 60), ed1, "EdDSA", NULL, 0)), JWT_MALFORMED);
	jwt_free();
}
END_TEST

START_TEST(jwt_bad_subject_is_refused)
{
	const char *subs[] = { "\"\"", "\"a b\"", "\"caf\\u00e9\"", "42", "null", "\"tab\\there\"" };
	char payload[1024], s[257];
	size_t i;

	load_standard();
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(payload, sizeof(payload), "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\","
			 "\"sub\":%s,\"exp\":%d}", subs[i], NOW + 60);
		ck_assert_msg(check(sign("ES256", "ec1", ec1, payload)) == JWT_BAD_SUBJECT,
			      "sub %s", subs[i]);
	}
	memset(s, 'a', 256);
	s[256] = '\0';
	snprintf(payload, sizeof(payload), "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\","
		 "\"sub\":\"%s\",\"exp\":%d}", s, NOW + 60);
	ck_assert_int_eq(check(sign("ES256", "ec1", ec1, payload)), JWT_BAD_SUBJECT);
	ck_assert_int_eq(check(sign("ES256", "ec1", ec1, "{\"iss\":\"" ISSUER "\",\"aud\":\""
				    AUDIENCE "\",\"exp\":1700000060}")), JWT_BAD_SUBJECT);
	jwt_free();
}
END_TEST

START_TEST(jwt_truncated_oversized_and_garbage_input_is_refused)
{
	const char *junk[] = { "", ".", "..", "a.b", "a.b.c.d", "eyJ.eyJ.", "...",
			       "eyJhbGciOiJSUzI1NiJ9", "!!!.???.***", "e30.e30.e30",
			       "eyJhbGciOiJSUzI1NiJ9=.e30.AAAA", "W10.e30.AAAA" /* [] */,
			       "Bearer eyJhbGciOiJSUzI1NiJ9.e30.AAAA" };
	char sub[JWT_SUB_MAX], *good, *big, *t;
	size_t i, len;

	load_standard();
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		ck_assert_msg(jwt_verify(junk[i], NOW, &want, sub) == JWT_MALFORMED, "%s", junk[i]);
	ck_assert_int_eq(jwt_verify(NULL, NOW, &want, sub), JWT_MALFORMED);

	/* Every prefix of a genuine token. */
	good = sign("RS256", "rsa1", rsa1, claims(NOW + 60));
	len = strlen(good);
	for (i = 0; i < len; i++) {
		t = strndup(good, i);
		ck_assert_msg(check(t) != JWT_OK, "prefix of %zu bytes", i);
	}
	/* Trailing data, padding, a second token. */
	t = malloc(len + 3);
	sprintf(t, "%s==", good);
	ck_assert_int_eq(check(t), JWT_MALFORMED);
	t = malloc(2 * len + 2);
	sprintf(t, "%s.%s", good, good);
	ck_assert_int_eq(check(t), JWT_MALFORMED);

	/* Oversized: a token of JWT_MAX + 1 bytes, and a header too long to decode. */
	big = malloc(JWT_MAX + 2);
	memset(big, 'A', JWT_MAX + 1);
	big[JWT_MAX + 1] = '\0';
	big[100] = '.';
	big[200] = '.';
	ck_assert_int_eq(jwt_verify(big, NOW, &want, sub), JWT_MALFORMED);
	free(big);
	{
		char header[JWT_HEADER_MAX + 64];

		snprintf(header, sizeof(header), "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"x\":\"%0*d\"}",
			 JWT_HEADER_MAX, 0);
		ck_assert_int_eq(check(sign_raw(header, claims(NOW + 60), rsa1, "RS256", NULL, 0)),
				 JWT_MALFORMED);
	}
	/* Valid base64 of something that is not JSON, or JSON json-c alone would take. */
	ck_assert_int_eq(check(sign_raw("{'alg':'RS256','kid':'rsa1'}", claims(NOW + 60), rsa1,
					"RS256", NULL, 0)), JWT_MALFORMED);
	ck_assert_int_eq(check(sign_raw("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", "[1]", rsa1,
					"RS256", NULL, 0)), JWT_MALFORMED);
	ck_assert_int_eq(check(sign_raw("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", "{\"exp\":1} x",
					rsa1, "RS256", NULL, 0)), JWT_MALFORMED);
	/* An ES256 signature of the wrong length. */
	t = sign("ES256", "ec1", ec1, claims(NOW + 60));
	t[strlen(t) - 4] = '\0';
	ck_assert_int_ne(check(t), JWT_OK);
	free(good);
	jwt_free();
}
END_TEST

START_TEST(jwt_without_configuration_refuses_everything)
{
	struct jwt_expect no_issuer = { "", AUDIENCE, 30 }, no_audience = { ISSUER, "", 30 };
	char sub[JWT_SUB_MAX], *t;

	jwt_free();
	t = sign("RS256", "rsa1", rsa1, claims(NOW + 60));
	ck_assert_int_eq(jwt_verify(t, NOW, &want, sub), JWT_UNCONFIGURED);
	load_standard();
	ck_assert_int_eq(jwt_verify(t, NOW, &no_issuer, sub), JWT_UNCONFIGURED);
	ck_assert_int_eq(jwt_verify(t, NOW, &no_audience, sub), JWT_UNCONFIGURED);
	ck_assert_int_eq(jwt_verify(t, NOW, NULL, sub), JWT_UNCONFIGURED);
	ck_assert_int_eq(check(t), JWT_OK);
	jwt_free();
}
END_TEST

START_TEST(jwks_files_are_checked_whole)
{
	char text[16384], a[4096], b[4096], err[256];
	struct jwt_keys *k;
	EVP_PKEY *small;
	size_t i;

#define PARSE(s) jwt_keys_parse((s), strlen(s), err, sizeof(err))
	ck_assert_ptr_null(PARSE("[]"));
	ck_assert_ptr_null(PARSE("{\"keys\":{}}"));
	ck_assert_ptr_null(PARSE("{\"keys\":[]}"));
	ck_assert(strstr(err, "no usable") != NULL);
	ck_assert_ptr_null(PARSE("{\"keys\":[1]}"));

	/* Two keys of one kid; a key without a kid. */
	jwk(rsa1, "k", "", a, sizeof(a));
	jwk(ec1, "k", "", b, sizeof(b));
	snprintf(text, sizeof(text), "{\"keys\":[%s,%s]}", a, b);
	ck_assert_ptr_null(PARSE(text));
	ck_assert(strstr(err, "twice") != NULL);
	jwk(rsa1, "", "", a, sizeof(a));
	snprintf(text, sizeof(text), "{\"keys\":[%s]}", a);
	ck_assert_ptr_null(PARSE(text));

	/* An RSA key under 2048 bits. */
	small = keygen("RSA", "1024");
	jwk(small, "small", "", a, sizeof(a));
	EVP_PKEY_free(small);
	snprintf(text, sizeof(text), "{\"keys\":[%s]}", a);
	ck_assert_ptr_null(PARSE(text));
	ck_assert(strstr(err, "1024 bits") != NULL);

	/* A P-256 point off the curve (y changed). */
	jwk(ec1, "ec1", "", a, sizeof(a));
	{
		char *y = strstr(a, "\"y\":\"") + 5;

		y[0] = y[0] == 'A' ? 'B' : 'A';
	}
	snprintf(text, sizeof(text), "{\"keys\":[%s]}", a);
	ck_assert_ptr_null(PARSE(text));

	/* More keys than are read. */
	jwk(ed1, "ed", "", a, sizeof(a));
	strcpy(text, "{\"keys\":[");
	for (i = 0; i <= JWT_KEYS_MAX; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%s", i ? "," : "", a);
	strcat(text, "]}");
	ck_assert_ptr_null(PARSE(text));
	ck_assert(strstr(err, "at most 32") != NULL);

	/* Encryption keys and other algorithms are skipped, signing keys kept. */
	jwk(rsa1, "enc", ",\"use\":\"enc\"", a, sizeof(a));
	jwk(ed1, "ed1", ",\"use\":\"sig\",\"alg\":\"EdDSA\"", b, sizeof(b));
	snprintf(text, sizeof(text), "{\"keys\":[%s,{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"},"
		 "{\"kty\":\"EC\",\"crv\":\"P-384\",\"kid\":\"p384\",\"x\":\"AA\",\"y\":\"AA\"},"
		 "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"kid\":\"x\",\"x\":\"AA\"},%s]}", a, b);
	k = PARSE(text);
	ck_assert_msg(k != NULL, "%s", err);
	jwt_keys_use(k);
	ck_assert_int_eq(jwt_key_count(), 1);
	ck_assert_int_eq(check(sign("RS256", "enc", rsa1, claims(NOW + 60))), JWT_UNKNOWN_KEY);
	ck_assert_int_eq(check(sign("EdDSA", "ed1", ed1, claims(NOW + 60))), JWT_OK);
	/* An RSA key for another algorithm (PS256) is not an RS256 key. */
	jwk(rsa1, "ps", ",\"alg\":\"PS256\"", a, sizeof(a));
	snprintf(text, sizeof(text), "{\"keys\":[%s,%s]}", a, b);
	k = PARSE(text);
	ck_assert_ptr_nonnull(k);
	jwt_keys_use(k);
	ck_assert_int_eq(check(sign("RS256", "ps", rsa1, claims(NOW + 60))), JWT_UNKNOWN_KEY);

	/* Oversized file. */
	{
		char *huge = malloc(JWT_JWKS_MAX + 2);

		memset(huge, ' ', JWT_JWKS_MAX + 1);
		huge[JWT_JWKS_MAX + 1] = '\0';
		memcpy(huge, "{\"keys\":[", 9);
		ck_assert_ptr_null(jwt_keys_read(write_file("huge.json", huge), err, sizeof(err)));
		ck_assert(strstr(err, "at most") != NULL);
		free(huge);
	}
	jwt_free();
#undef PARSE
}
END_TEST

/* ---------------------------------------------------------------- passwords */

/* Cheap Argon2id for tests: the lowest cost the settings allow. */
static void
cheap_cost(void)
{
	char err[256];

	config_defaults(&cfg);
	ck_assert_int_eq(config_set(&cfg, "auth", "pwhash_opslimit", "1", err, sizeof(err)), 0);
	ck_assert_int_eq(config_set(&cfg, "auth", "pwhash_memlimit_kib", "8", err, sizeof(err)), 0);
}

START_TEST(password_hash_and_verify)
{
	char h1[PASSWORD_HASH_MAX], h2[PASSWORD_HASH_MAX], long_pw[PASSWORD_MAX_BYTES + 2];

	cheap_cost();
	ck_assert_int_eq(password_hash("correct horse battery", h1), 0);
	ck_assert_int_eq(strncmp(h1, "$argon2id$", 10), 0);
	ck_assert(strstr(h1, "correct") == NULL);
	ck_assert_int_eq(password_verify(h1, "correct horse battery"), 1);
	ck_assert_int_eq(password_verify(h1, "correct horse batterY"), 0);
	ck_assert_int_eq(password_verify(h1, "correct horse battery "), 0);
	ck_assert_int_eq(password_verify(h1, ""), 0);
	/* Salted: the same password never hashes the same. */
	ck_assert_int_eq(password_hash("correct horse battery", h2), 0);
	ck_assert_str_ne(h1, h2);
	ck_assert_int_eq(password_verify(h2, "correct horse battery"), 1);
	/* Not a hash, or a password over the limit. */
	ck_assert_int_eq(password_verify("", "correct horse battery"), 0);
	ck_assert_int_eq(password_verify("$argon2id$v=19$m=8,t=1,p=1$", "x"), 0);
	memset(long_pw, 'x', sizeof(long_pw) - 1);
	long_pw[sizeof(long_pw) - 1] = '\0';
	ck_assert_int_eq(password_hash(long_pw, h2), -1);
	ck_assert_str_eq(h2, "");
}
END_TEST

START_TEST(password_policy_gives_reasons)
{
	char pw[PASSWORD_MAX_BYTES + 2];
	const char *r;

	ck_assert_ptr_null(password_policy("0123456789", "ann@example.org"));
	ck_assert_ptr_null(password_policy("correct horse battery", NULL));
	r = password_policy("012345678", "ann@example.org");
	ck_assert_ptr_nonnull(r);
	ck_assert(strstr(r, "at least 10 characters") != NULL);
	ck_assert_ptr_nonnull(password_policy("", NULL));
	/* Characters, not bytes: nine two-byte letters are too few, ten enough. */
	ck_assert_ptr_nonnull(password_policy("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
					      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", NULL));
	ck_assert_ptr_null(password_policy("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
					   "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", NULL));
	/* 128 bytes is the most. */
	memset(pw, 'p', PASSWORD_MAX_BYTES);
	pw[PASSWORD_MAX_BYTES] = '\0';
	ck_assert_ptr_null(password_policy(pw, NULL));
	pw[PASSWORD_MAX_BYTES] = 'p';
	pw[PASSWORD_MAX_BYTES + 1] = '\0';
	r = password_policy(pw, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert(strstr(r, "at most 128 bytes") != NULL);
	/* Not UTF-8: a lone continuation byte, an overlong form, a surrogate, cut short. */
	ck_assert(strstr(password_policy("abcdefghij\x80", NULL), "UTF-8") != NULL);
	ck_assert(strstr(password_policy("abcdefghij\xc0\xaf", NULL), "UTF-8") != NULL);
	ck_assert(strstr(password_policy("abcdefghij\xed\xa0\x80", NULL), "UTF-8") != NULL);
	ck_assert(strstr(password_policy("abcdefghij\xe2\x82", NULL), "UTF-8") != NULL);
	ck_assert(strstr(password_policy("abcdefghij\tk", NULL), "control") != NULL);
	ck_assert(strstr(password_policy("abcdefghij\x7f", NULL), "control") != NULL);
	/* Not the e-mail address, whatever its case or spaces. */
	r = password_policy("Ann.Smith@Example.ORG", " ann.smith@example.org ");
	ck_assert_ptr_nonnull(r);
	ck_assert(strstr(r, "e-mail") != NULL);
	ck_assert_ptr_nonnull(password_policy(" ann.smith@example.org", "ANN.SMITH@EXAMPLE.ORG"));
	ck_assert_ptr_null(password_policy("ann.smith@example.org!", "ann.smith@example.org"));
	ck_assert_ptr_null(password_policy("ann.smith@example.org", "bob.smith@example.org"));
	/* Reasons never quote the password. */
	ck_assert(strstr(password_policy("hunter2", NULL), "hunter2") == NULL);
}
END_TEST

START_TEST(password_needs_rehash_after_the_cost_is_raised)
{
	char h[PASSWORD_HASH_MAX], err[256];

	cheap_cost();
	ck_assert_int_eq(password_hash("correct horse battery", h), 0);
	ck_assert_int_eq(password_needs_rehash(h), 0);
	ck_assert_int_eq(config_set(&cfg, "auth", "pwhash_opslimit", "2", err, sizeof(err)), 0);
	ck_assert_int_eq(password_needs_rehash(h), 1);
	/* The old hash still verifies: it carries its own cost. */
	ck_assert_int_eq(password_verify(h, "correct horse battery"), 1);
	ck_assert_int_eq(password_hash("correct horse battery", h), 0);
	ck_assert_int_eq(password_needs_rehash(h), 0);
	ck_assert_int_eq(config_set(&cfg, "auth", "pwhash_memlimit_kib", "16", err, sizeof(err)), 0);
	ck_assert_int_eq(password_needs_rehash(h), 1);
	/* Argon2i (an older hash) and garbage are replaced too. */
	ck_assert_int_eq(crypto_pwhash_argon2i_str(h, "x", 1, 3, 8192), 0);
	ck_assert_int_eq(password_needs_rehash(h), 1);
	ck_assert_int_eq(password_needs_rehash("plain text"), 1);
	ck_assert_int_eq(password_needs_rehash(""), 1);
}
END_TEST

static double
seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

START_TEST(password_dummy_verify_costs_a_verify)
{
	char h[PASSWORD_HASH_MAX], err[256];
	double t0, real = 1e9, dummy = 1e9, d;
	int i;

	/*
	 * A cost high enough to measure, low enough for valgrind; in passes
	 * rather than memory, so that page faults weigh little. CPU time, not
	 * wall time: other processes do not count.
	 */
	config_defaults(&cfg);
	ck_assert_int_eq(config_set(&cfg, "auth", "pwhash_opslimit", "8", err, sizeof(err)), 0);
	ck_assert_int_eq(config_set(&cfg, "auth", "pwhash_memlimit_kib", "512", err, sizeof(err)), 0);
	ck_assert_int_eq(password_hash("correct horse battery", h), 0);
	ck_assert_int_eq(password_verify_dummy("correct horse battery"), 0);	/* makes its hash */
	/*
	 * The fastest of five of each, interleaved, against noise; a dummy check that skipped the work, or did it at a lower
	 * cost, would be many times faster than a third.
	 */
	for (i = 0; i < 5; i++) {
		t0 = seconds();
		ck_assert_int_eq(password_verify(h, "wrong password here"), 0);
		d = seconds() - t0;
		real = d < real ? d : real;
		t0 = seconds();
		ck_assert_int_eq(password_verify_dummy("wrong password here"), 0);
		d = seconds() - t0;
		dummy = d < dummy ? d : dummy;
	}
	ck_assert_msg(dummy > real / 3 && dummy < real * 3,
		      "dummy verify %.4fs, real verify %.4fs", dummy, real);
	/* Even the right password of an account does not make it say yes. */
	ck_assert_int_eq(password_verify_dummy("correct horse battery"), 0);
}
END_TEST

START_TEST(email_addresses_are_normalised_and_checked)
{
	const char *good[][2] = {
		{ "ann@example.org", "ann@example.org" },
		{ "  Ann.Smith+tickets@Mail.Example.ORG\t\n", "ann.smith+tickets@mail.example.org" },
		{ "o'brien@ex-ample.co.uk", "o'brien@ex-ample.co.uk" },
		{ "x@a1.io", "x@a1.io" },
	};
	const char *bad[] = { "", "   ", "ann", "ann@", "@example.org", "ann@@example.org",
			      "ann@b@example.org", ".ann@example.org", "ann.@example.org",
			      "an..n@example.org", "ann@example", "ann@-example.org",
			      "ann@example-.org", "ann@example..org", "ann@.example.org",
			      "ann@example.org.", "ann@1.2.3.4", "an n@example.org",
			      "ann@exa mple.org", "\"ann\"@example.org", "ann@[127.0.0.1]",
			      "j\xc3\xbcrgen@example.org", "ann@ex\xc3\xa4mple.org",
			      "ann@example.org\r\nBcc: x@example.org", "ann@exam_ple.org",
			      "ann(comment)@example.org" };
	char out[PASSWORD_EMAIL_MAX + 1], addr[400];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ck_assert_msg(password_email_normalize(good[i][0], out, sizeof(out)) == 0, "%s", good[i][0]);
		ck_assert_str_eq(out, good[i][1]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(password_email_normalize(bad[i], out, sizeof(out)) == -1, "%s", bad[i]);
		ck_assert_str_eq(out, "");
	}
	/* Lengths: a local part of 64 bytes, an address of 254, a label of 63. */
	memset(addr, 'a', 64);
	strcpy(addr + 64, "@example.org");
	ck_assert_int_eq(password_email_normalize(addr, out, sizeof(out)), 0);
	memset(addr, 'a', 65);
	strcpy(addr + 65, "@example.org");
	ck_assert_int_eq(password_email_normalize(addr, out, sizeof(out)), -1);
	memset(addr, 'a', 64);
	addr[64] = '@';
	for (i = 65; i < 254; i++)
		addr[i] = (i - 65) % 62 == 61 ? '.' : 'b';
	addr[254] = '\0';
	ck_assert_int_eq(password_email_normalize(addr, out, sizeof(out)), 0);
	ck_assert_uint_eq(strlen(out), 254);
	addr[254] = 'b';
	addr[255] = '\0';
	ck_assert_int_eq(password_email_normalize(addr, out, sizeof(out)), -1);
	strcpy(addr, "ann@");
	memset(addr + 4, 'c', 64);
	strcpy(addr + 68, ".org");
	ck_assert_int_eq(password_email_normalize(addr, out, sizeof(out)), -1);
	/* The output buffer bounds the result too. */
	ck_assert_int_eq(password_email_normalize("ann@example.org", out, 15), -1);
	ck_assert_int_eq(password_email_normalize("ann@example.org", out, 16), 0);
}
END_TEST

START_TEST(auth_settings_have_bounds)
{
	struct config c;
	char err[256], path[512];

	config_defaults(&c);
	ck_assert_int_eq(c.pwhash_opslimit, 2);
	ck_assert_int_eq(c.pwhash_memlimit_kib, 65536);
	ck_assert_int_eq(c.session_ttl, 43200);
	ck_assert_str_eq(c.jwks_file, "");
	ck_assert_int_eq(c.jwt_leeway_s, 30);
	ck_assert_int_eq(config_set(&c, "auth", "pwhash_opslimit", "0", err, sizeof(err)), -1);
	ck_assert_int_eq(config_set(&c, "auth", "pwhash_opslimit", "17", err, sizeof(err)), -1);
	ck_assert_int_eq(config_set(&c, "auth", "pwhash_memlimit_kib", "7", err, sizeof(err)), -1);
	ck_assert_int_eq(config_set(&c, "auth", "pwhash_memlimit_kib", "1048577", err, sizeof(err)), -1);
	ck_assert_int_eq(config_set(&c, "auth", "session_ttl", "59", err, sizeof(err)), -1);
	ck_assert_int_eq(config_set(&c, "auth", "jwt_leeway_s", "301", err, sizeof(err)), -1);
	ck_assert_int_eq(config_set(&c, "auth", "jwt_issuer", "https://id.example.test", err,
				    sizeof(err)), 0);
	ck_assert_str_eq(c.jwt_issuer, "https://id.example.test");
	/* The annotated example says what the table says. */
	snprintf(path, sizeof(path), "%s/conf/boxoffice.conf",
		 getenv("top_srcdir") != NULL ? getenv("top_srcdir") : ".");
	ck_assert_msg(config_load(path, &c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(c.pwhash_opslimit, 2);
	ck_assert_int_eq(c.pwhash_memlimit_kib, 65536);
	ck_assert_int_eq(c.session_ttl, 43200);
	ck_assert_str_eq(c.jwt_audience, "");
	ck_assert_int_eq(c.jwt_leeway_s, 30);
}
END_TEST

/* ---------------------------------------------------------------- session tokens */

#define USER "00000000-0000-4000-8000-000000000001"

static void
session_key(void)
{
	char err[256];

	ck_assert_msg(token_load_keys(write_file("token.key", "0123456789abcdef0123456789abcdef"
						 "-session-key"), "", err, sizeof(err)) == 0,
		      "%s", err);
}

START_TEST(session_token_round_trip)
{
	struct token t, again, got;
	char buf[TOKEN_MAX], want_prefix[128];
	size_t n, i, dots = 0;

	session_key();
	ck_assert_int_eq(token_session_new(&t, USER, 1000, 3600), 0);
	ck_assert_int_eq(t.kind, TOKEN_SESSION);
	ck_assert_uint_eq(strlen(t.session), 32);
	ck_assert_uint_eq(strspn(t.session, "0123456789abcdef"), 32);
	ck_assert_int_eq(t.iat, 1000);
	ck_assert_int_eq(t.exp, 4600);
	ck_assert_int_eq(token_session_new(&again, USER, 1000, 3600), 0);
	ck_assert_str_ne(t.session, again.session);

	n = token_sign(&t, buf, sizeof(buf));
	ck_assert_uint_gt(n, 0);
	snprintf(want_prefix, sizeof(want_prefix), "v1.s.%s.%s.1000.4600.", USER, t.session);
	ck_assert_int_eq(strncmp(buf, want_prefix, strlen(want_prefix)), 0);
	for (i = 0; i < n; i++)
		dots += buf[i] == '.';
	ck_assert_uint_eq(dots, 6);
	ck_assert_int_eq(token_verify_kinds(buf, 2000, "s", &got), TOKEN_OK);
	ck_assert_str_eq(got.user, USER);
	ck_assert_str_eq(got.session, t.session);
	ck_assert_int_eq(got.iat, 1000);
	ck_assert_int_eq(got.exp, 4600);
	ck_assert_int_eq(got.concert, 0);
	{
		char hdr[TOKEN_MAX + 8];

		snprintf(hdr, sizeof(hdr), "Bearer %s", buf);
		ck_assert_int_eq(token_verify_kinds(hdr, 2000, "us", &got), TOKEN_OK);
	}
	/* Bad input to token_session_new and token_sign. */
	ck_assert_int_eq(token_session_new(&t, "not-a-uuid", 1000, 3600), -1);
	ck_assert_int_eq(token_session_new(&t, USER, 1000, 0), -1);
	ck_assert_int_eq(token_session_new(&t, USER, 1000, 3600), 0);
	t.session[0] = 'A';
	ck_assert_uint_eq(token_sign(&t, buf, sizeof(buf)), 0);
	t.session[0] = '\0';
	ck_assert_uint_eq(token_sign(&t, buf, sizeof(buf)), 0);
}
END_TEST

START_TEST(session_token_is_its_own_kind)
{
	struct token t, u, got;
	char s_buf[TOKEN_MAX], u_buf[TOKEN_MAX];

	session_key();
	ck_assert_int_eq(token_session_new(&t, USER, 1000, 3600), 0);
	ck_assert_uint_gt(token_sign(&t, s_buf, sizeof(s_buf)), 0);
	memset(&u, 0, sizeof(u));
	u.kind = TOKEN_USER;
	strcpy(u.user, USER);
	u.iat = 1000;
	u.exp = 4600;
	ck_assert_uint_gt(token_sign(&u, u_buf, sizeof(u_buf)), 0);
	/* Queue and user routes (token_verify) do not take a session token... */
	ck_assert_int_eq(token_verify(s_buf, 2000, &got), TOKEN_WRONG_KIND);
	/* ...and a route that wants a session takes nothing else. */
	ck_assert_int_eq(token_verify_kinds(u_buf, 2000, "s", &got), TOKEN_WRONG_KIND);
	ck_assert_int_eq(token_verify_kinds(u_buf, 2000, "us", &got), TOKEN_OK);
	ck_assert_int_eq(token_verify(u_buf, 2000, &got), TOKEN_OK);
}
END_TEST

START_TEST(session_token_tampering_and_expiry)
{
	struct token t, got;
	char buf[TOKEN_MAX], bad[TOKEN_MAX];
	size_t n, i;

	session_key();
	ck_assert_int_eq(token_session_new(&t, USER, 1000, 3600), 0);
	n = token_sign(&t, buf, sizeof(buf));
	ck_assert_uint_gt(n, 0);
	/* Every flipped byte is caught. */
	for (i = 0; i < n; i++) {
		strcpy(bad, buf);
		bad[i] ^= 0x01;
		ck_assert_msg(token_verify_kinds(bad, 2000, "s", &got) != TOKEN_OK, "byte %zu", i);
	}
	/* Another session id or user, well formed: the signature fails. */
	strcpy(bad, buf);
	bad[5 + 37] = bad[5 + 37] == '0' ? '1' : '0';
	ck_assert_int_eq(token_verify_kinds(bad, 2000, "s", &got), TOKEN_BAD_SIGNATURE);
	strcpy(bad, buf);
	bad[5 + 35] = '2';
	ck_assert_int_eq(token_verify_kinds(bad, 2000, "s", &got), TOKEN_BAD_SIGNATURE);
	/* Made a user token: neither kind nor signature hold. */
	strcpy(bad, buf);
	bad[3] = 'u';
	ck_assert_int_eq(token_verify_kinds(bad, 2000, "us", &got), TOKEN_BAD_SIGNATURE);
	/* Expiry: valid up to exp, not at it. */
	ck_assert_int_eq(token_verify_kinds(buf, 4599, "s", &got), TOKEN_OK);
	ck_assert_int_eq(token_verify_kinds(buf, 4600, "s", &got), TOKEN_EXPIRED);
	ck_assert_str_eq(got.session, t.session);
	/* Another key: refused. */
	{
		char err[256];

		ck_assert_int_eq(token_load_keys(write_file("other.key", "fedcba9876543210fedcba98"
							    "76543210-other"), "", err, sizeof(err)), 0);
		ck_assert_int_eq(token_verify_kinds(buf, 2000, "s", &got), TOKEN_BAD_SIGNATURE);
	}
}
END_TEST

START_TEST(existing_token_kinds_are_unchanged)
{
	/* Signed before session tokens existed (tests/fuzz/corpus/token/user). */
	static const char known[] = "v1.u.00000000-0000-4000-8000-000000000001.0.0.1699990000."
				    "1700003600.11Jab9ucFWulFd3y2oEwZ_oIJJNJ0pu36MR-e0cKmZk";
	struct token t, got;
	char buf[TOKEN_MAX], err[256];

	ck_assert_int_eq(token_load_keys(write_file("fuzz.key", "boxoffice-fuzzing-key-0123456789abcdef"),
					 "", err, sizeof(err)), 0);
	memset(&t, 0, sizeof(t));
	t.kind = TOKEN_USER;
	strcpy(t.user, USER);
	t.iat = 1699990000;
	t.exp = 1700003600;
	ck_assert_uint_gt(token_sign(&t, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, known);
	ck_assert_int_eq(token_verify(known, 1700000000, &got), TOKEN_OK);
	ck_assert_str_eq(got.session, "");
	ck_assert_int_eq(token_verify_kinds(known, 1700000000, "u", &got), TOKEN_OK);
}
END_TEST

/* ---------------------------------------------------------------- runner */

static Suite *
suite(void)
{
	Suite *s = suite_create("identity");
	TCase *jwt = tcase_create("jwt"), *pw = tcase_create("password"),
	      *tok = tcase_create("session");

	tcase_set_timeout(jwt, 120);
	tcase_set_timeout(pw, 120);
	tcase_add_test(jwt, jwt_valid_tokens_of_each_algorithm);
	tcase_add_test(jwt, jwt_alg_none_is_refused);
	tcase_add_test(jwt, jwt_hs256_with_the_public_key_as_secret_is_refused);
	tcase_add_test(jwt, jwt_rsa_header_on_an_ec_key_is_refused);
	tcase_add_test(jwt, jwt_ec_header_on_an_rsa_key_is_refused);
	tcase_add_test(jwt, jwt_wrong_issuer_is_refused);
	tcase_add_test(jwt, jwt_wrong_audience_is_refused);
	tcase_add_test(jwt, jwt_expired_is_refused);
	tcase_add_test(jwt, jwt_not_yet_valid_is_refused);
	tcase_add_test(jwt, jwt_unknown_kid_is_refused);
	tcase_add_test(jwt, jwt_key_removed_from_the_jwks_is_refused_after_reload);
	tcase_add_test(jwt, jwt_tampered_payload_is_refused);
	tcase_add_test(jwt, jwt_header_jwk_and_jku_are_ignored);
	tcase_add_test(jwt, jwt_bad_subject_is_refused);
	tcase_add_test(jwt, jwt_truncated_oversized_and_garbage_input_is_refused);
	tcase_add_test(jwt, jwt_without_configuration_refuses_everything);
	tcase_add_test(jwt, jwks_files_are_checked_whole);
	tcase_add_test(pw, password_hash_and_verify);
	tcase_add_test(pw, password_policy_gives_reasons);
	tcase_add_test(pw, password_needs_rehash_after_the_cost_is_raised);
	tcase_add_test(pw, password_dummy_verify_costs_a_verify);
	tcase_add_test(pw, email_addresses_are_normalised_and_checked);
	tcase_add_test(pw, auth_settings_have_bounds);
	tcase_add_test(tok, session_token_round_trip);
	tcase_add_test(tok, session_token_is_its_own_kind);
	tcase_add_test(tok, session_token_tampering_and_expiry);
	tcase_add_test(tok, existing_token_kinds_are_unchanged);
	suite_add_tcase(s, jwt);
	suite_add_tcase(s, pw);
	suite_add_tcase(s, tok);
	return s;
}

/* Remove the files the tests wrote, then the directory. */
static void
clean_dir(void)
{
	const char *names[] = { "jwks.json", "huge.json", "token.key", "other.key", "fuzz.key" };
	char path[256];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int
main(void)
{
	SRunner *sr = NULL;
	int failed;

	if (sodium_init() < 0 || mkdtemp(dir) == NULL)
		return 99;
	config_defaults(&cfg);
	rsa1 = keygen("RSA", "2048");
	ec1 = keygen("EC", "P-256");
	ed1 = keygen("ED25519", NULL);
	evil = keygen("ED25519", NULL);
	sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	jwt_free();
	EVP_PKEY_free(rsa1);
	EVP_PKEY_free(ec1);
	EVP_PKEY_free(ed1);
	EVP_PKEY_free(evil);
	clean_dir();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
