/* models: cases that belong to some models only: chat (thread_server and
 * select_server), scale and FD_SETSIZE (select_server's backends),
 * --workers. */
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

/* Connect clients 1..n in order (each seen by the server before the next). */
static void connect_n(struct proc *p, int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        char line[64];
        fds[i] = tc_connect(p->port);
        snprintf(line, sizeof line, "client %d connected", i + 1);
        srv_expect(p, line, 1);
    }
}

/* ---- chat ---- */

static void t_chat_three(const void *arg)
{
    struct proc *p = srv_start(arg, "-m", "chat", NULL);
    CHECK_OUT(p, "(mode chat");
    int c[3];
    connect_n(p, c, 3);
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
    connect_n(p, c, 3);
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
}
