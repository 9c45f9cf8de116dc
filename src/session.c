/* session.c: signed-in sessions' revocation and sign-in throttling, kept in Redis. */
#include "session.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "config.h"
#include "keys.h"
#include "log.h"
#include "lua_scripts.h"

static struct cache_script check_script = { "signin_check", LUA_SIGNIN_CHECK, "" };
static struct cache_script fail_script = { "signin_fail", LUA_SIGNIN_FAIL, "" };

/*
 * Sign-outs Redis could not take, written by the next session check once
 * it answers. Bounded: past PENDING_MAX the oldest is dropped (it then
 * ends at its signed expiry, as before sign-out existed).
 */
#define PENDING_MAX 256
static struct token pending[PENDING_MAX];
static int npending;

/* Write t's sign-out marker. Returns 0, or -1 if Redis did not take it. */
static int
store(const struct token *t)
{
	char key[64], ttl[24];
	const char *argv[5] = { "SET", key, "1", "EX", ttl };
	int64_t left = t->exp - (int64_t)time(NULL);
	redisReply *rep;
	int rc = -1;

	if (left <= 0)
		return 0;	/* over anyway */
	keys_session_ended(key, sizeof(key), t->session);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)left);
	rep = cache_argv(5, argv, NULL);
	if (rep != NULL && rep->type != REDIS_REPLY_ERROR)
		rc = 0;
	if (rep != NULL)
		freeReplyObject(rep);
	return rc;
}

/* Write what was kept back; stop at the first failure. */
static void
flush_pending(void)
{
	while (npending > 0) {
		if (store(&pending[npending - 1]) != 0)
			return;
		npending--;
	}
}

/* Is t's session among those kept back? */
static int
is_pending(const struct token *t)
{
	int i;

	for (i = 0; i < npending; i++)
		if (strcmp(pending[i].session, t->session) == 0)
			return 1;
	return 0;
}

enum session_state
session_check(const struct token *t)
{
	char ended[64], after[64];
	const char *argv[3] = { "MGET", ended, after };
	enum session_state st = SESSION_UNKNOWN;
	redisReply *rep;

	if (npending > 0) {
		flush_pending();
		if (is_pending(t))
			return SESSION_ENDED;
	}
	keys_session_ended(ended, sizeof(ended), t->session);
	keys_sessions_after(after, sizeof(after), t->user);
	rep = cache_argv(3, argv, NULL);
	if (rep == NULL)
		goto out;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2)
		goto out;
	st = SESSION_ON;
	if (rep->element[0]->type == REDIS_REPLY_STRING)
		st = SESSION_ENDED;
	else if (rep->element[1]->type == REDIS_REPLY_STRING &&
		 t->iat <= strtoll(rep->element[1]->str, NULL, 10))
		st = SESSION_ENDED;
out:
	if (rep != NULL)
		freeReplyObject(rep);
	return st;
}

int
session_revoke(const struct token *t)
{
	flush_pending();
	if (store(t) == 0)
		return 0;
	log_msg("session: could not store a sign-out (redis down); this worker refuses "
		"the session and stores it when redis answers");
	if (npending == PENDING_MAX)
		memmove(pending, pending + 1, sizeof(pending[0]) * --npending);
	pending[npending++] = *t;
	return 1;
}

/*
 * The account's counter key: named by a digest of the address, so that
 * Redis holds no e-mail addresses.
 */
static void
account_key(char *buf, size_t len, const char *email)
{
	unsigned char d[16];
	char hex[33];

	crypto_generichash(d, sizeof(d), (const unsigned char *)email, strlen(email), NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
	keys_signin_fail_account(buf, len, hex);
}

/* Fill keys[] with the counters of email and addr; returns how many. */
static int
counters(char keys[2][96], const char *email, const char *addr)
{
	int n = 0;

	account_key(keys[n++], sizeof(keys[0]), email);
	if (addr != NULL && *addr != '\0' &&
	    keys_signin_fail_addr(keys[n], sizeof(keys[0]), addr) < (int)sizeof(keys[0]))
		n++;
	return n;
}

int64_t
session_throttled(const char *email, const char *addr)
{
	char keys[2][96], limit[24];
	const char *argv[3];
	redisReply *rep;
	int64_t wait = 0;
	int n = counters(keys, email, addr), i;

	for (i = 0; i < n; i++)
		argv[i] = keys[i];
	snprintf(limit, sizeof(limit), "%lld", (long long)cfg.max_failures);
	argv[n] = limit;
	rep = cache_eval(&check_script, n, n + 1, argv, NULL);
	if (rep != NULL && rep->type == REDIS_REPLY_INTEGER)
		wait = rep->integer;
	if (rep != NULL)
		freeReplyObject(rep);
	return wait;
}

void
session_failed(const char *email, const char *addr)
{
	char keys[2][96], window[24];
	const char *argv[3];
	redisReply *rep;
	int n = counters(keys, email, addr), i;

	for (i = 0; i < n; i++)
		argv[i] = keys[i];
	snprintf(window, sizeof(window), "%lld", (long long)cfg.failure_window);
	argv[n] = window;
	rep = cache_eval(&fail_script, n, n + 1, argv, NULL);
	if (rep != NULL)
		freeReplyObject(rep);
}

void
session_succeeded(const char *email)
{
	char key[96];
	const char *argv[2] = { "DEL", key };
	redisReply *rep;

	account_key(key, sizeof(key), email);
	if ((rep = cache_argv(2, argv, NULL)) != NULL)
		freeReplyObject(rep);
}
