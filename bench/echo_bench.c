/* echo_bench: a closed-loop load generator for the echo servers.
 *
 * The main thread parses the command line, connects every connection
 * (blocking net_connect, one after another, before the clock starts) and
 * hands them out to THREADS workers.  Each worker owns an epoll set and
 * drives its connections with one message outstanding on each: fill the
 * connection's message buffer, write it (one write; EPOLLOUT only while a
 * write is partial), read the echo as it comes (reads never ask for more
 * than the rest of the message), compare every byte with what was sent,
 * record the latency, send the next.  Nothing is allocated per message.
 *
 * Modes:
 * - echo/framed: persistent connections; a framed message is the 4-byte
 *   length (framing/frame.h) followed by the payload, and the echo must be
 *   the same frame.
 * - churn: each slot closes its connection after each echo and opens a new
 *   one (non-blocking connect to the address its first connection reached),
 *   so a message's latency includes connect, accept and the server's fork
 *   or thread creation.
 * - stream: each connection writes its share of BYTES and reads the echo at
 *   the same time; byte k of connection i is pattern[(k + phase(i)) % P]
 *   for a random pattern of prime period P, so a lost, repeated or shifted
 *   chunk is caught.
 *
 * Time: the measured interval runs from the moment all workers are ready
 * to the deadline, brought forward by SIGINT/SIGTERM (the main thread
 * waits for them with sigtimedwait; every other thread has them blocked),
 * or cut short when every connection of every worker has died.  A message
 * completed after the deadline is not counted; one still in flight gets
 * DRAIN_NS (or twice the worst latency seen) to finish, and one that has
 * not finished by then counts as an error: the server is stuck (a second
 * SIGINT abandons them at once, without errors).  Errors
 * (mismatch, reset, EOF, failed connect, stuck echo) drop the connection
 * and are counted; the first few are described on stderr. */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/hist.h"
#include "common/io.h"
#include "common/net.h"
#include "common/opt.h"
#include "common/sig.h"
#include "common/sys.h"
#include "framing/frame.h"

#define PROG "echo_bench"
#define MAX_CONNS 100000UL
#define MAX_THREADS 256UL
#define MAX_MSG (16ULL << 20)
#define MAX_STREAM (1ULL << 50)
#define MAX_SECONDS 1000000ULL
#define FD_MARGIN 32              /* stdio, epoll sets are added on top */
#define ERR_SHOWN 10              /* error lines printed before going quiet */
#define MAX_EVENTS 256
#define TICK_MS 100               /* workers look at the deadline this often */
#define WAIT_NS 50000000L         /* the main thread's sigtimedwait slice */
#define DRAIN_NS 1000000000LL     /* in-flight messages may finish this long, */
#define DRAIN_MAX_NS (10 * NS)    /* or twice the worst latency, up to this */
#define RBUF_ECHO (256u << 10)
#define RBUF_STREAM (1u << 20)
#define STREAM_PERIOD 1048573u    /* prime, a little under 1 MiB */
#define NS 1000000000LL

/* ---- configuration ---- */

struct cfg {
    unsigned long conns, threads;    /* threads 0: not given */
    uint64_t size;                   /* payload bytes per message */
    int64_t dur_ns;                  /* 0: not given */
    uint64_t stream;                 /* total bytes; 0: not streaming */
    int framed, churn, csv, quiet;
    long cpu;                        /* -1: not pinned */
    const char *host, *port;
};

enum { OPT_FRAMED = 256, OPT_CHURN, OPT_STREAM, OPT_CPU, OPT_CSV };

static const struct option longopts[] = {
    {"framed", no_argument, NULL, OPT_FRAMED},
    {"churn", no_argument, NULL, OPT_CHURN},
    {"stream", required_argument, NULL, OPT_STREAM},
    {"cpu", required_argument, NULL, OPT_CPU},
    {"csv", no_argument, NULL, OPT_CSV},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void usage(void)
{
    printf("usage: " PROG " [options] HOST PORT\n"
        "\n"
        "Load generator for the echo servers: each connection sends a message,\n"
        "reads the whole echo back, checks every byte, and repeats.\n"
        "\n"
        "  -c CONNS          connections, or concurrent slots with --churn\n"
        "                    (default 1, at most 100000)\n"
        "  -s BYTES          message size, 1 B to 16 MiB, K/M suffixes allowed\n"
        "                    (default 64)\n"
        "  -d SECONDS        how long to measure, decimals allowed (default 5;\n"
        "                    with --stream: no limit unless given)\n"
        "  -t THREADS        threads, each with its own epoll set, 1-256\n"
        "                    (default: CONNS or the usable CPUs, whichever is less)\n"
        "      --framed      send each message as a frame: 4-byte big-endian length\n"
        "                    and payload (the server runs with -m framed)\n"
        "      --churn       a new connection per message: connect, send, read the\n"
        "                    echo, close; msgs/s is then connections/s\n"
        "      --stream BYTES  send BYTES in total (split over the connections)\n"
        "                    while reading the echo; reports MB/s; suffixes\n"
        "                    K, M, G mean KiB, MiB, GiB\n"
        "      --cpu N       pin the process to CPU N\n"
        "      --csv         a CSV header line and one row instead of the summary\n"
        "  -q, --quiet       no info or progress lines on stderr\n"
        "  -h, --help        show this help and exit\n"
        "  -V, --version     show the version and exit\n"
        "\n"
        "Output: msgs/s N  MB/s X  p50 US  p99 US  max US  errors N\n"
        "(latencies in microseconds; MB/s counts echoed payload, 10^6 bytes).\n"
        "Exit status: 0 if every echo matched, 1 on any error, 2 on usage errors.\n");
}

/* A byte count with an optional K, M or G suffix (powers of 1024). */
static int parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char digits[32];
    size_t len = strlen(s);
    unsigned long long v, mult = 1;
    if (len == 0 || len >= sizeof digits)
        return -1;
    memcpy(digits, s, len + 1);
    switch (digits[len - 1]) {
    case 'K': case 'k': mult = 1ULL << 10; break;
    case 'M': case 'm': mult = 1ULL << 20; break;
    case 'G': case 'g': mult = 1ULL << 30; break;
    default: break;
    }
    if (mult > 1)
        digits[--len] = '\0';
    if (opt_number(digits, 0, max / mult, &v) == -1 || v * mult < min)
        return -1;
    *out = v * mult;
    return 0;
}

/* Seconds as DIGITS[.DIGITS] (or .DIGITS), more than zero, in ns. */
static int parse_seconds(const char *s, int64_t *ns)
{
    char whole[16];
    const char *dot = strchr(s, '.');
    size_t wlen = dot != NULL ? (size_t)(dot - s) : strlen(s);
    unsigned long long sec = 0;
    int64_t frac = 0, scale = NS / 10;
    if (wlen >= sizeof whole || (wlen == 0 && (dot == NULL || dot[1] == '\0')))
        return -1;
    memcpy(whole, s, wlen);
    whole[wlen] = '\0';
    if (wlen > 0 && opt_number(whole, 0, MAX_SECONDS, &sec) == -1)
        return -1;
    for (const char *p = dot != NULL ? dot + 1 : ""; *p != '\0'; p++, scale /= 10) {
        if (*p < '0' || *p > '9')
            return -1;
        frac += (*p - '0') * scale;
    }
    *ns = (int64_t)sec * NS + frac;
    return *ns > 0 ? 0 : -1;
}

/* One option into cfg; 0, or -1 with err set. */
static int apply(struct cfg *cfg, int c, const char *arg, char *err, size_t errlen)
{
    unsigned long long v;
    switch (c) {
    case 'c':
        if (opt_number(arg, 1, MAX_CONNS, &v) == 0) {
            cfg->conns = (unsigned long)v;
            return 0;
        }
        snprintf(err, errlen, "invalid -c '%s' (expected 1-%lu)", arg, MAX_CONNS);
        return -1;
    case 's':
        if (parse_size(arg, 1, MAX_MSG, &cfg->size) == 0)
            return 0;
        snprintf(err, errlen, "invalid -s '%s' (expected 1-%llu bytes, or with K/M)",
                 arg, MAX_MSG);
        return -1;
    case 'd':
        if (parse_seconds(arg, &cfg->dur_ns) == 0)
            return 0;
        snprintf(err, errlen, "invalid -d '%s' (expected seconds > 0, e.g. 5 or 0.5)", arg);
        return -1;
    case 't':
        if (opt_number(arg, 1, MAX_THREADS, &v) == 0) {
            cfg->threads = (unsigned long)v;
            return 0;
        }
        snprintf(err, errlen, "invalid -t '%s' (expected 1-%lu)", arg, MAX_THREADS);
        return -1;
    case OPT_STREAM:
        if (parse_size(arg, 1, MAX_STREAM, &cfg->stream) == 0)
            return 0;
        snprintf(err, errlen, "invalid --stream '%s' (expected bytes, e.g. 1048576, 512K, 2G)",
                 arg);
        return -1;
    case OPT_CPU:
        if (opt_number(arg, 0, CPU_SETSIZE - 1, &v) == 0) {
            cfg->cpu = (long)v;
            return 0;
        }
        snprintf(err, errlen, "invalid --cpu '%s' (expected 0-%d)", arg, CPU_SETSIZE - 1);
        return -1;
    case OPT_FRAMED: cfg->framed = 1; return 0;
    case OPT_CHURN: cfg->churn = 1; return 0;
    case OPT_CSV: cfg->csv = 1; return 0;
    case 'q': cfg->quiet = 1; return 0;
    default:
        snprintf(err, errlen, "unhandled option");
        return -1;
    }
}

/* Fill cfg from argv.  Returns -1 to run, or the exit status (0 after
 * --help/--version, 2 after a usage error, already reported). */
static int parse_args(int argc, char **argv, struct cfg *cfg)
{
    char err[256];
    int c, prev_optind = optind;
    unsigned long long port;
    *cfg = (struct cfg){.conns = 1, .size = 64, .cpu = -1};
    opterr = 0;
    for (; (c = getopt_long(argc, argv, ":c:s:d:t:qhV", longopts, NULL)) != -1;
         prev_optind = optind) {
        if (c == 'h') {
            usage();
            return 0;
        }
        if (c == 'V') {
            printf(PROG " " VERSION "\n");
            return 0;
        }
        if (c == '?' || c == ':')
            opt_getopt_error(c, argv, prev_optind, err, sizeof err);
        if (c == '?' || c == ':' || apply(cfg, c, optarg, err, sizeof err) == -1)
            goto usage_error;
    }
    if (argc - optind < 2) {
        snprintf(err, sizeof err, argc == optind ? "missing HOST and PORT" : "missing PORT");
        goto usage_error;
    }
    if (argc - optind > 2) {
        snprintf(err, sizeof err, "unexpected argument '%s'", argv[optind + 2]);
        goto usage_error;
    }
    cfg->host = argv[optind];
    cfg->port = argv[optind + 1];
    if (opt_number(cfg->port, 1, 65535, &port) == -1) {
        snprintf(err, sizeof err, "invalid port '%s' (expected 1-65535)", cfg->port);
        goto usage_error;
    }
    if (cfg->stream > 0 && (cfg->churn || cfg->framed)) {
        snprintf(err, sizeof err, "--stream cannot be combined with %s",
                 cfg->churn ? "--churn" : "--framed");
        goto usage_error;
    }
    return -1;
usage_error:
    fprintf(stderr, PROG ": %s\nTry '" PROG " --help'.\n", err);
    return 2;
}

/* ---- the run ---- */

enum cstate {
    C_CLOSED,       /* not open: done, failed, or never connected */
    C_READY,        /* connected, not started */
    C_CONNECTING,   /* churn: non-blocking connect under way */
    C_BUSY          /* a message (or the stream) in flight */
};

struct conn {
    int fd;
    enum cstate st;
    int want_out;          /* EPOLLOUT is in the interest set */
    unsigned long id;      /* 1, 2, ... in connect order (churn: the slot) */
    uint64_t seq;          /* the message in flight, from 1 */
    uint64_t sent, got;    /* bytes of the message (or the stream) */
    uint64_t total;        /* stream: this connection's share */
    int64_t t0;            /* send (churn: connect) start, ns */
    unsigned char *msg;    /* the message as sent: [frame header] payload */
};

struct run;

struct worker {
    pthread_t tid;
    struct run *run;
    int ep;
    struct conn *conns;    /* a slice of run->conns */
    size_t nconns, live;   /* live: connecting or busy */
    unsigned char *rbuf;
    size_t rcap;
    uint64_t msgs, bytes, errors;
    int64_t t_stop;        /* the end of its measured interval */
    struct hist hist;
};

struct run {
    const struct cfg *cfg;
    size_t msg_len;                    /* header + payload */
    unsigned char *msgs;               /* every connection's message */
    unsigned char *pattern;            /* stream: two periods */
    struct sockaddr_storage addr;      /* churn: where to connect */
    socklen_t addrlen;
    char addr_text[NET_ADDR_MAX];
    atomic_llong end;                  /* deadline, ns; SIGINT moves it */
    atomic_int quit;                   /* second SIGINT: stop draining */
    atomic_uint shown;                 /* error lines printed */
    atomic_uint done;                  /* workers finished */
    pthread_barrier_t ready, go;
};

/* One line on stderr, built first and written with one write(2). */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof line, PROG ": ");
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0) {
        /* nowhere to report it */
    }
}

/* Count an error for connection id; describe it if few have been. */
static void report(struct run *r, uint64_t *errors, unsigned long id,
                   const char *what, const char *detail)
{
    (*errors)++;
    if (atomic_fetch_add(&r->shown, 1) < ERR_SHOWN)
        say("connection %lu: %s%s", id, what, detail);
}

static void conn_close(struct worker *w, struct conn *c)
{
    if (c->st == C_CONNECTING || c->st == C_BUSY)
        w->live--;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->st = C_CLOSED;
    c->want_out = 0;
}

static void conn_fail(struct worker *w, struct conn *c, const char *what, const char *detail)
{
    report(w->run, &w->errors, c->id, what, detail);
    conn_close(w, c);
}

/* splitmix64's finaliser: a seed from (connection, message). */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Message seq of connection id: xorshift64 bytes, seq (big-endian) first. */
static void fill_payload(unsigned char *p, size_t n, unsigned long id, uint64_t seq)
{
    uint64_t x = mix64(((uint64_t)id << 40) ^ seq) | 1;
    size_t i = 0;
    for (; i < n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, n - i < 8 ? n - i : 8);
    }
    for (i = 0; i < 8 && n >= 8; i++)
        p[i] = (unsigned char)(seq >> (56 - 8 * i));
}

static int set_events(struct worker *w, struct conn *c, int op, int want_out)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0u),
                             .data.ptr = c};
    if (epoll_ctl(w->ep, op, c->fd, &ev) == -1)
        return -1;
    c->want_out = want_out;
    return 0;
}

/* Write what is left of the message; EPOLLOUT only while some is left.
 * A failed write on a connecting socket is the connect's error. */
static void flush(struct worker *w, struct conn *c)
{
    size_t put;
    size_t left = w->run->msg_len - (size_t)c->sent;
    enum io_status s = io_write(c->fd, c->msg + c->sent, left, &put);
    if (s == IO_ERR) {
        char what[NET_ADDR_MAX + 16];
        snprintf(what, sizeof what, "connect %s: ", w->run->addr_text);
        conn_fail(w, c, c->st == C_CONNECTING ? what : "write: ", strerror(errno));
        return;
    }
    if (s == IO_OK) {
        c->sent += put;
        c->st = C_BUSY;
    }
    int want = c->sent < w->run->msg_len;
    if (want != c->want_out && set_events(w, c, EPOLL_CTL_MOD, want) == -1)
        conn_fail(w, c, "epoll_ctl: ", strerror(errno));
}

/* Churn: a fresh non-blocking connection for the next message. */
static int churn_open(struct worker *w, struct conn *c)
{
    const struct run *r = w->run;
    int on = 1;
    c->fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd == -1) {
        conn_fail(w, c, "socket: ", strerror(errno));
        return -1;
    }
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    if (connect(c->fd, (const struct sockaddr *)&r->addr, r->addrlen) == -1 &&
        errno != EINPROGRESS) {
        char what[NET_ADDR_MAX + 16];
        snprintf(what, sizeof what, "connect %s: ", r->addr_text);
        conn_fail(w, c, what, strerror(errno));
        return -1;
    }
    c->st = C_CONNECTING;
    if (set_events(w, c, EPOLL_CTL_ADD, 0) == -1) {
        conn_fail(w, c, "epoll_ctl: ", strerror(errno));
        return -1;
    }
    return 0;
}

/* Start the next message on c. */
static void send_msg(struct worker *w, struct conn *c)
{
    const struct cfg *cfg = w->run->cfg;
    unsigned char *p = c->msg;
    if (cfg->framed) {
        frame_put_len(p, (uint32_t)cfg->size);
        p += FRAME_HDR;
    }
    fill_payload(p, (size_t)cfg->size, c->id, ++c->seq);
    c->sent = c->got = 0;
    if (c->st != C_BUSY)
        w->live++;
    c->st = C_BUSY;
    c->t0 = sys_now_ns();
    if (c->fd < 0 && churn_open(w, c) == -1)
        return;
    flush(w, c);
}

/* The whole echo is in and verified: count it (if in time), go on. */
static void complete(struct worker *w, struct conn *c)
{
    int64_t now = sys_now_ns();
    int64_t end = atomic_load_explicit(&w->run->end, memory_order_relaxed);
    if (now <= end) {
        hist_add(&w->hist, (uint64_t)(now - c->t0));
        w->msgs++;
        w->bytes += w->run->cfg->size;
    }
    if (now >= end) {
        conn_close(w, c);
        return;
    }
    if (w->run->cfg->churn) {
        close(c->fd);
        c->fd = -1;
    }
    send_msg(w, c);
}

/* Describe the first byte of got[0..n) that differs from want[0..n). */
static void mismatch(struct worker *w, struct conn *c, const unsigned char *got,
                     const unsigned char *want, size_t n, uint64_t at)
{
    char what[128];
    size_t i = 0;
    while (i < n - 1 && got[i] == want[i])
        i++;
    at += i;
    if (w->run->cfg->stream > 0)
        snprintf(what, sizeof what, "stream differs at byte %llu", (unsigned long long)at);
    else if (w->run->cfg->framed && at < FRAME_HDR)
        snprintf(what, sizeof what, "frame header differs in message %llu",
                 (unsigned long long)c->seq);
    else
        snprintf(what, sizeof what, "echo differs at byte %llu of message %llu",
                 (unsigned long long)(at - (w->run->cfg->framed ? FRAME_HDR : 0)),
                 (unsigned long long)c->seq);
    conn_fail(w, c, what, "");
}

/* One read of (the rest of) the echo; 0 if it went on, -1 if c failed. */
static int read_some(struct worker *w, struct conn *c, uint64_t len, size_t *got)
{
    size_t cap = len - c->got < w->rcap ? (size_t)(len - c->got) : w->rcap;
    enum io_status s = io_read(c->fd, w->rbuf, cap, got);
    if (s == IO_EOF) {
        char what[96];
        snprintf(what, sizeof what, "closed by server after %llu of %llu bytes",
                 (unsigned long long)c->got, (unsigned long long)len);
        conn_fail(w, c, what, "");
    } else if (s == IO_ERR) {
        conn_fail(w, c, "read: ", strerror(errno));
    }
    return s == IO_OK || s == IO_AGAIN ? 0 : -1;
}

static void on_echo(struct worker *w, struct conn *c)
{
    size_t n;
    if (read_some(w, c, w->run->msg_len, &n) == -1 || n == 0)
        return;
    if (memcmp(w->rbuf, c->msg + c->got, n) != 0) {
        mismatch(w, c, w->rbuf, c->msg + c->got, n, c->got);
        return;
    }
    c->got += n;
    if (c->got == w->run->msg_len)
        complete(w, c);
}

/* Stream: where connection c's byte 0 sits in the pattern. */
static size_t stream_phase(const struct conn *c)
{
    return (size_t)(c->id * 104729u % STREAM_PERIOD);
}

static void stream_write(struct worker *w, struct conn *c)
{
    size_t put, pos = (size_t)((c->sent + stream_phase(c)) % STREAM_PERIOD);
    uint64_t left = c->total - c->sent;
    size_t n = left < STREAM_PERIOD ? (size_t)left : STREAM_PERIOD;
    enum io_status s = io_write(c->fd, w->run->pattern + pos, n, &put);
    if (s == IO_ERR) {
        conn_fail(w, c, "write: ", strerror(errno));
        return;
    }
    c->sent += put;
    if (c->sent == c->total && set_events(w, c, EPOLL_CTL_MOD, 0) == -1)
        conn_fail(w, c, "epoll_ctl: ", strerror(errno));
}

static void stream_read(struct worker *w, struct conn *c)
{
    size_t n;
    if (read_some(w, c, c->total, &n) == -1)
        return;
    for (size_t off = 0; off < n;) {
        size_t pos = (size_t)((c->got + stream_phase(c)) % STREAM_PERIOD);
        size_t k = n - off < STREAM_PERIOD ? n - off : STREAM_PERIOD;
        if (memcmp(w->rbuf + off, w->run->pattern + pos, k) != 0) {
            mismatch(w, c, w->rbuf + off, w->run->pattern + pos, k, c->got);
            return;
        }
        c->got += k;
        w->bytes += k;
        off += k;
    }
    if (c->got == c->total)
        conn_close(w, c);
}

static void on_event(struct worker *w, struct conn *c, uint32_t ev)
{
    int in = (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0;
    int out = (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0;
    if (w->run->cfg->stream > 0) {
        if (c->st == C_BUSY && c->want_out && out)
            stream_write(w, c);
        if (c->st == C_BUSY && in)
            stream_read(w, c);
        return;
    }
    if (c->st == C_CONNECTING) {
        flush(w, c);
        return;
    }
    if (c->st == C_BUSY && in)
        on_echo(w, c);
    if (c->st == C_BUSY && c->want_out && out)
        flush(w, c);
}

/* The deadline has passed: drop what cannot finish in the drain time. */
static void abandon(struct worker *w)
{
    for (size_t i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        if (c->st == C_CONNECTING || (c->st == C_BUSY && w->run->cfg->stream > 0))
            conn_close(w, c);
    }
}

/* The drain time is up too: an echo still missing now is not merely in
 * flight but stuck (a server that buffers, or hangs), which is an error. */
static void time_out(struct worker *w, int64_t now)
{
    for (size_t i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        char what[160];
        if (c->st != C_BUSY)
            continue;
        snprintf(what, sizeof what, "no echo of message %llu after %.1f s (got %llu of %zu bytes)",
                 (unsigned long long)c->seq, (double)(now - c->t0) / NS,
                 (unsigned long long)c->got, w->run->msg_len);
        conn_fail(w, c, what, "");
    }
}

static void worker_loop(struct worker *w)
{
    struct epoll_event ev[MAX_EVENTS];
    int64_t drain_until = 0, now, end;
    int draining = 0;
    while (w->live > 0) {
        now = sys_now_ns();
        end = atomic_load_explicit(&w->run->end, memory_order_relaxed);
        if (!draining && now >= end) {
            /* the measured interval is over; SIGINT can no longer move it */
            draining = 1;
            int64_t grace = 2 * (int64_t)w->hist.max;
            grace = grace < DRAIN_NS ? DRAIN_NS : grace > DRAIN_MAX_NS ? DRAIN_MAX_NS : grace;
            drain_until = now + grace;
            w->t_stop = end;
            abandon(w);
            continue;
        }
        if (draining && atomic_load_explicit(&w->run->quit, memory_order_relaxed))
            break;
        if (draining && now >= drain_until) {
            time_out(w, now);
            break;
        }
        int64_t wait = ((draining ? drain_until : end) - now + 999999) / 1000000;
        int n = epoll_wait(w->ep, ev, MAX_EVENTS, wait < TICK_MS ? (int)wait : TICK_MS);
        if (n == -1 && errno != EINTR) {
            say("epoll_wait: %s", strerror(errno));
            w->errors++;
            break;
        }
        for (int i = 0; i < n; i++)
            on_event(w, ev[i].data.ptr, ev[i].events);
    }
    if (!draining) {
        /* every connection finished or failed before the deadline */
        now = sys_now_ns();
        end = atomic_load_explicit(&w->run->end, memory_order_relaxed);
        w->t_stop = now < end ? now : end;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    pthread_barrier_wait(&w->run->ready);
    pthread_barrier_wait(&w->run->go);
    for (size_t i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        if (c->st != C_READY)
            continue;
        if (w->run->cfg->stream == 0) {
            send_msg(w, c);
        } else if (c->total == 0) {
            conn_close(w, c);
        } else {
            c->st = C_BUSY;
            w->live++;
        }
    }
    worker_loop(w);
    for (size_t i = 0; i < w->nconns; i++)
        if (w->conns[i].fd >= 0)
            conn_close(w, &w->conns[i]);
    atomic_fetch_add(&w->run->done, 1);
    return NULL;
}

/* ---- main: set up, connect, run, report ---- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    char line[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    say("%s", line);
    exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL && n > 0 && size > 0)
        die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

/* Pin to --cpu and pick the thread count (capped at the connections). */
static unsigned long setup_cpus(const struct cfg *cfg)
{
    cpu_set_t set;
    if (cfg->cpu >= 0) {
        CPU_ZERO(&set);
        CPU_SET((size_t)cfg->cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) == -1)
            die("--cpu %ld: %s", cfg->cpu, strerror(errno));
    }
    unsigned long n = cfg->threads;
    if (n == 0) {
        long cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                              : sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (unsigned long)cpus : 1;
    }
    return n < cfg->conns ? n : cfg->conns;
}

/* Connect every connection, before the clock starts, and give each to its
 * worker's epoll set.  Returns how many are open. */
static unsigned long connect_all(struct run *r, struct worker *ws, unsigned long nw,
                                 uint64_t *errors)
{
    const struct cfg *cfg = r->cfg;
    unsigned long open = 0;
    char err[256];
    for (unsigned long k = 0; k < nw; k++) {
        for (size_t j = 0; j < ws[k].nconns; j++) {
            struct conn *c = &ws[k].conns[j];
            int fd = net_connect(cfg->host, cfg->port, err, sizeof err);
            if (fd == -1) {
                report(r, errors, c->id, err, "");
                continue;
            }
            c->fd = fd;
            c->st = C_READY;
            if (net_set_nonblock(fd, 1) == -1 ||
                set_events(&ws[k], c, EPOLL_CTL_ADD, cfg->stream > 0) == -1) {
                report(r, errors, c->id, "set-up: ", strerror(errno));
                close(fd);
                c->fd = -1;
                c->st = C_CLOSED;
                continue;
            }
            if (cfg->churn && r->addrlen == 0) {
                r->addrlen = sizeof r->addr;
                if (getpeername(fd, (struct sockaddr *)&r->addr, &r->addrlen) == -1 ||
                    net_format_addr((struct sockaddr *)&r->addr, r->addrlen,
                                    r->addr_text, sizeof r->addr_text) == -1)
                    die("getpeername: %s", strerror(errno));
            }
            if (++open % 10000 == 0 && !cfg->quiet)
                say("connected %lu of %lu", open, cfg->conns);
        }
    }
    return open;
}

static const char *mode_name(const struct cfg *cfg)
{
    return cfg->stream > 0 ? "stream" : cfg->churn ? "churn" : cfg->framed ? "framed" : "echo";
}

static void info_line(const struct cfg *cfg, unsigned long nw)
{
    char target[300], secs[48] = "";
    int v6 = strchr(cfg->host, ':') != NULL;
    snprintf(target, sizeof target, "%s%s%s:%s", v6 ? "[" : "", cfg->host,
             v6 ? "]" : "", cfg->port);
    if (cfg->dur_ns > 0 || cfg->stream == 0) {
        /* "5.0", "0.25": at least one decimal, no trailing zeros */
        char num[32];
        int n = snprintf(num, sizeof num, "%.6f",
                         (double)(cfg->dur_ns > 0 ? cfg->dur_ns : 5 * NS) / NS);
        while (n > 2 && num[n - 1] == '0' && num[n - 2] != '.')
            num[--n] = '\0';
        snprintf(secs, sizeof secs, " for %s%s s", cfg->stream > 0 ? "at most " : "", num);
    }
    if (cfg->stream > 0)
        say("%lu conns streaming %llu B to %s%s, %lu threads", cfg->conns,
            (unsigned long long)cfg->stream, target, secs, nw);
    else
        say("%lu conns x %llu B to %s%s, %lu threads%s%s", cfg->conns,
            (unsigned long long)cfg->size, target, secs, nw,
            cfg->framed ? ", framed" : "", cfg->churn ? ", churn" : "");
}

static void print_summary(const struct cfg *cfg, unsigned long nw, int64_t elapsed,
                          uint64_t msgs, uint64_t bytes, const struct hist *h,
                          uint64_t errors)
{
    double secs = (double)elapsed / NS;
    unsigned long long rate = elapsed > 0 ? (unsigned long long)((double)msgs / secs + 0.5) : 0;
    double mbs = elapsed > 0 ? (double)bytes / secs / 1e6 : 0.0;
    unsigned long long p50 = (hist_pct(h, 50) + 500) / 1000;
    unsigned long long p99 = (hist_pct(h, 99) + 500) / 1000;
    unsigned long long mx = (h->max + 500) / 1000;
    if (cfg->csv) {
        printf("mode,conns,bytes,seconds,threads,msgs,msgs_per_s,mb_per_s,"
               "p50_us,p99_us,max_us,errors\n");
        printf("%s,%lu,%llu,%.3f,%lu,%llu,%llu,%.2f,%llu,%llu,%llu,%llu\n",
               mode_name(cfg), cfg->conns,
               (unsigned long long)(cfg->stream > 0 ? bytes : cfg->size), secs, nw,
               (unsigned long long)msgs, rate, mbs, p50, p99, mx,
               (unsigned long long)errors);
    } else {
        printf("msgs/s %llu  MB/s %.2f  p50 %llu  p99 %llu  max %llu  errors %llu\n",
               rate, mbs, p50, p99, mx, (unsigned long long)errors);
    }
    fflush(stdout);
}

/* Allocate the connections (with their message buffers, or the stream
 * pattern) and the workers, each with a slice of the connections and its
 * own epoll set. */
static void setup(struct run *r, struct conn **connsp, struct worker **wsp, unsigned long nw)
{
    const struct cfg *cfg = r->cfg;
    unsigned long n = cfg->conns;
    struct conn *conns = xcalloc(n, sizeof *conns);
    struct worker *ws = xcalloc(nw, sizeof *ws);
    r->msg_len = (size_t)cfg->size + (cfg->framed ? FRAME_HDR : 0);
    if (cfg->stream > 0) {
        r->pattern = xcalloc(2, STREAM_PERIOD);
        fill_payload(r->pattern, STREAM_PERIOD, 0, 0);
        memcpy(r->pattern + STREAM_PERIOD, r->pattern, STREAM_PERIOD);
    } else {
        r->msgs = xcalloc(n, r->msg_len);
    }
    for (unsigned long i = 0; i < n; i++) {
        conns[i] = (struct conn){.fd = -1, .st = C_CLOSED, .id = i + 1};
        if (r->msgs != NULL)
            conns[i].msg = r->msgs + i * r->msg_len;
        else
            conns[i].total = cfg->stream / n + (i < cfg->stream % n);
    }
    for (unsigned long k = 0; k < nw; k++) {
        struct worker *w = &ws[k];
        size_t lo = k * n / nw, hi = (k + 1) * n / nw;
        w->run = r;
        w->conns = conns + lo;
        w->nconns = hi - lo;
        w->rcap = cfg->stream > 0 ? RBUF_STREAM : r->msg_len < RBUF_ECHO ? r->msg_len : RBUF_ECHO;
        w->rbuf = xcalloc(1, w->rcap);
        if ((w->ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
            die("epoll_create1: %s", strerror(errno));
    }
    *connsp = conns;
    *wsp = ws;
}

/* Start the workers, let them run until the deadline, a signal, or until
 * they all stop, and join them.  Returns the start of the measured
 * interval.  SIGINT/SIGTERM are blocked by the caller: the workers inherit
 * that, and here the main thread takes them with sigtimedwait. */
static int64_t run_workers(struct run *r, struct worker *ws, unsigned long nw,
                           const sigset_t *stop)
{
    int rc;
    if ((rc = pthread_barrier_init(&r->ready, NULL, (unsigned)nw + 1)) != 0 ||
        (rc = pthread_barrier_init(&r->go, NULL, (unsigned)nw + 1)) != 0)
        die("pthread_barrier_init: %s", strerror(rc));
    for (unsigned long k = 0; k < nw; k++)
        if ((rc = pthread_create(&ws[k].tid, NULL, worker_main, &ws[k])) != 0)
            die("pthread_create: %s", strerror(rc));
    /* the clock starts once every worker is there */
    pthread_barrier_wait(&r->ready);
    int64_t start = sys_now_ns(), dur = r->cfg->dur_ns;
    if (dur == 0 && r->cfg->stream == 0)
        dur = 5 * NS;
    atomic_store(&r->end, dur > 0 ? start + dur : INT64_MAX);
    pthread_barrier_wait(&r->go);
    while (atomic_load(&r->done) < nw) {
        struct timespec slice = {0, WAIT_NS};
        if (sigtimedwait(stop, NULL, &slice) > 0) {
            int64_t now = sys_now_ns();
            if (now < atomic_load(&r->end))
                atomic_store(&r->end, now);
            else
                atomic_store(&r->quit, 1);
        }
    }
    for (unsigned long k = 0; k < nw; k++)
        pthread_join(ws[k].tid, NULL);
    pthread_barrier_destroy(&r->ready);
    pthread_barrier_destroy(&r->go);
    return start;
}

/* Merge the workers' counts, print the summary, free the workers. */
static uint64_t finish(struct run *r, struct worker *ws, unsigned long nw,
                       int64_t start, uint64_t errors)
{
    uint64_t msgs = 0, bytes = 0;
    int64_t stop_at = start;
    struct hist *h = xcalloc(1, sizeof *h);
    for (unsigned long k = 0; k < nw; k++) {
        struct worker *w = &ws[k];
        hist_merge(h, &w->hist);
        msgs += w->msgs;
        bytes += w->bytes;
        errors += w->errors;
        if (w->t_stop > stop_at)
            stop_at = w->t_stop;
        close(w->ep);
        free(w->rbuf);
    }
    unsigned shown = atomic_load(&r->shown);
    if (shown > ERR_SHOWN)
        say("%u more errors not shown", shown - ERR_SHOWN);
    print_summary(r->cfg, nw, stop_at - start, msgs, bytes, h, errors);
    free(h);
    free(ws);
    return errors;
}

int main(int argc, char **argv)
{
    struct cfg cfg;
    int code = parse_args(argc, argv, &cfg);
    if (code >= 0)
        return code;
    if (sig_handle(SIGPIPE, SIG_IGN, 0) == -1)
        die("sigaction: %s", strerror(errno));
    if (cfg.stream > 0 && cfg.conns > cfg.stream)
        cfg.conns = (unsigned long)cfg.stream;
    unsigned long nw = setup_cpus(&cfg);
    long want = (long)(cfg.conns + nw) + FD_MARGIN;
    long have = sys_raise_nofile(want);
    if (have < want)
        die("%lu connections need %ld descriptors but RLIMIT_NOFILE allows %ld"
            " (raise the hard limit: ulimit -Hn)", cfg.conns, want, have);

    struct run r = {.cfg = &cfg};
    atomic_init(&r.end, INT64_MAX);
    atomic_init(&r.quit, 0);
    atomic_init(&r.shown, 0);
    atomic_init(&r.done, 0);
    struct conn *conns;
    struct worker *ws;
    setup(&r, &conns, &ws, nw);
    if (!cfg.quiet)
        info_line(&cfg, nw);

    /* Until the workers start, SIGINT/SIGTERM simply end the program
     * (net_connect would ride out a handler); from then on they end the
     * measurement and the summary is still printed. */
    uint64_t errors = 0;
    unsigned long open = connect_all(&r, ws, nw, &errors);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    int64_t start = 0;
    if (open > 0)
        start = run_workers(&r, ws, nw, &stop);
    for (unsigned long i = 0; i < cfg.conns; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    errors = finish(&r, ws, nw, start, errors);
    free(r.msgs);
    free(r.pattern);
    free(conns);
    return errors > 0 ? 1 : 0;
}
