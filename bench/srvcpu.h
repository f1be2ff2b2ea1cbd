/* srvcpu: a server's CPU time from /proc, for echo_bench --server-pid.
 *
 * The time of a process tree: the process's own user and system time
 * (/proc/PID/stat utime, stime: every thread, live or exited), what its
 * reaped children used (cutime, cstime), and the CPU time of each live
 * descendant (/proc/PID/task/TID/children, recursively).  Read it at the
 * start and the end of a window: the difference is what the tree spent in
 * between, including children that started and exited in it (their time
 * moves into the parent's cutime when it reaps them).
 *
 * /proc/PID/stat counts in clock ticks (10 ms at USER_HZ 100), each value
 * rounded down once.  For one process that is one tick per reading; for a
 * thousand children that each ran a millisecond in the window, rounding
 * each would be meaningless (and biased: children started together round
 * alike).  So a live descendant's time is the exact sum_exec_runtime of
 * its threads (/proc/PID/task/TID/schedstat, ns) when the kernel has
 * schedstat; the split into user and system time follows the ticks. */
#ifndef ECHO_SRVCPU_H
#define ECHO_SRVCPU_H

#include <sys/types.h>
#include <stdint.h>

struct srvcpu {
    uint64_t total_ns;          /* user + system */
    uint64_t user_ticks, sys_ticks;   /* for the split only */
};

/* 0, or -1 with errno when pid's own stat cannot be read (it is gone). */
int srvcpu_read(pid_t pid, struct srvcpu *out);

/* The tree's time between two readings, in us, split into user and
 * system time in the proportion the ticks show. */
void srvcpu_diff(const struct srvcpu *a, const struct srvcpu *b, uint64_t *user_us,
                 uint64_t *sys_us);

#endif
