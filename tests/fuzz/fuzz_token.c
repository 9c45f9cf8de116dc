/* fuzz_token.c: libFuzzer target for bearer token verification. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "token.h"

static int ready;

/* A fixed key, so that genuine tokens in the corpus verify and mutate. */
static void
setup(void)
{
	static const char key[] = "boxoffice-fuzzing-key-0123456789abcdef";
	char path[] = "/tmp/boxoffice-fuzz-key-XXXXXX", err[256];
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, key, sizeof(key) - 1) != (ssize_t)(sizeof(key) - 1) ||
	    token_load_keys(path, "", err, sizeof(err)) != 0)
		abort();
	close(fd);
	unlink(path);
	ready = 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct token t, again;
	char buf[1024], signed_buf[TOKEN_MAX];
	enum token_err e;

	if (!ready)
		setup();
	if (size >= sizeof(buf))
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	e = token_verify(buf, 1700000000, &t);
	/* Whatever verified must sign back to a token with the same claims. */
	if (e == TOKEN_OK) {
		if (token_sign(&t, signed_buf, sizeof(signed_buf)) == 0 ||
		    token_verify(signed_buf, 1700000000, &again) != TOKEN_OK ||
		    strcmp(again.user, t.user) != 0 || again.concert != t.concert ||
		    again.exp != t.exp)
			abort();
	}
	/* The same for session tokens, which only token_verify_kinds() takes. */
	e = token_verify_kinds(buf, 1700000000, "s", &t);
	if (e == TOKEN_OK) {
		if (t.kind != TOKEN_SESSION || token_sign(&t, signed_buf, sizeof(signed_buf)) == 0 ||
		    token_verify_kinds(signed_buf, 1700000000, "s", &again) != TOKEN_OK ||
		    strcmp(again.user, t.user) != 0 || strcmp(again.session, t.session) != 0 ||
		    again.exp != t.exp)
			abort();
	}
	return 0;
}
