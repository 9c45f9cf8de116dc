/* pool.c: worker slots in shared memory; slots below http.workers accept requests. */
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "shm.h"

struct pool_shm {
	int32_t pids[POOL_MAX];
};

static int slot = -1;

/* A slot whose process no longer exists may be taken over. */
static bool
gone(int32_t pid)
{
	return pid == 0 || (kill((pid_t)pid, 0) == -1 && errno == ESRCH);
}

int
pool_join(const char *config_path)
{
	struct pool_shm *pool = shm_map("pool", config_path, sizeof(*pool));
	int32_t me = (int32_t)getpid(), seen;
	int i;

	if (pool == NULL) {
		log_msg("pool: no shared memory; this worker always takes requests");
		return -1;
	}
	for (i = 0; i < POOL_MAX; i++) {
		seen = __atomic_load_n(&pool->pids[i], __ATOMIC_ACQUIRE);
		if (!gone(seen))
			continue;
		/* Another starter may race us to the same slot: the CAS decides. */
		if (__atomic_compare_exchange_n(&pool->pids[i], &seen, me, false,
						__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			slot = i;
			return slot;
		}
	}
	log_msg("pool: all %d slots taken; this worker always takes requests", POOL_MAX);
	return -1;
}

bool
pool_active(void)
{
	return slot < 0 || slot < cfg.workers;
}
