/* shm.h: shared memory segments common to the workers of one service. */
#ifndef BOXOFFICE_SHM_H
#define BOXOFFICE_SHM_H

#include <stddef.h>

/*
 * Map a zero-filled shared memory segment of size bytes named after what
 * and the real path of config_path, so that every worker of one service
 * (and no other service) shares it. Returns the mapping or NULL.
 */
void *shm_map(const char *what, const char *config_path, size_t size);

#endif
