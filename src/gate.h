/* gate.h: a cap, shared by a service's workers, on how many hash passwords at once. */
#ifndef BOXOFFICE_GATE_H
#define BOXOFFICE_GATE_H

#define GATE_MAX 64		/* the largest auth.hash_concurrency */

/*
 * Map the service's gate (shared memory named after config_path). Without
 * it (the segment could not be made, or a program that never attaches)
 * every gate_enter() is admitted.
 */
void gate_attach(const char *config_path);

/*
 * Take one of the first cap places (1..GATE_MAX) for this process. Returns
 * 1 if taken (or there is no gate) and 0 if all cap are held by live
 * processes. A place held by a process that has died is taken over, so a
 * worker killed while hashing does not shrink the gate for good.
 */
int gate_enter(int cap);

/* Give back the place this process took; nothing if it holds none. */
void gate_leave(void);

#endif
