/* stats: shared counters in an anonymous shared mapping. */
#include <sys/mman.h>
#include <stddef.h>

#include "common/stats.h"

struct stats *stats_new(void)
{
    void *p = mmap(NULL, sizeof(struct stats), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    struct stats *st = p;
    atomic_init(&st->clients, 0);
    atomic_init(&st->bytes, 0);
    atomic_init(&st->active, 0);
    return st;
}

void stats_free(struct stats *st)
{
    if (st != NULL)
        munmap(st, sizeof *st);
}

uint64_t stats_number(struct stats *st)
{
    return (uint64_t)atomic_fetch_add(&st->clients, 1) + 1;
}

int stats_seat_take(struct stats *st, struct stats_own *own, unsigned long max)
{
    if (atomic_fetch_add(&st->active, 1) >= (long)max) {
        atomic_fetch_sub(&st->active, 1);
        return -1;
    }
    if (own != NULL)
        atomic_fetch_add(&own->active, 1);
    return 0;
}

void stats_seat_give(struct stats *st, struct stats_own *own)
{
    if (own != NULL)
        atomic_fetch_sub(&own->active, 1);
    atomic_fetch_sub(&st->active, 1);
}
