/* pool.c: worker slots per pool in shared memory; slots below the pool's size accept requests. */
#include "pool.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "shm.h"
#include "util.h"

const char *const pool_names[POOL__MAX] = { "all", "queue", "signin", "booking" };

/* Shared memory segment names; "pool" is the undivided service's, as before. */
static const char *const shm_names[POOL__MAX] = { "pool", "pool-queue", "pool-signin",
						  "pool-booking" };

struct pool_shm {
	int32_t pids[POOL_MAX];
	int32_t busy[POOL_MAX];
};

static int slot = -1;
static enum pool_class mine = POOL_ALL;
static struct pool_shm *pools[POOL__MAX];
static const char *conf_path;

/* A slot whose process no longer exists may be taken over. */
static bool
gone(int32_t pid)
{
	return pid == 0 || (kill((pid_t)pid, 0) == -1 && errno == ESRCH);
}

int
pool_parse(const char *name)
{
	int i;

	for (i = 0; i < POOL__MAX; i++)
		if (strcmp(name, pool_names[i]) == 0)
			return i;
	return -1;
}

/* Pool p's configured size. */
static int64_t
size_of(enum pool_class p)
{
	switch (p) {
	case POOL_QUEUE:
		return cfg.pool_queue;
	case POOL_SIGNIN:
		return cfg.pool_signin;
	case POOL_BOOKING:
		return cfg.pool_booking;
	default:
		return cfg.workers;
	}
}

static struct pool_shm *
segment(enum pool_class p)
{
	if (pools[p] == NULL && conf_path != NULL)
		pools[p] = shm_map(shm_names[p], conf_path, sizeof(struct pool_shm));
	return pools[p];
}

int
pool_join(const char *config_path, enum pool_class p)
{
	struct pool_shm *pool;
	int32_t me = (int32_t)getpid(), seen;
	int i;

	conf_path = config_path;
	mine = p;
	if ((pool = segment(p)) == NULL) {
		log_msg("pool %s: no shared memory; this worker always takes requests",
			pool_names[p]);
		return -1;
	}
	for (i = 0; i < POOL_MAX; i++) {
		seen = __atomic_load_n(&pool->pids[i], __ATOMIC_ACQUIRE);
		if (!gone(seen))
			continue;
		/* Another starter may race us to the same slot: the CAS decides. */
		if (__atomic_compare_exchange_n(&pool->pids[i], &seen, me, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			__atomic_store_n(&pool->busy[i], 0, __ATOMIC_RELEASE);
			slot = i;
			return slot;
		}
	}
	log_msg("pool %s: all %d slots taken; this worker always takes requests",
		pool_names[p], POOL_MAX);
	return -1;
}

enum pool_class
pool_mine(void)
{
	return mine;
}

bool
pool_active(void)
{
	return slot < 0 || slot < size_of(mine);
}

bool
pool_serves(enum pool_class c)
{
	return mine == POOL_ALL || c == POOL_ALL || c == mine;
}

void
pool_busy(bool busy)
{
	if (slot >= 0 && pools[mine] != NULL)
		__atomic_store_n(&pools[mine]->busy[slot], busy ? 1 : 0, __ATOMIC_RELEASE);
}

void
pool_text(struct util_buf *b)
{
	struct pool_shm *pool;
	int counts[POOL__MAX][3] = { { 0 } };	/* busy, idle, standby */
	bool seen[POOL__MAX] = { false };
	static const char *const states[3] = { "busy", "idle", "standby" };
	int32_t me = (int32_t)getpid(), pid;
	int p, i, s;

	for (p = 0; p < POOL__MAX; p++) {
		/* An undivided worker reports its own pool, a pool's worker the
		 * three pools: no segment is made for pools that cannot exist. */
		if ((mine == POOL_ALL) != (p == POOL_ALL) || (pool = segment(p)) == NULL)
			continue;
		for (i = 0; i < POOL_MAX; i++) {
			pid = __atomic_load_n(&pool->pids[i], __ATOMIC_ACQUIRE);
			if (gone(pid))
				continue;
			seen[p] = true;
			if (i >= size_of(p))
				s = 2;
			else if (pid != me && __atomic_load_n(&pool->busy[i], __ATOMIC_ACQUIRE))
				s = 0;
			else
				s = 1;
			counts[p][s]++;
		}
	}
	util_bprintf(b, "# HELP boxoffice_pool_size Workers a pool lets take requests "
			"(http.workers, or [pools])\n# TYPE boxoffice_pool_size gauge\n");
	for (p = 0; p < POOL__MAX; p++)
		if (seen[p])
			util_bprintf(b, "boxoffice_pool_size{pool=\"%s\"} %lld\n", pool_names[p],
				     (long long)size_of(p));
	util_bprintf(b, "# HELP boxoffice_pool_workers Live workers by pool: busy with a "
			"request, idle, or standby (above the pool's size)\n"
			"# TYPE boxoffice_pool_workers gauge\n");
	for (p = 0; p < POOL__MAX; p++)
		for (s = 0; s < 3 && seen[p]; s++)
			util_bprintf(b, "boxoffice_pool_workers{pool=\"%s\",state=\"%s\"} %d\n",
				     pool_names[p], states[s], counts[p][s]);
}
