/* fuzz_jwt.c: libFuzzer target for JWT verification against a fixed JWKS. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"

/*
 * The public halves of an RSA-2048, a P-256 and an Ed25519 key, whose
 * private halves signed the tokens in corpus/jwt and were then thrown
 * away: genuine tokens verify and mutate from there.
 */
static const char jwks[] =
	"{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"rsa\",\"use\":\"sig\",\"alg\":\"RS2"
	"56\",\"n\":\"o6hRZ8isuZxKPWGeGyRWEYpUEnnoWxVs_XR2rlAKklfulcd"
	"6gpF1bl_WyNkR1r2jVugkrpBTOvtiCqNckX8YFXNrt5Qsul3CJFDcqjR"
	"bbUIVjxSDHUEjhc4UyqCS182RORAgIeBpGoQmc8j-NVxmpt4NYtQmZKw"
	"EoBEt1rVpyop42jN8RNhzgov1yGCfpG5sPEONpKu1NpmSTwmx_EpakYv"
	"_KrdCyKi2ECIAuBOvkbEZeUpBAlZkpAfyC-EIx479iljuTqOv-xGFcCG"
	"rYAPHpFXDCrLCoeHeZFtPwgUwt5jvJDjaQt3roINyb5ApIGuTXh3AoH1"
	"n8A_6JEHTBLhnRQ\",\"e\":\"AQAB\"},{\"kty\":\"EC\",\"crv\":\"P-256\",\""
	"kid\":\"ec\",\"x\":\"-dUCt65SdAm2WGk9uiApWY3luQJ01b-gxdRFsMUm8"
	"c4\",\"y\":\"agrOfFrYfB2fTEgGFfNH3DVno3qYsPhWUWA666TCa5Q\"},{"
	"\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed\",\"x\":\"RVfIvR-Ab_TM"
	"KCvYVyHoou44-s9Ed3Z2tx_BcLrRxxE\"}]}";

static const struct jwt_expect want = {
	"https://id.example.test/realms/boxoffice", "boxoffice", 30
};

#define NOW 1700000000	/* the seed tokens are valid then */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	char *text, sub[JWT_SUB_MAX], err[256];
	enum jwt_err e;
	size_t i;

	if (!ready) {
		struct jwt_keys *k = jwt_keys_parse(jwks, sizeof(jwks) - 1, err, sizeof(err));

		if (k == NULL)
			abort();
		jwt_keys_use(k);
		ready = 1;
	}
	if (size > JWT_MAX + 16 || (text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	e = jwt_verify(text, NOW, &want, sub);
	/* What verifies names a subject of 1 to 255 printable characters. */
	if (e == JWT_OK) {
		for (i = 0; sub[i] != '\0'; i++)
			if (sub[i] <= 0x20 || sub[i] > 0x7e)
				abort();
		if (i == 0 || i >= JWT_SUB_MAX)
			abort();
	} else if (sub[0] != '\0')
		abort();
	free(text);
	return 0;
}
