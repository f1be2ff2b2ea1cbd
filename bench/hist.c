/* hist: log-linear latency buckets. */
#include <stddef.h>
#include <stdint.h>

#include "bench/hist.h"

/* Values below 2*HIST_SUB have a bucket each; above, with shift =
 * log2(v) - HIST_SUB_BITS, v >> shift is in [HIST_SUB, 2*HIST_SUB) and
 * the buckets of one power of two follow those of the one below. */
static size_t hist_index(uint64_t v)
{
    if (v < 2 * HIST_SUB)
        return (size_t)v;
    unsigned shift = (unsigned)(63 - __builtin_clzll(v)) - HIST_SUB_BITS;
    return (size_t)shift * HIST_SUB + (size_t)(v >> shift);
}

/* The middle of bucket i. */
static uint64_t hist_value(size_t i)
{
    if (i < 2 * HIST_SUB)
        return i;
    unsigned shift = (unsigned)(i / HIST_SUB) - 1;
    uint64_t low = (uint64_t)(i % HIST_SUB + HIST_SUB) << shift;
    return low + ((1ULL << shift) >> 1);
}

void hist_add(struct hist *h, uint64_t ns)
{
    if (ns > h->max)
        h->max = ns;
    h->n[hist_index(ns < HIST_TOP_NS ? ns : HIST_TOP_NS)]++;
    h->count++;
}

void hist_merge(struct hist *into, const struct hist *h)
{
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        into->n[i] += h->n[i];
    into->count += h->count;
    if (h->max > into->max)
        into->max = h->max;
}

uint64_t hist_pct(const struct hist *h, unsigned pct)
{
    uint64_t rank = (h->count * pct + 99) / 100, seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS && rank > 0; i++) {
        seen += h->n[i];
        if (seen >= rank) {
            uint64_t v = hist_value(i);
            return v < h->max ? v : h->max;
        }
    }
    return 0;
}
