/* util.c: small formatting helpers shared by handlers and the CLI. */
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char *
util_i64(char *buf, size_t len, int64_t v)
{
	snprintf(buf, len, "%lld", (long long)v);
	return buf;
}

char *
util_iso_time(int64_t ms, char *buf, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&s, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
	return buf;
}

void *
util_shm_open(const char *what, const char *config_path, size_t size)
{
	char real[PATH_MAX], name[96];
	uint32_t h = 2166136261u;
	struct stat st;
	void *mem = NULL;
	const char *p;
	int fd;

	/* FNV-1a of the configuration's real path names the segment. */
	if (realpath(config_path, real) == NULL)
		snprintf(real, sizeof(real), "%s", config_path);
	for (p = real; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	snprintf(name, sizeof(name), "/boxoffice-%s-%08x", what, h);

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
