/* kids: process supervision, one module for every parent of the suite:
 * fork_server's per-client children, its pre-forked children and
 * select_server's workers.  A table of child slots in shared memory;
 * reap without blocking; account for a child that died (its seats given
 * back, its clients' bytes counted); replace a supervised child that died
 * unexpectedly; stop them all with a deadline; and make sure no child
 * outlives its parent. */
#ifndef ECHO_KIDS_H
#define ECHO_KIDS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/stats.h"

struct kid {
    pid_t pid;                  /* 0: a free slot */
    int64_t started;            /* sys_now_ms() at fork */
    unsigned quick_deaths;      /* deaths within KIDS_QUICK_MS of start, in a row */
    struct stats_own own;       /* written by the child, read by the parent */
};

/* The supervisor's start function: fork the process for slot (the child
 * calls kids_child_init and never returns) and return its pid, or -1
 * with errno. */
typedef pid_t kids_start_fn(size_t slot, void *ctx);

struct kids {
    size_t n, cap, hi;          /* live children, slots, slots ever used */
    const char *what;           /* "client process", "worker": for messages */
    struct stats *st;           /* where a dead child's share goes */
    kids_start_fn *start;       /* supervised: replace the dead; else NULL */
    void *ctx;
    int stopping;               /* kids_stop began: ends are expected */
    struct kid kid[];
};

/* A child dying this soon after its start, KIDS_QUICK_MAX times in a row,
 * is not replaced again (a crash loop is not a service). */
#define KIDS_QUICK_MS 1000
#define KIDS_QUICK_MAX 3

/* A table with cap free slots, or NULL with errno.  It lives in a shared
 * mapping, not on the heap: right after each fork the parent updates it,
 * and a private page would be copied (copy-on-write) just because the new
 * child still shares it; and the children write their struct stats_own
 * there. */
struct kids *kids_new(size_t cap, const char *what, struct stats *st);
void kids_free(struct kids *k);

/* A free slot for a child about to be forked (the caller checked
 * n < cap); after the fork the parent records the pid with kids_set. */
size_t kids_claim(struct kids *k);
void kids_set(struct kids *k, size_t slot, pid_t pid);

/* Supervise: start a process in every slot with start(slot, ctx), and
 * from now on replace any that ends before kids_stop.  Returns how many
 * started (failures are reported on stderr). */
size_t kids_supervise(struct kids *k, kids_start_fn *start, void *ctx);

/* Reap every child that has ended, never blocking.  A dead child's
 * seats go back to st->active and the bytes of its unfinished clients
 * into st->bytes.  An unexpected end (a signal, a non-zero status, or
 * any end of a supervised child) is reported on stderr, and a supervised
 * child is replaced (reported too).  Returns how many were reaped. */
size_t kids_reap(struct kids *k);

/* Send sig to every child, then reap them as they end (sigfd: the
 * self-pipe that SIGCHLD writes to) until none is left or deadline_ms
 * (sys_now_ms() time) passes; then SIGKILL the rest.  A second stop
 * signal meanwhile (sig_hurry) is passed on as a second sig. */
void kids_stop(struct kids *k, int sig, int sigfd, int64_t deadline_ms);

/* First thing in a new child: die (SIGTERM, which drains) when the
 * parent does, even if it already has (the getppid() check closes the
 * race with a parent dying before prctl), and count the parent's stop
 * signals apart (sig_set_parent).  0, or -1 if the parent is gone. */
int kids_child_init(pid_t parent);

#endif
