/* mode_stream: each connection writes its share of the stream while it
 * reads the echo; byte k of connection i is pattern[(k + phase(i)) % P]
 * for a random pattern of prime period P, so a lost, repeated or shifted
 * chunk is caught.  Once all is written it half-closes; once all is back
 * it expects EOF, so an echo that is longer shows too.  The per-echo
 * timeout runs while echo is owed: no byte back for that long fails. */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <errno.h>
#include <string.h>

#include "bench/bench.h"
#include "common/io.h"
#include "common/sys.h"

/* Where connection c's byte 0 sits in the pattern. */
static size_t phase(const struct conn *c)
{
    return (size_t)(c->id * 104729u % STREAM_PERIOD);
}

static void stream_write(struct worker *w, struct conn *c)
{
    size_t put, pos = (size_t)((c->sent + phase(c)) % STREAM_PERIOD);
    uint64_t left = c->total - c->sent;
    size_t n = left < STREAM_PERIOD ? (size_t)left : STREAM_PERIOD;
    enum io_status s = io_write(c->fd, w->run->pattern + pos, n, &put);
    if (s == IO_ERR) {
        conn_fail(w, c, "write: %s", strerror(errno));
        return;
    }
    if (s != IO_OK)
        return;
    if (c->got == c->sent)
        c->t_wait = sys_now_ns();       /* echo owed from now */
    c->sent += put;
    if (c->sent < c->total)
        return;
    if (shutdown(c->fd, SHUT_WR) == -1)
        conn_fail(w, c, "shutdown: %s", strerror(errno));
    else if (conn_events(w, c, EPOLL_CTL_MOD, 0) == -1)
        conn_fail(w, c, "epoll_ctl: %s", strerror(errno));
}

static void stream_read(struct worker *w, struct conn *c)
{
    size_t n;
    if (conn_read(w, c, c->total, &n) == -1 || n == 0)
        return;
    for (size_t off = 0; off < n;) {
        size_t pos = (size_t)((c->got + phase(c)) % STREAM_PERIOD);
        size_t k = n - off < STREAM_PERIOD ? n - off : STREAM_PERIOD;
        if (memcmp(w->rbuf + off, w->run->pattern + pos, k) != 0) {
            conn_mismatch(w, c, w->rbuf + off, w->run->pattern + pos, k, c->got);
            return;
        }
        c->got += k;
        w->bytes += k;
        off += k;
    }
    c->t_wait = c->got < c->sent ? sys_now_ns() : 0;
    if (c->got == c->total) {
        /* all back (we half-closed already): now only EOF may come */
        conn_deactivate(w, c);
        c->st = C_CLOSING;
        c->t_wait = sys_now_ns();
    }
}

static void stream_start(struct worker *w, struct conn *c)
{
    if (c->total == 0) {
        conn_close(w, c);
        return;
    }
    c->st = C_BUSY;
    conn_activate(w, c);
}

static void stream_event(struct worker *w, struct conn *c, int in, int out)
{
    if (c->st == C_CLOSING) {
        if (in)
            (void)conn_closing(w, c);
        return;
    }
    if (c->st == C_BUSY && c->want_out && out)
        stream_write(w, c);
    if (c->st == C_BUSY && in)
        stream_read(w, c);
}

/* -d ran out before the stream did: it is cut there, not an error. */
static void stream_window_end(struct worker *w, struct conn *c)
{
    if (c->st == C_BUSY)
        conn_close(w, c);
}

const struct bench_mode mode_stream = {"stream", 0, stream_start, stream_event,
                                       stream_window_end};
