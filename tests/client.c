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
    return &kinds[1];
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
                                 : "sent 25165824 bytes, received 0 back");
        pthread_join(t, NULL);
        close(f.lfd);
    }
}

void client_tests(void)
{
    test_add("echo_client: line and framed modes, empty input", t_client_modes, NULL, 30, 0);
    test_add("echo_client: usage errors exit 2, refused exits 1", t_client_errors, NULL, 30, 0);
    test_add("echo_client: a wrong or missing echo past the window exits 1", t_client_mismatch,
             NULL, 60, 0);
}
