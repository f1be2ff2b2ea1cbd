/* hist: a latency histogram with bounded relative error, for echo_bench.
 * Log-linear buckets (HdrHistogram's layout): every value below
 * 2*HIST_SUB ns has its own bucket; above that each power of two is split
 * into HIST_SUB buckets, so a bucket is never wider than 1/HIST_SUB of its
 * values (< 0.8%; reported as its middle, < 0.4%).  Values from 0 to
 * 60 s fit; larger ones land in the top bucket, the maximum stays exact.
 * One per thread, no locking; merge them at the end. */
#ifndef ECHO_HIST_H
#define ECHO_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_TOP_NS 60000000000ULL          /* 60 s */
#define HIST_BUCKETS (30 * HIST_SUB)        /* reaches 2^36 ns > 60 s */

struct hist {
    uint64_t n[HIST_BUCKETS];
    uint64_t count;
    uint64_t max;                           /* exact, ns */
};

/* Record one value (ns).  h starts zeroed. */
void hist_add(struct hist *h, uint64_t ns);

/* Add h's counts into into. */
void hist_merge(struct hist *into, const struct hist *h);

/* The pct-th percentile (0-100) in ns: the middle of the bucket holding
 * the value of that rank, never above the maximum; 0 when empty. */
uint64_t hist_pct(const struct hist *h, unsigned pct);

#endif
