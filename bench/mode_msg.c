/* mode_msg: the message modes.  echo and framed keep their connections;
 * churn opens one per message and, once the echo is in, half-closes it
 * and waits for the server's EOF (an over-long echo shows there), so a
 * connection's whole life, the server's close included, is in the
 * window. */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <string.h>

#include "bench/bench.h"
#include "common/io.h"
#include "common/sys.h"
#include "framing/frame.h"

/* Write what is left of the message; EPOLLOUT only while some is left.
 * A failed write on a connecting socket is the connect's error. */
static void flush(struct worker *w, struct conn *c)
{
    size_t put;
    size_t left = w->run->msg_len - (size_t)c->sent;
    enum io_status s = io_write(c->fd, c->msg + c->sent, left, &put);
    if (s == IO_ERR) {
        if (c->st == C_CONNECTING)
            conn_fail(w, c, "connect %s: %s", w->run->addr_text, strerror(errno));
        else
            conn_fail(w, c, "write: %s", strerror(errno));
        return;
    }
    if (s == IO_OK) {
        c->sent += put;
        c->st = C_BUSY;
    }
    int want = c->sent < w->run->msg_len;
    if (want != c->want_out && conn_events(w, c, EPOLL_CTL_MOD, want) == -1)
        conn_fail(w, c, "epoll_ctl: %s", strerror(errno));
}

/* Churn: a fresh non-blocking connection for the next message. */
static int churn_open(struct worker *w, struct conn *c)
{
    const struct run *r = w->run;
    int on = 1;
    c->fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->st = C_CONNECTING;
    c->echoed = 0;
    w->open++;
    w->opened++;
    if (c->fd == -1) {
        conn_fail(w, c, "socket: %s", strerror(errno));
        return -1;
    }
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    if (connect(c->fd, (const struct sockaddr *)&r->addr, r->addrlen) == -1 &&
        errno != EINPROGRESS) {
        conn_fail(w, c, "connect %s: %s", r->addr_text, strerror(errno));
        return -1;
    }
    if (conn_events(w, c, EPOLL_CTL_ADD, 0) == -1) {
        conn_fail(w, c, "epoll_ctl: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Start the next message on c (opening a connection under churn). */
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
    c->t0 = c->t_wait = sys_now_ns();
    conn_activate(w, c);
    if (c->fd < 0 && churn_open(w, c) == -1)
        return;
    if (c->st != C_CONNECTING)
        c->st = C_BUSY;
    flush(w, c);
}

/* The whole echo is in and verified: count it if in time; go on (churn:
 * first the half-close), or rest until the window is measured. */
static void complete(struct worker *w, struct conn *c)
{
    struct run *r = w->run;
    int64_t now = sys_now_ns();
    int64_t end = atomic_load_explicit(&r->end, memory_order_relaxed);
    c->t_wait = 0;
    if (atomic_load_explicit(&r->warming, memory_order_relaxed)) {
        c->st = C_READY;            /* served once: ready for the window */
        conn_deactivate(w, c);
        return;
    }
    if (now <= end) {
        hist_add(&w->hist, (uint64_t)(now - c->t0));
        w->msgs++;
        w->bytes += r->cfg->size;
    }
    if (now < end && r->cfg->churn) {
        conn_finish(w, c);
    } else if (now < end) {
        send_msg(w, c);
    } else {
        conn_deactivate(w, c);
        c->st = C_IDLE;
        if (atomic_load(&r->closed))
            conn_finish(w, c);
    }
}

static void on_echo(struct worker *w, struct conn *c)
{
    size_t n;
    if (conn_read(w, c, w->run->msg_len, &n) == -1 || n == 0)
        return;
    if (memcmp(w->rbuf, c->msg + c->got, n) != 0) {
        conn_mismatch(w, c, w->rbuf, c->msg + c->got, n, c->got);
        return;
    }
    c->got += n;
    if (c->got == w->run->msg_len)
        complete(w, c);
}

static void msg_start(struct worker *w, struct conn *c)
{
    send_msg(w, c);
}

static void msg_event(struct worker *w, struct conn *c, int in, int out)
{
    if (c->st == C_CONNECTING) {
        flush(w, c);
        return;
    }
    if ((c->st == C_CLOSING || c->st == C_IDLE) && in) {
        /* churn: the server closed its end; the next message, in time
         * (bytes here, or while idle, are an over-long echo) */
        int64_t end = atomic_load_explicit(&w->run->end, memory_order_relaxed);
        int again = c->st == C_CLOSING && w->run->cfg->churn;
        if (conn_closing(w, c) == 1 && again && sys_now_ns() < end)
            send_msg(w, c);
        return;
    }
    if (c->st == C_BUSY && in)
        on_echo(w, c);
    if (c->st == C_BUSY && c->want_out && out)
        flush(w, c);
}

/* A connect still under way is dropped; echoes in flight may finish
 * (not counted); a churn half-close finishes. */
static void msg_window_end(struct worker *w, struct conn *c)
{
    if (c->st == C_CONNECTING)
        conn_close(w, c);
}

const struct bench_mode mode_echo = {"echo", 1, msg_start, msg_event, msg_window_end};
const struct bench_mode mode_churn = {"churn", 0, msg_start, msg_event, msg_window_end};

const struct bench_mode *mode_of(const struct cfg *cfg)
{
    return cfg->stream > 0 ? &mode_stream : cfg->churn ? &mode_churn : &mode_echo;
}
