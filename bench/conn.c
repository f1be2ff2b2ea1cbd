/* conn: one connection's mechanics, the same in every mode. */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "common/io.h"
#include "common/log.h"
#include "common/sys.h"
#include "framing/frame.h"

#define ERR_SHOWN 10              /* error lines printed before going quiet */

void bench_report(struct run *r, uint64_t *errors, unsigned long id, const char *fmt, ...)
{
    (*errors)++;
    if (atomic_fetch_add(&r->shown, 1) >= ERR_SHOWN)
        return;
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    log_warn("connection %lu: %s", id, what);
}

int conn_events(struct worker *w, struct conn *c, int op, int want_out)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0u), .data.ptr = c};
    if (epoll_ctl(w->ep, op, c->fd, &ev) == -1)
        return -1;
    c->want_out = want_out;
    return 0;
}

void conn_activate(struct worker *w, struct conn *c)
{
    if (!c->active)
        w->active++;
    c->active = 1;
}

void conn_deactivate(struct worker *w, struct conn *c)
{
    if (c->active)
        w->active--;
    c->active = 0;
}

void conn_close(struct worker *w, struct conn *c)
{
    conn_deactivate(w, c);
    if (c->st != C_CLOSED)
        w->open--;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->st = C_CLOSED;
    c->want_out = 0;
    c->t_wait = 0;
}

void conn_fail(struct worker *w, struct conn *c, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    bench_report(w->run, &w->errors, c->id, "%s", what);
    conn_close(w, c);
}

int conn_read(struct worker *w, struct conn *c, uint64_t len, size_t *n)
{
    size_t cap = len - c->got < w->rcap ? (size_t)(len - c->got) : w->rcap;
    enum io_status s = io_read(c->fd, w->rbuf, cap, n);
    if (s == IO_AGAIN)
        *n = 0;
    if (s == IO_EOF)
        conn_fail(w, c, "closed by server after %llu of %llu bytes",
                  (unsigned long long)c->got, (unsigned long long)len);
    else if (s == IO_ERR)
        conn_fail(w, c, "read: %s", strerror(errno));
    if (s != IO_OK)
        return s == IO_AGAIN ? 0 : -1;
    c->echoed = 1;
    return 0;
}

void conn_mismatch(struct worker *w, struct conn *c, const unsigned char *got,
                   const unsigned char *want, size_t n, uint64_t at)
{
    const struct cfg *cfg = w->run->cfg;
    size_t i = 0;
    while (i < n - 1 && got[i] == want[i])
        i++;
    at += i;
    if (cfg->stream > 0)
        conn_fail(w, c, "stream differs at byte %llu", (unsigned long long)at);
    else if (cfg->framed && at < FRAME_HDR)
        conn_fail(w, c, "frame header differs in message %llu%s", (unsigned long long)c->seq,
                  c->seq > 1 && at == 0 ? " (or the previous echo was too long)" : "");
    else
        conn_fail(w, c, "echo differs at byte %llu of message %llu%s",
                  (unsigned long long)(at - (cfg->framed ? FRAME_HDR : 0)),
                  (unsigned long long)c->seq,
                  c->seq > 1 && at == 0 ? " (or the previous echo was too long)" : "");
}

void conn_finish(struct worker *w, struct conn *c)
{
    if (shutdown(c->fd, SHUT_WR) == -1) {
        conn_fail(w, c, "shutdown: %s", strerror(errno));
        return;
    }
    if (c->want_out && conn_events(w, c, EPOLL_CTL_MOD, 0) == -1) {
        conn_fail(w, c, "epoll_ctl: %s", strerror(errno));
        return;
    }
    c->st = C_CLOSING;
    c->t_wait = sys_now_ns();
}

int conn_closing(struct worker *w, struct conn *c)
{
    unsigned char byte[256];
    size_t n;
    enum io_status s = io_read(c->fd, byte, sizeof byte, &n);
    if (s == IO_AGAIN)
        return 0;
    if (s == IO_EOF) {
        conn_close(w, c);
        return 1;
    }
    if (s == IO_ERR)
        conn_fail(w, c, "read after the last echo: %s", strerror(errno));
    else if (w->run->cfg->stream > 0)
        conn_fail(w, c, "echo longer than sent: more bytes after all %llu",
                  (unsigned long long)c->total);
    else
        conn_fail(w, c, "echo longer than sent: more bytes after message %llu",
                  (unsigned long long)c->seq);
    return 0;
}

void conn_check_timeouts(struct worker *w, int64_t now)
{
    const struct run *r = w->run;
    int64_t limit = r->cfg->timeout_ns;
    double secs = (double)limit / NS;
    for (size_t i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        if (c->t_wait == 0 || now - c->t_wait < limit)
            continue;
        if (c->st == C_CONNECTING) {
            conn_fail(w, c, "connect %s: no answer within %.1f s", r->addr_text, secs);
        } else if (c->st == C_CLOSING) {
            conn_fail(w, c, "server did not close within %.1f s of the end of input", secs);
        } else if (!c->echoed) {
            /* accepted by the kernel, never served: counted, told once */
            w->errors++;
            w->unserved++;
            conn_close(w, c);
        } else if (r->cfg->stream > 0) {
            conn_fail(w, c, "no echo for %.1f s after byte %llu (sent %llu of %llu)", secs,
                      (unsigned long long)c->got, (unsigned long long)c->sent,
                      (unsigned long long)c->total);
        } else {
            conn_fail(w, c, "no echo of message %llu within %.1f s (got %llu of %zu bytes)",
                      (unsigned long long)c->seq, secs, (unsigned long long)c->got,
                      r->msg_len);
        }
    }
}

/* splitmix64's finaliser: a seed from (connection, message). */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void fill_payload(unsigned char *p, size_t n, unsigned long id, uint64_t seq)
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
