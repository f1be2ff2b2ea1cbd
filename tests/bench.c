/* bench: echo_bench's pure parts (size and time parsing, the histogram,
 * the /proc CPU reading), then bin/echo_bench against servers written
 * here that misbehave on purpose (every mode must fail, in one line,
 * within its --timeout), and its --server-pid CPU figure against servers
 * that burn a known CPU time per message or per connection. */
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/hist.h"
#include "bench/srvcpu.h"
#include "common/net.h"
#include "common/sys.h"
#include "tests/harness.h"
#include "tests/test.h"

/* ---- parsing ---- */

static void t_parse_size(const void *arg)
{
    (void)arg;
    uint64_t v = 0;
    CHECK_EQ(bench_parse_size("64", 1, 1ULL << 24, &v), 0);
    CHECK_EQ(v, 64);
    CHECK_EQ(bench_parse_size("1K", 1, 1ULL << 24, &v), 0);
    CHECK_EQ(v, 1024);
    CHECK_EQ(bench_parse_size("2m", 1, 1ULL << 24, &v), 0);
    CHECK_EQ(v, 2 << 20);
    CHECK_EQ(bench_parse_size("16M", 1, 1ULL << 24, &v), 0);
    CHECK_EQ(v, 16 << 20);
    CHECK_EQ(bench_parse_size("3G", 1, 1ULL << 50, &v), 0);
    CHECK_EQ(v, 3ULL << 30);
    const char *bad[] = {"", "0", "17M", "16385K", "1X", "K", "-1", "1.5K", " 1", "1KK",
                         "99999999999999999999G", "12345678901234567890123456789012345"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(bench_parse_size(bad[i], 1, 1ULL << 24, &v) == -1, "'%s' accepted", bad[i]);
}

static void t_parse_seconds(const void *arg)
{
    (void)arg;
    int64_t ns = 0;
    CHECK_EQ(bench_parse_seconds("5", 100, &ns), 0);
    CHECK_EQ(ns, 5 * NS);
    CHECK_EQ(bench_parse_seconds("0.5", 100, &ns), 0);
    CHECK_EQ(ns, NS / 2);
    CHECK_EQ(bench_parse_seconds(".25", 100, &ns), 0);
    CHECK_EQ(ns, NS / 4);
    CHECK_EQ(bench_parse_seconds("1.000000001", 100, &ns), 0);
    CHECK_EQ(ns, NS + 1);
    CHECK_EQ(bench_parse_seconds("100", 100, &ns), 0);
    const char *bad[] = {"", "0", "0.0", ".", "-1", "1.2.3", "1s", "abc", "100.5", "101",
                         "12345678901234567890"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(bench_parse_seconds(bad[i], 100, &ns) == -1, "'%s' accepted", bad[i]);
}

/* ---- the histogram ---- */

static void t_hist(const void *arg)
{
    (void)arg;
    static struct hist h, a, b;
    CHECK_EQ(hist_pct(&h, 50), 0);
    for (uint64_t i = 0; i < 256; i++)         /* small values: a bucket each */
        hist_add(&h, i);
    CHECK_EQ(hist_pct(&h, 50), 127);
    CHECK_EQ(hist_pct(&h, 100), 255);
    CHECK_EQ(h.max, 255);
    /* 1..100000 us: every percentile within 0.8% of the exact rank */
    for (uint64_t i = 1; i <= 100000; i++)
        hist_add(i % 2 ? &a : &b, i * 1000);
    hist_merge(&a, &b);
    CHECK_EQ(a.count, 100000);
    CHECK_EQ(a.max, 100000000);
    unsigned pcts[] = {1, 50, 90, 99, 100};
    for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++) {
        double want = pcts[i] * 1000.0 * 1000, got = (double)hist_pct(&a, pcts[i]);
        CHECK_MSG(got >= want * 0.992 && got <= want * 1.008, "p%u is %.0f, want %.0f",
                  pcts[i], got, want);
    }
    CHECK(hist_pct(&a, 100) <= a.max);
    /* beyond the top: counted in the last bucket, the maximum exact */
    static struct hist big;
    hist_add(&big, 120 * (uint64_t)NS);
    CHECK_EQ(big.max, 120 * (uint64_t)NS);
    CHECK_INT(hist_pct(&big, 50), >=, HIST_TOP_NS / 100 * 99);
    CHECK_INT(hist_pct(&big, 50), <=, big.max);
}

/* ---- CPU time of a process tree ---- */

static void burn_us(long us)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    do
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000L + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

static uint64_t total_us(const struct srvcpu *c)
{
    return c->total_ns / 1000;
}

/* A live child's time, then the same child once exited and reaped, both
 * against the child's own getrusage (an independent reading). */
static void t_srvcpu_tree(const void *arg)
{
    (void)arg;
    int go[2], done[2];
    CHECK_EQ(pipe(go), 0);
    CHECK_EQ(pipe(done), 0);
    struct srvcpu before, live, after;
    CHECK_EQ(srvcpu_read(getpid(), &before), 0);
    pid_t kid = fork();
    CHECK(kid >= 0);
    if (kid == 0) {
        char c;
        burn_us(300000);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        long us = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec +
                  ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
        if (write(done[1], &us, sizeof us) != (ssize_t)sizeof us || read(go[0], &c, 1) != 1)
            _exit(1);
        _exit(0);
    }
    long kid_us = 0;
    CHECK_EQ(read(done[0], &kid_us, sizeof kid_us), (long)sizeof kid_us);
    CHECK_EQ(srvcpu_read(getpid(), &live), 0);
    CHECK_EQ(write(go[1], "x", 1), 1);
    int status;
    CHECK_EQ(waitpid(kid, &status, 0), kid);
    CHECK_EQ(srvcpu_read(getpid(), &after), 0);
    uint64_t d_live = total_us(&live) - total_us(&before);
    uint64_t d_after = total_us(&after) - total_us(&before);
    test_log("child used %ld us; tree grew %llu us while it lived, %llu us once reaped",
             kid_us, (unsigned long long)d_live, (unsigned long long)d_after);
    /* ticks of 10 ms each way, and our own few ms */
    CHECK_INT(d_live + 25000, >=, (uint64_t)kid_us);
    CHECK_INT(d_live, <=, (uint64_t)kid_us + 50000);
    CHECK_INT(d_after + 25000, >=, (uint64_t)kid_us);
    CHECK_INT(d_after, <=, (uint64_t)kid_us + 50000);
    struct srvcpu gone;
    CHECK_EQ(srvcpu_read(kid, &gone), -1);
    close(go[0]);
    close(go[1]);
    close(done[0]);
    close(done[1]);
}

/* ---- servers that misbehave ---- */

enum bad { BAD_SILENT, BAD_STOP, BAD_EXTRA, BAD_CHANGE, BAD_UNSERVED };
static const char *const bad_names[] = {"never echoes", "stops echoing after 1 MB",
                                        "appends a byte", "changes a byte",
                                        "leaves connections in the backlog"};
#define STOP_AFTER (1u << 20)
#define CHANGE_AT 10

struct bad_srv {
    int lfd;
    unsigned port;
    enum bad how;
    atomic_ullong echoed;        /* BAD_STOP: over every connection */
};

struct bad_conn {
    struct bad_srv *s;
    int fd;
};

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k == -1 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void *bad_serve(void *arg)
{
    struct bad_conn *bc = arg;
    struct bad_srv *s = bc->s;
    static _Thread_local char buf[65536];
    uint64_t seen = 0;
    for (;;) {
        ssize_t n = read(bc->fd, buf, sizeof buf);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        size_t out = (size_t)n;
        if (s->how == BAD_SILENT)
            out = 0;
        if (s->how == BAD_STOP) {
            unsigned long long before = atomic_fetch_add(&s->echoed, (unsigned long long)n);
            out = before >= STOP_AFTER ? 0 : STOP_AFTER - before < out ? STOP_AFTER - before : out;
        }
        if (s->how == BAD_CHANGE && seen <= CHANGE_AT && CHANGE_AT < seen + (uint64_t)n)
            buf[CHANGE_AT - seen] ^= 0x20;
        seen += (uint64_t)n;
        if (send_all(bc->fd, buf, out) == -1)
            break;
    }
    if (s->how == BAD_EXTRA)
        (void)send_all(bc->fd, "X", 1);
    close(bc->fd);
    free(bc);
    return NULL;
}

static void *bad_accept(void *arg)
{
    struct bad_srv *s = arg;
    for (int served = 0;; served++) {
        if (s->how == BAD_UNSERVED && served == 1)
            return NULL;    /* the rest wait in the backlog, accepted by the kernel */
        int fd = accept(s->lfd, NULL, NULL);
        if (fd == -1)
            continue;
        struct bad_conn *bc = malloc(sizeof *bc);
        CHECK(bc != NULL);
        *bc = (struct bad_conn){s, fd};
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, bad_serve, bc), 0);
        pthread_detach(t);
    }
}

static struct bad_srv *bad_start(enum bad how)
{
    static struct bad_srv s;
    char err[256];
    s.how = how;
    atomic_init(&s.echoed, 0);
    s.lfd = net_listen("127.0.0.1", "0", 0, err, sizeof err);
    CHECK_MSG(s.lfd >= 0, "%s", err);
    CHECK_EQ(net_set_nonblock(s.lfd, 0), 0);
    char addr[NET_ADDR_MAX];
    CHECK_EQ(net_local_addr(s.lfd, addr, sizeof addr, &s.port), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, bad_accept, &s), 0);
    pthread_detach(t);
    return &s;
}

struct fooled {
    enum bad how;
    const char *mode;    /* "echo" "framed" "churn" "stream" */
    const char *want;    /* in the one stderr line */
};

static const struct fooled fooled_cases[] = {
    {BAD_SILENT, "echo", "1 of 1 connections got no echo within 1.0 s"},
    {BAD_SILENT, "framed", "1 of 1 connections got no echo within 1.0 s"},
    {BAD_SILENT, "churn", "1 of 1 connections got no echo within 1.0 s"},
    {BAD_SILENT, "stream", "closed by server after 0 of 4194304 bytes"},
    {BAD_STOP, "echo", "no echo of message 257 within 1.0 s (got 0 of 4096 bytes)"},
    {BAD_STOP, "framed", "no echo of message 256 within 1.0 s (got 3076 of 4100 bytes)"},
    {BAD_STOP, "churn", "of 257 connections got no echo within 1.0 s"},
    {BAD_STOP, "stream", "closed by server after 1048576 of 4194304 bytes"},
    {BAD_EXTRA, "echo", "echo longer than sent: more bytes after message"},
    {BAD_EXTRA, "framed", "echo longer than sent: more bytes after message"},
    {BAD_EXTRA, "churn", "echo longer than sent: more bytes after message 1"},
    {BAD_EXTRA, "stream", "echo longer than sent: more bytes after all 4194304"},
    {BAD_CHANGE, "echo", "echo differs at byte 10 of message 1"},
    {BAD_CHANGE, "framed", "echo differs at byte 6 of message 1"},
    {BAD_CHANGE, "churn", "echo differs at byte 10 of message 1"},
    {BAD_CHANGE, "stream", "stream differs at byte 10"},
    {BAD_UNSERVED, "echo", "2 of 3 connections got no echo within 1.0 s"},
};

static void t_fooled(const void *arg)
{
    const struct fooled *f = arg;
    struct bad_srv *s = bad_start(f->how);
    char path[256], port[12], err[2048];
    snprintf(port, sizeof port, "%u", s->port);
    const char *argv[16] = {bin_path("echo_bench", path, sizeof path), "-q", "--timeout", "1"};
    int n = 4;
    if (strcmp(f->mode, "stream") == 0) {
        argv[n++] = "--stream";
        argv[n++] = "4M";
    } else {
        argv[n++] = "-s";
        argv[n++] = "4K";
        argv[n++] = "-d";
        argv[n++] = "1.5";
        argv[n++] = "-c";
        argv[n++] = f->how == BAD_UNSERVED ? "3" : "1";
        if (strcmp(f->mode, "echo") != 0)
            argv[n++] = strcmp(f->mode, "framed") == 0 ? "--framed" : "--churn";
    }
    argv[n++] = "127.0.0.1";
    argv[n++] = port;
    argv[n] = NULL;
    int64_t t0 = sys_now_ms();
    int rc = run_cmd(argv, NULL, NULL, err, sizeof err, 15000 * slow_factor());
    int64_t took = sys_now_ms() - t0;
    test_log("%s, %s: exit %d after %lld ms; stderr: %s", bad_names[f->how], f->mode, rc,
             (long long)took, err);
    CHECK_EQ(rc, 1);
    CHECK_HAS(err, f->want);
    char *nl = strchr(err, '\n');
    CHECK_MSG(nl != NULL && nl[1] == '\0', "want one line on stderr, got: %s", err);
    CHECK_INT(took, <, 6000 * slow_factor());      /* the window, then the timeout */
}

/* ---- server CPU per message ---- */

/* The burner's own account, in a shared mapping: units served (messages,
 * or connections whose child it reaped) and its CPU time so far by
 * getrusage (itself and its reaped children). */
struct burn_log {
    _Atomic uint64_t units, cpu_us;
};

static uint64_t rusage_us(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void burn_note(struct burn_log *bl, uint64_t units)
{
    atomic_fetch_add(&bl->units, units);
    atomic_store(&bl->cpu_us, rusage_us(RUSAGE_SELF) + rusage_us(RUSAGE_CHILDREN));
}

/* A server process: each connection in turn (or, with per_conn, each in
 * a forked child); burn_us of CPU on each read before the echo (per_conn:
 * once, on the first read). */
static pid_t burner_start(long burn, int per_conn, unsigned *port, struct burn_log *bl)
{
    char err[256];
    int lfd = net_listen("127.0.0.1", "0", 0, err, sizeof err);
    CHECK_MSG(lfd >= 0, "%s", err);
    CHECK_EQ(net_set_nonblock(lfd, 0), 0);
    char addr[NET_ADDR_MAX];
    CHECK_EQ(net_local_addr(lfd, addr, sizeof addr, port), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid > 0) {
        close(lfd);
        return pid;
    }
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        uint64_t reaped = 0;
        while (waitpid(-1, NULL, WNOHANG) > 0)
            reaped++;
        if (reaped > 0)
            burn_note(bl, reaped);
        int fd = accept(lfd, NULL, NULL);
        if (fd == -1)
            continue;
        pid_t kid = per_conn ? fork() : 0;
        if (kid > 0 || kid == -1) {
            close(fd);
            continue;
        }
        char buf[4096];
        ssize_t n;
        for (int first = 1; (n = read(fd, buf, sizeof buf)) > 0; first = 0) {
            if (!per_conn || first)
                burn_us(burn);
            if (send_all(fd, buf, (size_t)n) == -1)
                break;
            if (!per_conn)
                burn_note(bl, 1);
        }
        close(fd);
        if (per_conn)
            _exit(0);
    }
}

struct cpu_case {
    const char *name;
    long burn;          /* us */
    int churn;
};

static const struct cpu_case cpu_cases[] = {
    {"per message", 500, 0},
    {"per connection, a child process each", 2000, 1},
};

/* echo_bench's figure against the burner's own getrusage, and at least
 * the burn: a figure off by 2x either way fails. */
static void t_server_cpu(const void *arg)
{
    const struct cpu_case *cc = arg;
    if (!rss_meaningful())
        test_skip("CPU times under a sanitizer or valgrind say nothing");
    struct burn_log *bl = mmap(NULL, sizeof *bl, PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(bl != MAP_FAILED);
    atomic_init(&bl->units, 0);
    atomic_init(&bl->cpu_us, 0);
    unsigned port;
    pid_t srv = burner_start(cc->burn, cc->churn, &port, bl);
    char path[256], portstr[12], pidstr[16], err[1024];
    snprintf(portstr, sizeof portstr, "%u", port);
    snprintf(pidstr, sizeof pidstr, "%d", (int)srv);
    const char *out = tmp_path("cpu.csv");
    const char *argv[] = {bin_path("echo_bench", path, sizeof path), "-q", "--csv", "-d", "1",
                          "-c", "1", "--server-pid", pidstr, "127.0.0.1", portstr, NULL, NULL};
    if (cc->churn) {      /* --churn before HOST PORT */
        memmove(&argv[10], &argv[9], 2 * sizeof argv[0]);
        argv[9] = "--churn";
    }
    int rc = run_cmd(argv, NULL, out, err, sizeof err, 20000);
    kill(srv, SIGKILL);
    waitpid(srv, NULL, 0);
    CHECK_MSG(rc == 0, "echo_bench exit %d: %s", rc, err);
    FILE *f = fopen(out, "r");
    CHECK(f != NULL);
    char head[512], row[512];
    CHECK(fgets(head, sizeof head, f) != NULL && fgets(row, sizeof row, f) != NULL);
    fclose(f);
    test_log("%s%s", head, row);
    CHECK_HAS(head, cc->churn ? "server_cpu_us_per_conn" : "server_cpu_us_per_msg");
    char *p = strrchr(row, ',');     /* the last field: CPU per unit */
    CHECK(p != NULL);
    double per = strtod(p + 1, NULL);
    unsigned long long count = 0;
    CHECK_EQ(sscanf(row, "%*[^,],%*[^,],%*[^,],%*[^,],%*[^,],%llu", &count), 1);
    uint64_t units = atomic_load(&bl->units), cpu = atomic_load(&bl->cpu_us);
    CHECK_INT(units, >, 0);
    double own = (double)cpu / (double)units;
    test_log("echo_bench: %llu %s, %.1f us of server CPU each; the server's getrusage:"
             " %.1f us each over %llu; burnt on purpose: %ld us", count,
             cc->churn ? "connections" : "messages", per, own, (unsigned long long)units,
             cc->burn);
    munmap(bl, sizeof *bl);
    CHECK_INT(count, >=, 20);
    CHECK_MSG(per >= 0.9 * (double)cc->burn, "server CPU %.1f us per unit, burnt %ld", per,
              cc->burn);
    CHECK_MSG(per >= 0.7 * own && per <= 1.4 * own,
              "server CPU %.1f us per unit; the server's own getrusage says %.1f", per, own);
}

void bench_tests(void)
{
    test_add("bench: sizes with K/M/G suffixes", t_parse_size, NULL, 5, 0);
    test_add("bench: seconds with decimals", t_parse_seconds, NULL, 5, 0);
    test_add("bench: histogram percentiles and merge", t_hist, NULL, 5, 0);
    test_add("bench: srvcpu counts live and reaped children", t_srvcpu_tree, NULL, 10, 0);
    for (size_t i = 0; i < sizeof fooled_cases / sizeof fooled_cases[0]; i++)
        test_addf(t_fooled, &fooled_cases[i], 30, 0, "bench: echo_bench %s fails against a server that %s",
                  fooled_cases[i].mode, bad_names[fooled_cases[i].how]);
    for (size_t i = 0; i < sizeof cpu_cases / sizeof cpu_cases[0]; i++)
        test_addf(t_server_cpu, &cpu_cases[i], 30, 0, "bench: --server-pid CPU %s matches the burn",
                  cpu_cases[i].name);
}
