/* log.h: the access log and the error log, one line per event. */
#ifndef BOXOFFICE_LOG_H
#define BOXOFFICE_LOG_H

/* (Re)open the access log: "-" is standard error. Returns 0 or -1. */
int log_open(const char *path);

/* One access-log line: time, pid, method, path, status, duration. */
void log_access(const char *method, const char *path, int status, double ms);

/* An error-log line on standard error, prefixed with time and pid. */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
