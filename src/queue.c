/* queue.c: queue numbers, fair admission and the token check, as Redis Lua scripts. */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "token.h"
#include "util.h"

/*
 * Keys of one concert's queue share the hash tag {c}. The scripts also
 * touch the global known-users set, so Redis runs as one primary (with
 * Sentinel for failover), not as a cluster.
 */
const char *const queue_parts[] = { "seq", "num", "wait", "seen", "active",
				    "admits", "stats", "pause", "tick", NULL };
#define NKEYS 11
#define KNOWN_USERS "users:known"

/*
 * Shared prologue: clock, and admit(): expiry of ACTIVE turns, abandonment
 * of waiters who stopped polling, then admission in queue order within
 * max_active and admit_per_second. Every join and poll runs admit(), so
 * the queue moves
 * without a scheduler and no number of pollers can admit past capacity:
 * scripts run one at a time.
 * Admission work is done at most every 50 ms per concert (a poll in
 * between only reads), so a crowd of pollers costs Redis little, and at
 * most 1,000 people are admitted in one step, so no step stalls Redis.
 * Waiters' last polls are kept minus the "pause" credit: when nobody could
 * poll for half the abandonment time (Redis or the workers down,
 * maintenance), the credit grows by the pause, which stops every waiter's
 * clock for it in O(1).
 * KEYS: seq num wait seen active admits stats pause tick known-users sale.
 * ARGV: max_active admit_per_second active_ttl_ms abandon_ms user number
 *       verified sale sale_ttl_ms use_cached_sale.
 */
#define LUA_PROLOGUE \
"local num, wait, seen, active, admits, stats =\n" \
"  KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]\n" \
"local max_active, per_sec = tonumber(ARGV[1]), tonumber(ARGV[2])\n" \
"local ttl_ms, abandon_ms, user = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]\n" \
"local t = redis.call('TIME')\n" \
"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n" \
"local credit = tonumber(redis.call('GET', KEYS[8]) or '0')\n" \
"local function admit(force)\n" \
"  local last = tonumber(redis.call('GET', KEYS[9]) or '0')\n" \
"  if not force and now - last < 50 then return end\n" \
"  redis.call('SET', KEYS[9], now)\n" \
"  if last > 0 and now - last > abandon_ms / 2 then\n" \
"    credit = credit + now - last\n" \
"    redis.call('SET', KEYS[8], credit)\n" \
"  end\n" \
"  local n = redis.call('ZREMRANGEBYSCORE', active, '-inf', now)\n" \
"  if n > 0 then redis.call('HINCRBY', stats, 'expired', n) end\n" \
"  local gone = redis.call('ZRANGEBYSCORE', seen, '-inf', now - credit - abandon_ms, 'LIMIT', 0, 500)\n" \
"  for _, u in ipairs(gone) do\n" \
"    redis.call('ZREM', wait, u); redis.call('ZREM', seen, u); redis.call('HDEL', num, u)\n" \
"  end\n" \
"  if #gone > 0 then redis.call('HINCRBY', stats, 'abandoned', #gone) end\n" \
"  redis.call('ZREMRANGEBYSCORE', admits, '-inf', now - 60000)\n" \
"  local k = math.min(max_active - redis.call('ZCARD', active),\n" \
"                    per_sec - redis.call('ZCOUNT', admits, now - 999, '+inf'), 1000)\n" \
"  if k <= 0 then return end\n" \
"  local nxt = redis.call('ZPOPMIN', wait, k)\n" \
"  for i = 1, #nxt, 2 do\n" \
"    redis.call('ZADD', active, now + ttl_ms, nxt[i])\n" \
"    redis.call('ZREM', seen, nxt[i])\n" \
"    redis.call('ZADD', admits, now, nxt[i + 1])\n" \
"  end\n" \
"  if #nxt > 0 then redis.call('HINCRBY', stats, 'admitted', #nxt / 2) end\n" \
"end\n" \
"-- a waiter r places from the front: this counts as their poll\n" \
"local function waiting(n, r)\n" \
"  redis.call('ZADD', seen, now - credit, user)\n" \
"  -- admissions over the last minute, for the estimated wait\n" \
"  local cnt = redis.call('ZCARD', admits)\n" \
"  local first = redis.call('ZRANGE', admits, 0, 0, 'WITHSCORES')\n" \
"  local span = 0\n" \
"  if #first > 0 then span = now - tonumber(first[2]) end\n" \
"  return {n, 'WAITING', r, 0, now, cnt, span}\n" \
"end\n" \
"local function place(n)\n" \
"  local a = redis.call('ZSCORE', active, user)\n" \
"  if a and tonumber(a) > now then return {n, 'ACTIVE', 0, tonumber(a), now, 0, 0} end\n" \
"  local r = redis.call('ZRANK', wait, user)\n" \
"  if not r then return {n, 'EXPIRED', 0, 0, now, 0, 0} end\n" \
"  return waiting(n, r)\n" \
"end\n"

/*
 * Join. The concert's sale state is cached next to its queue (KEYS[11],
 * not part of the queue itself): on a miss the caller reads it from the
 * database and calls again with it (ARGV[8]), which stores it for ARGV[9]
 * ms; ARGV[10] '1' lets a cached state answer. A user Redis has not seen
 * before is first confirmed in the database by the caller, then joined
 * with verified=1, which remembers them in the known-users set.
 * Replies: {'SALE'} (state unknown), {'SALE', state, cached} (not on sale
 * or no such concert), {'UNKNOWN', cached}, or the place followed by fresh
 * (1: a new number) and cached (1: the sale state came from Redis).
 */
static struct cache_script join_script = { "join", LUA_PROLOGUE
"local sale, cached = ARGV[8], 0\n"
"if sale == '' then\n"
"  if ARGV[10] == '1' then sale = redis.call('GET', KEYS[11]) end\n"
"  if not sale then return {'SALE'} end\n"
"  cached = 1\n"
"elseif tonumber(ARGV[9]) > 0 then\n"
"  redis.call('SET', KEYS[11], sale, 'PX', ARGV[9])\n"
"end\n"
"if sale ~= 't' then return {'SALE', sale, cached} end\n"
"if ARGV[7] == '1' then redis.call('SADD', KEYS[10], user)\n"
"elseif redis.call('SISMEMBER', KEYS[10], user) == 0 then return {'UNKNOWN', cached} end\n"
"admit(false)\n"
"local p\n"
"local n = redis.call('HGET', num, user)\n"
"if n then\n"
"  n = tonumber(n)\n"
"  local a = redis.call('ZSCORE', active, user)\n"
"  if a and tonumber(a) > now then\n"
"    p = {n, 'ACTIVE', 0, tonumber(a), now, 0, 0}\n"
"  elseif a then\n"
"    -- a turn that has run out, not yet tidied by admit(): it is over\n"
"    redis.call('ZREM', active, user)\n"
"    redis.call('HINCRBY', stats, 'expired', 1)\n"
"  else\n"
"    local r = redis.call('ZRANK', wait, user)\n"
"    if r then p = waiting(n, r) end\n"
"  end\n"
"  if p then p[8] = 0; p[9] = cached; return p end\n"
"end\n"
"-- a new place, at the back of the queue\n"
"n = redis.call('INCR', KEYS[1])\n"
"redis.call('HSET', num, user, n)\n"
"redis.call('HINCRBY', stats, 'joined', 1)\n"
"local room = redis.call('ZCARD', active) < max_active\n"
"if room and redis.call('EXISTS', wait) == 0\n"
"   and redis.call('ZCOUNT', admits, now - 999, '+inf') < per_sec then\n"
"  -- nobody waiting and room: straight in, same effect as admit()\n"
"  redis.call('ZADD', active, now + ttl_ms, user)\n"
"  redis.call('ZADD', admits, now, n)\n"
"  redis.call('HINCRBY', stats, 'admitted', 1)\n"
"  p = {n, 'ACTIVE', 0, now + ttl_ms, now, 0, 0}\n"
"else\n"
"  redis.call('ZADD', wait, n, user)\n"
"  if room then\n"
"    -- others wait too: admission in order, which may reach this one\n"
"    admit(true)\n"
"    p = place(n)\n"
"  else\n"
"    -- the newest number is the last in the queue\n"
"    p = waiting(n, redis.call('ZCARD', wait) - 1)\n"
"  end\n"
"end\n"
"p[8] = 1; p[9] = cached\n"
"return p\n", "" };

static struct cache_script poll_script = { "poll", LUA_PROLOGUE
"admit(false)\n"
"local n = redis.call('HGET', num, user)\n"
"if not n or tonumber(n) ~= tonumber(ARGV[6]) then\n"
"  return {tonumber(ARGV[6]), 'EXPIRED', 0, 0, now, 0, 0}\n"
"end\n"
"return place(tonumber(n))\n", "" };

/*
 * The booking check and the end of a turn both concern one place: the
 * token's queue number must still be the user's, or a token from an
 * earlier turn would count for (or end) a later one.
 * KEYS: active num. ARGV: user number.
 */
static struct cache_script active_script = { "active",
"local n = redis.call('HGET', KEYS[2], ARGV[1])\n"
"if not n or n ~= ARGV[2] then return 0 end\n"
"return tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '0')\n", "" };

static struct cache_script revoke_script = { "revoke",
"local n = redis.call('HGET', KEYS[2], ARGV[1])\n"
"if not n or n ~= ARGV[2] then return 0 end\n"
"return redis.call('ZREM', KEYS[1], ARGV[1])\n", "" };

/* Run one of the two scripts above for t's place. Returns the reply or NULL. */
static redisReply *
place_script(struct cache_script *s, const struct token *t)
{
	char active[48], num[48], number[24];
	const char *argv[4] = { active, num, t->user, number };

	queue_key(active, sizeof(active), t->concert, "active");
	queue_key(num, sizeof(num), t->concert, "num");
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

int
queue_key(char *buf, size_t len, int64_t concert, const char *what)
{
	return snprintf(buf, len, "q:{%lld}:%s", (long long)concert, what);
}

/*
 * The settings every script run passes, as text: formatted once per
 * configuration (queue_configure()), not per request.
 */
static struct {
	bool ready;
	char max_active[24], admit_per_second[24], active_ttl_ms[24], abandon_ms[24];
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
	snprintf(args.abandon_ms, sizeof(args.abandon_ms), "%lld",
		 (long long)cfg.abandon_after * 1000);
	/* The sale state is a read-cache entry: it obeys the cache lever. */
	snprintf(args.sale_ttl_ms, sizeof(args.sale_ttl_ms), "%lld",
		 cfg.cache == CACHE_OFF ? 0LL : (long long)cfg.cache_ttl_ms);
	args.use_cached_sale = cfg.cache == CACHE_ON ? "1" : "0";
	args.ready = true;
}

/*
 * Run script for (concert, user[, number]) and decode its reply. sale is
 * the sale state to store ('t', 'f' or 'n'), or 0; *cached (if not NULL)
 * tells whether the sale state came from Redis. Returns a join result;
 * for the poll, QJ_AGAIN means a place was read.
 */
static enum queue_join
run(struct cache_script *s, int64_t concert, const char *user, int64_t number,
    int verified, char sale, struct queue_place *p, int *cached)
{
	char prefix[32], keys[NKEYS][40], num[24], state[2] = { sale, '\0' };
	const char *argv[NKEYS + 10];
	redisReply *rep = NULL, **e;
	enum queue_join rc = QJ_DOWN;
	int i, argc = 0;
	double rate;

	if (!args.ready)
		queue_configure();
	/* Every key is the concert's prefix and a part name. */
	queue_key(prefix, sizeof(prefix), concert, "");
	for (i = 0; i < NKEYS - 2; i++) {
		snprintf(keys[i], sizeof(keys[i]), "%s%s", prefix, queue_parts[i]);
		argv[argc++] = keys[i];
	}
	argv[argc++] = KNOWN_USERS;
	snprintf(keys[NKEYS - 1], sizeof(keys[NKEYS - 1]), "%ssale", prefix);
	argv[argc++] = keys[NKEYS - 1];
	util_i64(num, sizeof(num), number);
	argv[argc++] = args.max_active;
	argv[argc++] = args.admit_per_second;
	argv[argc++] = args.active_ttl_ms;
	argv[argc++] = args.abandon_ms;
	argv[argc++] = user;
	argv[argc++] = num;
	argv[argc++] = verified ? "1" : "0";
	argv[argc++] = state;
	argv[argc++] = args.sale_ttl_ms;
	argv[argc++] = args.use_cached_sale;
	if (cached != NULL)
		*cached = 0;

	rep = cache_eval(s, NKEYS, argc, argv, NULL);
	if (rep == NULL)
		goto out;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1) {
		log_msg("queue script %s: unexpected reply%s%s", s->name,
			rep->type == REDIS_REPLY_ERROR ? ": " : "",
			rep->type == REDIS_REPLY_ERROR ? rep->str : "");
		goto out;
	}
	e = rep->element;
	if (e[0]->type == REDIS_REPLY_STRING) {
		if (strcmp(e[0]->str, "UNKNOWN") == 0) {
			if (cached != NULL)
				*cached = rep->elements > 1 && e[1]->integer;
			rc = QJ_USER_UNKNOWN;
		} else if (rep->elements < 3) {
			rc = QJ_SALE_UNKNOWN;
		} else {
			if (cached != NULL)
				*cached = (int)e[2]->integer;
			rc = e[1]->str[0] == 'f' ? QJ_NOT_ON_SALE : QJ_NO_CONCERT;
		}
		goto out;
	}
	if (rep->elements < 7) {
		log_msg("queue script %s: unexpected reply", s->name);
		goto out;
	}
	memset(p, 0, sizeof(*p));
	p->number = e[0]->integer;
	p->status = strcmp(e[1]->str, "ACTIVE") == 0 ? Q_ACTIVE :
		    strcmp(e[1]->str, "WAITING") == 0 ? Q_WAITING : Q_EXPIRED;
	p->position = p->status == Q_WAITING ? e[2]->integer : 0;
	p->active_until_ms = e[3]->integer;
	p->now_ms = e[4]->integer;
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
	rc = rep->elements > 7 && e[7]->integer ? QJ_NEW : QJ_AGAIN;
	if (cached != NULL)
		*cached = rep->elements > 8 && e[8]->integer;
out:
	if (rep != NULL)
		freeReplyObject(rep);
	return rc;
}

enum queue_join
queue_join(int64_t concert, const char *user, int verified, char sale,
	   struct queue_place *p)
{
	enum queue_join rc;
	int cached;

	rc = run(&join_script, concert, user, 0, verified, sale, p, &cached);
	/* A look-up of the sale state in the read cache, when one was made. */
	if (rc != QJ_DOWN && sale == 0 && cfg.cache == CACHE_ON)
		metrics_add(cached ? M_CACHE_HITS : M_CACHE_MISSES, 1);
	return rc;
}

int
queue_poll(int64_t concert, const char *user, int64_t number, struct queue_place *p)
{
	return run(&poll_script, concert, user, number, 1, 0, p, NULL) == QJ_AGAIN ? 0 : -1;
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
