/* kids: a parent's table of child processes (fork_server's clients,
 * select_server's workers): reap without blocking, and stop them all
 * with a deadline. */
#ifndef ECHO_KIDS_H
#define ECHO_KIDS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct kids {
    size_t n, cap;
    const char *what;   /* "client process", "worker": for messages */
    pid_t pid[];
};

/* A table with room for cap children, or NULL with errno.  It lives in a
 * shared mapping, not on the heap: right after each fork the parent
 * updates it, and a private page would be copied (copy-on-write) just
 * because the new child still shares it.  Children never touch it. */
struct kids *kids_new(size_t cap, const char *what);
void kids_free(struct kids *k);

/* Record a new child (the caller checked n < cap). */
void kids_add(struct kids *k, pid_t pid);

/* Reap every child that has ended, never blocking; a child killed by a
 * signal is reported on stderr. */
void kids_reap(struct kids *k);

/* Send sig to every child, then reap them as they end (sigfd: the
 * self-pipe that SIGCHLD writes to) until none is left or deadline_ms
 * (sys_now_ms() time) passes; then SIGKILL the rest. */
void kids_stop(struct kids *k, int sig, int sigfd, int64_t deadline_ms);

#endif
