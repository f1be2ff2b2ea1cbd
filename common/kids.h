/* kids: a parent's table of child processes (fork_server's clients,
 * select_server's workers): reap without blocking, and stop them all
 * with a deadline. */
#ifndef ECHO_KIDS_H
#define ECHO_KIDS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct kids {
    pid_t *pid;
    size_t n, cap;
    const char *what;   /* "client process", "worker": for messages */
};

/* Room for cap children.  0 or -1 with errno. */
int kids_init(struct kids *k, size_t cap, const char *what);
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
