/* shm.c: shared memory segments common to the workers of one service. */
#include "shm.h"

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

void *
shm_map(const char *what, const char *config_path, size_t size)
{
	char real[PATH_MAX], name[96];
	struct stat st;
	void *mem = NULL;
	int fd;

	/* The hash of the configuration's real path names the segment. */
	if (realpath(config_path, real) == NULL)
		snprintf(real, sizeof(real), "%s", config_path);
	snprintf(name, sizeof(name), "/boxoffice-%s-%08x", what, util_fnv1a(real));

	fd = shm_open(name, O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		return NULL;
	/* The first process sizes it; the lock keeps simultaneous starters apart. */
	flock(fd, LOCK_EX);
	if (fstat(fd, &st) == 0 && (st.st_size == (off_t)size || ftruncate(fd, (off_t)size) == 0)) {
		mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (mem == MAP_FAILED)
			mem = NULL;
	}
	flock(fd, LOCK_UN);
	close(fd);
	return mem;
}
