/* uring: the rings, set up with io_uring_setup(2) and mmap(2).
 *
 * Memory ordering.  Each ring index has one writer.  Whoever publishes
 * entries writes them first and then moves the index with a release
 * store; whoever consumes loads the index with an acquire load before
 * reading the entries it covers.  Four pairs, and only these:
 *   SQ tail    we store-release after filling SQEs; the kernel
 *              load-acquires it before reading them (io_uring_enter).
 *   SQ head    the kernel store-releases once it has read SQEs; we
 *              load-acquire it before reusing their slots.
 *   CQ tail    the kernel store-releases after writing CQEs; we
 *              load-acquire it before reading them.
 *   CQ head    we store-release after reading CQEs; the kernel
 *              load-acquires it before overwriting their slots.
 * The provided-buffer ring's tail is a fifth of the same shape (we fill
 * the entry, then store-release the tail; the kernel load-acquires it).
 * With no SQPOLL thread nothing else is needed: io_uring_enter is a
 * system call, itself a full barrier.  liburing's src/queue.c does the
 * same with its io_uring_smp_* macros. */
#include <sys/mman.h>
#include <sys/syscall.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "select_server/uring.h"

/* The kernel's view of the ring indexes: plain unsigned words in shared
 * memory, accessed as atomics on our side (same size and alignment). */
static inline unsigned load_acquire(const unsigned *p)
{
    return atomic_load_explicit((const _Atomic unsigned *)(const void *)p, memory_order_acquire);
}

static inline void store_release(unsigned *p, unsigned v)
{
    atomic_store_explicit((_Atomic unsigned *)(void *)p, v, memory_order_release);
}

static int sys_setup(unsigned entries, struct io_uring_params *p)
{
    return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned submit, unsigned wait_nr, unsigned flags, void *arg,
                     size_t argsz)
{
    return (int)syscall(__NR_io_uring_enter, fd, submit, wait_nr, flags, arg, argsz);
}

static int sys_register(int fd, unsigned op, void *arg, unsigned n)
{
    return (int)syscall(__NR_io_uring_register, fd, op, arg, n);
}

/* errno, saved across cleanup, and a message naming the step. */
static int fail(char *err, size_t errlen, const char *step)
{
    int saved = errno;
    snprintf(err, errlen, "%s: %s", step, strerror(saved));
    errno = saved;
    return -1;
}

/* Map the rings the kernel allocated for r->fd. */
static int map_rings(struct uring *r, const struct io_uring_params *p)
{
    r->sq_map_len = p->sq_off.array + p->sq_entries * sizeof(unsigned);
    r->cq_map_len = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
    if (p->features & IORING_FEAT_SINGLE_MMAP) {       /* both rings in one mapping */
        if (r->cq_map_len > r->sq_map_len)
            r->sq_map_len = r->cq_map_len;
        r->cq_map_len = 0;
    }
    r->sq_map = mmap(NULL, r->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                     r->fd, IORING_OFF_SQ_RING);
    if (r->sq_map == MAP_FAILED)
        return -1;
    r->cq_map = r->sq_map;
    if (r->cq_map_len > 0) {
        r->cq_map = mmap(NULL, r->cq_map_len, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
        if (r->cq_map == MAP_FAILED)
            return -1;
    }
    r->sqes_len = p->sq_entries * sizeof(struct io_uring_sqe);
    r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                   r->fd, IORING_OFF_SQES);
    if (r->sqes == MAP_FAILED)
        return -1;
    char *sq = r->sq_map, *cq = r->cq_map;
    r->sq_head = (unsigned *)(void *)(sq + p->sq_off.head);
    r->sq_tail = (unsigned *)(void *)(sq + p->sq_off.tail);
    r->sq_flags = (unsigned *)(void *)(sq + p->sq_off.flags);
    r->sq_array = (unsigned *)(void *)(sq + p->sq_off.array);
    r->sq_mask = *(unsigned *)(void *)(sq + p->sq_off.ring_mask);
    r->sq_entries = p->sq_entries;
    r->cq_head = (unsigned *)(void *)(cq + p->cq_off.head);
    r->cq_tail = (unsigned *)(void *)(cq + p->cq_off.tail);
    r->cq_mask = *(unsigned *)(void *)(cq + p->cq_off.ring_mask);
    r->cq_entries = p->cq_entries;
    r->cqes = (struct io_uring_cqe *)(void *)(cq + p->cq_off.cqes);
    /* slot i of the SQ ring always names SQE i: then filling SQEs in ring
     * order and moving the tail is all a submission takes */
    for (unsigned i = 0; i < r->sq_entries; i++)
        r->sq_array[i] = i;
    r->sq_local = *r->sq_tail;
    return 0;
}

static void unmap_rings(struct uring *r)
{
    if (r->sqes != NULL && r->sqes != MAP_FAILED)
        munmap(r->sqes, r->sqes_len);
    if (r->cq_map != NULL && r->cq_map != MAP_FAILED && r->cq_map != r->sq_map)
        munmap(r->cq_map, r->cq_map_len);
    if (r->sq_map != NULL && r->sq_map != MAP_FAILED)
        munmap(r->sq_map, r->sq_map_len);
    r->sqes = NULL;
    r->sq_map = r->cq_map = NULL;
}

int uring_init(struct uring *r, unsigned entries, unsigned cq_entries, char *err, size_t errlen)
{
    static const unsigned tries[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,   /* 6.1 */
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,    /* 6.0 */
        IORING_SETUP_COOP_TASKRUN,                                 /* 5.19 */
        0,
    };
    memset(r, 0, sizeof *r);
    r->fd = -1;
    struct io_uring_params p;
    for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
        memset(&p, 0, sizeof p);
        p.flags = tries[i] | (cq_entries > 0 ? IORING_SETUP_CQSIZE : 0);
        p.cq_entries = cq_entries;
        r->fd = sys_setup(entries, &p);
        if (r->fd >= 0 || errno != EINVAL)
            break;
    }
    if (r->fd < 0)
        return fail(err, errlen, "io_uring_setup");
    r->flags = p.flags;
    r->features = p.features;
    if (map_rings(r, &p) == -1) {
        fail(err, errlen, "mmap io_uring rings");
        uring_free(r);
        return -1;
    }
    return 0;
}

void uring_free(struct uring *r)
{
    unmap_rings(r);
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

struct io_uring_sqe *uring_sqe(struct uring *r)
{
    if (r->sq_local - load_acquire(r->sq_head) >= r->sq_entries)
        return NULL;                                   /* the kernel has not read them yet */
    struct io_uring_sqe *sqe = &r->sqes[r->sq_local & r->sq_mask];
    r->sq_local++;
    memset(sqe, 0, sizeof *sqe);
    return sqe;
}

int uring_submit(struct uring *r, unsigned wait_nr, int timeout_ms)
{
    return uring_submit_batch(r, wait_nr, 0, timeout_ms);
}

int uring_submit_batch(struct uring *r, unsigned wait_nr, unsigned min_us, int timeout_ms)
{
    /* publish the SQEs filled since the last call (release: their
     * contents before the tail) */
    store_release(r->sq_tail, r->sq_local);
    unsigned pending = r->sq_local - load_acquire(r->sq_head);
    struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                   .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
    if (!uring_can_batch(r))
        min_us = 0;
    /* the min wait only bounds a wait that has a time limit (without one
     * the kernel ends the wait at min_us, events or not): an hour stands
     * in for none */
    if (min_us > 0 && timeout_ms < 0)
        ts = (struct __kernel_timespec){.tv_sec = 3600, .tv_nsec = 0};
    struct io_uring_getevents_arg arg = {
        .sigmask = 0, .sigmask_sz = _NSIG / 8,
        .pad = min_us,                                 /* min_wait_usec since Linux 6.12 */
        .ts = timeout_ms >= 0 || min_us > 0 ? (uint64_t)(uintptr_t)&ts : 0,
    };
    /* GETEVENTS always: with DEFER_TASKRUN completions are only made
     * while we are in here */
    int n = sys_enter(r->fd, pending, wait_nr, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                      &arg, sizeof arg);
    return n;
}

unsigned uring_cq_ready(const struct uring *r, unsigned *head)
{
    *head = *r->cq_head;                               /* only we write it */
    return load_acquire(r->cq_tail) - *head;           /* acquire: the CQEs before it */
}

void uring_cq_advance(struct uring *r, unsigned n)
{
    /* release: we are done reading those CQEs before the kernel may
     * reuse their slots */
    store_release(r->cq_head, *r->cq_head + n);
}

/* ---- provided buffers ---- */

int uring_bufs_init(struct uring *r, struct uring_bufs *b, uint16_t gid, unsigned n,
                    unsigned size, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    b->n = n;
    b->size = size;
    b->gid = gid;
    /* the ring must be page-aligned.  The buffers are taken in ring
     * order, so in time every one is used: fault them all in now, a
     * fixed cost seen from the start rather than a slow climb */
    b->ring_len = n * sizeof(struct io_uring_buf);
    b->ring = mmap(NULL, b->ring_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    b->mem = mmap(NULL, (size_t)n * size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (b->ring == MAP_FAILED || b->mem == MAP_FAILED) {
        fail(err, errlen, "mmap provided buffers");
        uring_bufs_free(NULL, b);
        return -1;
    }
    struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)b->ring,
                                   .ring_entries = n, .bgid = gid};
    if (sys_register(r->fd, IORING_REGISTER_PBUF_RING, &reg, 1) == -1) {
        fail(err, errlen, "io_uring_register(PBUF_RING)");
        uring_bufs_free(NULL, b);
        return -1;
    }
    for (unsigned i = 0; i < n; i++)
        uring_bufs_put(b, i);
    return 0;
}

void uring_bufs_free(struct uring *r, struct uring_bufs *b)
{
    if (r != NULL && b->ring != NULL && b->ring != MAP_FAILED) {
        struct io_uring_buf_reg reg = {.bgid = b->gid};
        (void)sys_register(r->fd, IORING_UNREGISTER_PBUF_RING, &reg, 1);
    }
    if (b->ring != NULL && b->ring != MAP_FAILED)
        munmap(b->ring, b->ring_len);
    if (b->mem != NULL && b->mem != MAP_FAILED)
        munmap(b->mem, (size_t)b->n * b->size);
    b->ring = NULL;
    b->mem = NULL;
}

void uring_bufs_put(struct uring_bufs *b, unsigned bid)
{
    struct io_uring_buf *e = &b->ring[b->tail & (b->n - 1)];
    e->addr = (uint64_t)(uintptr_t)uring_buf(b, bid);
    e->len = b->size;
    e->bid = (uint16_t)bid;
    b->tail++;
    /* the tail lives in the resv field of entry 0 (struct io_uring_buf_ring);
     * release: the entry before the tail that covers it */
    _Atomic uint16_t *tail = (_Atomic uint16_t *)(void *)&b->ring[0].resv;
    atomic_store_explicit(tail, b->tail, memory_order_release);
}

/* ---- can we? ---- */

int uring_probe(char *why, size_t len)
{
    struct uring r;
    char err[160];
    if (uring_init(&r, 4, 0, err, sizeof err) == -1) {
        int e = errno;
        const char *hint = e == ENOSYS ? " (kernel without io_uring, or a seccomp filter)"
                         : e == EPERM || e == EACCES ? " (kernel.io_uring_disabled, or a seccomp filter?)"
                         : e == ENOMEM ? " (RLIMIT_MEMLOCK?)" : "";
        snprintf(why, len, "%s%s", err, hint);
        errno = e;
        return -1;
    }
    int rc = -1;
    struct io_uring_probe *pr = NULL;
    size_t prlen = sizeof *pr + 256 * sizeof(struct io_uring_probe_op);
    static const unsigned char need[] = {IORING_OP_ACCEPT, IORING_OP_RECV, IORING_OP_SEND,
                                         IORING_OP_POLL_ADD, IORING_OP_ASYNC_CANCEL};
    struct uring_bufs b;
    if (!(r.features & IORING_FEAT_EXT_ARG) || !(r.flags & IORING_SETUP_SINGLE_ISSUER)) {
        /* SINGLE_ISSUER came with 6.0, as did multishot receive */
        snprintf(why, len, "io_uring on this kernel lacks multishot receive or timed waits "
                 "(Linux 6.0 or later)");
        errno = ENOTSUP;
    } else if ((pr = calloc(1, prlen)) == NULL) {
        snprintf(why, len, "io_uring probe: %s", strerror(errno));
    } else if (sys_register(r.fd, IORING_REGISTER_PROBE, pr, 256) == -1) {
        snprintf(why, len, "io_uring_register(PROBE): %s", strerror(errno));
    } else if (uring_bufs_init(&r, &b, 0, 1, 64, err, sizeof err) == -1) {
        snprintf(why, len, "%s (provided-buffer rings need Linux 5.19)", err);
    } else {
        uring_bufs_free(&r, &b);
        rc = 0;
        for (size_t i = 0; i < sizeof need && rc == 0; i++) {
            if (need[i] > pr->last_op || !(pr->ops[need[i]].flags & IO_URING_OP_SUPPORTED)) {
                snprintf(why, len, "io_uring on this kernel lacks operation %u", need[i]);
                errno = ENOTSUP;
                rc = -1;
            }
        }
    }
    free(pr);
    uring_free(&r);
    return rc;
}
