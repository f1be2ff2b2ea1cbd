/* sys: process limits and the clock. */
#ifndef ECHO_SYS_H
#define ECHO_SYS_H

#include <stdint.h>

/* Raise the RLIMIT_NOFILE soft limit to at least want descriptors, as far
 * as the hard limit allows.  Returns the soft limit now in force (which
 * may be below want), or -1 with errno. */
long sys_raise_nofile(long want);

/* The monotonic clock, in nanoseconds and in milliseconds. */
int64_t sys_now_ns(void);
int64_t sys_now_ms(void);

#endif
