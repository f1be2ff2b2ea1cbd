/* faults: what a real server meets, against every server and backend
 * unless a case cannot apply (then it says why).  Each case's name ends
 * with its pass criterion; time criteria are bands, widened under
 * valgrind. */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/net.h"
#include "common/sys.h"
#include "framing/frame.h"
#include "tests/harness.h"
#include "tests/test.h"

#define MS(x) ((x) * slow_factor())

/* One round trip on a fresh connection, or fail; returns its ms. */
static int64_t round_trip(unsigned port, const char *msg)
{
    int64_t t0 = sys_now_ms();
    int fd = tc_connect(port);
    size_t n = strlen(msg);
    char buf[64];
    tc_send(fd, msg, n);
    CHECK_EQ(tc_recv(fd, buf, n), n);
    CHECK_MEM(buf, msg, n);
    close(fd);
    return sys_now_ms() - t0;
}

/* CPU seconds (user + system) the process has used, in ms. */
static long cpu_ms(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    CHECK(n > 0);
    buf[n] = '\0';
    unsigned long ut = 0, st = 0;
    char *rp = strrchr(buf, ')');
    CHECK(rp != NULL && sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                               &ut, &st) == 2);
    return (long)((ut + st) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

static int count_text(const char *hay, const char *needle)
{
    int c = 0;
    for (const char *s = hay; (s = strstr(s, needle)) != NULL; s++)
        c++;
    return c;
}

/* ---- descriptors and processes ---- */

static void t_emfile(const void *arg)
{
    const struct kind *k = arg;
    if (k->model == MODEL_FORK)
        test_skip("fork_server's parent holds no client descriptors; its children each "
                  "have a limit of their own");
    if (kind_pool(k) > 0 && getenv("TEST_WRAPPER") != NULL)
        test_skip("under valgrind the pool's 128 threads leave too few of 32 descriptors, and "
                  "closes outlast the 50 ms accept grace (the case runs without valgrind)");
    struct spawn_opts so = {.nofile = 32};
    struct proc *p = srv_start_opts(k, &so, "-q", NULL);
    int held[64], nheld = 0;
    /* hold connections until the server cannot accept any more */
    while (nheld < 64) {
        held[nheld] = tc_connect(p->port);
        char x = 'h';
        tc_send(held[nheld], &x, 1);
        struct pollfd pfd = {held[nheld], POLLIN, 0};
        CHECK(poll(&pfd, 1, MS(2000)) == 1);
        if (recv(held[nheld], &x, 1, 0) != 1) {    /* shed: out of descriptors */
            close(held[nheld]);
            break;
        }
        nheld++;
    }
    test_log("%d connections held when accept failed", nheld);
    CHECK_INT(nheld, <, 32);
    long cpu0 = cpu_ms(p->pid);
    int64_t t0 = sys_now_ms();
    int extra[20];
    for (int i = 0; i < 20; i++)
        extra[i] = tc_connect(p->port);
    for (int i = 0; i < 20; i++)
        CHECK_MSG(tc_wait_close(extra[i], MS(2000), NULL), "connect %d past the limit hangs", i);
    while (sys_now_ms() - t0 < 2000)
        usleep(50 * 1000);
    long used = cpu_ms(p->pid) - cpu0;
    test_log("server CPU over 2 s while out of descriptors: %ld ms", used);
    CHECK_INT(used, <, 200 * slow_factor());             /* < 10% of 2 s: no spin */
    char *err = srv_stderr(p);
    int lines = count_text(err, "Too many open files");
    test_log("stderr lines about it: %d", lines);
    CHECK_INT(lines, >=, 1);
    CHECK_INT(lines, <=, 2);                              /* rate-limited */
    free(err);
    for (int i = 0; i < 20; i++)
        close(extra[i]);
    for (int i = 0; i < nheld; i++)
        close(held[i]);
    int64_t ms = round_trip(p->port, "fresh");
    test_log("fresh client served in %lld ms after the holders closed", (long long)ms);
    CHECK_INT(ms, <, MS(1000));
    srv_stop(p);
    srv_free(p);
}

static void t_spawn_fails(const void *arg)
{
    const struct kind *k = arg;
    if (k->model == MODEL_SELECT)
        test_skip("select_server creates no process or thread per client");
    if (kind_pool(k) > 0)
        test_skip("a pool creates its processes or threads at start, none per client");
    if (getenv("TEST_WRAPPER") != NULL)
        test_skip("LD_PRELOAD is not for valgrind");
    /* the 2nd and 3rd fork()/pthread_create() fail with EAGAIN */
    struct spawn_opts so = {.env = {fault_shim_preload(), "FAULT_FAIL=2,3",
                                    "ASAN_OPTIONS=verify_asan_link_order=0", NULL}};
    struct proc *p = srv_start_opts(k, &so, NULL);
    round_trip(p->port, "one");
    for (int i = 0; i < 2; i++) {
        int fd = tc_connect(p->port);
        CHECK_MSG(tc_wait_close(fd, MS(2000), NULL), "refused client kept open");
        close(fd);
    }
    const char *what = k->model == MODEL_FORK ? ": fork: Resource temporarily unavailable"
                                              : ": pthread_create: Resource temporarily unavailable";
    srv_expect(p, what, 2);
    round_trip(p->port, "four");                          /* and it lives on */
    srv_stop(p);
    CHECK_OUT(p, "served 2 clients");
    srv_free(p);
}

static void t_limit_warning(const void *arg)
{
    const struct kind *k = arg;
    if (k->model == MODEL_FORK)
        test_skip("fork_server holds no descriptor per client");
    struct spawn_opts so = {.nofile = 64};
    struct proc *p = srv_start_opts(k, &so, "-c", "1000", NULL);
    char *err = srv_stderr(p);
    CHECK_HAS(err, "descriptor limit ");          /* 64, less what valgrind keeps */
    CHECK_HAS(err, "clients, not --max-clients 1000; connections past it are shed");
    free(err);
    round_trip(p->port, "works");
    srv_stop(p);
    srv_free(p);
}

/* ---- peers that misbehave ---- */

static void t_resets(const void *arg)
{
    struct proc *p = srv_start(arg, "-q", NULL);
    int fds0 = proc_fds(p->pid);                        /* no client yet */
    static char mib[1 << 20];
    fill_pattern(mib, sizeof mib, 9);
    for (int i = 0; i < 100; i++) {
        int fd = tc_connect(p->port);
        tc_send(fd, mib, sizeof mib);
        struct linger lg = {1, 0};                      /* close sends RST */
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd);
    }
    round_trip(p->port, "alive");
    int fds = -1;
    for (int tries = 0; tries < MS(300) && (fds = proc_fds(p->pid)) != fds0; tries++)
        usleep(10000);
    CHECK_EQ(fds, fds0);
    srv_stop(p);
    srv_free(p);
}

static void t_close_while_writing(const void *arg)
{
    struct proc *p = srv_start(arg, "-q", NULL);
    static char buf[4 << 20];
    fill_pattern(buf, sizeof buf, 4);
    for (int i = 0; i < 20; i++) {
        int fd = tc_connect(p->port);
        size_t sent = 0;
        while (sent < sizeof buf) {
            ssize_t w = send(fd, buf + sent, sizeof buf - sent, MSG_DONTWAIT);
            if (w <= 0)
                break;                                  /* the server stopped reading us */
            sent += (size_t)w;
        }
        close(fd);                                      /* with the echo unread: EPIPE */
    }
    round_trip(p->port, "alive");
    srv_stop(p);
    srv_free(p);
}

static void t_trickle_frame(const void *arg)
{
    struct proc *p = srv_start(arg, "-m", "framed", NULL);
    char f[FRAME_HDR + 10];
    frame_put_len((unsigned char *)f, 10);
    memcpy(f + FRAME_HDR, "0123456789", 10);
    int fd = tc_connect(p->port);
    for (size_t i = 0; i < sizeof f; i++)
        tc_send(fd, f + i, 1);                          /* one byte per write */
    char back[sizeof f];
    CHECK_EQ(tc_recv(fd, back, sizeof back), sizeof back);
    CHECK_MEM(back, f, sizeof f);
    close(fd);
    srv_stop(p);
    srv_free(p);
}

static void t_silent_900(const void *arg)
{
    enum { N = 900 };
    if (sys_raise_nofile(N + 64) < N + 64)
        test_skip("this process may not open %d descriptors", N + 64);
    const struct kind *k = arg;
    if (k->model == MODEL_THREAD && getenv("TEST_WRAPPER") != NULL)
        test_skip("valgrind runs at most 500 threads");
    if (kind_pool(k) > 0 && kind_pool(k) <= N)
        test_skip("a pool of %u serves %u clients at once: the next ones wait in the listen "
                  "backlog (the pool cases test that, and --idle-timeout against it)",
                  kind_pool(k), kind_pool(k));
    if (k->backend != NULL && strcmp(k->backend, "select") == 0)
        test_log("select backend: 900 clients stay below FD_SETSIZE");
    struct proc *p = srv_start(k, "-q", "-c", "1000", NULL);
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = tc_connect(p->port);
    round_trip(p->port, "x");                           /* all 900 accepted by now */
    int64_t best = 1 << 30, worst = 0;
    for (int i = 0; i < 5; i++) {
        int64_t ms = round_trip(p->port, "served?");
        best = ms < best ? ms : best;
        worst = ms > worst ? ms : worst;
    }
    test_log("with %d silent connections: served in %lld-%lld ms", N, (long long)best,
             (long long)worst);
    CHECK_INT(worst, <, MS(100));
    for (int i = 0; i < N; i++)
        close(fds[i]);
    srv_stop(p);
    srv_free(p);
}

static void t_stopped_client(const void *arg)
{
    struct proc *p = srv_start(arg, "-q", NULL);
    pid_t kid = fork();
    CHECK(kid >= 0);
    if (kid == 0) {
        /* a client that sends 8 MiB, never reads, then is stopped */
        int fd = tc_connect(p->port);
        static char buf[1 << 20];
        for (int i = 0; i < 8; i++)
            if (send(fd, buf, sizeof buf, MSG_DONTWAIT) < 0)
                break;
        raise(SIGSTOP);
        _exit(0);
    }
    int st;
    CHECK_EQ(waitpid(kid, &st, WUNTRACED), kid);
    CHECK(WIFSTOPPED(st));
    for (int i = 0; i < 5; i++) {
        int64_t ms = round_trip(p->port, "others");
        CHECK_INT(ms, <, MS(100));
    }
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    srv_stop(p);
    srv_free(p);
}

/* ---- lifecycle ---- */

static void t_restart_time_wait(const void *arg)
{
    const struct kind *k = arg;
    struct proc *p = srv_start(k, "-m", "framed", "--max-frame", "4", NULL);
    /* the server ends these connections itself: TIME_WAIT on its side */
    for (int i = 0; i < 10; i++) {
        int fd = tc_connect(p->port);
        tc_send(fd, "\0\0\0\x09", 4);
        CHECK(tc_wait_close(fd, MS(3000), NULL));
        close(fd);
    }
    srv_expect(p, "exceeds --max-frame 4", 10);
    srv_stop(p);
    char port[12];
    snprintf(port, sizeof port, "%u", p->port);
    srv_free(p);
    const char *args[] = {"-p", port, NULL};
    p = srv_startv(k, NULL, args);                      /* the same port, at once */
    round_trip(p->port, "again");
    srv_stop(p);
    srv_free(p);
}

static void t_cycles_2000(const void *arg)
{
    const struct kind *k = arg;
    int kids0 = k->model == MODEL_FORK ? (int)kind_pool(k) : 0;   /* pre-forked */
    struct proc *p = srv_start(arg, "-q", NULL);
    int fds0 = proc_fds(p->pid), threads0 = proc_threads(p->pid);   /* no client yet */
    for (int i = 0; i < 100; i++)                       /* warm up caches and arenas */
        round_trip(p->port, "w");
    long rss0 = proc_rss_kb(p->pid);
    for (int i = 0; i < 2000; i++) {
        round_trip(p->port, "cycle");
        if (i % 100 == 0) {
            int z;
            proc_children(p->pid, &z);
            if (z > 0) {                                /* reaped within 100 ms, or fail */
                usleep(100 * 1000);
                proc_children(p->pid, &z);
                CHECK_MSG(z == 0, "a zombie outlived 100 ms");
            }
        }
    }
    int fds = -1, threads = -1, kids = -1;
    for (int tries = 0; tries < MS(300); tries++) {
        fds = proc_fds(p->pid);
        threads = proc_threads(p->pid);
        kids = proc_children(p->pid, NULL);
        threads -= threads > threads0 ? sanitizer_threads() : 0;
        if (fds == fds0 && threads == threads0 && kids == kids0)
            break;
        usleep(10000);
    }
    long rss = proc_rss_kb(p->pid);
    test_log("after 2000 cycles: fds %d->%d threads %d->%d children %d RSS %ld->%ld KiB",
             fds0, fds, threads0, threads, kids, rss0, rss);
    CHECK_EQ(fds, fds0);
    CHECK_EQ(threads, threads0);
    CHECK_EQ(kids, kids0);
    if (rss_meaningful())
        CHECK_INT(rss - rss0, <, 512);
    srv_stop(p);
    srv_free(p);
}

/* ---- big streams through echo_client, compared with cmp ---- */

static void t_big_streams(const void *arg)
{
    struct proc *p = srv_start(arg, "-q", NULL);
    const char *lines = tmp_path("lines.txt");
    FILE *f = fopen(lines, "w");
    CHECK(f != NULL);
    for (int i = 0; i < 100000; i++)
        fprintf(f, "line %06d of the file, with some text to make it longer\n", i);
    fclose(f);
    const char *out = tmp_path("out");
    char client[256], err[512];
    const char *argv[] = {bin_path("echo_client", client, sizeof client), "127.0.0.1",
                          p->portstr, NULL};
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(run_cmd(argv, lines, out, err, sizeof err, MS(60000)), 0);
        CHECK_MSG(same_file(lines, out), "pass %d differs", i + 1);
    }
    const char *rnd = make_file("random.bin", (size_t)256 << 20, 77);
    CHECK_EQ(run_cmd(argv, rnd, out, err, sizeof err, MS(120000)), 0);
    CHECK_MSG(same_file(rnd, out), "256 MiB differ");
    srv_stop(p);
    srv_free(p);
}

static const struct {
    const char *name;
    void (*fn)(const void *);
    int timeout, flags;
} cases[] = {
    {"out of descriptors (limit 32): alive, <10% CPU, <=2 error lines, fresh client "
     "served <1 s after", t_emfile, 60, 0},
    {"fork/pthread_create failing: that client refused with a line, the next served",
     t_spawn_fails, 30, 0},
    {"--max-clients past the descriptor limit: warned at start", t_limit_warning, 30, 0},
    {"100 resets after 1 MiB each: alive, descriptors back to baseline", t_resets, 90, 0},
    {"20 clients close while the server writes: alive", t_close_while_writing, 60, 0},
    {"a frame trickled one byte per write: echoed whole", t_trickle_frame, 30, 0},
    {"900 silent connections: a normal client served in <100 ms", t_silent_900, 90, 0},
    {"a stopped client (SIGSTOP) full of data: others served in <100 ms", t_stopped_client,
     60, 0},
    {"restart on the same port at once, TIME_WAIT left behind: binds", t_restart_time_wait,
     30, 0},
    {"2,000 connect/close cycles: descriptors, threads, children, RSS (+<512 KiB) back, "
     "no zombie outlives 100 ms", t_cycles_2000, 120, 0},
    {"100,000-line file x20 and 256 MiB through echo_client: identical (cmp)",
     t_big_streams, 300, TEST_SLOW},
};

void fault_tests(void)
{
    for (size_t k = 0; k < nkinds; k++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            test_addf(cases[i].fn, &kinds[k], cases[i].timeout * slow_factor(),
                      cases[i].flags, "%s: fault: %s", kinds[k].label, cases[i].name);
}
