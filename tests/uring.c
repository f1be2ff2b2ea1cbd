/* uring: the ring module itself (select_server/uring.c), without a
 * server: a NOP round trip, a read of a pipe, many completions reaped in
 * one batch, a multishot receive into provided buffers; each skips with
 * the probe's reason where the kernel refuses io_uring.  And
 * select_server --backend uring where io_uring is refused (the fault
 * shim makes io_uring_setup fail): a clear exit. */
#include <sys/socket.h>
#include <sys/wait.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sys.h"
#include "select_server/uring.h"
#include "tests/harness.h"
#include "tests/test.h"

static void need_uring(struct uring *r, unsigned entries)
{
    char why[256], err[256];
    if (uring_probe(why, sizeof why) == -1)
        test_skip("io_uring unavailable: %s", why);
    CHECK_MSG(uring_init(r, entries, 0, err, sizeof err) == 0, "uring_init: %s", err);
}

/* Wait for exactly want completions; returns the CQ head to read from. */
static unsigned reap(struct uring *r, unsigned want)
{
    unsigned head, n;
    while ((n = uring_cq_ready(r, &head)) < want) {
        int rc = uring_submit(r, want - n, 5000);
        CHECK_MSG(rc >= 0 || errno == EINTR, "io_uring_enter: %s", strerror(errno));
    }
    CHECK_EQ(n, want);
    return head;
}

static void t_nop(const void *arg)
{
    (void)arg;
    struct uring r;
    need_uring(&r, 8);
    struct io_uring_sqe *sqe = uring_sqe(&r);
    CHECK(sqe != NULL);
    sqe->opcode = IORING_OP_NOP;
    sqe->user_data = 0xfeedf00dcafeULL;
    CHECK_EQ(uring_submit(&r, 1, 5000), 1);
    unsigned head = reap(&r, 1);
    const struct io_uring_cqe *cqe = uring_cqe_at(&r, head);
    CHECK_EQ(cqe->user_data, 0xfeedf00dcafeULL);
    CHECK_EQ(cqe->res, 0);
    uring_cq_advance(&r, 1);
    CHECK_EQ(uring_cq_ready(&r, &head), 0);
    uring_free(&r);
}

/* A read queued before the data exists completes when it arrives. */
static void t_pipe_read(const void *arg)
{
    (void)arg;
    struct uring r;
    need_uring(&r, 8);
    int p[2];
    CHECK_EQ(pipe(p), 0);
    char buf[32] = "";
    struct io_uring_sqe *sqe = uring_sqe(&r);
    sqe->opcode = IORING_OP_READ;
    sqe->fd = p[0];
    sqe->addr = (uint64_t)(uintptr_t)buf;
    sqe->len = sizeof buf;
    sqe->off = (uint64_t)-1;                 /* the current position: a pipe has none */
    sqe->user_data = 7;
    CHECK_EQ(uring_submit(&r, 0, 0), 1);
    unsigned head;
    CHECK_EQ(uring_cq_ready(&r, &head), 0);  /* nothing to read yet */
    CHECK_EQ(write(p[1], "through the ring", 16), 16);
    head = reap(&r, 1);
    const struct io_uring_cqe *cqe = uring_cqe_at(&r, head);
    CHECK_EQ(cqe->user_data, 7);
    CHECK_EQ(cqe->res, 16);
    CHECK_MEM(buf, "through the ring", 16);
    uring_cq_advance(&r, 1);
    /* a timed wait with nothing to come ends with ETIME */
    CHECK_EQ(uring_submit(&r, 1, 20), -1);
    CHECK_EQ(errno, ETIME);
    close(p[0]);
    close(p[1]);
    uring_free(&r);
}

/* A batch wait (uring_submit_batch): asked for 2 completions with only
 * one to come, it settles for that one once the minimum wait has passed,
 * long before its 5 s limit.  Skips where the kernel has no minimum wait
 * (before 6.12; the server then always waits for one). */
static void t_batch_wait(const void *arg)
{
    (void)arg;
    struct uring r;
    need_uring(&r, 8);
    if (!uring_can_batch(&r)) {
        uring_free(&r);
        test_skip("this kernel has no io_uring minimum wait (IORING_FEAT_MIN_TIMEOUT, Linux 6.12)");
    }
    int p[2], q[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(pipe(q), 0);
    char bufs[2][8];
    const int fds[2] = {p[0], q[0]};
    for (int i = 0; i < 2; i++) {
        struct io_uring_sqe *sqe = uring_sqe(&r);
        sqe->opcode = IORING_OP_READ;
        sqe->fd = fds[i];
        sqe->addr = (uint64_t)(uintptr_t)bufs[i];
        sqe->len = sizeof bufs[i];
        sqe->off = (uint64_t)-1;
        sqe->user_data = (uint64_t)i + 1;
    }
    CHECK_EQ(uring_submit(&r, 0, 0), 2);
    CHECK_EQ(write(p[1], "one", 3), 3);          /* q never gets anything */
    int64_t t0 = sys_now_ms();
    int rc;
    do
        rc = uring_submit_batch(&r, 2, 20 * 1000, 5000);
    while (rc == -1 && errno == EINTR);
    int64_t took = sys_now_ms() - t0;
    CHECK_MSG(rc == 0 || (rc == -1 && errno == ETIME), "io_uring_enter: %s", strerror(errno));
    unsigned head;
    CHECK_EQ(uring_cq_ready(&r, &head), 1);
    CHECK_EQ(uring_cqe_at(&r, head)->user_data, 1);
    CHECK_EQ(uring_cqe_at(&r, head)->res, 3);
    CHECK_MSG(took < 2500, "waited %lld ms for the second completion (min wait 20 ms)",
              (long long)took);
    test_log("a wait for 2 with a 20 ms minimum returned 1 after %lld ms", (long long)took);
    uring_cq_advance(&r, 1);
    uring_free(&r);                              /* cancels the read of q */
    for (int i = 0; i < 2; i++) {
        close(p[i]);
        close(q[i]);
    }
}

/* More SQEs than the ring holds: uring_sqe says when to submit; every
 * completion comes back once, in one or more batches. */
static void t_batches(const void *arg)
{
    (void)arg;
    struct uring r;
    need_uring(&r, 16);
    unsigned seen[100] = {0}, done = 0;
    for (unsigned i = 0; i < 100; i++) {
        struct io_uring_sqe *sqe = uring_sqe(&r);
        if (sqe == NULL) {                   /* full: hand them over */
            CHECK_INT(uring_submit(&r, 0, 0), >, 0);
            sqe = uring_sqe(&r);
        }
        CHECK(sqe != NULL);
        sqe->opcode = IORING_OP_NOP;
        sqe->user_data = i;
        unsigned head, n = uring_cq_ready(&r, &head);
        for (unsigned k = 0; k < n; k++)
            seen[uring_cqe_at(&r, head + k)->user_data]++;
        uring_cq_advance(&r, n);
        done += n;
    }
    while (done < 100) {
        unsigned head, n = uring_cq_ready(&r, &head);
        if (n == 0)
            CHECK(uring_submit(&r, 1, 5000) >= 0 || errno == EINTR);
        for (unsigned k = 0; k < n; k++)
            seen[uring_cqe_at(&r, head + k)->user_data]++;
        uring_cq_advance(&r, n);
        done += n;
    }
    for (unsigned i = 0; i < 100; i++)
        CHECK_EQ(seen[i], 1);
    uring_free(&r);
}

/* One multishot receive, armed once, fills provided buffers as data
 * arrives; the buffer named by each CQE holds that data. */
static void t_multishot_bufs(const void *arg)
{
    (void)arg;
    struct uring r;
    need_uring(&r, 8);
    struct uring_bufs b;
    char err[256];
    CHECK_MSG(uring_bufs_init(&r, &b, 3, 4, 64, err, sizeof err) == 0, "%s", err);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct io_uring_sqe *sqe = uring_sqe(&r);
    sqe->opcode = IORING_OP_RECV;
    sqe->fd = sv[0];
    sqe->ioprio = IORING_RECV_MULTISHOT;
    sqe->flags = IOSQE_BUFFER_SELECT;
    sqe->buf_group = 3;
    sqe->user_data = 9;
    CHECK_EQ(uring_submit(&r, 0, 0), 1);
    const char *msgs[] = {"one", "two!", "three"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(msgs[i]);
        CHECK_EQ(write(sv[1], msgs[i], n), (ssize_t)n);
        unsigned head = reap(&r, 1);
        const struct io_uring_cqe *cqe = uring_cqe_at(&r, head);
        CHECK_EQ(cqe->user_data, 9);
        CHECK_EQ(cqe->res, (int)n);
        CHECK(cqe->flags & IORING_CQE_F_BUFFER);
        CHECK(cqe->flags & IORING_CQE_F_MORE);           /* still armed */
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        CHECK_MEM(uring_buf(&b, bid), msgs[i], n);
        uring_cq_advance(&r, 1);
        uring_bufs_put(&b, bid);
    }
    close(sv[1]);                                        /* EOF ends it */
    unsigned head = reap(&r, 1);
    const struct io_uring_cqe *cqe = uring_cqe_at(&r, head);
    CHECK_EQ(cqe->res, 0);
    CHECK(!(cqe->flags & IORING_CQE_F_MORE));
    uring_cq_advance(&r, 1);
    close(sv[0]);
    uring_bufs_free(&r, &b);
    uring_free(&r);
}

/* Where io_uring is refused (kernel.io_uring_disabled, seccomp, no
 * io_uring at all; simulated by the fault shim): exit 1 at start with
 * one line naming the cause and the alternatives, and no listening line. */
static void t_unavailable(const void *arg)
{
    const char *err = arg;
    const char *wrapper = getenv("TEST_WRAPPER");
    if (wrapper != NULL && *wrapper != '\0')
        test_skip("LD_PRELOAD is not for valgrind");
    char bin[256], env[64];
    snprintf(env, sizeof env, "FAULT_URING_SETUP=%s", err);
    const char *argv[] = {bin_path("select_server", bin, sizeof bin), "-p", "0", "--backend",
                          "uring", NULL};
    struct spawn_opts so = {.env = {fault_shim_preload(), env,
                                    "ASAN_OPTIONS=verify_asan_link_order=0", NULL}};
    struct proc *p = proc_spawn(argv, &so);
    int st = srv_wait_exit(p, 10000);
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 1);
    char *out = srv_stdout(p), *e = srv_stderr(p);
    CHECK_STR(out, "");
    const char *want = strcmp(err, "ENOSYS") == 0 ? "io_uring_setup: Function not implemented"
                                                  : "io_uring_setup: Operation not permitted";
    CHECK_HAS(e, "select_server: io_uring unavailable: ");
    CHECK_HAS(e, want);
    CHECK_HAS(e, "; use --backend epoll or poll\n");
    CHECK_MSG(strchr(e, '\n') == e + strlen(e) - 1, "more than one line: %s", e);
    test_log("%s", e);
    free(out);
    free(e);
    srv_free(p);
}

void uring_tests(void)
{
    test_add("unit: uring: NOP round trip", t_nop, NULL, 10, 0);
    test_add("unit: uring: a read queued on an empty pipe completes when data comes; "
             "timed wait", t_pipe_read, NULL, 10, 0);
    test_add("unit: uring: a batch wait for 2 settles for 1 once its minimum wait has passed",
             t_batch_wait, NULL, 10, 0);
    test_add("unit: uring: 100 NOPs through a 16-entry ring, each reaped once", t_batches,
             NULL, 10, 0);
    test_add("unit: uring: multishot receive into provided buffers until EOF",
             t_multishot_bufs, NULL, 10, 0);
    test_add("select_server/uring: io_uring_setup refused (EPERM, as with "
             "kernel.io_uring_disabled): exit 1, one line with the cause and the alternatives",
             t_unavailable, "EPERM", 20, 0);
    test_add("select_server/uring: no io_uring (ENOSYS): exit 1, one line with the cause and "
             "the alternatives", t_unavailable, "ENOSYS", 20, 0);
}
