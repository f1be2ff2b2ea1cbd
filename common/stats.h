/* stats: the counters behind client numbers and the shutdown line.
 * They live in one MAP_SHARED page so that every model can use them the
 * same way: threads of one process, fork_server's children and
 * select_server's workers all add to the same lock-free atomics. */
#ifndef ECHO_STATS_H
#define ECHO_STATS_H

#include <stdatomic.h>
#include <stdint.h>

struct stats {
    atomic_uint_fast64_t clients;   /* numbered clients so far */
    atomic_uint_fast64_t bytes;     /* bytes received from them */
    atomic_long active;             /* clients being served right now */
};

/* One process's share of the counters (a worker's, a pre-forked
 * child's), kept where its parent can read it: if the process dies, the
 * parent gives its seats back and counts the bytes it had received from
 * clients it had not finished (common/kids.c). */
struct stats_own {
    atomic_long active;             /* seats it holds */
    atomic_uint_fast64_t bytes;     /* received from its unfinished clients */
};

/* A zeroed, process-shared block, or NULL with errno. */
struct stats *stats_new(void);
void stats_free(struct stats *st);

/* Take the next client number (1, 2, ...). */
uint64_t stats_number(struct stats *st);

/* Take a --max-clients seat (0), or -1 if all max are taken; own (may
 * be NULL) counts it too.  Give it back with stats_seat_give. */
int stats_seat_take(struct stats *st, struct stats_own *own, unsigned long max);
void stats_seat_give(struct stats *st, struct stats_own *own);

#endif
