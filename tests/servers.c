/* servers: one table of integration cases, run against every server
 * binary and every select_server backend.  Each case starts its own
 * server on port 0 and reads the port from the listening line. */
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sys.h"
#include "framing/frame.h"
#include "tests/harness.h"
#include "tests/test.h"

#define MS(x) ((x) * slow_factor())

/* ---- echo ---- */

static void t_echo_text(const void *arg)
{
    struct proc *p = srv_start(arg, NULL);
    int fd = tc_connect(p->port);
    tc_send_str(fd, "hello\n");
    tc_recv_str(fd, "hello\n");
    tc_send_str(fd, "x");
    tc_recv_str(fd, "x");
    close(fd);
    srv_expect(p, "client 1 connected from 127.0.0.1:", 1);
    srv_expect(p, "client 1 disconnected (received 7 bytes)", 1);
    srv_stop(p);
    char *out = srv_stdout(p);
    char want[128];
    snprintf(want, sizeof want, "%s: shutting down: served 1 clients, received 7 bytes\n", p->k->bin);
    CHECK_HAS(out, want);
    snprintf(want, sizeof want, "%s: listening on 0.0.0.0:%u (mode echo", p->k->bin, p->port);
    CHECK(strncmp(out, want, strlen(want)) == 0);
    free(out);
    srv_free(p);
}

static void t_echo_binary(const void *arg)
{
    struct proc *p = srv_start(arg, NULL);
    unsigned char data[4096];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i % 7 == 0 ? 0 : i * 13);
    int fd = tc_connect(p->port);
    tc_echo(fd, data, sizeof data);
    close(fd);
    srv_expect(p, "client 1 disconnected (received 4096 bytes)", 1);
    srv_stop(p);
    srv_free(p);
}

static void t_echo_10mib(const void *arg)
{
    struct proc *p = srv_start(arg, "-q", NULL);
    size_t n = 10 << 20;
    char *data = malloc(n);
    CHECK(data != NULL);
    fill_pattern(data, n, 10);
    int fd = tc_connect(p->port);
    tc_echo(fd, data, n);
    close(fd);
    srv_stop(p);
    CHECK_OUT(p, "received 10485760 bytes");
    free(data);
    srv_free(p);
}

static void t_half_close(const void *arg)
{
    struct proc *p = srv_start(arg, NULL);
    int fd = tc_connect(p->port);
    tc_send_str(fd, "1234567");
    CHECK_EQ(shutdown(fd, SHUT_WR), 0);
    tc_recv_str(fd, "1234567");
    size_t extra = 0;
    CHECK(tc_wait_close(fd, MS(5000), &extra) == 1);
    CHECK_EQ(extra, 0);
    close(fd);
    srv_expect(p, "client 1 disconnected (received 7 bytes)", 1);
    srv_stop(p);
    srv_free(p);
}

static void t_concurrent_100(const void *arg)
{
    if (kind_pool(arg) > 0 && kind_pool(arg) < 100)
        test_skip("a pool serves its size at once; the rest wait in the backlog (by design)");
    struct proc *p = srv_start(arg, NULL);
    enum { N = 100, LEN = 3000 };
    int fds[N];
    static char data[N][LEN], back[LEN];
    for (int i = 0; i < N; i++) {
        fds[i] = tc_connect(p->port);
        fill_pattern(data[i], LEN, (unsigned)i + 1000);
    }
    for (int i = 0; i < N; i++)
        tc_send(fds[i], data[i], LEN);
    for (int i = N - 1; i >= 0; i--) {
        CHECK_EQ(tc_recv(fds[i], back, LEN), LEN);
        CHECK_MSG(memcmp(back, data[i], LEN) == 0, "client %d got another's echo", i);
        close(fds[i]);
    }
    srv_expect(p, "disconnected (received 3000 bytes)", N);
    srv_stop(p);
    CHECK_OUT(p, "served 100 clients, received 300000 bytes");
    srv_free(p);
}

/* ---- line mode ---- */

static void t_line_mode(const void *arg)
{
    struct proc *p = srv_start(arg, "-m", "line", "--max-frame", "16", NULL);
    CHECK_OUT(p, "(mode line");
    int fd = tc_connect(p->port);
    tc_send_str(fd, "hel");
    tc_expect_quiet(fd, 200);                 /* no partial line echoed */
    tc_send_str(fd, "lo\nwor");
    tc_recv_str(fd, "hello\n");
    tc_send_str(fd, "ld\n");
    tc_recv_str(fd, "world\n");
    tc_send_str(fd, "a\r\nb");
    tc_send(fd, "\0c\n", 3);
    char buf[8];
    CHECK_EQ(tc_recv(fd, buf, 7), 7);      /* CRLF and NUL kept byte for byte */
    CHECK_MEM(buf, "a\r\nb\0c\n", 7);
    tc_send_str(fd, "0123456789abcdef\n");    /* exactly --max-frame: fine */
    tc_recv_str(fd, "0123456789abcdef\n");
    tc_send_str(fd, "partial");
    shutdown(fd, SHUT_WR);
    tc_recv_str(fd, "partial");               /* a partial line at EOF is echoed */
    tc_expect_closed(fd, 5000);
    close(fd);
    /* one byte over the limit without a newline closes the connection */
    fd = tc_connect(p->port);
    tc_send_str(fd, "0123456789abcdef");
    tc_expect_quiet(fd, 200);
    tc_send_str(fd, "g");
    tc_expect_closed(fd, 5000);
    close(fd);
    srv_expect(p, "client 2: line exceeds --max-frame 16 bytes", 1);
    srv_expect(p, "client 2 disconnected (received 17 bytes)", 1);
    srv_stop(p);
    srv_free(p);
}

/* ---- framed mode ---- */

static size_t frame(char *out, const char *payload, uint32_t len)
{
    frame_put_len((unsigned char *)out, len);
    memcpy(out + FRAME_HDR, payload, len);
    return FRAME_HDR + len;
}

static void t_framed_mode(const void *arg)
{
    struct proc *p = srv_start(arg, "-m", "framed", "--max-frame", "1000", NULL);
    int fd = tc_connect(p->port);
    char f[2048], back[2048];
    size_t n = frame(f, "hello", 5);
    tc_send(fd, f, 2);                      /* split inside the header */
    tc_expect_quiet(fd, 100);
    tc_send(fd, f + 2, 4);
    tc_expect_quiet(fd, 100);
    tc_send(fd, f + 6, n - 6);
    CHECK_EQ(tc_recv(fd, back, n), n);
    CHECK_MEM(back, f, n);
    /* a zero-length message, then three in one write */
    tc_send(fd, "\0\0\0\0", 4);
    CHECK_EQ(tc_recv(fd, back, 4), 4);
    CHECK_MEM(back, "\0\0\0\0", 4);
    n = frame(f, "a", 1);
    n += frame(f + n, "", 0);
    n += frame(f + n, "bcd", 3);
    tc_send(fd, f, n);
    CHECK_EQ(tc_recv(fd, back, n), n);
    CHECK_MEM(back, f, n);
    /* exactly --max-frame */
    char big[1000];
    fill_pattern(big, sizeof big, 3);
    n = frame(f, big, 1000);
    tc_send(fd, f, n);
    CHECK_EQ(tc_recv(fd, back, n), n);
    CHECK_MEM(back, f, n);
    close(fd);
    /* over the limit: closed on the header alone */
    fd = tc_connect(p->port);
    tc_send(fd, "\0\0\x03\xe9", 4);         /* 1001 */
    tc_expect_closed(fd, 5000);
    close(fd);
    srv_expect(p, "client 2: frame of 1001 bytes exceeds --max-frame 1000", 1);
    fd = tc_connect(p->port);
    tc_send(fd, "\xff\xff\xff\xff", 4);
    tc_expect_closed(fd, 5000);
    close(fd);
    srv_expect(p, "client 3: frame of 4294967295 bytes exceeds --max-frame 1000", 1);
    /* an incomplete frame at EOF is dropped, with a reason */
    fd = tc_connect(p->port);
    tc_send(fd, "\0\0\0\x0a" "abc", 7);
    shutdown(fd, SHUT_WR);
    size_t extra = 0;
    CHECK(tc_wait_close(fd, MS(5000), &extra) == 1);
    CHECK_EQ(extra, 0);
    close(fd);
    srv_expect(p, "client 4: incomplete frame at EOF (3 of 10 payload bytes)", 1);
    fd = tc_connect(p->port);
    tc_send(fd, "\0\0", 2);
    shutdown(fd, SHUT_WR);
    tc_expect_closed(fd, 5000);
    close(fd);
    srv_expect(p, "client 5: incomplete frame at EOF (2 of 4 header bytes)", 1);
    srv_stop(p);
    srv_free(p);
}

/* ---- access log ---- */

static void t_access_log(const void *arg)
{
    const char *log = tmp_path("access.log");
    struct proc *p = srv_start(arg, "-l", log, NULL);
    enum { N = 50 };
    int fds[N];
    char data[N * 10 + 10], back[sizeof data];
    fill_pattern(data, sizeof data, 50);
    for (int i = 0; i < N; i++)
        fds[i] = tc_connect(p->port);
    for (int i = 0; i < N; i++)
        tc_send(fds[i], data, (size_t)(i + 1) * 10);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(tc_recv(fds[i], back, (size_t)(i + 1) * 10), (i + 1) * 10);
        close(fds[i]);
    }
    srv_expect(p, "disconnected", N);
    srv_stop(p);
    FILE *f = fopen(log, "r");
    CHECK(f != NULL);
    char line[256];
    int seen_client[N + 1] = {0}, seen_bytes[N + 1] = {0}, lines = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned c, b;
        char end;
        CHECK_MSG(sscanf(line, "[client %u]: received %u bytes%c", &c, &b, &end) == 3 &&
                  end == '\n', "malformed access-log line: %s", line);
        CHECK(c >= 1 && c <= N && b % 10 == 0 && b / 10 >= 1 && b / 10 <= N);
        seen_client[c]++;
        seen_bytes[b / 10]++;
        lines++;
    }
    fclose(f);
    CHECK_EQ(lines, N);
    for (int i = 1; i <= N; i++)
        CHECK_MSG(seen_client[i] == 1 && seen_bytes[i] == 1, "client or size %d not logged once", i);
    srv_free(p);
}

/* ---- limits ---- */

static void t_max_clients(const void *arg)
{
    struct proc *p = srv_start(arg, "-c", "2", NULL);
    int a = tc_connect(p->port), b = tc_connect(p->port);
    tc_send_str(a, "a");
    tc_recv_str(a, "a");
    tc_send_str(b, "b");
    tc_recv_str(b, "b");
    int c = tc_connect(p->port);             /* one too many */
    tc_expect_closed(c, 3000);
    close(c);
    srv_expect(p, "refused 127.0.0.1:", 1);
    srv_expect(p, ": at --max-clients 2", 1);
    close(a);
    srv_expect(p, "client 1 disconnected", 1);
    /* a seat is free again once the server has seen client 1 go */
    int served = 0;
    for (int tries = 0; tries < MS(50) && !served; tries++) {
        int d = tc_connect(p->port);
        char x;
        if (send(d, "d", 1, MSG_NOSIGNAL) == 1 && recv(d, &x, 1, 0) == 1)
            served = x == 'd';
        close(d);
        if (!served) {
            srv_expect(p, "refused", 2 + tries);
            usleep(20000);                     /* fork_server reaps on SIGCHLD */
        }
    }
    CHECK_MSG(served, "no client served after one of two left");
    close(b);
    srv_expect(p, "client 3 disconnected", 1);
    srv_stop(p);
    CHECK_OUT(p, "served 3 clients");
    srv_free(p);
}

static void t_idle_timeout(const void *arg)
{
    struct proc *p = srv_start(arg, "-t", "1", NULL);
    int idle = tc_connect(p->port);
    int64_t t0 = sys_now_ms();
    /* numbered first (pre-forked children number as they accept) */
    srv_expect(p, "client 1 connected", 1);
    int busy = tc_connect(p->port);
    /* the busy client talks every 300 ms and must outlive the idle one */
    int closed = 0;
    int64_t closed_at = 0;
    while (sys_now_ms() - t0 < MS(2600)) {
        tc_send_str(busy, "k");
        tc_recv_str(busy, "k");
        if (!closed && tc_wait_close(idle, 300, NULL)) {
            closed = 1;
            closed_at = sys_now_ms() - t0;
        }
        if (closed)
            usleep(300 * 1000);
    }
    CHECK_MSG(closed, "idle client not closed after %d ms", MS(2600));
    test_log("idle client closed after %lld ms", (long long)closed_at);
    CHECK_INT(closed_at, >=, 950);
    CHECK_INT(closed_at, <=, MS(2500));
    tc_send_str(busy, "still here");
    tc_recv_str(busy, "still here");
    srv_expect(p, "client 1: idle for 1 s (--idle-timeout)", 1);
    CHECK_EQ(srv_count(p, "client 2:"), 0);
    close(idle);
    close(busy);
    srv_stop(p);
    srv_free(p);
}

/* ---- shutdown ---- */

/* Connect attempts until the kernel refuses (the listener is closed);
 * *early counts the attempts that still got in. */
static int64_t ms_until_refused(unsigned port, int limit_ms, int *early)
{
    int64_t t0 = sys_now_ms();
    *early = 0;
    while (sys_now_ms() - t0 < limit_ms) {
        int fd = tc_try_connect(port);
        if (fd < 0 && errno == ECONNREFUSED)
            return sys_now_ms() - t0;
        if (fd >= 0) {
            close(fd);
            (*early)++;
        }
        usleep(5000);
    }
    return -1;
}

static void t_sigterm_drain(const void *arg)
{
    struct proc *p = srv_start(arg, "--drain", "10", NULL);
    int fd = tc_connect(p->port);
    tc_send_str(fd, "before ");
    tc_recv_str(fd, "before ");
    srv_expect(p, "client 1 connected", 1);
    int64_t t0 = sys_now_ms();
    kill(p->pid, SIGTERM);
    int early;
    int64_t refused = ms_until_refused(p->port, MS(3000), &early);
    test_log("new connections refused %lld ms after SIGTERM", (long long)refused);
    CHECK_MSG(refused >= 0, "still accepting connections after SIGTERM");
    CHECK_INT(refused, <=, MS(100));
    /* the client in flight keeps its echo */
    tc_send_str(fd, "during drain");
    tc_recv_str(fd, "during drain");
    close(fd);
    int st = srv_wait_exit(p, MS(5000));
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
    CHECK_INT(sys_now_ms() - t0, <, MS(5000));   /* did not wait out --drain */
    CHECK_OUT(p, "client 1 disconnected (received 19 bytes)");
    /* a connect racing the signal may have been served (with 0 bytes) */
    char *out = srv_stdout(p), *line = strstr(out, "shutting down: served ");
    unsigned served = 0, bytes = 0;
    CHECK(line != NULL && sscanf(line, "shutting down: served %u clients, received %u bytes",
                                 &served, &bytes) == 2);
    CHECK_INT(served, >=, 1);
    CHECK_INT(served, <=, 1 + early);
    CHECK_EQ(bytes, 19);
    free(out);
    srv_free(p);
}

static void t_drain_expires(const void *arg)
{
    struct proc *p = srv_start(arg, "--drain", "1", NULL);
    int fd = tc_connect(p->port);
    tc_send_str(fd, "abc");
    tc_recv_str(fd, "abc");
    int64_t t0 = sys_now_ms();
    kill(p->pid, SIGTERM);
    tc_expect_closed(fd, 4000);
    int64_t cut = sys_now_ms() - t0;
    test_log("cut off %lld ms after SIGTERM", (long long)cut);
    CHECK_INT(cut, >=, 900);
    close(fd);
    int st = srv_wait_exit(p, MS(5000));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_OUT(p, "client 1: drain time of 1 s ran out");
    CHECK_OUT(p, "shutting down: served 1 clients, received 3 bytes");
    srv_free(p);
}

static void t_sigint_group(const void *arg)
{
    /* Ctrl-C reaches the server's whole process group (children too) */
    struct proc *p = srv_start(arg, "--drain", "1", NULL);
    int fd = tc_connect(p->port);
    tc_send_str(fd, "q");
    tc_recv_str(fd, "q");
    close(fd);
    srv_expect(p, "client 1 disconnected", 1);
    int busy = tc_connect(p->port);
    tc_send_str(busy, "z");
    tc_recv_str(busy, "z");
    srv_expect(p, "client 2 connected", 1);
    CHECK_EQ(kill(-p->pid, SIGINT), 0);
    tc_send_str(busy, "y");                         /* still served while draining */
    tc_recv_str(busy, "y");
    tc_expect_closed(busy, 4000);                   /* then cut when --drain ends */
    close(busy);
    int st = srv_wait_exit(p, MS(5000));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(srv_count(p, "shutting down"), 1);
    CHECK_OUT(p, "served 2 clients, received 3 bytes");
    CHECK_MSG(kill(-p->pid, 0) == -1 && errno == ESRCH, "a process of the group outlived it");
    srv_free(p);
}

/* ---- resources ---- */

static void t_baseline_500(const void *arg)
{
    struct proc *p = srv_start(arg, NULL);
    int fds0 = proc_fds(p->pid), threads0 = proc_threads(p->pid);
    /* a pre-forked pool's children are its baseline */
    int kids0 = kind_pool(arg) > 0 && ((const struct kind *)arg)->model == MODEL_FORK
                ? (int)kind_pool(arg) : 0;
    CHECK_EQ(proc_children(p->pid, NULL), kids0);
    int zombies_seen = 0;
    for (int i = 0; i < 500; i++) {
        int fd = tc_connect(p->port);
        tc_send_str(fd, "0123456789");
        tc_recv_str(fd, "0123456789");
        close(fd);
        if (i % 50 == 0) {
            int z;
            proc_children(p->pid, &z);
            zombies_seen += z;
        }
    }
    srv_expect(p, "disconnected", 500);
    /* the lines are printed just before each client's last clean-up */
    int tsan = sanitizer_threads();
    int fds = -1, threads = -1, kids = -1, zombies = 0;
    for (int tries = 0; tries < 300; tries++) {
        fds = proc_fds(p->pid);
        threads = proc_threads(p->pid);
        kids = proc_children(p->pid, &zombies);
        if (fds == fds0 && (threads == threads0 || (tsan && threads == threads0 + 1)) &&
            kids == kids0)
            break;
        usleep(10000);
    }
    test_log("fds %d->%d threads %d->%d children %d zombies seen %d", fds0, fds, threads0,
             threads, kids, zombies_seen);
    CHECK_EQ(fds, fds0);
    if (tsan && threads == threads0 + 1)
        threads--;
    CHECK_EQ(threads, threads0);
    CHECK_EQ(kids, kids0);
    CHECK_EQ(zombies, 0);
    srv_stop(p);
    srv_free(p);
}

static void t_never_reads(const void *arg)
{
    struct proc *p = srv_start(arg, "-q", NULL);
    long rss0 = proc_tree_rss_kb(p->pid);
    size_t total = (size_t)100 << 20, chunk = 1 << 20;
    char *data = malloc(chunk), *back = malloc(chunk);
    CHECK(data != NULL && back != NULL);
    int fd = tc_connect(p->port);
    /* phase 1: send without reading until the server stops taking bytes */
    size_t sent = 0;
    int64_t last_progress = sys_now_ms();
    while (sent < total && sys_now_ms() - last_progress < MS(1500)) {
        fill_pattern(data, chunk, (unsigned)(sent / chunk));
        size_t off = sent % chunk;
        ssize_t w = send(fd, data + off, chunk - off, MSG_DONTWAIT);
        if (w > 0) {
            sent += (size_t)w;
            last_progress = sys_now_ms();
        } else {
            CHECK_MSG(errno == EAGAIN, "send: %s", strerror(errno));
            struct pollfd pfd = {fd, POLLOUT, 0};
            poll(&pfd, 1, 100);
        }
    }
    long rss = proc_tree_rss_kb(p->pid);
    test_log("stalled after %zu MiB sent unread; server RSS %ld -> %ld KiB", sent >> 20, rss0, rss);
    CHECK_MSG(sent < total, "the server took 100 MiB without the client reading");
    if (rss_meaningful())
        CHECK_INT(rss - rss0, <, 8 * 1024);
    /* phase 2: read it all back, intact, while sending the rest */
    size_t got = 0;
    while (got < total) {
        struct pollfd pfd = {fd, (short)(POLLIN | (sent < total ? POLLOUT : 0)), 0};
        CHECK_MSG(poll(&pfd, 1, MS(10000)) > 0, "stalled at %zu of %zu", got, total);
        if (pfd.revents & POLLOUT) {
            fill_pattern(data, chunk, (unsigned)(sent / chunk));
            size_t off = sent % chunk;
            ssize_t w = send(fd, data + off, chunk - off, MSG_DONTWAIT);
            sent += w > 0 ? (size_t)w : 0;
        }
        if (pfd.revents & POLLIN) {
            size_t off = got % chunk;
            ssize_t r = recv(fd, back + off, chunk - off, MSG_DONTWAIT);
            CHECK_MSG(r > 0 || (r < 0 && errno == EAGAIN), "recv after %zu: %zd", got, r);
            if (r > 0) {
                fill_pattern(data, chunk, (unsigned)(got / chunk));
                CHECK_MSG(memcmp(back + off, data + off, (size_t)r) == 0, "corrupt at %zu", got);
                got += (size_t)r;
            }
        }
    }
    close(fd);
    free(data);
    free(back);
    srv_stop(p);
    CHECK_OUT(p, "received 104857600 bytes");
    srv_free(p);
}

/* ---- real clients ---- */

static void t_echo_client_20mib(const void *arg)
{
    struct proc *p = srv_start(arg, "-q", NULL);
    const char *in = make_file("in.bin", 20 << 20, 20);
    const char *out = tmp_path("out.bin");
    char client[256], err[512];
    const char *argv[] = {bin_path("echo_client", client, sizeof client), "127.0.0.1",
                          p->portstr, NULL};
    int rc = run_cmd(argv, in, out, err, sizeof err, MS(60000));
    CHECK_MSG(rc == 0, "echo_client exit %d: %s", rc, err);
    CHECK_MSG(same_file(in, out), "echo_client output differs from its input");
    srv_stop(p);
    srv_free(p);
}

static void t_netcat(const void *arg)
{
    if (!have_program("nc"))
        test_skip("nc (netcat-openbsd) is not installed");
    struct proc *p = srv_start(arg, NULL);
    const char *in = make_file("nc.in", 3 << 20, 7);
    const char *out = tmp_path("nc.out");
    char err[512];
    const char *argv[] = {"nc", "-N", "127.0.0.1", p->portstr, NULL};
    int rc = run_cmd(argv, in, out, err, sizeof err, MS(30000));
    CHECK_MSG(rc == 0, "nc exit %d: %s", rc, err);
    CHECK_MSG(same_file(in, out), "nc got back something else");
    srv_expect(p, "disconnected (received 3145728 bytes)", 1);
    srv_stop(p);
    srv_free(p);
}

static void t_socat(const void *arg)
{
    if (!have_program("socat"))
        test_skip("socat is not installed");
    struct proc *p = srv_start(arg, NULL);
    const char *in = make_file("socat.in", 3 << 20, 8);
    const char *out = tmp_path("socat.out");
    char err[512], target[64];
    snprintf(target, sizeof target, "TCP:127.0.0.1:%u", p->port);
    const char *argv[] = {"socat", "-t", "10", "-", target, NULL};
    int rc = run_cmd(argv, in, out, err, sizeof err, MS(30000));
    CHECK_MSG(rc == 0, "socat exit %d: %s", rc, err);
    CHECK_MSG(same_file(in, out), "socat got back something else");
    srv_stop(p);
    srv_free(p);
}

/* ---- start-up ---- */

static void t_cli(const void *arg)
{
    const struct kind *k = arg;
    char path[256], err[1024], want[256];
    const char *bin = bin_path(k->bin, path, sizeof path);
    static const char *const bad[][3] = {
        {"-p", "abc", "invalid --port 'abc'"}, {"-p", "70000", "invalid --port '70000'"},
        {"-p", "-1", "invalid --port '-1'"}, {"--mode", "foo", "invalid --mode 'foo'"},
        {"--bogus", NULL, "unrecognized option '--bogus'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *argv[] = {bin, bad[i][0], bad[i][1], NULL};
        CHECK_EQ(run_cmd(argv, NULL, NULL, err, sizeof err, 5000), 2);
        snprintf(want, sizeof want, "%s: %s", k->bin, bad[i][2]);
        CHECK_HAS(err, want);
        snprintf(want, sizeof want, "\nTry '%s --help'.\n", k->bin);
        CHECK_HAS(err, want);
    }
    const char *out = tmp_path("help.txt");
    const char *help[] = {bin, "--help", NULL};
    CHECK_EQ(run_cmd(help, NULL, out, NULL, 0, 5000), 0);
    FILE *f = fopen(out, "r");
    char first[256] = "";
    CHECK(f != NULL && fgets(first, sizeof first, f) != NULL);
    fclose(f);
    CHECK(strncmp(first, "usage: ", 7) == 0);
    const char *ver[] = {bin, "-V", NULL};
    CHECK_EQ(run_cmd(ver, NULL, out, NULL, 0, 5000), 0);
    f = fopen(out, "r");
    CHECK(f != NULL && fgets(first, sizeof first, f) != NULL);
    fclose(f);
    snprintf(want, sizeof want, "%s %s\n", k->bin, VERSION);
    CHECK_STR(first, want);
    /* a model's own options are unknown to the others: the same usage
     * error as any unknown option */
    static const struct { const char *opt, *val, *owner; } own[] = {
        {"--backend", "epoll", "select_server"}, {"--workers", "2", "select_server"},
        {"--prefork", "2", "fork_server"}, {"--pool", "2", "thread_server"},
    };
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        if (strcmp(k->bin, own[i].owner) == 0)
            continue;
        const char *argv[] = {bin, own[i].opt, own[i].val, NULL};
        CHECK_EQ(run_cmd(argv, NULL, NULL, err, sizeof err, 5000), 2);
        snprintf(want, sizeof want, "%s: unrecognized option '%s'\nTry '%s --help'.\n",
                 k->bin, own[i].opt, k->bin);
        CHECK_STR(err, want);
    }
    if (k->model == MODEL_SELECT) {
        const char *argv[] = {bin, "--workers", "0", NULL};
        CHECK_EQ(run_cmd(argv, NULL, NULL, err, sizeof err, 5000), 2);
        CHECK_HAS(err, "invalid --workers '0' (expected 1-64)");
        /* chat needs one room: workers would split it */
        const char *chat[] = {bin, "-m", "chat", "--workers", "2", NULL};
        CHECK_EQ(run_cmd(chat, NULL, NULL, err, sizeof err, 5000), 2);
        CHECK_HAS(err, "separate rooms");
    }
    if (k->model == MODEL_FORK) {
        const char *argv[] = {bin, "-m", "chat", NULL};
        CHECK_EQ(run_cmd(argv, NULL, NULL, err, sizeof err, 5000), 2);
        CHECK_HAS(err, "separate processes share none");
        const char *pre[] = {bin, "-m", "chat", "--prefork", "2", NULL};
        CHECK_EQ(run_cmd(pre, NULL, NULL, err, sizeof err, 5000), 2);
        CHECK_HAS(err, "separate processes share none");
        /* -m bogus lists only the modes fork_server offers */
        const char *bogus[] = {bin, "-m", "bogus", NULL};
        CHECK_EQ(run_cmd(bogus, NULL, NULL, err, sizeof err, 5000), 2);
        CHECK_HAS(err, "invalid --mode 'bogus' (expected echo, line or framed)\n");
        const char *zero[] = {bin, "--prefork", "0", NULL};
        CHECK_EQ(run_cmd(zero, NULL, NULL, err, sizeof err, 5000), 2);
        CHECK_HAS(err, "invalid --prefork '0' (expected 1-1024)");
    }
    /* --max-frame takes a 1024-based suffix */
    const char *mf[] = {bin, "--max-frame", "1M", "--help", NULL};
    CHECK_EQ(run_cmd(mf, NULL, NULL, err, sizeof err, 5000), 0);
    const char *mf2[] = {bin, "--max-frame", "2G", NULL};
    CHECK_EQ(run_cmd(mf2, NULL, NULL, err, sizeof err, 5000), 2);
    CHECK_HAS(err, "invalid --max-frame '2G' (expected 1-1073741824");
    /* a log file that cannot be opened: exit 1 at start */
    const char *lg[] = {bin, "-p", "0", "-l", "/nonexistent-dir/x.log", NULL};
    CHECK_EQ(run_cmd(lg, NULL, NULL, err, sizeof err, 5000), 1);
    CHECK_HAS(err, "/nonexistent-dir/x.log: No such file or directory");
}

static void t_addr_in_use(const void *arg)
{
    const struct kind *k = arg;
    struct proc *p = srv_start(k, NULL);
    char path[256], err[512], want[128];
    const char *argv[] = {bin_path(k->bin, path, sizeof path), "-p", p->portstr, NULL};
    CHECK_EQ(run_cmd(argv, NULL, NULL, err, sizeof err, 5000), 1);
    snprintf(want, sizeof want, "%s: bind 0.0.0.0:%u: Address already in use\n", k->bin, p->port);
    CHECK_STR(err, want);
    srv_stop(p);
    srv_free(p);
}

static void t_bind_names(const void *arg)
{
    struct proc *p = srv_start(arg, "-b", "localhost", NULL);
    CHECK_OUT(p, "listening on 127.0.0.1:");   /* numeric, IPv4 first */
    int fd = tc_connect(p->port);
    tc_send_str(fd, "v4");
    tc_recv_str(fd, "v4");
    close(fd);
    srv_stop(p);
    srv_free(p);
    int s6 = socket(AF_INET6, SOCK_STREAM, 0);
    if (s6 < 0)
        test_skip("no IPv6 here");
    close(s6);
    p = srv_start(arg, "-b", "::", NULL);
    char want[64];
    snprintf(want, sizeof want, "listening on [::]:%u", p->port);
    CHECK_OUT(p, want);
    fd = tc_connect(p->port);                      /* IPv4 client, dual-stack */
    tc_send_str(fd, "dual");
    tc_recv_str(fd, "dual");
    close(fd);
    srv_expect(p, "client 1 connected from 127.0.0.1:", 1);
    srv_stop(p);
    srv_free(p);
}

/* The same cases for every server and backend. */
static const struct {
    const char *name;
    void (*fn)(const void *);
    int timeout;
} cases[] = {
    {"echo text, status lines, totals", t_echo_text, 20},
    {"echo binary", t_echo_binary, 20},
    {"10 MiB through a client that reads while it writes", t_echo_10mib, 60},
    {"half-close: 7 in, 7 back, then EOF", t_half_close, 20},
    {"100 concurrent clients, distinct payloads", t_concurrent_100, 30},
    {"line mode: split, CRLF, NUL, partial at EOF, max+1", t_line_mode, 30},
    {"framed mode: split, empty, max, oversize, truncated", t_framed_mode, 30},
    {"access log under 50 concurrent clients", t_access_log, 30},
    {"--max-clients refuses one more, then frees the seat", t_max_clients, 30},
    {"--idle-timeout 1 closes within 1.0-2.5 s", t_idle_timeout, 30},
    {"SIGTERM: refuse new, drain in-flight, exit 0", t_sigterm_drain, 30},
    {"SIGTERM: --drain 1 cuts an idle client", t_drain_expires, 30},
    {"SIGINT: drain and totals", t_sigint_group, 30},
    {"descriptors, threads, children at baseline after 500", t_baseline_500, 90},
    {"100 MiB sent by a client that stops reading: memory bounded", t_never_reads, 90},
    {"echo_client: 20 MiB binary file", t_echo_client_20mib, 90},
    {"nc -N interop", t_netcat, 60},
    {"socat interop", t_socat, 60},
    {"localhost and :: binding", t_bind_names, 30},
    {"address in use: exit 1 with the bind line", t_addr_in_use, 20},
};

void server_tests(void)
{
    for (size_t k = 0; k < nkinds; k++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            test_addf(cases[i].fn, &kinds[k], cases[i].timeout * slow_factor(), 0, "%s: %s",
                      kinds[k].label, cases[i].name);
        if (kind_is_plain(&kinds[k]))
            test_addf(t_cli, &kinds[k], 30, 0, "%s: bad options, --help, -V, bad log",
                      kinds[k].bin);
    }
}
