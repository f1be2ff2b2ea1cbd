/* echo_client: send stdin to an echo server, write the echo to stdout.
 *
 * netcat's readwrite() in miniature: one poll(2) loop over four named
 * slots (stdin, socket out, socket in, stdout) and two bounded queues,
 * `tonet` (stdin -> socket) and `toout` (socket -> stdout).  A full queue
 * takes its source out of the poll set (backpressure) until it drains.
 * The socket is read all the while we send, so a file far larger than the
 * socket buffers never deadlocks against the server's own writes.  Only
 * the socket is non-blocking: O_NONBLOCK on stdin or stdout would be shared
 * with the user's shell, so they are used once per poll readiness.
 *
 * Verifying: every byte taken from stdin is also kept in `window` until
 * its echo arrives, and each echoed byte is compared with it.  The window
 * is bounded: once it is full (a server that holds echo back, or sends
 * none), later bytes are compared as two running hashes instead, one of
 * what was sent and one of what came back, so the client never waits for
 * an echo that may not come and never holds more than the window.  At stdin EOF,
 * once everything is sent, the write side is shut down (half-close) and
 * the client reads on until the server closes.  Exit 0 iff the echo held
 * exactly the bytes sent, 1 otherwise, 2 on a usage error.
 *
 * --framed: each stdin line (without its '\n') goes out as one frame (a
 * 4-byte big-endian length, then the payload), and each frame received is
 * printed followed by '\n'.  framing/line.c splits stdin and
 * framing/frame.c decodes the socket, both fed bytes split anywhere.  The
 * window then holds "line\n" per line sent: exactly what stdout should
 * show. */
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/io.h"
#include "common/log.h"
#include "common/net.h"
#include "common/opt.h"
#include "common/sig.h"
#include "framing/frame.h"
#include "framing/line.h"

#define PROG "echo_client"

#define CHUNK      ((size_t)64 * 1024)   /* most bytes one read(2) takes */
#define QUEUE_MAX  ((size_t)64 * 1024)   /* tonet/toout: source paused at this */
#define WINDOW_MAX ((size_t)16 << 20)    /* sent, not echoed: compared byte by byte */
#define MSG_MAX    ((size_t)16 << 20)    /* --framed: longest line or frame */
/* A queue passes its limit by at most one read's worth (a chunk of empty
 * lines is 4 header bytes per input byte) plus one whole message. */
#define HARD_MAX   (WINDOW_MAX + MSG_MAX + 8 * CHUNK)


enum { POLL_STDIN, POLL_NETOUT, POLL_NETIN, POLL_STDOUT, POLL_N };

struct client {
    int fd;                  /* the socket, non-blocking */
    int framed;
    struct buf tonet;        /* from stdin, not yet sent (framed: frames) */
    struct buf toout;        /* from the socket, not yet on stdout */
    struct buf window;       /* sent, not yet echoed: what stdout shows next */
    struct line_dec lines;   /* --framed: stdin split into lines */
    struct frame_dec frames; /* --framed: the socket split into frames */
    int in_eof, shut_wr, net_eof, out_err;
    int verifying;           /* window still lined up with the echo */
    int hashing;             /* the window overflowed: hash the rest */
    uint64_t hash_sent, hash_recv;   /* FNV-1a of the bytes past the window */
    int excess;              /* the difference is an echo of nothing sent */
    unsigned long long sent, recv;   /* bytes, or frames when framed */
    unsigned long long diff_at;      /* first wrong byte/frame, from 1; 0 none */
};

/* The program's own help; every option listed. */
static void usage(FILE *out)
{
    fprintf(out,
        "usage: " PROG " [-f|--framed] [-q|--quiet] [HOST [PORT]]\n"
        "\n"
        "Send stdin to an echo server and write what comes back to stdout.\n"
        "HOST is a name or an IPv4/IPv6 address (default 127.0.0.1), PORT a\n"
        "number 1-65535 (default 7878).  Exit status: 0 if the echo matched\n"
        "what was sent, 1 if not or on an error, 2 on a usage error.\n"
        "\n"
        "  -f, --framed   send each stdin line as one length-prefixed frame;\n"
        "                 print each frame received as a line\n"
        "  -q, --quiet    no banner when stdin is a terminal\n"
        "  -h, --help     show this help and exit\n"
        "  -V, --version  show the version and exit\n");
}

/* One usage-error line naming the problem, then the hint, on stderr.
 * Returns the exit status for usage errors, 2. */
__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nTry '" PROG " --help'.\n", stderr);
    va_end(ap);
    return 2;
}

/* "127.0.0.1:7878", "localhost:7878", "[::1]:7878": a host and a port
 * in one argument (an IPv6 literal has more than one colon and no
 * brackets, or brackets and nothing after them). */
static int looks_like_host_port(const char *host)
{
    const char *colon = strrchr(host, ':');
    if (colon == NULL || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return 0;
    if (host[0] == '[')
        return colon > host && colon[-1] == ']';
    return strchr(host, ':') == colon;
}

/* Parse argv into the flags, host and port.  Returns -1 to go on, or the
 * exit status: 0 after --help/--version, 1 if stdout failed, 2 on an
 * error. */
static int parse_args(int argc, char **argv, int *framed, int *quiet,
                      const char **host, const char **port)
{
    static const struct option longopts[] = {
        {"framed", no_argument, NULL, 'f'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},   {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    unsigned long long num;
    int c, prev_optind = optind;
    char err[256];
    opterr = 0;
    for (; (c = getopt_long(argc, argv, ":fqhV", longopts, NULL)) != -1; prev_optind = optind) {
        switch (c) {
        case 'f':
            *framed = 1;
            break;
        case 'q':
            *quiet = 1;
            break;
        case 'h':
        case 'V':
            if (c == 'h')
                usage(stdout);
            else
                printf(PROG " %s\n", VERSION);
            if (fflush(stdout) == 0)
                return 0;
            log_warn("stdout:");
            return 1;
        default:
            /* a known letter fails only as a long option with a value */
            if (optind != prev_optind && optopt != 0 && strchr("fqhV", optopt) != NULL)
                return usage_error("option '%.*s' takes no value",
                                   (int)strcspn(argv[optind - 1], "="), argv[optind - 1]);
            opt_getopt_error(c, argv, prev_optind, err, sizeof err);
            return usage_error("%s", err);
        }
    }
    if (argc - optind > 2)
        return usage_error("unexpected argument '%s'", argv[optind + 2]);
    if (optind < argc && (*host = argv[optind++])[0] == '\0')
        return usage_error("invalid host '' (expected an address or host name)");
    if (looks_like_host_port(*host))
        return usage_error("'%s' is HOST:PORT; give them as two arguments: " PROG " HOST PORT",
                           *host);
    if (optind < argc && opt_number(*port = argv[optind], 1, 65535, &num) == -1)
        return usage_error("invalid port '%s' (expected 1-65535)", *port);
    return -1;
}

/* Give a closed descriptor 0, 1 or 2 a read-only /dev/null, so the socket
 * never lands there: a closed stdin reads as empty, a closed stdout fails
 * the first write with EBADF.  0 or -1. */
static int open_std_fds(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) == -1 && errno == EBADF &&
            open("/dev/null", O_RDONLY) != fd)
            return -1;
    }
    return 0;
}

/* Mark the first difference: at byte or frame `at` (from 1); excess when
 * the echo went past what was sent.  The window is no use after it. */
static void differ(struct client *c, unsigned long long at, int excess)
{
    c->verifying = 0;
    c->diff_at = at;
    c->excess = excess;
    buf_free(&c->window);
}

static uint64_t fnv1a(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211u;
    return h;
}

/* Compare echoed bytes with the head of the window and drop the matching
 * ones; the first difference ends verifying.  Past the window, hash. */
static void verify(struct client *c, const char *p, size_t n)
{
    if (!c->verifying || n == 0)
        return;
    size_t have = buf_len(&c->window), k = n < have ? n : have, ok = 0;
    if (k > 0) {
        const char *w = buf_head(&c->window);
        if (memcmp(w, p, k) == 0)
            ok = k;
        else
            while (w[ok] == p[ok])
                ok++;
        buf_consume(&c->window, ok);
    }
    if (ok == k && c->hashing)
        c->hash_recv = fnv1a(c->hash_recv, p + k, n - k);
    else if (ok < n)
        differ(c, c->recv + (c->framed ? 1 : ok + 1), ok == have);
}

/* Append to a queue (its source is paused before it passes HARD_MAX).
 * 0, or -1 with the message printed. */
static int put(struct buf *b, const void *p, size_t n)
{
    if (buf_append(b, p, n, HARD_MAX) == 0)
        return 0;
    log_warn("queue:");
    return -1;
}

/* Keep sent bytes for verify(): in the window while it has room, then
 * (and from then on) in the running hash.  0 or -1. */
static int witness(struct client *c, const char *p, size_t n)
{
    if (!c->verifying)
        return 0;
    if (!c->hashing && buf_len(&c->window) + n <= WINDOW_MAX)
        return put(&c->window, p, n);
    c->hashing = 1;
    c->hash_sent = fnv1a(c->hash_sent, p, n);
    return 0;
}

/* Queue one stdin line (its '\n' removed) as a frame, and "line\n" in the
 * window.  0 or -1. */
static int queue_line(struct client *c, const char *line, size_t len)
{
    unsigned char hdr[FRAME_HDR];
    frame_put_len(hdr, (uint32_t)len);
    if (put(&c->tonet, hdr, sizeof hdr) == -1 || put(&c->tonet, line, len) == -1 ||
        witness(c, line, len) == -1 || witness(c, "\n", 1) == -1)
        return -1;
    c->sent++;
    return 0;
}

/* --framed: split stdin bytes into lines and queue each as a frame.
 * 0 or -1. */
static int stdin_lines(struct client *c, const char *p, size_t n)
{
    size_t len;
    for (size_t off = 0; off < n;) {
        enum line_status st;
        off += line_dec_feed(&c->lines, p + off, n - off, &st);
        if (st == LINE_READY) {
            const char *line = line_dec_msg(&c->lines, &len);
            if (queue_line(c, line, len - 1) == -1)
                return -1;
        } else if (st != LINE_MORE) {
            log_warn(st == LINE_TOO_BIG ? "stdin: line %llu is longer than %zu bytes"
                                        : "stdin: out of memory for line %llu of up to %zu bytes",
                     c->sent + 1, MSG_MAX);
            return -1;
        }
    }
    return 0;
}

/* stdin ended: with --framed, a last line without '\n' is a frame too.
 * 0 or -1. */
static int stdin_eof(struct client *c)
{
    size_t len;
    c->in_eof = 1;
    if (!c->framed || !line_dec_flush(&c->lines))
        return 0;
    const char *line = line_dec_msg(&c->lines, &len);
    return queue_line(c, line, len);
}

/* Read stdin once and queue what came for the server and the window.
 * 0 or -1 (message printed). */
static int stdin_read(struct client *c)
{
    char chunk[CHUNK];
    size_t got;
    enum io_status st = io_read(STDIN_FILENO, chunk, sizeof chunk, &got);
    if (st == IO_EOF)
        return stdin_eof(c);
    if (st == IO_ERR)
        log_warn("stdin:");
    if (st != IO_OK)
        return st == IO_ERR ? -1 : 0;
    if (c->framed)
        return stdin_lines(c, chunk, got);
    if (put(&c->tonet, chunk, got) == -1 || witness(c, chunk, got) == -1)
        return -1;
    c->sent += got;
    return 0;
}

/* --framed: decode socket bytes; check each frame and queue it for stdout
 * as "payload\n".  0 or -1. */
static int net_frames(struct client *c, const char *p, size_t n)
{
    for (size_t off = 0; off < n;) {
        enum frame_status st;
        uint32_t len;
        off += frame_dec_feed(&c->frames, p + off, n - off, &st);
        if (st == FRAME_TOO_BIG || st == FRAME_NOMEM) {
            log_warn(st == FRAME_TOO_BIG ? "server sent a frame of %lu bytes (limit %zu)"
                                         : "out of memory for a frame of %lu bytes (limit %zu)",
                     (unsigned long)c->frames.len, MSG_MAX);
            return -1;
        }
        if (st != FRAME_READY)
            continue;
        const char *msg = frame_dec_msg(&c->frames, &len);
        /* a payload with '\n' in it was never one of our lines */
        if (c->verifying && memchr(msg, '\n', len) != NULL)
            differ(c, c->recv + 1, 0);
        verify(c, msg, len);
        verify(c, "\n", 1);
        c->recv++;
        if (put(&c->toout, msg, len) == -1 || put(&c->toout, "\n", 1) == -1)
            return -1;
    }
    return 0;
}

/* Read the socket once: check and queue the echo, or note EOF.  0 or -1. */
static int net_read(struct client *c)
{
    char chunk[CHUNK];
    size_t got;
    enum io_status st = io_read(c->fd, chunk, sizeof chunk, &got);
    if (st == IO_EOF)
        c->net_eof = 1;
    if (st == IO_ERR)
        log_warn("read:");
    if (st != IO_OK)
        return st == IO_ERR ? -1 : 0;
    if (c->framed)
        return net_frames(c, chunk, got);
    verify(c, chunk, got);
    c->recv += got;
    return put(&c->toout, chunk, got);
}

/* Write queued bytes once to fd (the socket or stdout).  0 or -1. */
static int flush_once(int fd, struct buf *b, const char *what)
{
    size_t wrote;
    if (io_write(fd, buf_head(b), buf_len(b), &wrote) == IO_ERR) {
        log_warn("%s:", what);
        return -1;
    }
    buf_consume(b, wrote);
    return 0;
}

/* The poll loop: runs until the server has closed and stdout has all it
 * sent.  0, or -1 on an error (message printed). */
static int run(struct client *c)
{
    struct pollfd pfd[POLL_N] = {
        [POLL_STDIN] = {.events = POLLIN}, [POLL_NETOUT] = {.events = POLLOUT},
        [POLL_NETIN] = {.events = POLLIN}, [POLL_STDOUT] = {.events = POLLOUT},
    };
    for (;;) {
        /* input over and all of it sent: half-close, the server finishes */
        if (c->in_eof && buf_len(&c->tonet) == 0 && !c->shut_wr && !c->net_eof) {
            if (shutdown(c->fd, SHUT_WR) == -1) {
                log_warn("shutdown:");
                return -1;
            }
            c->shut_wr = 1;
        }
        /* server gone and everything shown: done */
        if (c->net_eof && buf_len(&c->toout) == 0)
            return 0;
        /* stdin: until EOF, while the queue has room */
        pfd[POLL_STDIN].fd = !c->in_eof && !c->net_eof && buf_len(&c->tonet) < QUEUE_MAX
                             ? STDIN_FILENO : -1;
        /* socket out: something queued, and the server still there */
        pfd[POLL_NETOUT].fd = buf_len(&c->tonet) > 0 && !c->net_eof ? c->fd : -1;
        /* socket in: until the server closes, while stdout keeps up */
        pfd[POLL_NETIN].fd = !c->net_eof && buf_len(&c->toout) < QUEUE_MAX ? c->fd : -1;
        /* stdout: whenever something waits for it */
        pfd[POLL_STDOUT].fd = buf_len(&c->toout) > 0 ? STDOUT_FILENO : -1;
        if (poll(pfd, POLL_N, -1) == -1) {
            if (errno == EINTR)
                continue;
            log_warn("poll:");
            return -1;
        }
        /* socket first, so a server that closed is seen before a failed send */
        if (pfd[POLL_NETIN].revents != 0 && net_read(c) == -1)
            return -1;
        /* stdout ready (or broken: the write says which) */
        if (pfd[POLL_STDOUT].revents != 0 &&
            flush_once(STDOUT_FILENO, &c->toout, "stdout") == -1) {
            c->out_err = 1;
            return -1;
        }
        /* stdin: data, an error to read, or POLLHUP without POLLIN: EOF */
        short in = pfd[POLL_STDIN].revents;
        if (in & (POLLIN | POLLERR | POLLNVAL)) {
            if (stdin_read(c) == -1)
                return -1;
        } else if ((in & POLLHUP) && stdin_eof(c) == -1) {
            return -1;
        }
        /* send what we can, unless the server already closed */
        if (pfd[POLL_NETOUT].revents != 0 && !c->net_eof &&
            flush_once(c->fd, &c->tonet, "write") == -1)
            return -1;
    }
}

/* After the server closed: did the echo hold exactly what was sent?
 * 0, or -1 with the reason on stderr. */
static int verdict(const struct client *c)
{
    const char *unit = c->framed ? "frame" : "byte";
    /* an early close always ends in the same words: what came back of what was sent */
    const char *early = NULL;
    if (!c->shut_wr)
        early = "before the end of input";
    else if (c->framed && frame_dec_partial(&c->frames) > 0)
        early = "in the middle of a frame";
    else if (c->diff_at == 0 && c->recv < c->sent)
        early = "before echoing everything";
    if (early != NULL)
        log_warn("the server closed the connection %s: %llu of %llu %ss sent came back", early,
                 c->recv, c->sent, unit);
    else if (c->diff_at != 0 && (!c->excess || c->sent == c->recv))
        log_warn("echo differs from what was sent at %s %llu", unit, c->diff_at);
    else if (c->sent != c->recv)
        log_warn("echo longer than what was sent: %llu %ss came back for %llu sent", c->recv,
                 unit, c->sent);
    else if (c->verifying && c->hashing && c->hash_sent != c->hash_recv)
        log_warn("echo differs from what was sent, past the first %zu bytes", WINDOW_MAX);
    else
        return 0;
    return -1;
}

int main(int argc, char **argv)
{
    int framed = 0, quiet = 0, rc;
    const char *host = "127.0.0.1", *port = "7878";
    log_init(PROG, 0);
    if (sig_handle(SIGPIPE, SIG_IGN, 0) == -1 || open_std_fds() == -1) {
        log_warn("start-up:");
        return 1;
    }
    if ((rc = parse_args(argc, argv, &framed, &quiet, &host, &port)) >= 0)
        return rc;
    char err[256];
    int fd = net_connect(host, port, err, sizeof err);
    if (fd == -1) {
        log_warn("%s", err);
        return 1;
    }
    if (net_set_nonblock(fd, 1) == -1) {
        log_warn("fcntl:");
        close(fd);
        return 1;
    }
    if (!quiet && isatty(STDIN_FILENO)) {
        int v6 = strchr(host, ':') != NULL;
        fprintf(stderr, "Connected to %s%s%s:%s. Type lines to echo (Ctrl-D to quit).\n",
                v6 ? "[" : "", host, v6 ? "]" : "", port);
    }
    struct client c = {.fd = fd, .framed = framed, .verifying = 1,
                       .hash_sent = 14695981039346656037u, .hash_recv = 14695981039346656037u};
    line_dec_init(&c.lines, MSG_MAX);
    frame_dec_init(&c.frames, (uint32_t)MSG_MAX);
    rc = run(&c) == 0 && verdict(&c) == 0 ? 0 : 1;
    /* after an error, still show what came back */
    if (buf_len(&c.toout) > 0 && c.out_err == 0)
        (void)io_write_all(STDOUT_FILENO, buf_head(&c.toout), buf_len(&c.toout));
    buf_free(&c.tonet);
    buf_free(&c.toout);
    buf_free(&c.window);
    line_dec_free(&c.lines);
    frame_dec_free(&c.frames);
    close(fd);
    return rc;
}
