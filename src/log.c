/* log.c: access and error logging; lines are written with one write(2). */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int access_fd = STDERR_FILENO;

int
log_open(const char *path)
{
	int fd;

	if (path == NULL || strcmp(path, "-") == 0 || *path == '\0') {
		fd = STDERR_FILENO;
	} else {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0) {
			log_msg("cannot open access log %s: %s", path, strerror(errno));
			return -1;
		}
	}
	if (access_fd != STDERR_FILENO)
		close(access_fd);
	access_fd = fd;
	return 0;
}

static size_t
stamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
	return n;
}

/* O_APPEND writes of under PIPE_BUF bytes do not interleave between workers. */
static void
write_line(int fd, char *buf, size_t n, size_t cap)
{
	if (n >= cap - 1)
		n = cap - 2;
	buf[n++] = '\n';
	(void)!write(fd, buf, n);
}

void
log_access(const char *method, const char *path, int status, double ms)
{
	char buf[1024];
	size_t n = stamp(buf, sizeof(buf));
	size_t i;

	n += (size_t)snprintf(buf + n, sizeof(buf) - n, " pid=%d ", (int)getpid());
	/* Method and path are client input: bounded, one line, printable. */
	for (i = 0; method[i] != '\0' && i < 16; i++)
		buf[n++] = (method[i] > 0x20 && method[i] < 0x7f) ? method[i] : '?';
	buf[n++] = ' ';
	for (i = 0; path[i] != '\0' && n < sizeof(buf) - 64; i++)
		buf[n++] = (path[i] > 0x20 && path[i] < 0x7f) ? path[i] : '?';
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %d %.3fms", status, ms);
	write_line(access_fd, buf, n, sizeof(buf));
}

void
log_msg(const char *fmt, ...)
{
	char buf[1024];
	size_t n = stamp(buf, sizeof(buf));
	va_list ap;
	int k;

	n += (size_t)snprintf(buf + n, sizeof(buf) - n, " boxoffice[%d]: ", (int)getpid());
	va_start(ap, fmt);
	k = vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	n = k < 0 ? n : (n + (size_t)k >= sizeof(buf) ? sizeof(buf) - 1 : n + (size_t)k);
	write_line(STDERR_FILENO, buf, n, sizeof(buf));
}
