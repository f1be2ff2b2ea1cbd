/* worker: the threads that drive the connections, and the measured window.
 *
 * The main thread connects every connection (blocking net_connect, before
 * the clock starts) and hands them out to the workers, each with its own
 * epoll set, one message outstanding per connection.  In the message
 * modes each connection first makes one round trip, not counted (warm_up).
 * The window opens when every worker is ready and closes at the deadline (brought forward
 * by SIGINT/SIGTERM, which the main thread takes with sigtimedwait), or
 * once no worker has work left in it (the stream is all back, every
 * connection failed).  The caller's measure() runs at both ends, on the
 * main thread, while the workers wait or just carry on; the connections
 * are half-closed only after the end is measured, so their teardown is
 * not in it.  After the window, echoes in flight may finish within the
 * per-echo timeout (not counted); later than that is an error.  A second
 * SIGINT stops at once. */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "common/log.h"
#include "common/sys.h"

#define MAX_EVENTS 256
#define TICK_NS 100000000LL       /* timeouts are checked this often */
#define WAIT_NS 50000000LL        /* the main thread's longest sleep */

unsigned long bench_connect_all(struct run *r, struct worker *ws, unsigned long nw,
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
                bench_report(r, errors, c->id, "%s", err);
                continue;
            }
            c->fd = fd;
            c->st = C_READY;
            ws[k].open++;
            ws[k].opened++;
            if (net_set_nonblock(fd, 1) == -1 ||
                conn_events(&ws[k], c, EPOLL_CTL_ADD, cfg->stream > 0) == -1) {
                bench_report(r, errors, c->id, "set-up: %s", strerror(errno));
                conn_close(&ws[k], c);
                continue;
            }
            if (cfg->churn && r->addrlen == 0) {
                r->addrlen = sizeof r->addr;
                if (getpeername(fd, (struct sockaddr *)&r->addr, &r->addrlen) == -1 ||
                    net_format_addr((struct sockaddr *)&r->addr, r->addrlen,
                                    r->addr_text, sizeof r->addr_text) == -1) {
                    bench_report(r, errors, c->id, "getpeername: %s", strerror(errno));
                    conn_close(&ws[k], c);
                    r->addrlen = 0;
                    continue;
                }
            }
            if (++open % 10000 == 0 && !cfg->quiet)
                log_warn("connected %lu of %lu", open, cfg->conns);
        }
    }
    return open;
}

/* Past the window: tell the main thread (the last one wakes it). */
static void leave_window(struct worker *w, unsigned long nw, int64_t now, int64_t end)
{
    w->t_stop = now < end ? now : end;
    if (atomic_fetch_add(&w->run->idle, 1) + 1 == nw)
        pthread_kill(w->run->main_tid, SIGUSR1);
}

/* Events on w's connections for up to ms; 0, or -1 if epoll failed. */
static int dispatch(struct worker *w, int ms)
{
    struct epoll_event ev[MAX_EVENTS];
    int n = epoll_wait(w->ep, ev, MAX_EVENTS, ms);
    if (n == -1 && errno != EINTR) {
        log_warn("epoll_wait:");
        w->errors++;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        uint32_t e = ev[i].events;
        w->run->mode->event(w, ev[i].data.ptr, (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0,
                            (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0);
    }
    return 0;
}

/* Message modes, before the window: one round trip on every connection,
 * not counted, so that the window holds no server start-up work (a
 * fork_server child being forked, a thread started, a connection still
 * in the backlog); one that gets no echo within the timeout fails here. */
static void warm_up(struct worker *w)
{
    struct run *r = w->run;
    for (size_t i = 0; i < w->nconns; i++)
        if (w->conns[i].st == C_READY)
            r->mode->start(w, &w->conns[i]);
    while (w->active > 0 && !atomic_load_explicit(&r->quit, memory_order_relaxed)) {
        conn_check_timeouts(w, sys_now_ns());
        if (w->active > 0 && dispatch(w, (int)(TICK_NS / 1000000)) == -1)
            break;
    }
}

static void worker_loop(struct worker *w, unsigned long nw)
{
    struct run *r = w->run;
    int in_window = 1, closing = 0;
    int64_t now = sys_now_ns(), end = 0, next_check = now + TICK_NS;
    while (w->open > 0 && !atomic_load_explicit(&r->quit, memory_order_relaxed)) {
        now = sys_now_ns();
        end = atomic_load_explicit(&r->end, memory_order_relaxed);
        if (in_window && (now >= end || w->active == 0)) {
            in_window = 0;
            for (size_t i = 0; i < w->nconns; i++)
                if (w->conns[i].st != C_CLOSED)
                    r->mode->window_end(w, &w->conns[i]);
            leave_window(w, nw, now, end);
            continue;
        }
        if (!in_window && !closing && atomic_load(&r->closed)) {
            closing = 1;    /* the end is measured: now the half-closes */
            for (size_t i = 0; i < w->nconns; i++)
                if (w->conns[i].st == C_IDLE)
                    conn_finish(w, &w->conns[i]);
            continue;
        }
        if (now >= next_check) {
            conn_check_timeouts(w, now);
            next_check = now + TICK_NS;
            continue;
        }
        int64_t until = next_check;
        if (in_window && end < until)
            until = end;
        if (!in_window && !closing)
            until = now + TICK_NS / 10;
        int ms = (int)((until - now + 999999) / 1000000);
        if (dispatch(w, ms) == -1)
            break;
    }
    if (in_window)      /* every connection finished or failed early */
        leave_window(w, nw, now, end > 0 ? end : now);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct run *r = w->run;
    unsigned long nw = r->nworkers;
    if (r->mode->warm_up)
        warm_up(w);
    pthread_barrier_wait(&r->ready);
    pthread_barrier_wait(&r->go);
    for (size_t i = 0; i < w->nconns; i++)
        if (w->conns[i].st == C_READY)
            r->mode->start(w, &w->conns[i]);
    worker_loop(w, nw);
    for (size_t i = 0; i < w->nconns; i++)
        if (w->conns[i].st != C_CLOSED)
            conn_close(w, &w->conns[i]);
    if (atomic_fetch_add(&r->done, 1) + 1 == nw)
        pthread_kill(r->main_tid, SIGUSR1);
    return NULL;
}

/* Sleep until the signal set fires or until deadline (ns); the signal. */
static int wait_until(const sigset_t *set, int64_t deadline)
{
    int64_t left = deadline - sys_now_ns();
    if (left <= 0)
        return 0;
    if (left > WAIT_NS)
        left = WAIT_NS;
    struct timespec ts = {0, (long)left};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

int64_t bench_run_workers(struct run *r, struct worker *ws, unsigned long nw,
                          void (*measure)(void *arg, int end), void *arg)
{
    sigset_t set;
    int rc;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);     /* the workers inherit it */
    r->main_tid = pthread_self();
    r->nworkers = nw;
    atomic_store(&r->warming, r->mode->warm_up);
    if ((rc = pthread_barrier_init(&r->ready, NULL, (unsigned)nw + 1)) != 0 ||
        (rc = pthread_barrier_init(&r->go, NULL, (unsigned)nw + 1)) != 0) {
        log_warn("pthread_barrier_init: %s", strerror(rc));
        exit(1);
    }
    for (unsigned long k = 0; k < nw; k++)
        if ((rc = pthread_create(&ws[k].tid, NULL, worker_main, &ws[k])) != 0) {
            log_warn("pthread_create: %s", strerror(rc));   /* nothing measured yet */
            exit(1);
        }
    pthread_barrier_wait(&r->ready);      /* every worker connected and warm */
    atomic_store(&r->warming, 0);
    measure(arg, 0);
    int64_t start = sys_now_ns(), dur = r->cfg->dur_ns;
    if (dur == 0 && r->cfg->stream == 0)
        dur = 5 * NS;
    atomic_store(&r->end, dur > 0 ? start + dur : INT64_MAX);
    pthread_barrier_wait(&r->go);
    for (;;) {       /* the window */
        int64_t end = atomic_load(&r->end), now = sys_now_ns();
        if (now >= end || atomic_load(&r->idle) == nw)
            break;
        int sig = wait_until(&set, end < now + WAIT_NS ? end : now + WAIT_NS);
        if (sig == SIGINT || sig == SIGTERM)
            atomic_store(&r->end, sys_now_ns());
    }
    measure(arg, 1);
    atomic_store(&r->closed, 1);
    while (atomic_load(&r->done) < nw) {
        int sig = wait_until(&set, sys_now_ns() + WAIT_NS);
        if (sig == SIGINT || sig == SIGTERM)
            atomic_store(&r->quit, 1);
    }
    for (unsigned long k = 0; k < nw; k++)
        pthread_join(ws[k].tid, NULL);
    pthread_barrier_destroy(&r->ready);
    pthread_barrier_destroy(&r->go);
    return start;
}
