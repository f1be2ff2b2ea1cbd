/* client: echo_client as a user runs it: exit codes, framed mode, errors. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/io.h"
#include "tests/harness.h"
#include "tests/test.h"

#define MS(x) ((x) * slow_factor())

static const struct kind *thread_kind(void)
{
    for (size_t i = 0; i < nkinds; i++)
        if (strcmp(kinds[i].label, "thread_server") == 0)
            return &kinds[i];
    test_fail(__FILE__, __LINE__, "no thread_server kind");
}

static const char *write_text(const char *name, const char *text)
{
    const char *path = tmp_path(name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && io_write_all(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    return path;
}

static char *read_text(const char *path)
{
    static char buf[65536];
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n = io_read_all(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* Run echo_client with argv[1..] and stdin from in; stdout to out. */
static int client(const char *in, const char *out, char *err, size_t errlen, const char *a1,
                  const char *a2, const char *a3)
{
    char path[256];
    const char *argv[] = {bin_path("echo_client", path, sizeof path), a1, a2, a3, NULL};
    return run_cmd(argv, in, out, err, errlen, MS(30000));
}

static void t_client_modes(const void *arg)
{
    (void)arg;
    char err[512];
    const char *out = tmp_path("out");
    /* line mode: a partial last line comes back too */
    struct proc *p = srv_start(thread_kind(), "-q", "-m", "line", NULL);
    const char *in = write_text("lines", "one\ntwo\nlast");
    CHECK_EQ(client(in, out, err, sizeof err, "127.0.0.1", p->portstr, NULL), 0);
    CHECK_STR(read_text(out), "one\ntwo\nlast");
    /* empty input: nothing sent, nothing back, success */
    CHECK_EQ(client("/dev/null", out, err, sizeof err, "127.0.0.1", p->portstr, NULL), 0);
    CHECK_STR(read_text(out), "");
    srv_stop(p);
    srv_free(p);
    /* framed: each line a frame, each frame printed as a line */
    p = srv_start(thread_kind(), "-q", "-m", "framed", NULL);
    in = write_text("framed", "a\n\nbb\nno newline");
    CHECK_EQ(client(in, out, err, sizeof err, "--framed", "127.0.0.1", p->portstr), 0);
    CHECK_STR(read_text(out), "a\n\nbb\nno newline\n");
    srv_stop(p);
    CHECK_OUT(p, "received 29 bytes");   /* 4 headers + 13 payload bytes */
    srv_free(p);
}

static void t_client_errors(const void *arg)
{
    (void)arg;
    char err[512];
    CHECK_EQ(client("/dev/null", NULL, err, sizeof err, "127.0.0.1", "70000", NULL), 2);
    CHECK_HAS(err, "echo_client: invalid port '70000' (expected 1-65535)\nTry 'echo_client --help'.");
    CHECK_EQ(client("/dev/null", NULL, err, sizeof err, "127.0.0.1", "0", NULL), 2);
    CHECK_EQ(client("/dev/null", NULL, err, sizeof err, "--bogus", NULL, NULL), 2);
    CHECK_HAS(err, "unrecognized option '--bogus'");
    CHECK_EQ(client("/dev/null", NULL, err, sizeof err, "a", "1", "extra"), 2);
    /* the address as the servers print it, in one argument: a hint, not a resolver error */
    CHECK_EQ(client("/dev/null", NULL, err, sizeof err, "127.0.0.1:7878", NULL, NULL), 2);
    CHECK_HAS(err, "'127.0.0.1:7878' is HOST:PORT; give them as two arguments: "
              "echo_client HOST PORT");
    CHECK_EQ(client("/dev/null", NULL, err, sizeof err, "[::1]:7878", NULL, NULL), 2);
    CHECK_HAS(err, "is HOST:PORT");
    const char *out = tmp_path("help");
    CHECK_EQ(client(NULL, out, err, sizeof err, "--help", NULL, NULL), 0);
    CHECK(strncmp(read_text(out), "usage: ", 7) == 0);
    /* nobody listening: exit 1, one clear line */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    CHECK(bind(s, (struct sockaddr *)&sa, sizeof sa) == 0);
    CHECK(getsockname(s, (struct sockaddr *)&sa, &len) == 0);
    char port[16];
    snprintf(port, sizeof port, "%u", ntohs(sa.sin_port));
    CHECK_EQ(client("/dev/null", NULL, err, sizeof err, "127.0.0.1", port, NULL), 1);
    char want[96];
    snprintf(want, sizeof want, "echo_client: connect 127.0.0.1:%s: Connection refused\n", port);
    CHECK_STR(err, want);
    close(s);
}

/* A fake server that echoes with every byte after the first 20 MiB
 * changed, or nothing at all: the client must notice, not hang. */
struct fake {
    int lfd;
    int mode;        /* 0: flip bytes past 20 MiB, 1: read and never answer */
};

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    int fd = accept(f->lfd, NULL, NULL);
    static char buf[65536];
    size_t total = 0;
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < r; i++)
            if (total + (size_t)i >= (20u << 20))
                buf[i] ^= 1;
        total += (size_t)r;
        if (f->mode == 0 && io_write_all(fd, buf, (size_t)r) < 0)
            break;
    }
    close(fd);
    return NULL;
}

static void t_client_mismatch(const void *arg)
{
    (void)arg;
    for (int mode = 0; mode < 2; mode++) {
        struct fake f = {socket(AF_INET, SOCK_STREAM, 0), mode};
        struct sockaddr_in sa = {.sin_family = AF_INET};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof sa;
        CHECK(bind(f.lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(f.lfd, 1) == 0);
        CHECK(getsockname(f.lfd, (struct sockaddr *)&sa, &len) == 0);
        char port[16], err[512];
        snprintf(port, sizeof port, "%u", ntohs(sa.sin_port));
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, fake_main, &f), 0);
        const char *in = make_file("mismatch.in", 24 << 20, 5);
        CHECK_EQ(client(in, NULL, err, sizeof err, "127.0.0.1", port, NULL), 1);
        CHECK_HAS(err, mode == 0 ? "echo differs from what was sent"
                                 : "before echoing everything: 0 of 25165824 bytes sent came back");
        pthread_join(t, NULL);
        close(f.lfd);
    }
}

/* A server that closes early gets the same words every time: how much
 * came back of what was sent (framed server, chat server, dropped line). */
static void t_client_early_close(const void *arg)
{
    (void)arg;
    char err[512];
    const char *in = write_text("hello", "hello\n");
    /* unframed bytes at a framed server: "hell" is a length past --max-frame */
    struct proc *p = srv_start(thread_kind(), "-q", "-m", "framed", NULL);
    CHECK_EQ(client(in, NULL, err, sizeof err, "127.0.0.1", p->portstr, NULL), 1);
    CHECK_HAS(err, "echo_client: the server closed the connection ");
    CHECK_HAS(err, ": 0 of 6 bytes sent came back\n");
    srv_stop(p);
    srv_free(p);
    /* chat sends nothing back to the sender */
    p = srv_start(thread_kind(), "-q", "-m", "chat", NULL);
    CHECK_EQ(client(in, NULL, err, sizeof err, "127.0.0.1", p->portstr, NULL), 1);
    CHECK_STR(err, "echo_client: the server closed the connection before echoing everything: "
              "0 of 6 bytes sent came back\n");
    srv_stop(p);
    srv_free(p);
    /* --framed at a line server: the frame header is not a line */
    p = srv_start(thread_kind(), "-q", "-m", "line", "--max-frame", "4", NULL);
    CHECK_EQ(client(in, NULL, err, sizeof err, "--framed", "127.0.0.1", p->portstr), 1);
    CHECK_HAS(err, "echo_client: the server closed the connection ");
    CHECK_HAS(err, " of 1 frames sent came back\n");
    srv_stop(p);
    srv_free(p);
}

/* "[::1]", as the servers print it, works as input for both sides. */
static void t_client_bracketed_v6(const void *arg)
{
    (void)arg;
    int s = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    if (s < 0 || bind(s, (struct sockaddr *)&sa6, sizeof sa6) != 0)
        test_skip("no IPv6 loopback here");
    close(s);
    struct proc *p = srv_start(thread_kind(), "-q", "-b", "[::1]", NULL);
    CHECK_OUT(p, "listening on [::1]:");
    char err[512];
    const char *in = write_text("v6", "over six\n"), *out = tmp_path("v6.out");
    CHECK_EQ(client(in, out, err, sizeof err, "[::1]", p->portstr, NULL), 0);
    CHECK_STR(read_text(out), "over six\n");
    srv_stop(p);
    srv_free(p);
}

/* A very long -b or HOST is cut in the error line, never its reason. */
static void t_long_host_error(const void *arg)
{
    (void)arg;
    char host[301], err[1024], path[256];
    memset(host, 'a', 300);
    host[300] = '\0';
    const char *argv[] = {bin_path("thread_server", path, sizeof path), "-p", "0", "-b", host, NULL};
    CHECK_EQ(run_cmd(argv, "/dev/null", NULL, err, sizeof err, MS(30000)), 1);
    CHECK_HAS(err, "thread_server: resolve aaaa");
    CHECK_HAS(err, "a...: ");
    CHECK_MSG(strlen(err) < 200 && err[strlen(err) - 1] == '\n' && strstr(err, "...: ") != NULL &&
              strlen(strstr(err, "...: ")) > 8, "the reason is cut: %s", err);
    CHECK_EQ(client("/dev/null", NULL, err, sizeof err, host, "7", NULL), 1);
    CHECK_HAS(err, "echo_client: resolve aaaa");
    CHECK_MSG(strlen(strstr(err, "...: ")) > 8, "the reason is cut: %s", err);
}

void client_tests(void)
{
    test_add("a 300-character host name: the error line keeps its reason", t_long_host_error,
             NULL, 30, 0);
    test_add("echo_client: an early close says how much came back, in the same words",
             t_client_early_close, NULL, 30, 0);
    test_add("echo_client and servers take [::1] as printed", t_client_bracketed_v6, NULL, 30, 0);
    test_add("echo_client: line and framed modes, empty input", t_client_modes, NULL, 30, 0);
    test_add("echo_client: usage errors exit 2, refused exits 1", t_client_errors, NULL, 30, 0);
    test_add("echo_client: a wrong or missing echo past the window exits 1", t_client_mismatch,
             NULL, 60, 0);
}
