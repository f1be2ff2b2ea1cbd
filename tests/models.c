/* models: cases that belong to some models only: chat (thread_server and
 * select_server), scale and FD_SETSIZE (select_server's backends),
 * --workers, thread_server --pool. */
#include <sys/socket.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/net.h"
#include "common/sys.h"
#include "tests/harness.h"
#include "tests/test.h"

#define MS(x) ((x) * slow_factor())

/* ---- chat ---- */

static void t_chat_three(const void *arg)
{
    struct proc *p = srv_start(arg, "-m", "chat", NULL);
    CHECK_OUT(p, "(mode chat");
    int c[3];
    tc_connect_n(p, c, 3);
    tc_send_str(c[0], "hi\n");
    tc_recv_str(c[1], "client 1: hi\n");
    tc_recv_str(c[2], "client 1: hi\n");
    tc_send_str(c[1], "split ");
    tc_send_str(c[1], "line\r\n");                  /* whole lines only, bytes kept */
    tc_recv_str(c[0], "client 2: split line\r\n");
    tc_recv_str(c[2], "client 2: split line\r\n");
    tc_send_str(c[2], "bye");                       /* a partial line at EOF counts */
    shutdown(c[2], SHUT_WR);
    tc_recv_str(c[0], "client 3: bye\n");
    tc_recv_str(c[1], "client 3: bye\n");
    CHECK(tc_wait_close(c[2], MS(5000), NULL));
    tc_expect_quiet(c[0], 200);                 /* nothing is echoed to a sender */
    for (int i = 0; i < 3; i++)
        close(c[i]);
    srv_expect(p, "disconnected", 3);
    srv_stop(p);
    CHECK_OUT(p, "served 3 clients, received 18 bytes");
    srv_free(p);
}

static void t_chat_slow_receiver(const void *arg)
{
    struct proc *p = srv_start(arg, "-m", "chat", NULL);
    int c[3];                                    /* 1 never reads, 2 talks, 3 listens */
    tc_connect_n(p, c, 3);
    enum { LINE = 1000, LINES = 64 };
    static char block[LINE * LINES], in[65536];
    memset(block, 'x', sizeof block);
    for (int i = 1; i <= LINES; i++)
        block[i * LINE - 1] = '\n';
    const char *head = "client 2: ";
    size_t hl = strlen(head), sent = 0, got = 0, limit = (size_t)256 << 20;
    net_set_nonblock(c[1], 1);
    net_set_nonblock(c[2], 1);
    int dropped = 0;
    /* talk until the silent client is dropped, listening all the while;
     * the talker waits whenever the listener is 64 KiB behind, so only
     * the silent client can fall behind for good */
    while (sent < limit && (!dropped || sent % LINE != 0)) {
        int ahead = sent / LINE * (hl + LINE) - got > 65536;
        struct pollfd pfd[2] = {{ahead ? -1 : c[1], POLLOUT, 0}, {c[2], POLLIN, 0}};
        CHECK(poll(pfd, 2, MS(5000)) > 0);
        if (pfd[0].revents & POLLOUT) {
            size_t off = sent % sizeof block, n = sizeof block - off;
            if (dropped && n > LINE - sent % LINE)
                n = LINE - sent % LINE;            /* finish the current line only */
            ssize_t w = send(c[1], block + off, n, 0);
            CHECK_MSG(w > 0 || errno == EAGAIN, "talker: %s", strerror(errno));
            sent += w > 0 ? (size_t)w : 0;
        }
        if (pfd[1].revents & POLLIN) {
            ssize_t r = recv(c[2], in, sizeof in, 0);
            CHECK_MSG(r > 0, "listener lost its connection after %zu bytes", got);
            got += (size_t)r;
        }
        dropped = dropped || srv_count(p, "client 1: chat queue over") > 0;
    }
    CHECK_MSG(dropped, "silent client never dropped after %zu MiB", sent >> 20);
    test_log("silent client dropped after %zu MiB of chat", sent >> 20);
    /* the listener still gets every line, in order and whole */
    size_t want = sent / LINE * (hl + LINE);
    net_set_nonblock(c[2], 0);
    while (got < want) {
        ssize_t r = recv(c[2], in, sizeof in, 0);
        CHECK_MSG(r > 0, "listener stopped at %zu of %zu bytes", got, want);
        got += (size_t)r;
    }
    CHECK_EQ(got, want);
    CHECK(tc_wait_close(c[0], MS(5000), NULL));  /* the silent one is gone */
    net_set_nonblock(c[1], 0);
    tc_send_str(c[1], "still\n");
    tc_recv_str(c[2], "client 2: still\n");
    for (int i = 0; i < 3; i++)
        close(c[i]);
    srv_expect(p, "disconnected", 3);
    srv_stop(p);
    srv_free(p);
}

/* ---- select_server: many connections, FD_SETSIZE, workers ---- */

static void scale(const struct kind *k, int n)
{
    if (sys_raise_nofile(n + 64) < n + 64)
        test_skip("this process may not open %d descriptors", n + 64);
    char max[16];
    snprintf(max, sizeof max, "%d", n + 16);
    struct proc *p = srv_start(k, "-q", "-c", max, NULL);
    int *fds = malloc((size_t)n * sizeof *fds);
    CHECK(fds != NULL);
    for (int i = 0; i < n; i++)
        fds[i] = tc_connect(p->port);
    char msg[16], back[16];
    for (int i = 0; i < n; i++) {
        snprintf(msg, sizeof msg, "%07d\n", i);
        tc_send(fds[i], msg, 8);
    }
    for (int i = 0; i < n; i++) {
        snprintf(msg, sizeof msg, "%07d\n", i);
        CHECK_EQ(tc_recv(fds[i], back, 8), 8);
        CHECK_MEM(back, msg, 8);
    }
    test_log("%d connections: server RSS %ld KiB, %d descriptors", n, proc_rss_kb(p->pid),
             proc_fds(p->pid));
    CHECK_INT(proc_fds(p->pid), >=, n);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
    srv_stop(p);
    char want[96];
    snprintf(want, sizeof want, "served %d clients, received %d bytes", n, 8 * n);
    CHECK_OUT(p, want);
    srv_free(p);
}

static void t_scale_2000(const void *arg)
{
    scale(arg, 2000);
}

static void t_scale_10000(const void *arg)
{
    scale(arg, 10000);
}

static void t_fd_setsize(const void *arg)
{
    enum { N = 1100 };
    if (sys_raise_nofile(N + 64) < N + 64)
        test_skip("this process may not open %d descriptors", N + 64);
    struct proc *p = srv_start(arg, "-c", "2000", NULL);
    int fds[N], served = 0, closed = 0;
    for (int i = 0; i < N; i++) {
        fds[i] = tc_connect(p->port);
        char x = 'a';
        if (send(fds[i], &x, 1, MSG_NOSIGNAL) == 1 && recv(fds[i], &x, 1, 0) == 1)
            served++;
        else
            closed++;
    }
    test_log("%d served, %d closed past FD_SETSIZE", served, closed);
    CHECK_INT(served, >=, 1000);
    CHECK_INT(closed, >, 0);
    srv_expect(p, "is past FD_SETSIZE 1024 of the select backend", closed);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    srv_expect(p, "disconnected", N);
    int fd = tc_connect(p->port);                /* and life goes on */
    tc_send_str(fd, "ok");
    tc_recv_str(fd, "ok");
    close(fd);
    srv_stop(p);
    srv_free(p);
}

static void t_workers(const void *arg)
{
    struct proc *p = srv_start(arg, "--workers", "4", NULL);
    int kids = 0;
    for (int tries = 0; tries < 100 && (kids = proc_children(p->pid, NULL)) < 4; tries++)
        usleep(10000);
    CHECK_EQ(kids, 4);
    enum { N = 60 };
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = tc_connect(p->port);
    for (int i = 0; i < N; i++) {
        char msg[16];
        snprintf(msg, sizeof msg, "w%02d", i);
        tc_send_str(fds[i], msg);
        tc_recv_str(fds[i], msg);
    }
    for (int i = 0; i < N; i++)
        close(fds[i]);
    srv_expect(p, "disconnected (received 3 bytes)", N);
    /* client numbers stay unique across workers */
    for (int i = 1; i <= N; i++) {
        char line[64];
        snprintf(line, sizeof line, "client %d connected", i);
        CHECK_EQ(srv_count(p, line), 1);
    }
    /* Ctrl-C to the group: one shutdown line for all, nobody left behind */
    CHECK_EQ(kill(-p->pid, SIGINT), 0);
    int st = srv_wait_exit(p, MS(10000));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(srv_count(p, "shutting down"), 1);
    CHECK_OUT(p, "select_server: shutting down: served 60 clients, received 180 bytes");
    CHECK_MSG(kill(-p->pid, 0) == -1 && errno == ESRCH, "a worker outlived the server");
    srv_free(p);
}

/* ---- thread_server --pool: a fixed set of threads ---- */

/* The bare binary: each case passes its own --pool N. */
static const struct kind thread_plain = {"thread_server", "thread_server", NULL, MODEL_THREAD,
                                         {NULL}};

static void t_pool_waits(const void *arg)
{
    (void)arg;
    struct proc *p = srv_start(&thread_plain, "--pool", "2", NULL);
    int c[3];
    tc_connect_n(p, c, 2);
    c[2] = tc_connect(p->port);     /* the kernel completes it: it waits in the backlog */
    tc_send_str(c[2], "third");
    tc_expect_quiet(c[2], 300);     /* neither served nor refused */
    CHECK_EQ(srv_count(p, "client 3 connected"), 0);
    CHECK_EQ(srv_count(p, "refused"), 0);
    tc_send_str(c[0], "one");       /* the clients being served go on */
    tc_recv_str(c[0], "one");
    close(c[0]);                    /* a thread frees up: client 3 is next */
    srv_expect(p, "client 3 connected", 1);
    tc_recv_str(c[2], "third");
    close(c[1]);
    close(c[2]);
    srv_expect(p, "disconnected", 3);
    srv_stop(p);
    CHECK_OUT(p, "served 3 clients, received 8 bytes");
    CHECK_EQ(srv_count(p, "refused"), 0);
    srv_free(p);
}

static void t_pool_max_clients(const void *arg)
{
    (void)arg;
    struct proc *p = srv_start(&thread_plain, "--pool", "4", "-c", "2", NULL);
    int c[2];
    tc_connect_n(p, c, 2);
    int x = tc_connect(p->port);    /* a thread is free, a seat is not: refused */
    CHECK(tc_wait_close(x, MS(2000), NULL));
    close(x);
    srv_expect(p, "refused 127.0.0.1:", 1);
    CHECK_OUT(p, ": at --max-clients 2\n");
    for (int i = 0; i < 2; i++)
        close(c[i]);
    srv_expect(p, "disconnected", 2);
    srv_stop(p);
    CHECK_OUT(p, "served 2 clients, received 0 bytes");
    srv_free(p);
}

static void t_pool_idle_timeout(const void *arg)
{
    (void)arg;
    struct proc *p = srv_start(&thread_plain, "--pool", "2", "-t", "1", NULL);
    int c[2];
    tc_connect_n(p, c, 2);             /* two idle clients hold the whole pool */
    int64_t t0 = sys_now_ms();
    int x = tc_connect(p->port);
    tc_send_str(x, "late");
    tc_recv_str(x, "late");         /* served once the idle ones are closed */
    int64_t ms = sys_now_ms() - t0;
    test_log("client 3 served after %lld ms", (long long)ms);
    CHECK_INT(ms, <, MS(3000));
    srv_expect(p, "client 1: idle for 1 s (--idle-timeout)", 1);
    srv_expect(p, "client 2: idle for 1 s (--idle-timeout)", 1);
    CHECK(tc_wait_close(c[0], MS(2000), NULL));
    CHECK(tc_wait_close(c[1], MS(2000), NULL));
    for (int i = 0; i < 2; i++)
        close(c[i]);
    close(x);
    srv_expect(p, "disconnected", 3);
    srv_stop(p);
    srv_free(p);
}

/* SIGTERM with the pool full and client 3 in the listen backlog: the two
 * served finish within --drain (then are cut); client 3 was never
 * accepted, so closing the listener resets it (or it sees EOF): nothing
 * echoed, no number, no line. */
static void t_pool_drain_backlog(const void *arg)
{
    (void)arg;
    struct proc *p = srv_start(&thread_plain, "--pool", "2", "--drain", "1", NULL);
    int c[2];
    tc_connect_n(p, c, 2);
    int x = tc_connect(p->port);
    tc_send_str(x, "waiting");
    tc_expect_quiet(x, 200);
    CHECK_EQ(kill(p->pid, SIGTERM), 0);
    tc_send_str(c[0], "still");     /* echo keeps working during the drain */
    tc_recv_str(c[0], "still");
    struct pollfd pfd = {x, POLLIN, 0};
    CHECK_MSG(poll(&pfd, 1, MS(2000)) == 1, "the client in the backlog hangs");
    char b;
    errno = 0;
    ssize_t r = recv(x, &b, 1, 0);              /* nothing echoed: a reset or EOF */
    test_log("the client in the backlog: %s", r == 0 ? "EOF" : strerror(errno));
    CHECK_MSG(r == 0 || (r < 0 && errno == ECONNRESET), "recv: %zd (%s)", r, strerror(errno));
    CHECK(tc_wait_close(c[1], MS(3000), NULL));   /* cut when the drain ran out */
    int st = srv_wait_exit(p, MS(10000));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_OUT(p, "client 2: drain time of 1 s ran out");
    CHECK_OUT(p, "thread_server: shutting down: served 2 clients, received 5 bytes");
    CHECK_EQ(srv_count(p, "client 3"), 0);
    close(x);
    for (int i = 0; i < 2; i++)
        close(c[i]);
    srv_free(p);
}

/* Wait until p runs lo..hi threads (a sanitizer's own aside); the count. */
static int wait_threads(struct proc *p, int lo, int hi)
{
    int t = -1;
    for (int tries = 0; tries < MS(300); tries++) {
        t = proc_threads(p->pid);
        if (t >= lo && t <= hi + sanitizer_threads())
            break;
        usleep(10000);
    }
    test_log("%d threads (want %d-%d)", t, lo, hi);
    CHECK_INT(t, >=, lo);
    CHECK_INT(t, <=, hi + sanitizer_threads());
    return t;
}

/* Threads: N pool threads and the main, whatever the churn; in chat mode
 * a writer per client being served, gone with it. */
static void t_pool_threads(const void *arg)
{
    (void)arg;
    int extra = sanitizer_threads();
    struct proc *p = srv_start(&thread_plain, "--pool", "8", "-q", NULL);
    int t0 = proc_threads(p->pid);
    CHECK_INT(t0, >=, 9);
    CHECK_INT(t0, <=, 9 + extra);
    enum { ROUNDS = 200, AT_ONCE = 6 };
    for (int r = 0; r < ROUNDS; r++) {
        int fds[AT_ONCE];
        for (int i = 0; i < AT_ONCE; i++)
            fds[i] = tc_connect(p->port);
        for (int i = 0; i < AT_ONCE; i++) {
            tc_send_str(fds[i], "churn");
            tc_recv_str(fds[i], "churn");
        }
        int t = proc_threads(p->pid);
        CHECK_MSG(t >= 9 && t <= 9 + extra, "round %d: %d threads", r, t);
        for (int i = 0; i < AT_ONCE; i++)
            close(fds[i]);
    }
    srv_stop(p);
    CHECK_OUT(p, "served 1200 clients, received 6000 bytes");
    srv_free(p);

    p = srv_start(&thread_plain, "--pool", "4", "-m", "chat", NULL);
    int c[5];
    tc_connect_n(p, c, 4);
    wait_threads(p, 5 + 4, 5 + 4);                   /* 4 writers */
    c[4] = tc_connect(p->port);                      /* waits: sees no chat yet */
    tc_send_str(c[0], "hi\n");
    for (int i = 1; i < 4; i++)
        tc_recv_str(c[i], "client 1: hi\n");
    tc_expect_quiet(c[4], 200);
    close(c[0]);
    srv_expect(p, "client 5 connected", 1);
    tc_send_str(c[1], "you too\n");
    tc_recv_str(c[4], "client 2: you too\n");
    for (int i = 1; i < 5; i++)
        close(c[i]);
    srv_expect(p, "disconnected", 5);
    wait_threads(p, 5, 5);
    srv_stop(p);
    srv_free(p);
}

static void t_pool_start_fails(const void *arg)
{
    (void)arg;
    if (getenv("TEST_WRAPPER") != NULL)
        test_skip("LD_PRELOAD is not for valgrind");
    char bin[256];
    const char *argv[] = {bin_path("thread_server", bin, sizeof bin), "-p", "0", "--pool", "8",
                          NULL};
    struct spawn_opts so = {.env = {fault_shim_preload(), "FAULT_FAIL=3",
                                    "ASAN_OPTIONS=verify_asan_link_order=0", NULL}};
    struct proc *p = proc_spawn(argv, &so);
    int st = srv_wait_exit(p, MS(10000));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    char *err = srv_stderr(p);
    CHECK_HAS(err, "thread_server: starting 8 pool threads: Resource temporarily unavailable");
    free(err);
    CHECK_EQ(srv_count(p, "listening"), 0);
    srv_free(p);
}

static void t_pool_options(const void *arg)
{
    (void)arg;
    char bin[256], err[512];
    const char *bad[] = {"0", "4097", "x", "-1", NULL};
    for (int i = 0; bad[i] != NULL; i++) {
        const char *argv[] = {bin_path("thread_server", bin, sizeof bin), "--pool", bad[i], NULL};
        CHECK_EQ(run_cmd(argv, NULL, NULL, err, sizeof err, 5000), 2);
        char want[96];
        snprintf(want, sizeof want, "thread_server: invalid --pool '%s' (expected 1-4096)\n",
                 bad[i]);
        CHECK_HAS(err, want);
    }
    const char *others[] = {"fork_server", "select_server", NULL};
    for (int i = 0; others[i] != NULL; i++) {
        const char *argv[] = {bin_path(others[i], bin, sizeof bin), "--pool", "2", NULL};
        CHECK_EQ(run_cmd(argv, NULL, NULL, err, sizeof err, 5000), 2);
        CHECK_HAS(err, "unrecognized option '--pool'");
    }
}

void model_tests(void)
{
    for (size_t k = 0; k < nkinds; k++) {
        const struct kind *kd = &kinds[k];
        if (kd->model == MODEL_FORK)
            continue;
        test_addf(t_chat_three, kd, 30, 0, "%s: chat between 3 clients", kd->label);
        test_addf(t_chat_slow_receiver, kd, 90, 0,
                  "%s: chat: a client that never reads is dropped, the others go on", kd->label);
        if (kd->model != MODEL_SELECT)
            continue;
        if (strcmp(kd->backend, "select") == 0) {
            test_addf(t_fd_setsize, kd, 60, 0, "%s: descriptors past FD_SETSIZE are refused "
                      "cleanly (the 2,000 and 10,000 cases skip this backend)", kd->label);
            continue;
        }
        test_addf(t_scale_2000, kd, 120, 0, "%s: 2,000 concurrent connections", kd->label);
        test_addf(t_scale_10000, kd, 300, TEST_SLOW, "%s: 10,000 concurrent connections",
                  kd->label);
        test_addf(t_workers, kd, 60, 0, "%s: --workers 4: unique numbers, one shutdown line",
                  kd->label);
    }
    int f = slow_factor();
    test_add("thread_server --pool 2: client 3 waits in the backlog (not refused), served when "
             "a thread frees up", t_pool_waits, NULL, 30 * f, 0);
    test_add("thread_server --pool 4 -c 2: --max-clients below the pool still refuses",
             t_pool_max_clients, NULL, 30 * f, 0);
    test_add("thread_server --pool 2 -t 1: idle clients holding the pool are closed, the "
             "waiting one served <3 s", t_pool_idle_timeout, NULL, 30 * f, 0);
    test_add("thread_server --pool 2: SIGTERM drains a full pool, the client in the backlog "
             "is reset", t_pool_drain_backlog, NULL, 30 * f, 0);
    test_add("thread_server --pool: N+1 threads under churn, chat writers come and go",
             t_pool_threads, NULL, 90 * f, 0);
    test_add("thread_server --pool 8: a failing pthread_create at start exits 1",
             t_pool_start_fails, NULL, 30, 0);
    test_add("thread_server --pool: bad values exit 2; other servers do not know it",
             t_pool_options, NULL, 30, 0);
}
