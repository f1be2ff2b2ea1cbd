/* uring: an io_uring instance from the raw system calls (no liburing).
 *
 * io_uring is two rings in memory the kernel and the process share: the
 * process writes requests (SQEs) into the submission ring and advances its
 * tail; the kernel writes results (CQEs) into the completion ring and
 * advances that tail; each side consumes by advancing the ring's head.
 * One io_uring_enter(2) both hands over every queued request and waits
 * for completions, so a loop turn costs one system call however many
 * sockets it served.
 *
 * This module only keeps the rings: set-up, an SQE to fill, submit and
 * wait, the completions in order, and a ring of provided buffers (receive
 * buffers the kernel picks from as data arrives, so no connection holds
 * one while it waits).  What the requests mean is the caller's business
 * (select_server/loop_uring.c). */
#ifndef ECHO_URING_H
#define ECHO_URING_H

#include <stddef.h>
#include <stdint.h>
#include <linux/io_uring.h>

struct uring {
    int fd;
    unsigned flags;                 /* IORING_SETUP_* in force */
    unsigned features;              /* IORING_FEAT_* */
    /* submission ring: head moved by the kernel, tail by us */
    unsigned *sq_head, *sq_tail, *sq_flags, *sq_array;
    unsigned sq_mask, sq_entries;
    unsigned sq_local;              /* our tail, published at submit */
    struct io_uring_sqe *sqes;
    /* completion ring: tail moved by the kernel, head by us */
    unsigned *cq_head, *cq_tail;
    unsigned cq_mask, cq_entries;
    struct io_uring_cqe *cqes;
    void *sq_map, *cq_map;
    size_t sq_map_len, cq_map_len, sqes_len;
};

/* Set up a ring of (at least) entries submissions, cq_entries completions
 * (0: twice entries).  Tries SINGLE_ISSUER | DEFER_TASKRUN first (the
 * kernel runs completion work only when we enter it: fewer interruptions,
 * batched), then COOP_TASKRUN, then no flags, as older kernels refuse
 * each with EINVAL.  Returns 0, or -1 with errno and err "STEP: reason". */
int uring_init(struct uring *r, unsigned entries, unsigned cq_entries, char *err, size_t errlen);
void uring_free(struct uring *r);

/* A zeroed SQE to fill, or NULL when the submission ring is full (submit
 * first).  It is handed to the kernel by the next uring_submit. */
struct io_uring_sqe *uring_sqe(struct uring *r);

/* Hand over every SQE filled since the last call and wait until at least
 * wait_nr completions are ready or timeout_ms passes (-1: no limit).
 * Returns the number submitted, or -1 with errno (EINTR: a signal;
 * ETIME: the time ran out, nothing else wrong). */
int uring_submit(struct uring *r, unsigned wait_nr, int timeout_ms);

/* The same, for a batch: wait for wait_nr completions, but once min_us
 * microseconds have passed, return as soon as there is at least one
 * (IORING_FEAT_MIN_TIMEOUT, Linux 6.12).  A busy loop then wakes once
 * per batch rather than once per completion, and a quiet one waits
 * min_us at most for company.  Without the feature min_us is ignored:
 * the caller must then not ask for more than one. */
int uring_submit_batch(struct uring *r, unsigned wait_nr, unsigned min_us, int timeout_ms);

#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif
static inline int uring_can_batch(const struct uring *r)
{
    return (r->features & IORING_FEAT_MIN_TIMEOUT) != 0;
}

/* The completions ready now, in order: the i-th (i < n) is
 * uring_cqe_at(r, head + i); give them back with uring_cq_advance.
 * Reading every ready CQE and then advancing once is the batch. */
unsigned uring_cq_ready(const struct uring *r, unsigned *head);
static inline const struct io_uring_cqe *uring_cqe_at(const struct uring *r, unsigned i)
{
    return &r->cqes[i & r->cq_mask];
}
void uring_cq_advance(struct uring *r, unsigned n);

/* Provided buffers (IORING_REGISTER_PBUF_RING, Linux 5.19): n buffers of
 * size bytes each (n a power of two), in group gid.  A receive with
 * IOSQE_BUFFER_SELECT takes one only when data arrives and says which in
 * its CQE; the caller gives it back with uring_bufs_put when done. */
struct uring_bufs {
    struct io_uring_buf *ring;      /* n entries; the tail shares entry 0 */
    char *mem;                      /* the buffers themselves */
    unsigned n, size;
    uint16_t gid;
    uint16_t tail;                  /* ours, published by uring_bufs_put */
    size_t ring_len;
};
int uring_bufs_init(struct uring *r, struct uring_bufs *b, uint16_t gid, unsigned n,
                    unsigned size, char *err, size_t errlen);
void uring_bufs_free(struct uring *r, struct uring_bufs *b);
static inline char *uring_buf(const struct uring_bufs *b, unsigned bid)
{
    return b->mem + (size_t)bid * b->size;
}
/* Give buffer bid back to the kernel (visible to it at once). */
void uring_bufs_put(struct uring_bufs *b, unsigned bid);

/* Can this process use what select_server's completion loop needs (a
 * ring, multishot receive and accept, provided-buffer rings, a wait with
 * a timeout)?  0, or -1 with why: one line naming the cause, e.g.
 * "io_uring_setup: Operation not permitted (kernel.io_uring_disabled?)". */
int uring_probe(char *why, size_t len);

#endif
