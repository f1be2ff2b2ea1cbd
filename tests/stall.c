/* stall: a server's own output never stalls it.  stdout into a pipe
 * nobody reads (a paused `| less`), an access log that is a FIFO whose
 * reader stopped or never came: clients are still served, SIGTERM still
 * ends the server, and the lines that could not be written are counted
 * and reported once the output drains. */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/test.h"

/* Lines a stalled output must refuse before we stop adding clients. */
#define PAST_FULL 200

/* One client: connect, one byte, its echo within 5 s, close. */
static void one_client(unsigned port)
{
    int fd = tc_connect(port);
    struct timeval tv = {.tv_sec = 5 * slow_factor(), .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c = 'x';
    tc_send(fd, &c, 1);
    CHECK_MSG(recv(fd, &c, 1, 0) == 1 && c == 'x',
              "no echo within 5 s: the server is stuck behind its own output");
    close(fd);
}

/* Bytes waiting unread in a pipe or FIFO. */
static int unread(int fd)
{
    int n = 0;
    CHECK_EQ(ioctl(fd, FIONREAD, &n), 0);
    return n;
}

/* Serve clients until the pipe behind rfd is full, then PAST_FULL more:
 * every one of them is echoed.  Returns how many were served. */
static int fill(unsigned port, int rfd)
{
    int pipe_size = fcntl(rfd, F_GETPIPE_SZ), n = 0;
    CHECK(pipe_size > 0);
    while (unread(rfd) < pipe_size - 4096) {    /* pages are not filled to the byte */
        one_client(port);
        CHECK_MSG(++n < 100000, "the pipe never filled");
    }
    for (int i = 0; i < PAST_FULL; i++, n++)
        one_client(port);
    return n;
}

/* The sum of K over every "K<pat>" in text. */
static long dropped_in(const char *text, const char *pat)
{
    long sum = 0;
    for (const char *at = text; (at = strstr(at, pat)) != NULL; at += strlen(pat)) {
        const char *d = at;
        while (d > text && d[-1] >= '0' && d[-1] <= '9')
            d--;
        sum += strtol(d, NULL, 10);
    }
    return sum;
}

static long count_in(const char *text, const char *needle)
{
    long n = 0;
    for (const char *at = text; (at = strstr(at, needle)) != NULL; at += strlen(needle))
        n++;
    return n;
}

static void t_stdout_stalled(const void *arg)
{
    const struct kind *k = arg;
    struct proc *p = srv_start(k, NULL);
    srv_expect(p, "listening on", 1);
    srv_pause_stdout(p, 1);
    int served = fill(p->port, p->out_fd);
    test_log("%d clients served while stdout was full", served);
    /* the pager resumes: the next line says how many were lost */
    srv_pause_stdout(p, 0);
    one_client(p->port);
    served++;
    srv_expect(p, "status lines dropped: stdout could not keep up", 1);
    char want[64];
    snprintf(want, sizeof want, "client %d disconnected", served);
    srv_expect(p, want, 1);
    char *out = srv_stdout(p);
    long shown = count_in(out, " connected from ") + count_in(out, " disconnected (received");
    long lost = dropped_in(out, " status lines dropped");
    test_log("%ld client lines shown, %ld dropped", shown, lost);
    CHECK_MSG(lost > 0 && shown + lost == 2L * served,
              "%ld shown + %ld dropped != 2 x %d clients", shown, lost, served);
    free(out);
    /* stalled again, then SIGTERM: the server still ends, exit 0 */
    srv_pause_stdout(p, 1);
    fill(p->port, p->out_fd);
    srv_stop(p);
    srv_free(p);
}

static void t_access_fifo_no_reader(const void *arg)
{
    const struct kind *k = arg;
    const char *fifo = tmp_path("access.fifo");
    CHECK_EQ(mkfifo(fifo, 0600), 0);
    char path[256], err[1024];
    const char *argv[] = {bin_path(k->bin, path, sizeof path), "-p", "0", "-l", fifo,
                          k->backend != NULL ? "--backend" : NULL, k->backend, NULL};
    CHECK_EQ(run_cmd(argv, "/dev/null", NULL, err, sizeof err, 5000 * slow_factor()), 1);
    CHECK_HAS(err, "a FIFO that no process is reading");
}

/* Lines waiting in the FIFO behind rfd, read and counted. */
static long read_lines(int rfd)
{
    char buf[65536];
    long lines = 0;
    ssize_t r;
    while ((r = read(rfd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < r; i++)
            lines += buf[i] == '\n';
    return lines;
}

static void t_access_fifo_stalled(const void *arg)
{
    const struct kind *k = arg;
    const char *fifo = tmp_path("access.fifo");
    CHECK_EQ(mkfifo(fifo, 0600), 0);
    int rfd = open(fifo, O_RDONLY | O_NONBLOCK);   /* a reader that stops reading */
    CHECK(rfd >= 0);
    struct proc *p = srv_start(k, "-q", "-l", fifo, NULL);
    int served = fill(p->port, rfd);
    /* the reader wakes up: the next line is logged, the loss reported */
    long lines = read_lines(rfd);
    one_client(p->port);
    served++;
    CHECK_EQ(srv_wait_text_err(p, "lines dropped: its reader could not keep up", 1,
                               10000 * slow_factor()), 0);
    srv_stop(p);                      /* every process has written its line */
    lines += read_lines(rfd);
    char *err = srv_stderr(p);
    long lost = dropped_in(err, " lines dropped: its reader");
    test_log("%ld access-log lines written, %ld dropped, %d clients", lines, lost, served);
    CHECK_MSG(lost > 0 && lines + lost == served, "%ld written + %ld dropped != %d clients",
              lines, lost, served);
    free(err);
    close(rfd);
    srv_free(p);
}

void stall_tests(void)
{
    for (size_t i = 0; i < nkinds; i++) {
        const struct kind *k = &kinds[i];
        test_addf(t_stdout_stalled, k, 120, 0,
                  "%s: stdout nobody reads: clients served, lost lines counted, SIGTERM ends it",
                  k->label);
        test_addf(t_access_fifo_stalled, k, 120, 0,
                  "%s: access log FIFO whose reader stalls: clients served, loss reported",
                  k->label);
        if (kind_is_plain(k))
            test_addf(t_access_fifo_no_reader, k, 30, 0,
                      "%s: access log FIFO with no reader: exit 1 at once", k->bin);
    }
}
