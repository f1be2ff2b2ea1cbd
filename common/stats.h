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

/* A zeroed, process-shared block, or NULL with errno. */
struct stats *stats_new(void);
void stats_free(struct stats *st);

/* Take the next client number (1, 2, ...). */
uint64_t stats_number(struct stats *st);

#endif
