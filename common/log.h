/* log: status lines on stdout, errors on stderr, the access log.
 * Every line is built in a buffer and written with one write(2), so lines
 * from threads and child processes never interleave. */
#ifndef ECHO_LOG_H
#define ECHO_LOG_H

#include <stdint.h>

/* The program name for prefixes, and whether per-client lines are shown. */
void log_init(const char *prog, int quiet);

/* A status line on stdout: "fmt\n".  log_client lines are dropped by -q. */
void log_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_client(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "PROG: fmt" on stderr; a fmt ending in ':' gets " strerror(errno)". */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A client's first and last lines: "client N connected from PEER"; then
 * "client N: WHY" (if why is not NULL or empty), "client N disconnected
 * (received X bytes)" and, if access_fd >= 0, its access-log line. */
void log_client_start(uint64_t id, const char *peer);
void log_client_end(uint64_t id, uint64_t bytes, const char *why, int access_fd);

/* Open FILE for appending (O_APPEND, created 0644).  fd or -1 with errno. */
int log_access_open(const char *path);

/* Append "[client N]: received X bytes\n" in one write.  0 or -1. */
int log_access(int fd, uint64_t client, uint64_t bytes);

#endif
