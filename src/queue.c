/* queue.c: queue numbers, fair admission and the token check, as Redis Lua scripts. */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "cache.h"
#include "config.h"
#include "keys.h"
#include "log.h"
#include "lua_scripts.h"
#include "metrics.h"
#include "token.h"
#include "util.h"

/*
 * The scripts, from src/lua/ (see there what each does). The join, the
 * poll and the progress read share their start, queue_prologue.lua.
 */
static struct cache_script join_script = { "join", LUA_QUEUE_PROLOGUE LUA_QUEUE_JOIN, "" };
static struct cache_script poll_script = { "poll", LUA_QUEUE_PROLOGUE LUA_QUEUE_POLL, "" };
static struct cache_script active_script = { "active", LUA_QUEUE_ACTIVE, "" };
static struct cache_script revoke_script = { "revoke", LUA_QUEUE_REVOKE, "" };
static struct cache_script progress_script = {
	"progress", LUA_QUEUE_PROLOGUE LUA_QUEUE_PROGRESS, ""
};

/*
 * The join, poll and progress scripts' KEYS: every part of the concert's
 * queue in the order of keys_parts[], the known users, the concert's sale
 * state.
 */
#define K_KNOWN_USERS KP__MAX
#define K_SALE (KP__MAX + 1)
#define NKEYS (KP__MAX + 2)

/* Their ARGV, in the order queue_prologue.lua names them. */
enum script_arg {
	A_MAX_ACTIVE, A_PER_SEC, A_TTL_MS, A_CLAIM_MS,	/* the settings */
	A_USER, A_NUMBER, A_VERIFIED, A_SALE, A_SALE_TTL_MS, A_USE_CACHED_SALE, A_SEED,
	A__MAX
};
_Static_assert(NKEYS + A__MAX <= CACHE_EVAL_MAX_ARGS, "too many script arguments for cache_eval()");

const char *const queue_event_names[QE__MAX] = {
	[QE_ADMITTED] = "admitted", [QE_ABANDONED] = "abandoned",
	[QE_EXPIRED] = "expired", [QE_JOINED] = "joined",
};

/*
 * Run the active or the revoke script for t's place. Returns the reply or
 * NULL. KEYS: active num. ARGV: user number.
 */
static redisReply *
place_script(struct cache_script *s, const struct token *t)
{
	char active[48], num[48], number[24];
	const char *argv[4] = { active, num, t->user, number };

	keys_queue(active, sizeof(active), t->concert, KP_ACTIVE);
	keys_queue(num, sizeof(num), t->concert, KP_NUM);
	snprintf(number, sizeof(number), "%lld", (long long)t->number);
	return cache_eval(s, 2, 4, argv, NULL);
}

int64_t
queue_active_until(const struct token *t)
{
	redisReply *rep = place_script(&active_script, t);
	int64_t until;

	if (rep == NULL)
		return -1;
	until = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
	freeReplyObject(rep);
	return until;
}

/*
 * The settings every script run passes, as text: formatted once per
 * configuration (queue_configure()), not per request.
 */
static struct {
	bool ready;
	char max_active[24], admit_per_second[24], active_ttl_ms[24], claim_ms[24];
	char sale_ttl_ms[24];
	const char *use_cached_sale;
} args;

void
queue_configure(void)
{
	snprintf(args.max_active, sizeof(args.max_active), "%lld", (long long)cfg.max_active);
	snprintf(args.admit_per_second, sizeof(args.admit_per_second), "%lld",
		 (long long)cfg.admit_per_second);
	snprintf(args.active_ttl_ms, sizeof(args.active_ttl_ms), "%lld",
		 (long long)cfg.active_ttl * 1000);
	snprintf(args.claim_ms, sizeof(args.claim_ms), "%lld",
		 (long long)cfg.claim_window * 1000);
	/* The sale state is a read-cache entry: it obeys the cache lever. */
	snprintf(args.sale_ttl_ms, sizeof(args.sale_ttl_ms), "%lld",
		 cfg.cache == CACHE_OFF ? 0LL : (long long)cfg.cache_ttl_ms);
	args.use_cached_sale = cfg.cache == CACHE_ON ? "1" : "0";
	args.ready = true;
}

/* An integer reply's value, a string reply's number; -1 for anything else. */
static int64_t
reply_int(redisReply *r)
{
	int64_t v = -1;

	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_INTEGER)
		v = r->integer;
	else if (r->type == REDIS_REPLY_STRING)
		v = strtoll(r->str, NULL, 10);
	else if (r->type == REDIS_REPLY_NIL)
		v = 0;
	freeReplyObject(r);
	return v;
}

/* The queues whose seq keys are in one SCAN page. */
static void
stats_page(const redisReply *found, void (*each)(const struct queue_stats *, void *),
	   void *arg)
{
	struct queue_stats q;
	char key[64];
	size_t i;
	int e;

	for (i = 0; i < found->elements; i++) {
		if (found->element[i]->type != REDIS_REPLY_STRING ||
		    (q.concert = keys_queue_concert(found->element[i]->str, KP_SEQ)) <= 0)
			continue;
		keys_queue(key, sizeof(key), q.concert, KP_WAIT);
		q.waiting = reply_int(cache_command("ZCARD %s", key));
		keys_queue(key, sizeof(key), q.concert, KP_ACTIVE);
		q.active = reply_int(cache_command("ZCARD %s", key));
		keys_queue(key, sizeof(key), q.concert, KP_STATS);
		for (e = 0; e < QE__MAX; e++)
			q.events[e] = reply_int(cache_command("HGET %s %s", key,
							      queue_event_names[e]));
		each(&q, arg);
	}
}

void
queue_stats(void (*each)(const struct queue_stats *s, void *arg), void *arg)
{
	redisReply *page = NULL;
	char cursor[32] = "0", pattern[32];
	int steps = 0;

	keys_queue_pattern(pattern, sizeof(pattern), KP_SEQ);
	do {
		page = cache_command("SCAN %s MATCH %s COUNT 1000", cursor, pattern);
		if (page == NULL || page->type != REDIS_REPLY_ARRAY || page->elements != 2)
			break;
		snprintf(cursor, sizeof(cursor), "%s", page->element[0]->str);
		stats_page(page->element[1], each, arg);
		freeReplyObject(page);
		page = NULL;
	} while (strcmp(cursor, "0") != 0 && ++steps < 100);
	if (page != NULL)
		freeReplyObject(page);
}

/*
 * The reply of a script that asked for something: {'SALE'} (the sale
 * state), {'SALE', phase, cached}, {'UNKNOWN', cached}. Sets *cached.
 */
static enum queue_join
asked(redisReply *rep, int *cached)
{
	redisReply **e = rep->element;

	if (strcmp(e[0]->str, "UNKNOWN") == 0) {
		*cached = rep->elements > 1 && e[1]->integer;
		return QJ_USER_UNKNOWN;
	}
	if (strcmp(e[0]->str, "SALE") != 0)
		return QJ_DOWN;
	if (rep->elements < 3)
		return QJ_SALE_UNKNOWN;
	*cached = (int)e[2]->integer;
	switch (e[1]->str[0]) {
	case 'f':
		return QJ_NOT_ON_SALE;
	case 'c':
		return QJ_SALE_CLOSED;
	default:
		return QJ_NO_CONCERT;
	}
}

/*
 * Run script s for (concert, user, number) with the queue's KEYS and the
 * settings; number is the rate window for the progress script. sale, when
 * not NULL, is the sale state read from the database, which the script
 * stores. When the script asks for the pre-queue's draw ({'DRAW'}), it
 * runs again with a fresh seed from libsodium's CSPRNG (32 random bytes,
 * in hex): only the run that draws consumes one. Returns the reply (an
 * array whose first element is a string, or a place of 10 elements) or
 * NULL.
 */
static redisReply *
eval_queue(struct cache_script *s, int64_t concert, const char *user, int64_t number,
	   int verified, const struct queue_sale *sale)
{
	char keys[NKEYS][40], num[24], state[64], seed[65];
	unsigned char raw[32];
	const char *argv[NKEYS + A__MAX], **arg = argv + NKEYS;
	redisReply *rep = NULL;
	int i;

	if (!args.ready)
		queue_configure();
	for (i = 0; i < KP__MAX; i++) {
		keys_queue(keys[i], sizeof(keys[i]), concert, (enum keys_part)i);
		argv[i] = keys[i];
	}
	argv[K_KNOWN_USERS] = keys_known_users;
	keys_queue_sale(keys[K_SALE], sizeof(keys[K_SALE]), concert);
	argv[K_SALE] = keys[K_SALE];
	util_i64(num, sizeof(num), number);
	/* The form queue_prologue.lua's sale_phase() reads. */
	if (sale == NULL)
		state[0] = '\0';
	else if (sale->state == 't')
		snprintf(state, sizeof(state), "t|%lld|%lld", (long long)sale->opens_ms,
			 (long long)sale->closes_ms);
	else
		snprintf(state, sizeof(state), "%c", sale->state);
	seed[0] = '\0';
	arg[A_MAX_ACTIVE] = args.max_active;
	arg[A_PER_SEC] = args.admit_per_second;
	arg[A_TTL_MS] = args.active_ttl_ms;
	arg[A_CLAIM_MS] = args.claim_ms;
	arg[A_USER] = user;
	arg[A_NUMBER] = num;
	arg[A_VERIFIED] = verified ? "1" : "0";
	arg[A_SALE] = state;
	arg[A_SALE_TTL_MS] = args.sale_ttl_ms;
	arg[A_USE_CACHED_SALE] = args.use_cached_sale;
	arg[A_SEED] = seed;

	for (i = 0; i < 2; i++) {
		rep = cache_eval(s, NKEYS, NKEYS + A__MAX, argv, NULL);
		if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 1 ||
		    rep->element[0]->type != REDIS_REPLY_STRING ||
		    strcmp(rep->element[0]->str, "DRAW") != 0 || seed[0] != '\0')
			break;
		freeReplyObject(rep);
		rep = NULL;
		randombytes_buf(raw, sizeof(raw));
		sodium_bin2hex(seed, sizeof(seed), raw, sizeof(raw));
	}
	if (rep != NULL && (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
			    (rep->element[0]->type != REDIS_REPLY_STRING && rep->elements < 10))) {
		log_msg("queue script %s: unexpected reply%s%s", s->name,
			rep->type == REDIS_REPLY_ERROR ? ": " : "",
			rep->type == REDIS_REPLY_ERROR ? rep->str : "");
		freeReplyObject(rep);
		rep = NULL;
	}
	return rep;
}

/*
 * Run the join or the poll script and decode its reply into *p. *cached
 * (if not NULL) tells whether the sale state came from Redis. Returns a
 * join result; for the poll, QJ_AGAIN means a place was read.
 */
static enum queue_join
run(struct cache_script *s, int64_t concert, const char *user, int64_t number,
    int verified, const struct queue_sale *sale, struct queue_place *p, int *cached)
{
	redisReply *rep = NULL, **e;
	enum queue_join rc = QJ_DOWN;
	int dummy;
	double rate;

	if (cached == NULL)
		cached = &dummy;
	*cached = 0;
	if ((rep = eval_queue(s, concert, user, number, verified, sale)) == NULL)
		goto out;
	e = rep->element;
	if (e[0]->type == REDIS_REPLY_STRING) {
		rc = asked(rep, cached);
		goto out;
	}
	memset(p, 0, sizeof(*p));
	p->number = e[0]->integer;
	p->status = strcmp(e[1]->str, "ACTIVE") == 0 ? Q_ACTIVE :
		    strcmp(e[1]->str, "WAITING") == 0 ? Q_WAITING :
		    strcmp(e[1]->str, "PRE_QUEUE") == 0 ? Q_PRE_QUEUE : Q_EXPIRED;
	p->position = p->status == Q_WAITING ? e[2]->integer : 0;
	p->active_until_ms = e[3]->integer;
	p->now_ms = e[4]->integer;
	p->opens_ms = e[9]->integer;
	/* Admissions seen over the last minute (or since the first of them),
	 * so the estimate follows the rate really achieved. */
	rate = e[6]->integer > 0 ? (double)e[5]->integer * 1000.0 / (double)e[6]->integer
				 : (double)e[5]->integer;
	if (p->status != Q_WAITING)
		p->eta_s = 0;
	else if (rate <= 0)
		p->eta_s = -1;
	else
		p->eta_s = (int64_t)((double)(p->position + 1) / rate + 0.999);
	rc = e[7]->integer ? QJ_NEW : QJ_AGAIN;
	*cached = (int)e[8]->integer;
out:
	if (rep != NULL)
		freeReplyObject(rep);
	return rc;
}

enum queue_join
queue_join(int64_t concert, const char *user, int verified, const struct queue_sale *sale,
	   struct queue_place *p)
{
	enum queue_join rc;
	int cached;

	rc = run(&join_script, concert, user, 0, verified, sale, p, &cached);
	/* A look-up of the sale state in the read cache, when one was made. */
	if (rc != QJ_DOWN && sale == NULL && cfg.cache == CACHE_ON)
		metrics_add(cached ? M_CACHE_HITS : M_CACHE_MISSES, 1);
	return rc;
}

int
queue_progress(int64_t concert, const struct queue_sale *sale, struct queue_progress *p)
{
	redisReply *rep = NULL, **e;
	int rc = -1, i;

	/* Maintenance closes the status route: nobody could claim a turn. */
	rep = eval_queue(&progress_script, concert, "", QUEUE_RATE_WINDOW_S * 1000,
			 !cfg.maintenance, sale);
	if (rep == NULL)
		goto out;
	e = rep->element;
	if (rep->elements == 1) {
		rc = strcmp(e[0]->str, "SALE") == 0 ? 1 : -1;
		goto out;
	}
	if (rep->elements < 7 || e[0]->type != REDIS_REPLY_STRING) {
		log_msg("queue script progress: unexpected reply");
		goto out;
	}
	for (i = 1; i < 7; i++)
		if (e[i]->type != REDIS_REPLY_INTEGER) {
			log_msg("queue script progress: unexpected reply");
			goto out;
		}
	memset(p, 0, sizeof(*p));
	p->sale = e[0]->str[0];
	p->served = e[1]->integer;
	p->waiting = e[2]->integer;
	p->admitted_recently = e[3]->integer;
	p->now_ms = e[4]->integer;
	p->opens_ms = e[5]->integer;
	p->pre_queued = e[6]->integer;
	rc = 0;
out:
	if (rep != NULL)
		freeReplyObject(rep);
	return rc;
}

enum queue_join
queue_poll(int64_t concert, const char *user, int64_t number, const struct queue_sale *sale,
	   struct queue_place *p)
{
	return run(&poll_script, concert, user, number, 1, sale, p, NULL);
}

/*
 * Turns whose end could not be written because Redis was unusable, kept
 * by this worker and written when Redis answers again (every booking
 * check tries), so that a payer does not stay ACTIVE after an outage.
 * Bounded: past PENDING_MAX the oldest are dropped and end at expiry.
 */
#define PENDING_MAX 256
static struct token pending[PENDING_MAX];
static int npending;

static void
flush_pending(void)
{
	redisReply *rep;
	int i = 0;

	while (i < npending) {
		if (pending[i].exp <= (int64_t)time(NULL)) {
			pending[i] = pending[--npending];	/* over anyway */
			continue;
		}
		if ((rep = place_script(&revoke_script, &pending[i])) == NULL)
			return;		/* still down: keep them */
		freeReplyObject(rep);
		pending[i] = pending[--npending];
	}
}

enum queue_turn
queue_turn(const struct token *t)
{
	int64_t until;

	if (npending > 0)
		flush_pending();
	if ((until = queue_active_until(t)) < 0)
		return QT_UNKNOWN;
	return until > (int64_t)time(NULL) * 1000 ? QT_ON : QT_ENDED;
}

void
queue_revoke(const struct token *t)
{
	redisReply *rep;

	flush_pending();
	rep = place_script(&revoke_script, t);

	if (rep == NULL) {
		log_msg("queue: could not end a paying user's turn (redis down); "
			"it will be ended when redis answers");
		if (npending == PENDING_MAX)
			memmove(pending, pending + 1, sizeof(pending[0]) * --npending);
		pending[npending++] = *t;
		return;
	}
	freeReplyObject(rep);
}
