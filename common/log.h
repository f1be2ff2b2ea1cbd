/* log: status lines on stdout, errors on stderr, the access log.
 * Every line is built in a buffer and written with one write(2), so lines
 * from threads and child processes never interleave; in a server no line
 * ever blocks (log_detach). */
#ifndef ECHO_LOG_H
#define ECHO_LOG_H

#include <stdint.h>

/* The program name for prefixes, and whether per-client lines are shown. */
void log_init(const char *prog, int quiet);

/* For servers: from now on no line ever blocks.  stdout and stderr get
 * descriptors of their own that do not block (the shell's are left as
 * they are); a line the output cannot take at once is dropped, and the
 * count, kept in a page shared with the processes forked after this, is
 * reported by the next line that gets through.  Status lines (log_status)
 * wait up to a second for room first.  0, or -1 with errno. */
int log_detach(void);

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

/* Open FILE for appending (O_APPEND, created 0644, non-blocking).  fd or
 * -1 with errno: ENXIO for a FIFO no process is reading. */
int log_access_open(const char *path);

/* Append "[client N]: received X bytes\n" in one write that never blocks;
 * a line the log cannot take is dropped, and the count goes to stderr
 * with the first line it takes again. */
void log_access(int fd, uint64_t client, uint64_t bytes);

#endif
