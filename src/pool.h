/* pool.h: which of the started worker processes take requests (the pool-size lever). */
#ifndef BOXOFFICE_POOL_H
#define BOXOFFICE_POOL_H

#include <stdbool.h>

#define POOL_MAX 64

/*
 * Claim the lowest free slot among the service's workers (a slot is free
 * if its process is gone), in shared memory named after the configuration
 * file. Returns the slot, or -1 if shared memory cannot be had (then this
 * worker always takes requests).
 */
int pool_join(const char *config_path);

/*
 * Should this worker take requests now? Workers whose slot is below
 * http.workers do; the others wait idle, so the pool grows and shrinks
 * with a reload, up to the number of processes multiwatch started.
 */
bool pool_active(void);

#endif
