/* unit: pure logic without servers: options, decoders, buffers, I/O
 * helpers over socketpairs, address text. */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/chat.h"
#include "common/io.h"
#include "common/net.h"
#include "common/opt.h"
#include "framing/frame.h"
#include "framing/line.h"
#include "select_server/stash.h"
#include "tests/harness.h"
#include "tests/test.h"

/* ---- options ---- */

/* Models as the mains declare them: one with its own options and a
 * combination it refuses, one offering fewer modes, one plain. */
static int set_backend(struct opts *o, const char *arg, char *err, size_t errlen)
{
    static const char *const names[] = {"poll", "select", "epoll", NULL};
    int i = opt_choice("backend", arg, names, err, errlen);
    if (i < 0)
        return -1;
    o->backend = names[i];
    return 0;
}

static int check_select(struct opts *o, char *err, size_t errlen)
{
    if (o->backend == NULL)
        o->backend = "poll";
    if (o->mode == MODE_CHAT && o->workers > 1) {
        snprintf(err, errlen, "chat with --workers refused");
        return -1;
    }
    return 0;
}

static int check_fork(struct opts *o, char *err, size_t errlen)
{
    if (o->mode != MODE_CHAT)
        return 0;
    snprintf(err, errlen, "--mode chat needs one shared list of clients");
    return -1;
}

static const struct opt_own select_own[] = {
    {"backend", "      --backend NAME\n", set_backend, 0, 0, 0},
    OPT_OWN_NUMBER("workers", "      --workers N\n", 1, 64, workers),
    {NULL, NULL, NULL, 0, 0, 0},
};
static const struct opt_model models[] = {
    [MODEL_FORK] = {"fork_server", OPT_MODE(MODE_ECHO) | OPT_MODE(MODE_LINE) | OPT_MODE(MODE_FRAMED),
                    NULL, NULL, check_fork},
    [MODEL_THREAD] = {"thread_server", OPT_MODES_ALL, NULL, NULL, NULL},
    [MODEL_SELECT] = {"select_server", OPT_MODES_ALL, select_own, "About.\n", check_select},
};

static enum opt_result parse(enum model m, struct opts *o, char *err, ...)
{
    char *argv[32] = {"server"};
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a; argc < 31 && (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    return opt_parse(argc, argv, &models[m], o, err, 256);
}

static void t_opt_defaults(const void *arg)
{
    (void)arg;
    struct opts o;
    char err[256];
    CHECK_EQ(parse(MODEL_SELECT, &o, err, NULL), OPT_RUN);
    CHECK_STR(o.bind, "0.0.0.0");
    CHECK_STR(o.port, "7878");
    CHECK_EQ(o.mode, MODE_ECHO);
    CHECK_EQ(o.max_clients, 1024);
    CHECK_EQ(o.idle_timeout, 0);
    CHECK(o.access_log == NULL);
    CHECK_EQ(o.max_frame, 1048576);
    CHECK_EQ(o.drain, 5);
    CHECK_EQ(o.quiet, 0);
    CHECK_STR(o.backend, "poll");
    CHECK_EQ(o.workers, 1);
    CHECK_EQ(o.prefork, 0);
    CHECK_EQ(o.pool, 0);
}

static void t_opt_all(const void *arg)
{
    (void)arg;
    struct opts o;
    char err[256];
    CHECK_EQ(parse(MODEL_SELECT, &o, err, "-b", "::", "-p", "0", "-m", "line", "-c", "7",
                   "-t", "3", "-l", "/tmp/x.log", "--max-frame", "99", "--drain", "0", "-q",
                   "--backend", "epoll", "--workers", "4", NULL), OPT_RUN);
    CHECK_STR(o.bind, "::");
    CHECK_STR(o.port, "0");
    CHECK_EQ(o.mode, MODE_LINE);
    CHECK_EQ(o.max_clients, 7);
    CHECK_EQ(o.idle_timeout, 3);
    CHECK_STR(o.access_log, "/tmp/x.log");
    CHECK_EQ(o.max_frame, 99);
    CHECK_EQ(o.drain, 0);
    CHECK_EQ(o.quiet, 1);
    CHECK_STR(o.backend, "epoll");
    CHECK_EQ(o.workers, 4);
    CHECK_EQ(parse(MODEL_FORK, &o, err, "--bind=127.0.0.1", "--port=65535", "--mode=framed",
                   "--max-clients=1", "--idle-timeout=0", "--access-log=a", NULL), OPT_RUN);
    CHECK_STR(o.port, "65535");
    CHECK_EQ(o.mode, MODE_FRAMED);
    CHECK_EQ(parse(MODEL_FORK, &o, err, "-h", NULL), OPT_HELP);
    CHECK_EQ(parse(MODEL_FORK, &o, err, "--version", NULL), OPT_VERSION);
    /* --max-frame takes K, M and G (1024-based) */
    CHECK_EQ(parse(MODEL_THREAD, &o, err, "--max-frame", "1M", NULL), OPT_RUN);
    CHECK_EQ(o.max_frame, 1048576);
    CHECK_EQ(parse(MODEL_THREAD, &o, err, "--max-frame=64k", NULL), OPT_RUN);
    CHECK_EQ(o.max_frame, 65536);
    CHECK_EQ(parse(MODEL_THREAD, &o, err, "--max-frame", "1G", NULL), OPT_RUN);
    CHECK_EQ(o.max_frame, 1u << 30);
    /* parsing twice in one process works (getopt is reset) */
    CHECK_EQ(parse(MODEL_FORK, &o, err, "-p", "1", NULL), OPT_RUN);
    CHECK_STR(o.port, "1");
}

static void t_opt_errors(const void *arg)
{
    (void)arg;
    static const struct {
        enum model m;
        const char *a[4];
        const char *msg;
    } bad[] = {
        {MODEL_THREAD, {"-p", "abc"}, "invalid --port 'abc' (expected 0-65535)"},
        {MODEL_THREAD, {"-p", "70000"}, "invalid --port '70000'"},
        {MODEL_THREAD, {"-p", "-1"}, "invalid --port '-1'"},
        {MODEL_THREAD, {"-p", " 1"}, "invalid --port ' 1'"},
        {MODEL_THREAD, {"-p", "1x"}, "invalid --port '1x'"},
        {MODEL_THREAD, {"-p", ""}, "invalid --port ''"},
        {MODEL_THREAD, {"-p"}, "option '-p' needs a value"},
        {MODEL_THREAD, {"--port"}, "option '--port' needs a value"},
        {MODEL_THREAD, {"--mode", "foo"}, "invalid --mode 'foo'"},
        {MODEL_THREAD, {"-x"}, "unrecognized option '-x'"},
        {MODEL_THREAD, {"--quiet", "-qx"}, "unrecognized option '-x'"},   /* in a cluster */
        {MODEL_THREAD, {"--frobnicate"}, "unrecognized option '--frobnicate'"},
        {MODEL_THREAD, {"--quiet=1"}, "unrecognized option '--quiet=1'"},
        {MODEL_THREAD, {"-c", "0"}, "invalid --max-clients '0'"},
        {MODEL_THREAD, {"-c", "18446744073709551617"}, "invalid --max-clients"},
        {MODEL_THREAD, {"-t", "x"}, "invalid --idle-timeout 'x'"},
        {MODEL_THREAD, {"--max-frame", "0"}, "invalid --max-frame '0'"},
        {MODEL_THREAD, {"--drain", "3601"}, "invalid --drain '3601'"},
        {MODEL_THREAD, {"-b", ""}, "invalid --bind ''"},
        {MODEL_THREAD, {"extra"}, "unexpected argument 'extra'"},
        {MODEL_THREAD, {"--max-frame", "2G"}, "invalid --max-frame '2G' (expected 1-1073741824"},
        {MODEL_THREAD, {"--max-frame", "1X"}, "invalid --max-frame '1X'"},
        {MODEL_THREAD, {"--max-frame", "M"}, "invalid --max-frame 'M'"},
        {MODEL_THREAD, {"--max-frame", "0K"}, "invalid --max-frame '0K'"},
        /* a model's own options are unknown to the others */
        {MODEL_THREAD, {"--backend", "poll"}, "unrecognized option '--backend'"},
        {MODEL_FORK, {"--workers", "2"}, "unrecognized option '--workers'"},
        {MODEL_FORK, {"--workers", "0"}, "unrecognized option '--workers'"},
        {MODEL_FORK, {"-m", "chat"}, "--mode chat needs one shared list of clients"},
        {MODEL_FORK, {"-m", "bogus"}, "invalid --mode 'bogus' (expected echo, line or framed)"},
        {MODEL_THREAD, {"-m", "bogus"}, "(expected echo, line, framed or chat)"},
        {MODEL_SELECT, {"--backend", "kqueue"}, "invalid --backend 'kqueue' (expected poll, select or epoll)"},
        {MODEL_SELECT, {"--workers", "0"}, "invalid --workers '0' (expected 1-64)"},
        {MODEL_SELECT, {"--workers", "2", "-m", "chat"}, "chat with --workers refused"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[6] = {"server"};
        int argc = 1;
        for (int k = 0; k < 4 && bad[i].a[k] != NULL; k++)
            argv[argc++] = (char *)(uintptr_t)bad[i].a[k];
        struct opts o;
        char err[256] = "";
        CHECK_EQ(opt_parse(argc, argv, &models[bad[i].m], &o, err, sizeof err), OPT_ERROR);
        CHECK_HAS(err, bad[i].msg);
        CHECK(strchr(err, '\n') == NULL);   /* one line */
    }
}

static void t_opt_usage(const void *arg)
{
    (void)arg;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    opt_usage(f, &models[MODEL_SELECT]);
    fclose(f);
    CHECK(strncmp(text, "usage: select_server", 20) == 0);
    const char *every[] = {"--bind", "--port", "--mode", "--max-clients", "--idle-timeout",
                           "--access-log", "--max-frame", "--drain", "--quiet", "--backend",
                           "--workers", "--help", "--version", "About."};
    for (size_t i = 0; i < sizeof every / sizeof every[0]; i++)
        CHECK_HAS(text, every[i]);
    free(text);
    f = open_memstream(&text, &len);
    opt_usage(f, &models[MODEL_FORK]);
    fclose(f);
    CHECK(strstr(text, "--backend") == NULL);
    CHECK(strstr(text, "chat") == NULL);
    free(text);
}

/* ---- the frame decoder ---- */

/* Three messages (5 bytes, empty, 300 bytes) as one stream. */
static size_t three_frames(char *out)
{
    size_t n = 0;
    uint32_t lens[3] = {5, 0, 300};
    for (int m = 0; m < 3; m++) {
        frame_put_len((unsigned char *)out + n, lens[m]);
        n += FRAME_HDR;
        for (uint32_t i = 0; i < lens[m]; i++)
            out[n++] = (char)('a' + (m * 7 + (int)i) % 26);
    }
    return n;
}

/* Feed in[0..n) in pieces cut at the given points; re-encode every
 * message into out.  Returns messages seen, -1 on TOO_BIG/NOMEM. */
static int frames_feed(struct frame_dec *d, const char *in, size_t n,
                       const size_t *cuts, int ncuts, char *out, size_t *outlen)
{
    int msgs = 0;
    size_t from = 0;
    *outlen = 0;
    for (int c = 0; c <= ncuts; c++) {
        size_t to = c < ncuts ? cuts[c] : n;
        while (from < to) {
            enum frame_status st;
            from += frame_dec_feed(d, in + from, to - from, &st);
            if (st == FRAME_TOO_BIG || st == FRAME_NOMEM)
                return -1;
            if (st == FRAME_READY) {
                uint32_t len;
                const char *m = frame_dec_msg(d, &len);
                frame_put_len((unsigned char *)out + *outlen, len);
                memcpy(out + *outlen + FRAME_HDR, m, len);
                *outlen += FRAME_HDR + len;
                msgs++;
            }
        }
    }
    return msgs;
}

static void t_frame_every_split(const void *arg)
{
    (void)arg;
    char in[400], out[400];
    size_t n = three_frames(in), outlen;
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j += 7) {
            struct frame_dec d;
            frame_dec_init(&d, 1000);
            size_t cuts[2] = {i, j};
            CHECK_EQ(frames_feed(&d, in, n, cuts, 2, out, &outlen), 3);
            CHECK_EQ(outlen, n);
            CHECK_MEM(out, in, n);
            CHECK_EQ(frame_dec_partial(&d), 0);
            frame_dec_free(&d);
        }
    }
    /* one byte at a time */
    struct frame_dec d;
    frame_dec_init(&d, 1000);
    size_t cuts[400] = {0};
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    CHECK_EQ(frames_feed(&d, in, n, cuts, (int)n - 1, out, &outlen), 3);
    CHECK_MEM(out, in, n);
    frame_dec_free(&d);
}

static void t_frame_limits(const void *arg)
{
    (void)arg;
    struct frame_dec d;
    enum frame_status st;
    /* 0xFFFFFFFF is refused from the header alone, nothing allocated */
    frame_dec_init(&d, 1048576);
    const char huge[] = "\xff\xff\xff\xff" "abc";
    CHECK_EQ(frame_dec_feed(&d, huge, 7, &st), 4);
    CHECK_EQ(st, FRAME_TOO_BIG);
    CHECK_EQ(d.len, 0xFFFFFFFFu);
    CHECK(d.body == NULL);
    frame_dec_free(&d);
    /* exactly max is fine, max + 1 is not */
    char buf[FRAME_HDR + 16] = {0};
    frame_dec_init(&d, 16);
    frame_put_len((unsigned char *)buf, 16);
    CHECK_EQ(frame_dec_feed(&d, buf, sizeof buf, &st), sizeof buf);
    CHECK_EQ(st, FRAME_READY);
    frame_put_len((unsigned char *)buf, 17);
    CHECK_EQ(frame_dec_feed(&d, buf, FRAME_HDR, &st), FRAME_HDR);
    CHECK_EQ(st, FRAME_TOO_BIG);
    frame_dec_free(&d);
    /* a header split 2+2 that declares too much: refused at byte 4 */
    frame_dec_init(&d, 100);
    CHECK_EQ(frame_dec_feed(&d, "\x00\x01", 2, &st), 2);
    CHECK_EQ(st, FRAME_MORE);
    CHECK_EQ(frame_dec_feed(&d, "\x00\x00", 2, &st), 2);
    CHECK_EQ(st, FRAME_TOO_BIG);
    frame_dec_free(&d);
    /* a big declared length costs nothing until bytes arrive */
    frame_dec_init(&d, 1048576);
    frame_put_len((unsigned char *)buf, 1048576);
    CHECK_EQ(frame_dec_feed(&d, buf, FRAME_HDR, &st), FRAME_HDR);
    CHECK_EQ(st, FRAME_MORE);
    CHECK(d.body == NULL && d.body_cap == 0);
    CHECK_EQ(frame_dec_feed(&d, "xyz", 3, &st), 3);
    CHECK_INT(d.body_cap, <=, 4096);
    CHECK_EQ(frame_dec_partial(&d), FRAME_HDR + 3);
    frame_dec_free(&d);
    /* zero-length frames back to back */
    frame_dec_init(&d, 8);
    const char zeros[8] = {0};
    size_t used = 0;
    int msgs = 0;
    while (used < sizeof zeros) {
        used += frame_dec_feed(&d, zeros + used, sizeof zeros - used, &st);
        msgs += st == FRAME_READY;
    }
    CHECK_EQ(msgs, 2);
    uint32_t len;
    frame_dec_msg(&d, &len);
    CHECK_EQ(len, 0);
    frame_dec_free(&d);
}

static void t_frame_header_codec(const void *arg)
{
    (void)arg;
    unsigned char h[4];
    frame_put_len(h, 0x01020304u);
    CHECK(h[0] == 1 && h[1] == 2 && h[2] == 3 && h[3] == 4);
    CHECK_EQ(frame_get_len(h), 0x01020304u);
    frame_put_len(h, 0xFFFFFFFFu);
    CHECK_EQ(frame_get_len(h), 0xFFFFFFFFu);
}

/* ---- the line decoder ---- */

static int lines_feed(struct line_dec *d, const char *in, size_t n, const size_t *cuts,
                      int ncuts, char *out, size_t *outlen, int flush)
{
    int msgs = 0;
    size_t from = 0;
    *outlen = 0;
    for (int c = 0; c <= ncuts; c++) {
        size_t to = c < ncuts ? cuts[c] : n;
        while (from < to) {
            enum line_status st;
            from += line_dec_feed(d, in + from, to - from, &st);
            if (st == LINE_TOO_BIG || st == LINE_NOMEM)
                return -1;
            if (st == LINE_READY) {
                size_t len;
                const char *m = line_dec_msg(d, &len);
                memcpy(out + *outlen, m, len);
                *outlen += len;
                msgs++;
            }
        }
    }
    if (flush && line_dec_flush(d)) {
        size_t len;
        const char *m = line_dec_msg(d, &len);
        memcpy(out + *outlen, m, len);
        *outlen += len;
        msgs++;
    }
    return msgs;
}

static void t_line_every_split(const void *arg)
{
    (void)arg;
    const char in[] = "first line\n\nthird\r\n a\0b \nlast without newline";
    size_t n = sizeof in - 1, outlen;
    char out[128];
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            struct line_dec d;
            line_dec_init(&d, 64);
            size_t cuts[2] = {i, j};
            CHECK_EQ(lines_feed(&d, in, n, cuts, 2, out, &outlen, 1), 5);
            CHECK_EQ(outlen, n);
            CHECK_MEM(out, in, n);
            line_dec_free(&d);
        }
    }
}

static void t_line_limits(const void *arg)
{
    (void)arg;
    char in[64], out[64];
    size_t outlen;
    struct line_dec d;
    enum line_status st;
    /* exactly max bytes then '\n': one line */
    memset(in, 'x', 8);
    in[8] = '\n';
    line_dec_init(&d, 8);
    CHECK_EQ(lines_feed(&d, in, 9, NULL, 0, out, &outlen, 0), 1);
    CHECK_EQ(outlen, 9);
    line_dec_free(&d);
    /* max bytes pending without '\n': still waiting */
    line_dec_init(&d, 8);
    CHECK_EQ(line_dec_feed(&d, in, 8, &st), 8);
    CHECK_EQ(st, LINE_MORE);
    /* ... and one more byte that is not '\n': refused at exactly max+1 */
    CHECK_EQ(line_dec_feed(&d, "y\n", 2, &st), 1);
    CHECK_EQ(st, LINE_TOO_BIG);
    line_dec_free(&d);
    /* the same in one piece */
    memset(in, 'x', 20);
    line_dec_init(&d, 8);
    CHECK_EQ(line_dec_feed(&d, in, 20, &st), 9);
    CHECK_EQ(st, LINE_TOO_BIG);
    line_dec_free(&d);
    /* split one byte at a time over the limit */
    line_dec_init(&d, 8);
    size_t fed = 0;
    do {
        fed += line_dec_feed(&d, in + fed, 1, &st);
    } while (st == LINE_MORE);
    CHECK_EQ(st, LINE_TOO_BIG);
    CHECK_EQ(fed, 9);
    line_dec_free(&d);
    /* nothing pending: flush has nothing */
    line_dec_init(&d, 8);
    CHECK_EQ(line_dec_flush(&d), 0);
    line_dec_free(&d);
}

/* ---- buffers and chat ---- */

/* The uring loop's held input: FIFO order across growth and wrap-around,
 * the EOF entry kept in its place, empty and NULL alike. */
static void t_stash(const void *arg)
{
    (void)arg;
    struct stash *s = NULL;
    struct held h;
    CHECK_EQ(stash_len(s), 0);
    CHECK_EQ(stash_pop(s, &h), 0);
    unsigned next_in = 0, next_out = 0;
    /* push 5, pop 3, repeatedly: the ring wraps and grows past 8 entries */
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < 5; i++, next_in++)
            CHECK_EQ(stash_push(&s, (struct held){(uint16_t)next_in, 0, next_in * 10u}), 0);
        for (int i = 0; i < 3; i++, next_out++) {
            CHECK_EQ(stash_pop(s, &h), 1);
            CHECK_EQ(h.bid, (uint16_t)next_out);
            CHECK_EQ(h.len, next_out * 10u);
            CHECK_EQ(h.eof, 0);
        }
    }
    CHECK_EQ(stash_len(s), next_in - next_out);
    CHECK_EQ(stash_push(&s, (struct held){0, 1, 0}), 0);       /* the EOF comes last */
    while (next_out < next_in) {
        CHECK_EQ(stash_pop(s, &h), 1);
        CHECK_EQ(h.bid, (uint16_t)next_out++);
    }
    CHECK_EQ(stash_pop(s, &h), 1);
    CHECK_EQ(h.eof, 1);
    CHECK_EQ(stash_pop(s, &h), 0);
    CHECK_EQ(stash_len(s), 0);
    stash_free(&s);
    CHECK(s == NULL);
    stash_free(&s);                                             /* twice: harmless */
}

static void t_buf(const void *arg)
{
    (void)arg;
    struct buf b = {0};
    CHECK_EQ(buf_len(&b), 0);
    CHECK_EQ(buf_append(&b, "hello", 5, 10), 0);
    CHECK_EQ(buf_append(&b, "world", 5, 10), 0);
    errno = 0;
    CHECK_EQ(buf_append(&b, "!", 1, 10), -1);     /* over the bound */
    CHECK_EQ(errno, ENOBUFS);
    CHECK_EQ(buf_len(&b), 10);
    CHECK_MEM(buf_head(&b), "helloworld", 10);
    buf_consume(&b, 5);
    CHECK_EQ(buf_append(&b, "12345", 5, 10), 0);  /* slides down, no growth */
    CHECK_MEM(buf_head(&b), "world12345", 10);
    buf_consume(&b, 10);
    CHECK(b.data == NULL);                         /* empty gives memory back */
    /* growth keeps order over many appends and consumes */
    char big[10000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)i;
    size_t in = 0, outpos = 0;
    while (outpos < sizeof big) {
        size_t k = in < sizeof big ? (sizeof big - in < 777 ? sizeof big - in : 777) : 0;
        if (k > 0 && buf_append(&b, big + in, k, 5000) == 0)
            in += k;
        size_t take = buf_len(&b) < 500 ? buf_len(&b) : 500;
        CHECK_MEM(buf_head(&b), big + outpos, take);
        buf_consume(&b, take);
        outpos += take;
    }
    CHECK_EQ(buf_len(&b), 0);
    buf_free(&b);
}

static void t_chat_format(const void *arg)
{
    (void)arg;
    struct buf q = {0};
    CHECK_EQ(chat_enqueue(&q, 100, 3, "hi\n", 3), 0);
    CHECK_EQ(chat_enqueue(&q, 100, 12, "no newline", 10), 0);
    const char want[] = "client 3: hi\nclient 12: no newline\n";
    CHECK_EQ(buf_len(&q), sizeof want - 1);
    CHECK_MEM(buf_head(&q), want, sizeof want - 1);
    /* all or nothing at the bound */
    CHECK_EQ(chat_enqueue(&q, 40, 1, "0123456789", 10), -1);
    CHECK_EQ(buf_len(&q), sizeof want - 1);
    buf_free(&q);
    CHECK_EQ(chat_queue_max(1024), CHAT_QUEUE_MIN);
    /* room for the next longest line while the last is still queued */
    CHECK_INT(chat_queue_max(1048576), >=, 2 * chat_line_max(1048576));
    CHECK_INT(chat_line_max(1048576), >=, 1048576 + sizeof "client 18446744073709551615: ");
}

/* ---- io over socketpairs with tiny buffers ---- */

struct pump {
    int fd;
    size_t n;
    char *data;
    ssize_t rc;
};

static void *reader_thread(void *arg)
{
    struct pump *p = arg;
    p->rc = io_read_all(p->fd, p->data, p->n);
    return NULL;
}

static void t_io_partial(const void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int tiny = 1024;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &tiny, sizeof tiny);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny);
    size_t n = 4 << 20;
    char *src = malloc(n), *dst = malloc(n + 1);
    CHECK(src != NULL && dst != NULL);
    for (size_t i = 0; i < n; i++)
        src[i] = (char)(i * 31 + i / 251);
    struct pump p = {sv[1], n + 1, dst, 0};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, reader_thread, &p), 0);
    CHECK_EQ(io_write_all(sv[0], src, n), (ssize_t)n);  /* many partial writes */
    close(sv[0]);
    pthread_join(t, NULL);
    CHECK_EQ(p.rc, (ssize_t)n);                          /* short count at EOF */
    CHECK_MEM(dst, src, n);
    close(sv[1]);
    free(src);
    free(dst);
}

static void t_io_nonblocking(const void *arg)
{
    (void)arg;
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_EQ(net_set_nonblock(sv[0], 1), 0);
    CHECK_EQ(net_set_nonblock(sv[1], 1), 0);
    char buf[65536];
    size_t got, put;
    CHECK_EQ(io_read(sv[1], buf, sizeof buf, &got), IO_AGAIN);
    memset(buf, 'z', sizeof buf);
    enum io_status st;
    size_t total = 0;
    while ((st = io_write(sv[0], buf, sizeof buf, &put)) == IO_OK)
        total += put;
    CHECK_EQ(st, IO_AGAIN);                 /* full, not an error */
    CHECK_INT(total, >, 0);
    size_t back = 0;
    while (io_read(sv[1], buf, sizeof buf, &got) == IO_OK)
        back += got;
    CHECK_EQ(back, total);
    close(sv[0]);
    CHECK_EQ(io_read(sv[1], buf, sizeof buf, &got), IO_EOF);
    CHECK_EQ(io_write(sv[1], buf, 10, &put), IO_ERR);   /* EPIPE, SIGPIPE ignored */
    close(sv[1]);
}

/* ---- addresses ---- */

static void t_format_addr(const void *arg)
{
    (void)arg;
    char out[NET_ADDR_MAX];
    struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(7878)};
    inet_pton(AF_INET, "10.1.2.3", &s4.sin_addr);
    CHECK_EQ(net_format_addr((struct sockaddr *)&s4, sizeof s4, out, sizeof out), 0);
    CHECK_STR(out, "10.1.2.3:7878");
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(1)};
    inet_pton(AF_INET6, "::", &s6.sin6_addr);
    CHECK_EQ(net_format_addr((struct sockaddr *)&s6, sizeof s6, out, sizeof out), 0);
    CHECK_STR(out, "[::]:1");
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr);
    CHECK_EQ(net_format_addr((struct sockaddr *)&s6, sizeof s6, out, sizeof out), 0);
    CHECK_STR(out, "127.0.0.1:1");
    inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
    CHECK_EQ(net_format_addr((struct sockaddr *)&s6, sizeof s6, out, sizeof out), 0);
    CHECK_STR(out, "[2001:db8::1]:1");
}

static void t_listen_connect(const void *arg)
{
    (void)arg;
    char err[256], addr[NET_ADDR_MAX], port[8];
    unsigned p;
    int lfd = net_listen("localhost", "0", 0, err, sizeof err);
    CHECK_MSG(lfd >= 0, "%s", err);
    CHECK_EQ(net_local_addr(lfd, addr, sizeof addr, &p), 0);
    CHECK(strncmp(addr, "127.0.0.1:", 10) == 0);          /* IPv4 first */
    snprintf(port, sizeof port, "%u", p);
    int c = net_connect("127.0.0.1", port, err, sizeof err);
    CHECK_MSG(c >= 0, "%s", err);
    char peer[NET_ADDR_MAX];
    int s = -1;
    while (s < 0) {
        s = net_accept(lfd, 0, peer, sizeof peer);
        CHECK(s >= 0 || errno == EAGAIN);
    }
    CHECK(strncmp(peer, "127.0.0.1:", 10) == 0);
    CHECK_EQ(fcntl(s, F_GETFL) & O_NONBLOCK, 0);         /* asked for blocking */
    close(s);
    close(c);
    /* the same port again: address in use */
    int again = net_listen("127.0.0.1", port, 0, err, sizeof err);
    CHECK_EQ(again, -1);
    CHECK_HAS(err, "bind 127.0.0.1:");
    CHECK_HAS(err, "Address already in use");
    close(lfd);
    /* nobody listening now */
    CHECK_EQ(net_connect("127.0.0.1", port, err, sizeof err), -1);
    CHECK_HAS(err, "connect 127.0.0.1:");
    CHECK_HAS(err, "Connection refused");
    CHECK_EQ(net_listen("no-such-host.invalid", "0", 0, err, sizeof err), -1);
    CHECK_HAS(err, "resolve no-such-host.invalid:");
}

void unit_tests(void)
{
    test_add("unit: options: defaults", t_opt_defaults, NULL, 5, 0);
    test_add("unit: options: every option, short and long", t_opt_all, NULL, 5, 0);
    test_add("unit: options: bad values name the problem", t_opt_errors, NULL, 5, 0);
    test_add("unit: options: usage lists every option", t_opt_usage, NULL, 5, 0);
    test_add("unit: frame: every split point of three messages", t_frame_every_split, NULL, 20, 0);
    test_add("unit: frame: 0xFFFFFFFF, max, max+1, zero-length", t_frame_limits, NULL, 5, 0);
    test_add("unit: frame: header encoding", t_frame_header_codec, NULL, 5, 0);
    test_add("unit: line: every split point, NUL and CRLF kept", t_line_every_split, NULL, 20, 0);
    test_add("unit: line: exactly max and max+1", t_line_limits, NULL, 5, 0);
    test_add("unit: buf: bound, order, memory given back", t_buf, NULL, 5, 0);
    test_add("unit: stash: FIFO through growth and wrap-around, EOF in its place", t_stash, NULL,
             5, 0);
    test_add("unit: chat: line format and queue bound", t_chat_format, NULL, 5, 0);
    test_add("unit: io: write_all/read_all through tiny socket buffers", t_io_partial, NULL, 20, 0);
    test_add("unit: io: non-blocking AGAIN, EOF, EPIPE", t_io_nonblocking, NULL, 5, 0);
    test_add("unit: net: address text", t_format_addr, NULL, 5, 0);
    test_add("unit: net: listen, connect, accept, errors", t_listen_connect, NULL, 10, 0);
}
