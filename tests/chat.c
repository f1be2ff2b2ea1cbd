/* chat: every line reaches every other client (with -t, -l, -c set too),
 * a reader that keeps up is never cut however long the lines, and a line
 * a client never finished is never sent on (issue 9, items 1, 5 and 6).
 * Run against every chat-capable kind: thread_server and each select
 * backend. */
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/net.h"
#include "common/sys.h"
#include "tests/harness.h"
#include "tests/test.h"

#define MS(x) ((x) * slow_factor())

/* ---- 6 clients, each line to the 5 others ---- */

enum { ROOM = 6, ROUNDS = 3 };

/* Every client talks in turn, ROUNDS times; after each line every other
 * client must have it, and the talker nothing (its own line is not
 * echoed).  With -t the talker and the receivers change places in the
 * server's activity order at every line. */
static void room(const struct kind *k, const char *log)
{
    struct proc *p = log != NULL ?
        srv_start(k, "-m", "chat", "-t", "30", "-l", log, "-c", "6", NULL) :
        srv_start(k, "-m", "chat", "-t", "30", NULL);
    int c[ROOM];
    tc_connect_n(p, c, ROOM);
    size_t sent = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < ROOM; i++) {
            char line[64], want[96];
            snprintf(line, sizeof line, "round %d from %d\n", r, i + 1);
            snprintf(want, sizeof want, "client %d: %s", i + 1, line);
            tc_send_str(c[i], line);
            sent += strlen(line);
            for (int j = 0; j < ROOM; j++)
                if (j != i)
                    tc_recv_str(c[j], want);
        }
    }
    if (log != NULL) {                           /* -c 6: a seventh is refused */
        int extra = tc_connect(p->port);
        tc_expect_closed(extra, 5000);
        close(extra);
        srv_expect(p, "at --max-clients 6", 1);
        tc_send_str(c[0], "still one room\n");
        for (int j = 1; j < ROOM; j++)
            tc_recv_str(c[j], "client 1: still one room\n");
        sent += strlen("still one room\n");
    }
    for (int i = 0; i < ROOM; i++)
        tc_expect_quiet(c[i], 100);              /* nothing more, nothing echoed */
    for (int i = 0; i < ROOM; i++)
        close(c[i]);
    srv_expect(p, "disconnected", ROOM);
    srv_stop(p);
    char want[96];
    snprintf(want, sizeof want, "served %d clients, received %zu bytes", ROOM, sent);
    CHECK_OUT(p, want);
    srv_free(p);
    if (log != NULL) {
        char text[4096];
        int fd = open(log, O_RDONLY);
        CHECK(fd >= 0);
        ssize_t n = read(fd, text, sizeof text - 1);
        close(fd);
        CHECK(n > 0);
        text[n] = '\0';
        int lines = 0;
        for (char *s = text; (s = strstr(s, "]: received ")) != NULL; s++)
            lines++;
        CHECK_EQ(lines, ROOM);
        CHECK_HAS(text, "[client 6]: received ");
    }
}

static void t_chat_room_idle(const void *arg)
{
    room(arg, NULL);
}

static void t_chat_room_all(const void *arg)
{
    room(arg, tmp_path("access.log"));
}

/* ---- 1 talker, 5 readers, lines of --max-frame - 1 bytes ---- */

enum { READERS = 5, LONG_LINES = 5 };

struct reader {
    int fd;
    size_t line;             /* bytes of one line, without the '\n' */
    size_t got, lines;       /* what arrived whole and right */
    char bad[128];
};

/* Read LONG_LINES lines "client 1: xxx...x\n" as fast as possible. */
static void *read_lines(void *arg)
{
    struct reader *r = arg;
    static const char head[] = "client 1: ";
    size_t hl = sizeof head - 1, per = hl + r->line + 1, want = per * LONG_LINES;
    char buf[65536];
    while (r->got < want) {
        ssize_t n = recv(r->fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(r->bad, sizeof r->bad, "%s after %zu of %zu bytes",
                     n == 0 ? "closed" : strerror(errno), r->got, want);
            return NULL;
        }
        for (ssize_t i = 0; i < n; i++, r->got++) {
            size_t at = r->got % per;
            char expect = '\n';
            if (at < hl)
                expect = head[at];
            else if (at < per - 1)
                expect = 'x';
            if (buf[i] != expect) {
                snprintf(r->bad, sizeof r->bad, "byte %zu is 0x%02x, not 0x%02x", r->got,
                         (unsigned char)buf[i], (unsigned char)expect);
                return NULL;
            }
        }
    }
    r->lines = r->got / per;
    return NULL;
}

static void long_lines(const struct kind *k, size_t max_frame)
{
    char mf[24];
    snprintf(mf, sizeof mf, "%zu", max_frame);
    struct proc *p = srv_start(k, "-m", "chat", "--max-frame", mf, NULL);
    int c[1 + READERS];
    tc_connect_n(p, c, 1 + READERS);
    struct reader r[READERS];
    pthread_t th[READERS];
    for (int i = 0; i < READERS; i++) {
        r[i] = (struct reader){.fd = c[1 + i], .line = max_frame - 1};
        CHECK(pthread_create(&th[i], NULL, read_lines, &r[i]) == 0);
    }
    char *line = malloc(max_frame);
    CHECK(line != NULL);
    memset(line, 'x', max_frame - 1);
    line[max_frame - 1] = '\n';
    for (int i = 0; i < LONG_LINES; i++)
        tc_send(c[0], line, max_frame);
    free(line);
    for (int i = 0; i < READERS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < READERS; i++)
        CHECK_MSG(r[i].lines == LONG_LINES, "reader %d (client %d): %s", i + 1, i + 2, r[i].bad);
    CHECK_EQ(srv_count(p, "chat queue over"), 0);
    for (int i = 0; i <= READERS; i++)
        close(c[i]);
    srv_expect(p, "disconnected", 1 + READERS);
    srv_stop(p);
    srv_free(p);
}

static void t_chat_long_lines_256k(const void *arg)
{
    long_lines(arg, 256 * 1024);
}

static void t_chat_long_lines_1m(const void *arg)
{
    long_lines(arg, 1024 * 1024);
}

/* ---- a line never finished is never sent on ---- */

/* Count what arrives on fd within ms, failing if a 'P' (only the partial
 * line holds one) is among it; stop early at want bytes. */
static size_t drain_no_partial(int fd, size_t want, int ms)
{
    char buf[65536];
    size_t got = 0;
    int64_t end = sys_now_ms() + ms;
    while (got < want) {
        int64_t left = end - sys_now_ms();
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, left > 0 ? (int)left : 0) <= 0)
            break;
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0)
            break;
        const char *at = memchr(buf, 'P', (size_t)n);
        CHECK_MSG(at == NULL, "a partial line was sent on: ...%.*s",
                  (int)(buf + n - at < 40 ? buf + n - at : 40), at != NULL && at - buf >= 10 ? at - 10 : buf);
        got += (size_t)n;
    }
    return got;
}

/* Client 1 sends a partial line and never reads; client 2 talks until 1
 * is cut for overflow; client 3 listens.  Nobody gets client 1's line. */
static void t_chat_partial_overflow(const void *arg)
{
    struct proc *p = srv_start(arg, "-m", "chat", "--max-frame", "65536", NULL);
    int c[3];
    tc_connect_n(p, c, 3);
    tc_send_str(c[0], "PARTIAL-FROM-A");
    static char block[16384];
    memset(block, 'x', sizeof block);
    block[sizeof block - 1] = '\n';
    size_t hl = strlen("client 2: "), per = hl + sizeof block;
    size_t sent = 0, got = 0, limit = (size_t)512 << 20;
    net_set_nonblock(c[1], 1);
    /* talk until client 1 is dropped, listening all the while */
    while (sent < limit && srv_count(p, "client 1: chat queue over") == 0) {
        struct pollfd pfd[2] = {{c[1], POLLOUT, 0}, {c[2], POLLIN, 0}};
        CHECK(poll(pfd, 2, MS(5000)) > 0);
        if (pfd[0].revents & POLLOUT) {
            ssize_t w = send(c[1], block + sent % sizeof block,
                             sizeof block - sent % sizeof block, 0);
            CHECK_MSG(w > 0 || errno == EAGAIN, "talker: %s", strerror(errno));
            sent += w > 0 ? (size_t)w : 0;
        }
        if (pfd[1].revents & POLLIN)
            got += drain_no_partial(c[2], SIZE_MAX, 0);
    }
    CHECK_MSG(srv_count(p, "client 1: chat queue over") > 0, "client 1 never dropped");
    net_set_nonblock(c[1], 0);
    if (sent % sizeof block != 0)                        /* finish the line */
        tc_send(c[1], block + sent % sizeof block, sizeof block - sent % sizeof block);
    sent += (sizeof block - sent % sizeof block) % sizeof block;
    tc_send_str(c[1], "done\n");
    size_t want = sent / sizeof block * per + strlen("client 2: done\n");
    got += drain_no_partial(c[2], want - got, MS(10000));
    CHECK_EQ(got, want);
    CHECK_EQ(drain_no_partial(c[1], SIZE_MAX, 200), 0);  /* the talker gets nothing */
    CHECK(tc_wait_close(c[0], MS(5000), NULL));
    for (int i = 0; i < 3; i++)
        close(c[i]);
    srv_expect(p, "disconnected", 3);
    srv_stop(p);
    srv_free(p);
}

/* The same when client 1 is cut for --idle-timeout. */
static void t_chat_partial_idle(const void *arg)
{
    struct proc *p = srv_start(arg, "-m", "chat", "-t", "1", NULL);
    int c[3];
    tc_connect_n(p, c, 3);
    tc_send_str(c[0], "PARTIAL-FROM-A");
    tc_send_str(c[1], "hi\n");
    tc_recv_str(c[0], "client 2: hi\n");
    tc_recv_str(c[2], "client 2: hi\n");
    srv_expect(p, "client 1: idle for 1 s", 1);
    /* 2 and 3 idle out too; nothing may reach them before */
    size_t extra = 0;
    CHECK(tc_wait_close(c[1], MS(5000), &extra));
    CHECK_EQ(extra, 0);
    CHECK(tc_wait_close(c[2], MS(5000), &extra));
    CHECK_EQ(extra, 0);
    for (int i = 0; i < 3; i++)
        close(c[i]);
    srv_expect(p, "disconnected", 3);
    srv_stop(p);
    srv_free(p);
}

/* A real EOF (a clean close, not only a half-close) still sends it. */
static void t_chat_partial_eof(const void *arg)
{
    struct proc *p = srv_start(arg, "-m", "chat", NULL);
    int c[3];
    tc_connect_n(p, c, 3);
    tc_send_str(c[0], "last words");
    close(c[0]);
    tc_recv_str(c[1], "client 1: last words\n");
    tc_recv_str(c[2], "client 1: last words\n");
    srv_expect(p, "client 1 disconnected (received 10 bytes)", 1);
    close(c[1]);
    close(c[2]);
    srv_expect(p, "disconnected", 3);
    srv_stop(p);
    srv_free(p);
}

void chat_tests(void)
{
    for (size_t k = 0; k < nkinds; k++) {
        const struct kind *kd = &kinds[k];
        if (kd->model == MODEL_FORK)
            continue;
        test_addf(t_chat_room_idle, kd, 60, 0,
                  "%s: chat -t 30: 6 clients, every line reaches the 5 others", kd->label);
        test_addf(t_chat_room_all, kd, 60, 0,
                  "%s: chat -t 30 -l FILE -c 6: every line reaches the 5 others", kd->label);
        test_addf(t_chat_long_lines_256k, kd, 60, 0, "%s: chat: 1 talker, 5 readers, lines of "
                  "--max-frame 256K - 1: nobody is cut", kd->label);
        test_addf(t_chat_long_lines_1m, kd, 90, 0, "%s: chat: 1 talker, 5 readers, lines of "
                  "--max-frame 1M - 1: nobody is cut", kd->label);
        test_addf(t_chat_partial_overflow, kd, 90, 0, "%s: chat: a partial line is not sent "
                  "when its client is cut for overflow", kd->label);
        test_addf(t_chat_partial_idle, kd, 30, 0, "%s: chat: a partial line is not sent "
                  "when its client idles out", kd->label);
        test_addf(t_chat_partial_eof, kd, 30, 0, "%s: chat: a partial line at a clean close "
                  "is sent", kd->label);
    }
}
