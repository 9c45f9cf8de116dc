/* keys.c: the one place where Redis key names are spelled. */
#include "keys.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

const char keys_known_users[] = "users:known";
const char keys_concerts[] = "c:concerts";

const struct keys_part_def keys_parts[KP__MAX] = {
	[KP_SEQ] = { "seq", KEYS_STRING },
	[KP_NUM] = { "num", KEYS_HASH },
	[KP_WAIT] = { "wait", KEYS_ZSET },
	[KP_CLAIM] = { "claim", KEYS_ZSET },
	[KP_ACTIVE] = { "active", KEYS_ZSET },
	[KP_ADMITS] = { "admits", KEYS_ZSET },
	[KP_STATS] = { "stats", KEYS_HASH },
	[KP_TICK] = { "tick", KEYS_STRING },
	[KP_SERVED] = { "served", KEYS_STRING },
	[KP_PRE] = { "pre", KEYS_ZSET },
	[KP_SEED] = { "seed", KEYS_STRING },
	[KP_DRAW] = { "draw", KEYS_ZSET },
};

int
keys_schedules(char *buf, size_t len, int64_t concert)
{
	return snprintf(buf, len, "c:schedules:%" PRId64, concert);
}

int
keys_seat_map(char *buf, size_t len, int64_t schedule)
{
	return snprintf(buf, len, "c:seats:%" PRId64, schedule);
}

int
keys_seat_version(char *buf, size_t len, int64_t schedule)
{
	return snprintf(buf, len, "c:seatsv:%" PRId64, schedule);
}

/*
 * Keys of one concert's queue share the hash tag {concert}. The scripts
 * also touch the global known-users set, so Redis runs as one primary
 * (with Sentinel for failover), not as a cluster.
 */
static int
queue_name(char *buf, size_t len, const char *concert, const char *what)
{
	return snprintf(buf, len, "q:{%s}:%s", concert, what);
}

int
keys_queue(char *buf, size_t len, int64_t concert, enum keys_part part)
{
	char id[24];

	snprintf(id, sizeof(id), "%" PRId64, concert);
	return queue_name(buf, len, id, keys_parts[part].name);
}

int
keys_queue_sale(char *buf, size_t len, int64_t concert)
{
	char id[24];

	snprintf(id, sizeof(id), "%" PRId64, concert);
	return queue_name(buf, len, id, "sale");
}

int
keys_queue_pattern(char *buf, size_t len, enum keys_part part)
{
	return queue_name(buf, len, "*", keys_parts[part].name);
}

int64_t
keys_queue_concert(const char *key, enum keys_part part)
{
	int64_t concert = 0;
	int end = -1;

	if (sscanf(key, "q:{%" SCNd64 "}:%n", &concert, &end) != 1 || end < 0 ||
	    strcmp(key + end, keys_parts[part].name) != 0)
		return 0;
	return concert;
}

int
keys_session_ended(char *buf, size_t len, const char *session)
{
	return snprintf(buf, len, "sess:end:%s", session);
}

int
keys_sessions_after(char *buf, size_t len, const char *user)
{
	return snprintf(buf, len, "sess:after:%s", user);
}

int
keys_signin_fail_account(char *buf, size_t len, const char *digest)
{
	return snprintf(buf, len, "signin:fail:acct:%s", digest);
}

int
keys_signin_fail_addr(char *buf, size_t len, const char *addr)
{
	return snprintf(buf, len, "signin:fail:addr:%s", addr);
}
