/* srvcpu: a server's CPU time from /proc, for echo_bench --server-pid.
 *
 * The time of a process tree: the process's own user and system time
 * (/proc/PID/stat utime, stime: every thread, live or exited), what its
 * reaped children used (cutime, cstime), and the same for each live child
 * (/proc/PID/task/TID/children), recursively.  Read it at the start and
 * the end of a window: the difference is what the tree spent in between,
 * including children that started and exited in it (their time moves
 * into the parent's cutime when it reaps them).  The kernel reports
 * clock ticks (10 ms at USER_HZ 100) per process, so over a short window
 * each live process adds up to a tick of rounding either way. */
#ifndef ECHO_SRVCPU_H
#define ECHO_SRVCPU_H

#include <sys/types.h>
#include <stdint.h>

struct srvcpu {
    uint64_t user_us, sys_us;
};

/* 0, or -1 with errno when pid's own stat cannot be read (it is gone). */
int srvcpu_read(pid_t pid, struct srvcpu *out);

#endif
