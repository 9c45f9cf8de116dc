/* gate.c: a cap, shared by a service's workers, on how many hash passwords at once. */
#include "gate.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <unistd.h>

#include "shm.h"

/*
 * Why: an Argon2id check takes a core for a sixth of a second. Every worker
 * could be hashing during a storm of sign-ins, and then no worker would be
 * left for the queue and booking routes. The gate keeps at most
 * auth.hash_concurrency workers hashing; the others answer the sign-in
 * 503 at once and go on serving everything else.
 *
 * A place is a slot holding the pid of the process in it (0: free), so
 * that a place left by a killed process can be recognised and reused.
 */
struct gate_shm {
	_Atomic pid_t slot[GATE_MAX];
};

static struct gate_shm *gate;
static int held = -1;		/* the slot this process holds, or -1 */

void
gate_attach(const char *config_path)
{
	gate = shm_map("gate", config_path, sizeof(*gate));
}

/* Is the process pid gone? (Not ours to signal means alive.) */
static int
dead(pid_t pid)
{
	return kill(pid, 0) != 0 && errno == ESRCH;
}

int
gate_enter(int cap)
{
	pid_t me = getpid(), seen;
	int i;

	if (gate == NULL)
		return 1;
	if (held >= 0)
		return 1;
	if (cap > GATE_MAX)
		cap = GATE_MAX;
	for (i = 0; i < cap; i++) {
		seen = 0;
		if (atomic_compare_exchange_strong(&gate->slot[i], &seen, me) ||
		    (seen != me && dead(seen) &&
		     atomic_compare_exchange_strong(&gate->slot[i], &seen, me))) {
			held = i;
			return 1;
		}
		if (seen == me) {
			/* left over by an earlier life of this pid */
			held = i;
			return 1;
		}
	}
	return 0;
}

void
gate_leave(void)
{
	if (gate != NULL && held >= 0)
		atomic_store(&gate->slot[held], 0);
	held = -1;
}
