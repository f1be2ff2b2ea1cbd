/* supervise: process supervision and stopping (issue 9 items 3, 4 and
 * 10's Ctrl-C bullet; issue 11 item 1): a pre-forked child or a worker
 * that dies is reported and replaced with its seats given back and its
 * bytes counted; no child outlives its parent; SIGHUP stops like
 * SIGTERM; the drain says it started and a second Ctrl-C ends it. */
#include <sys/socket.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "common/sys.h"
#include "tests/harness.h"
#include "tests/test.h"

#define MS(x) ((x) * slow_factor())
#define MAXK 64

/* Wait until the server's stderr holds text, or fail the case. */
static void expect_err(struct proc *p, const char *text, int timeout_ms)
{
    if (srv_wait_text_err(p, text, 1, timeout_ms) == -1) {
        char *e = srv_stderr(p);
        test_fail(__FILE__, __LINE__, "expected \"%s\" on stderr; stderr:\n%s", text, e);
    }
}

/* stderr reports WHAT victim's death by SIGKILL and its replacement. */
static void expect_replaced(struct proc *p, const char *what, pid_t victim)
{
    char want[96];
    snprintf(want, sizeof want, "%s %ld died of signal 9", what, (long)victim);
    expect_err(p, want, MS(3000));
    snprintf(want, sizeof want, "in place of %ld", (long)victim);
    expect_err(p, want, MS(3000));
}

/* A process that still runs (a zombie does not). */
static int alive(pid_t pid)
{
    return kill(pid, 0) == 0 && !is_zombie(pid);
}

/* The bytes in "received X bytes" of the shutdown line. */
static unsigned long long shutdown_totals(struct proc *p, unsigned long long *clients)
{
    char *out = srv_stdout(p), *line = strstr(out, "shutting down: served ");
    unsigned long long served = 0, bytes = 0;
    CHECK_MSG(line != NULL && sscanf(line, "shutting down: served %llu clients, received %llu bytes",
                                     &served, &bytes) == 2, "no shutdown line:\n%s", out);
    free(out);
    *clients = served;
    return bytes;
}

/* n clients, each echoing "hello"; then SIGKILL one child process.
 * Returns the index of the client that was cut (its process died), with
 * the others checked untouched. */
static int kill_one_under_load(struct proc *p, int *fds, int n, pid_t *victim)
{
    for (int i = 0; i < n; i++) {
        fds[i] = tc_connect(p->port);
        tc_send_str(fds[i], "hello");
        tc_recv_str(fds[i], "hello");
    }
    srv_expect(p, "connected from", n);
    pid_t kids[MAXK];
    int nk = children_of(p->pid, kids, MAXK);
    CHECK_INT(nk, >, 0);
    *victim = kids[0];
    CHECK_EQ(kill(*victim, SIGKILL), 0);
    int cut = -1, ncut = 0;
    for (int i = 0; i < n; i++) {
        if (tc_wait_close(fds[i], 300, NULL)) {
            cut = i;
            ncut++;
        }
    }
    return ncut == 1 ? cut : (ncut == 0 ? -1 : -2);
}

static void t_prefork_child_killed(const void *arg)
{
    (void)arg;
    static const struct kind k = {"fork_server/prefork", "fork_server", NULL, MODEL_FORK,
                                  {"--prefork", "4", NULL}};
    struct proc *p = srv_start(&k, NULL);
    int fds[4];
    pid_t victim;
    /* four clients hold all four children: the one killed was serving one */
    int cut = kill_one_under_load(p, fds, 4, &victim);
    CHECK_MSG(cut >= 0, "expected exactly one client cut off (%d)", cut);
    expect_replaced(p, "child process", victim);
    /* the others are unaffected */
    for (int i = 0; i < 4; i++) {
        if (i == cut)
            continue;
        tc_send_str(fds[i], "world");
        tc_recv_str(fds[i], "world");
    }
    close(fds[cut]);
    /* the replacement serves a fifth client at once */
    int e = tc_connect(p->port);
    tc_send_str(e, "fifth");
    tc_recv_str(e, "fifth");
    CHECK_EQ(proc_children(p->pid, NULL), 4);
    close(e);
    for (int i = 0; i < 4; i++)
        if (i != cut)
            close(fds[i]);
    srv_expect(p, "disconnected", 4);
    srv_stop(p);
    unsigned long long clients, bytes = shutdown_totals(p, &clients);
    CHECK_EQ(clients, 5);
    CHECK_EQ(bytes, 4 * 5 + 3 * 5 + 5);   /* the killed child's client too */
    srv_free(p);
}

static void t_worker_killed(const void *arg)
{
    const struct kind *k = arg;
    struct proc *p = srv_start(k, "--workers", "2", "-c", "4", NULL);
    int fds[4];
    pid_t victim;
    for (int i = 0; i < 4; i++) {
        fds[i] = tc_connect(p->port);
        tc_send_str(fds[i], "hello");
        tc_recv_str(fds[i], "hello");
    }
    srv_expect(p, "connected from", 4);
    pid_t kids[MAXK];
    CHECK_EQ(children_of(p->pid, kids, MAXK), 2);
    victim = kids[0];
    CHECK_EQ(kill(victim, SIGKILL), 0);
    int ncut = 0, was_cut[4];
    for (int i = 0; i < 4; i++)
        ncut += was_cut[i] = tc_wait_close(fds[i], 300, NULL);
    expect_replaced(p, "worker", victim);
    /* every survivor still echoes; then all leave */
    for (int i = 0; i < 4; i++) {
        if (!was_cut[i]) {
            tc_send_str(fds[i], "world");
            tc_recv_str(fds[i], "world");
        }
        close(fds[i]);
    }
    srv_expect(p, "disconnected", 4 - ncut);
    /* the dead worker's seats were given back: 4 new clients, all served */
    int again[4];
    for (int i = 0; i < 4; i++) {
        again[i] = tc_connect(p->port);
        tc_send_str(again[i], "again");
        tc_recv_str(again[i], "again");
    }
    CHECK_EQ(srv_count(p, "refused"), 0);
    for (int i = 0; i < 4; i++)
        close(again[i]);
    srv_expect(p, "disconnected", 4 - ncut + 4);
    srv_stop(p);
    unsigned long long clients, bytes = shutdown_totals(p, &clients);
    CHECK_EQ(clients, 8);
    CHECK_EQ(bytes, 4 * 5 + (unsigned long long)(4 - ncut) * 5 + 4 * 5);
    srv_free(p);
}

/* A worker that dies within a second of its start, again and again, is
 * not replaced forever; with every worker gone the master says so and
 * exits 1, without a normal shutdown line. */
static void t_all_workers_gone(const void *arg)
{
    const struct kind *k = arg;
    struct proc *p = srv_start(k, "--workers", "2", NULL);
    /* kill only the workers (the first two, then each "started worker
     * PID"): a sanitizer's leak check at exit runs in a child of its own */
    pid_t kids[MAXK];
    int n = 0;
    for (int64_t until = sys_now_ms() + MS(5000); n < 2 && sys_now_ms() < until; usleep(5000))
        n = children_of(p->pid, kids, MAXK);
    CHECK_EQ(n, 2);
    int64_t end = sys_now_ms() + MS(10000);
    while (!p->exited && sys_now_ms() < end) {
        for (int i = 0; i < n; i++)
            if (kids[i] > 0 && alive(kids[i]))
                kill(kids[i], SIGKILL);
        char *e = srv_stderr(p);
        int gone = strstr(e, "every worker is gone") != NULL;
        n = 0;
        for (const char *at = e; n < MAXK && (at = strstr(at, "started worker ")) != NULL; at++)
            kids[n++] = (pid_t)strtol(at + strlen("started worker "), NULL, 10);
        free(e);
        if (gone)
            break;
        usleep(20 * 1000);
    }
    int st = srv_wait_exit(p, MS(5000));
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d", st);
    CHECK_EQ(srv_count(p, "shutting down"), 0);
    srv_free(p);
}

/* SIGKILL or SIGHUP to the parent: no worker or child outlives it, and
 * the port is free. */
static void parent_dies(const struct kind *k, int sig, const char *const *args)
{
    const char *argv[8] = {"--drain", "1"};
    int n = 2;
    for (int i = 0; args[i] != NULL && n < 7; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    struct proc *p = srv_startv(k, NULL, argv);
    int fd = tc_connect(p->port);
    tc_send_str(fd, "abc");
    tc_recv_str(fd, "abc");
    pid_t kids[MAXK];
    int nk = children_of(p->pid, kids, MAXK);
    CHECK_INT(nk, >, 0);
    CHECK_EQ(kill(p->pid, sig), 0);
    int st = srv_wait_exit(p, MS(8000));
    if (sig == SIGHUP) {           /* a stop like SIGTERM: drained, exit 0 */
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
        CHECK_EQ(srv_count(p, "shutting down"), 1);
    }
    /* every child ends within --drain (plus a margin) */
    int64_t end = sys_now_ms() + MS(4000);
    int left = nk;
    while (left > 0 && sys_now_ms() < end) {
        left = 0;
        for (int i = 0; i < nk && i < MAXK; i++)
            left += alive(kids[i]);
        if (left > 0)
            usleep(20 * 1000);
    }
    CHECK_MSG(left == 0, "%d of %d children outlived the parent", left, nk);
    tc_expect_closed(fd, 1000);
    close(fd);
    int c = tc_try_connect(p->port);
    CHECK_MSG(c == -1 && errno == ECONNREFUSED, "the port is still taken");
    srv_free(p);
}

static void t_master_killed(const void *arg)
{
    static const char *const workers[] = {"--workers", "2", NULL}, *none[] = {NULL};
    const struct kind *k = arg;
    parent_dies(k, SIGKILL, k->model == MODEL_SELECT ? workers : none);
}

static void t_master_hup(const void *arg)
{
    static const char *const workers[] = {"--workers", "2", NULL}, *none[] = {NULL};
    const struct kind *k = arg;
    parent_dies(k, SIGHUP, k->model == MODEL_SELECT ? workers : none);
}

/* SIGHUP to a server alone: drains like SIGTERM (the client in flight is
 * still served), shutdown line, exit 0. */
static void t_sighup_drains(const void *arg)
{
    struct proc *p = srv_start(arg, "--drain", "10", NULL);
    int fd = tc_connect(p->port);
    tc_send_str(fd, "ab");
    tc_recv_str(fd, "ab");
    srv_expect(p, "client 1 connected", 1);
    CHECK_EQ(kill(p->pid, SIGHUP), 0);
    srv_expect(p, "draining 1 clients for up to 10 s (Ctrl-C again to stop now)", 1);
    tc_send_str(fd, "cd");
    tc_recv_str(fd, "cd");
    close(fd);
    int st = srv_wait_exit(p, MS(5000));
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    CHECK_OUT(p, "shutting down: served 1 clients, received 4 bytes");
    srv_free(p);
}

/* Ctrl-C (SIGINT to the group) with a client connected: one line says
 * the drain started; a second Ctrl-C ends it at once, still with the
 * shutdown line and exit 0.  No drain line without clients. */
static void t_second_sigint(const void *arg)
{
    struct proc *p = srv_start(arg, "--drain", "30", NULL);
    int fd = tc_connect(p->port);
    tc_send_str(fd, "xyz");
    tc_recv_str(fd, "xyz");
    srv_expect(p, "client 1 connected", 1);
    CHECK_EQ(kill(-p->pid, SIGINT), 0);
    srv_expect(p, "draining 1 clients for up to 30 s (Ctrl-C again to stop now)", 1);
    tc_send_str(fd, "w");                 /* still served while draining */
    tc_recv_str(fd, "w");
    int64_t t0 = sys_now_ms();
    CHECK_EQ(kill(-p->pid, SIGINT), 0);
    tc_expect_closed(fd, 3000);
    close(fd);
    int st = srv_wait_exit(p, MS(5000));
    CHECK_INT(sys_now_ms() - t0, <, MS(3000));
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    CHECK_OUT(p, "shutting down: served 1 clients, received 4 bytes");
    CHECK_EQ(srv_count(p, "draining"), 1);
    srv_free(p);
    /* nobody connected: no drain line */
    p = srv_start(arg, NULL);
    CHECK_EQ(kill(-p->pid, SIGINT), 0);
    st = srv_wait_exit(p, MS(5000));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(srv_count(p, "draining"), 0);
    srv_free(p);
}

/* Ctrl-C on a terminal: the terminal echoes "^C" where the cursor is,
 * so the server's next line starts with a newline of its own.  Into a
 * pipe (every other case) there is no such newline. */
static void t_ctrl_c_own_line(const void *arg)
{
    const struct kind *k = arg;
    int mfd = posix_openpt(O_RDWR | O_NOCTTY);
    CHECK(mfd >= 0 && grantpt(mfd) == 0 && unlockpt(mfd) == 0);
    int sfd = open(ptsname(mfd), O_RDWR | O_NOCTTY);
    CHECK(sfd >= 0);
    struct termios t;
    CHECK_EQ(tcgetattr(sfd, &t), 0);
    cfmakeraw(&t);                        /* no \r added: compare bytes */
    CHECK_EQ(tcsetattr(sfd, TCSANOW, &t), 0);
    char path[256];
    const char *bin = bin_path(k->bin, path, sizeof path);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(sfd, STDOUT_FILENO);
        execl(bin, bin, "-p", "0", (char *)NULL);
        _exit(127);
    }
    close(sfd);
    char out[4096];
    size_t len = 0;
    int signalled = 0;
    int64_t end = sys_now_ms() + MS(10000);
    while (len < sizeof out - 1 && sys_now_ms() < end) {
        struct pollfd pfd = {mfd, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t r = read(mfd, out + len, sizeof out - 1 - len);
        if (r <= 0)
            break;                        /* EIO: the server closed the terminal */
        len += (size_t)r;
        out[len] = '\0';
        if (!signalled && strstr(out, "listening on") && strchr(out, '\n')) {
            CHECK_EQ(kill(pid, SIGINT), 0);
            signalled = 1;
        }
    }
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    close(mfd);
    out[len] = '\0';
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    char want[96];
    snprintf(want, sizeof want, ")\n\n%s: shutting down: served 0 clients", k->bin);
    CHECK_HAS(out, want);
}

/* --backend select with more --max-clients than FD_SETSIZE leaves room
 * for: warned at start. */
static void t_select_fd_setsize_warning(const void *arg)
{
    (void)arg;
    static const struct kind k = {"select_server/select", "select_server", "select",
                                  MODEL_SELECT, {NULL}};
    struct proc *p = srv_start(&k, "-c", "5000", NULL);
    expect_err(p, "FD_SETSIZE", MS(2000));
    expect_err(p, "not --max-clients 5000", MS(2000));
    srv_stop(p);
    srv_free(p);
    p = srv_start(&k, "-c", "100", NULL);
    srv_stop(p);
    char *e = srv_stderr(p);
    CHECK(strstr(e, "FD_SETSIZE") == NULL);
    free(e);
    srv_free(p);
}

void supervise_tests(void)
{
    test_add("fork_server/prefork: SIGKILL one child under load: reported, replaced, "
             "others unaffected, totals right", t_prefork_child_killed, NULL, 30, 0);
    for (size_t i = 0; i < nkinds; i++) {
        const struct kind *k = &kinds[i];
        if (k->model == MODEL_SELECT) {
            test_addf(t_worker_killed, k, 30, 0, "%s: --workers 2 -c 4: SIGKILL a worker: "
                      "reported, replaced, seats back (4 new clients served), totals right",
                      k->label);
            if (kind_is_plain(k))
                test_addf(t_all_workers_gone, k, 30, 0, "%s: --workers: every worker gone: "
                          "exit 1, no normal shutdown line", k->label);
        }
        if (k->model != MODEL_THREAD && (k->model == MODEL_FORK || kind_is_plain(k))) {
            test_addf(t_master_killed, k, 30, 0, "%s: SIGKILL to the parent: no child or "
                      "worker survives, the port is free", k->label);
            test_addf(t_master_hup, k, 30, 0, "%s: SIGHUP to the parent: drained, exit 0, "
                      "no child or worker survives", k->label);
        }
        test_addf(t_sighup_drains, k, 30, 0, "%s: SIGHUP drains like SIGTERM", k->label);
        test_addf(t_second_sigint, k, 30, 0, "%s: Ctrl-C: drain line, a second Ctrl-C "
                  "ends the drain at once", k->label);
    }
    for (size_t i = 0; i < nkinds; i++)
        if (kind_is_plain(&kinds[i]))
            test_addf(t_ctrl_c_own_line, &kinds[i], 20, 0, "%s: Ctrl-C on a terminal: the "
                      "shutdown line starts on a line of its own", kinds[i].bin);
    test_add("select_server/select: -c past FD_SETSIZE: warned at start",
             t_select_fd_setsize_warning, NULL, 20, 0);
}
