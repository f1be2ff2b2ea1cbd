/* select_server: one thread, non-blocking sockets, one event loop.
 *
 * Nothing here ever blocks.  The loop (ev.h; --backend poll, select or
 * epoll) says which sockets are ready; the server then does the one read
 * or write each can take without waiting, and goes back to the loop.  So
 * one thread serves thousands of clients, and a client costs a small
 * struct conn, not a process or a thread.  The price: every piece of a
 * client's state must live in that struct, because no stack remembers
 * where a client was between events.
 *
 * The life of a connection:
 *   accept      until EAGAIN; numbered, registered for EV_READ
 *   readable    one read into a scratch buffer shared by all clients;
 *               proto.c turns it into replies, written at once; only what
 *               the socket does not take is copied to the client's own
 *               buffer (taken only while data is in flight)
 *   writable    send what is queued; stop asking for EV_WRITE when empty
 *   backpressure  a client with OUT_BOUND unsent bytes is not read until
 *               it drains: a client that never reads cannot grow memory
 *   EOF         send everything owed, then close
 * Clients sit on one list in order of last activity, so an idle timeout
 * only ever looks at the head of the list (conn.c, shared with the
 * completion loop: --backend uring hands the kernel the reads and writes
 * themselves instead, see loop_uring.c).
 *
 * Signals arrive through the self-pipe (common/sig.c), an ordinary
 * descriptor in the loop.  On SIGINT/SIGTERM the listener is closed and
 * the loop runs on until the clients are gone or --drain runs out.
 *
 * --workers N (select_server/workers.c): N processes, each with its own
 * listener on the same port (SO_REUSEPORT) and its own loop; the kernel spreads connections over
 * them, so the suite can use every core (nginx's model).  The parent only
 * supervises (common/kids.c: a worker that dies is reported and replaced,
 * its seats given back) and prints the totals, which the workers keep in
 * shared memory.  Chat needs one client list: chat with --workers is
 * refused. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/chat.h"
#include "common/io.h"
#include "common/log.h"
#include "common/net.h"
#include "common/proto.h"
#include "common/server.h"
#include "common/sig.h"
#include "common/sys.h"
#include "select_server/conn.h"
#include "select_server/ev.h"
#include "select_server/loop_uring.h"
#include "select_server/uring.h"
#include "select_server/workers.h"

#define SCRATCH_SIZE (64 * 1024)   /* one read, shared by every client */
#define OUT_BOUND (64 * 1024)      /* unsent bytes at which reading stops */
#define ACCEPTS_PER_TURN 256       /* others get their turn too */

static struct server srv;
static struct conns cs;           /* the clients, the clock, the drain */
static struct ev_loop *loop;
static struct conn **by_fd;       /* conn of each descriptor */
static int max_fds;
static size_t out_max;            /* hard cap of a client's buffer */
static struct stats_own *me;      /* a worker's share of the counters, or NULL */
static int is_worker;              /* this process is a --workers worker */
static char scratch[SCRATCH_SIZE];

/* ---- a client's bookkeeping (the rest is in conn.c) ---- */

static void conn_close(struct conn *c)
{
    conn_end(&cs, c);
    ev_loop_set(loop, c->fd, 0);
    by_fd[c->fd] = NULL;
    conn_free(c);
}

/* What c waits for: EV_WRITE while anything is queued, EV_READ unless
 * it sent EOF or has OUT_BOUND unsent (backpressure: stop reading). */
static int conn_mask(const struct conn *c)
{
    size_t queued = buf_len(&c->out);
    int mask = queued > 0 ? EV_WRITE : 0;
    if (!(c->flags & CONN_READ_EOF) && queued < OUT_BOUND)
        mask |= EV_READ;
    return mask;
}

/* Ask the loop for what c needs now, or close c when nothing is left to
 * do.  -1 if c was closed. */
static int conn_update(struct conn *c)
{
    if ((c->flags & CONN_READ_EOF) && buf_len(&c->out) == 0) {
        conn_close(c);                    /* all owed is sent: done */
        return -1;
    }
    if (ev_loop_set(loop, c->fd, conn_mask(c)) == -1) {
        conn_set_reason(c, strerror(errno));
        conn_close(c);
        return -1;
    }
    return 0;
}

/* Write what is queued, as much as the socket takes.  -1: client gone. */
static int conn_flush(struct conn *c)
{
    size_t put;
    if (buf_len(&c->out) == 0)
        return 0;
    if (io_write(c->fd, buf_head(&c->out), buf_len(&c->out), &put) == IO_ERR)
        return -1;
    if (put > 0) {
        buf_consume(&c->out, put);
        conn_touch(&cs, c);
    }
    return 0;
}

/* proto's emit: write at once if nothing is queued, queue the rest. */
static int conn_send(void *ctx, const char *p, size_t n)
{
    struct conn *c = ctx;
    if (buf_len(&c->out) == 0 && n > 0) {
        size_t put;
        if (io_write(c->fd, p, n, &put) == IO_ERR)
            return -1;
        if (put > 0)
            conn_touch(&cs, c);
        p += put;
        n -= put;
    }
    if (n > 0 && buf_append(&c->out, p, n, out_max) == -1) {
        conn_set_reason(c, "out of memory for its replies");
        return -1;
    }
    return 0;
}

/* ---- chat ---- */

/* chat_in's deliver: queue a line from c for every other client; each
 * one's EV_WRITE sends it (on_writable), as Redis does.  Nothing here
 * writes or touches, so the activity-ordered list stays as it is while it
 * is walked.  A client whose queue would pass its bound is disconnected
 * instead. */
static int broadcast(void *ctx, const char *line, size_t len)
{
    struct conn *c = ctx;
    size_t bound = chat_queue_max(srv.o.max_frame);
    for (struct conn *t = cs.head; t != NULL; t = t->next) {
        if (t == c || (t->flags & (CONN_CLOSE_ASAP | CONN_READ_EOF)))
            continue;
        if (chat_enqueue(&t->out, bound, c->id, line, len) == -1) {
            char why[96];
            snprintf(why, sizeof why, "chat queue over %zu bytes (not reading fast enough)", bound);
            conn_kill(&cs, t, why);
        } else if (ev_loop_set(loop, t->fd, conn_mask(t)) == -1) {
            conn_set_reason(t, strerror(errno));
            conn_kill(&cs, t, NULL);
        }
    }
    return 0;
}

/* ---- events ---- */

/* EV_READ: one read, its replies, then what to wait for next. */
static void on_readable(struct conn *c)
{
    char why[160];
    size_t n;
    enum io_status st = io_read(c->fd, scratch, sizeof scratch, &n);
    if (st == IO_AGAIN)
        return;
    if (st == IO_ERR) {                              /* reset: just gone */
        conn_close(c);
        return;
    }
    why[0] = '\0';
    int fault = 0;
    if (st == IO_EOF) {
        c->flags |= CONN_READ_EOF;                   /* send what is owed, then close */
        if (srv.o.mode == MODE_CHAT)
            chat_eof(&c->chat, broadcast, c);        /* a real EOF: its last line counts */
        else if (proto_eof(&c->proto, conn_send, c, why, sizeof why) != PROTO_OK) {
            fault = 1;
        }
    } else {
        conn_got(&cs, c, n);
        if (srv.o.mode == MODE_CHAT)
            fault = chat_feed(&c->chat, scratch, n, broadcast, c, why, sizeof why) == -1;
        else if (proto_feed(&c->proto, scratch, n, conn_send, c, why, sizeof why) != PROTO_OK)
            fault = 1;
    }
    if (fault) {
        if (why[0] != '\0')
            conn_set_reason(c, why);
        c->flags |= CONN_READ_EOF;                   /* flush the replies owed, then close */
    }
    conn_update(c);
}

/* EV_WRITE: send what is queued. */
static void on_writable(struct conn *c)
{
    if (conn_flush(c) == -1) {
        conn_close(c);
        return;
    }
    conn_update(c);
}

static void on_accept(void)
{
    char peer[NET_ADDR_MAX];
    for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
        int fd = server_accept(&srv, 1, peer, sizeof peer);
        if (fd < 0)
            return;                                  /* EAGAIN, or paused */
        struct conn *c = conn_accept(&cs, fd, peer, sizeof *c,
                                     fd < max_fds ? NULL : "descriptor table full");
        if (c == NULL)
            continue;
        by_fd[fd] = c;
        if (ev_loop_set(loop, fd, EV_READ) == -1) {
            char why[128];
            if (errno == ERANGE)
                snprintf(why, sizeof why, "descriptor %d is past FD_SETSIZE %d of the select "
                         "backend (use --backend poll or epoll)", fd, FD_SETSIZE);
            else
                snprintf(why, sizeof why, "event loop: %s", strerror(errno));
            conn_set_reason(c, why);
            conn_close(c);
        }
    }
}

/* ---- the loop ---- */

static void start_drain(void)
{
    cs.draining = 1;
    ev_loop_set(loop, srv.lfd, 0);
    server_close_listener(&srv);                    /* new connects are refused */
    /* a worker's clients are counted in the master's line */
    cs.drain_deadline = server_drain_begin(&srv, is_worker ? 0 : (long)cs.n);
}

static void run_loop(void)
{
    for (;;) {
        cs.now = sys_now_ms();
        if (sig_stop && !cs.draining)
            start_drain();
        conns_expire(&cs, conn_close);
        if (cs.draining && cs.n == 0)
            return;
        /* the listener sleeps while accept is paused after EMFILE */
        if (!cs.draining)
            ev_loop_set(loop, srv.lfd, server_paused_ms(&srv) < 0 ? EV_READ : 0);
        int n = ev_loop_wait(loop, conns_next_timeout(&cs));
        if (n == -1) {
            log_warn("event loop:");
            return;
        }
        cs.now = sys_now_ms();
        int accept_ready = 0;
        for (int i = 0; i < n; i++) {
            int fd;
            int ev = ev_loop_ready(loop, i, &fd);
            if (ev == 0)
                continue;
            if (fd == srv.sigfd) {
                sig_drain(fd);
            } else if (fd == srv.lfd) {
                accept_ready = 1;     /* after the clients: their closes free descriptors */
            } else if (by_fd[fd] != NULL && !(by_fd[fd]->flags & CONN_CLOSE_ASAP)) {
                /* write first: it may make room to read again */
                if (ev & EV_WRITE)
                    on_writable(by_fd[fd]);
                if ((ev & EV_READ) && by_fd[fd] != NULL && ev_loop_get(loop, fd) & EV_READ)
                    on_readable(by_fd[fd]);
            }
        }
        conns_reap(&cs, conn_close);
        if (accept_ready && !cs.draining)
            on_accept();
    }
}

/* One event loop over srv.lfd, until the drain ends (backend NULL: the
 * completion loop, loop_uring.c). */
static int serve(const struct ev_backend *backend, int worker)
{
    if (backend == NULL)
        return uring_serve(&srv, me, worker);
    conns_init(&cs, &srv, me);
    long limit = sys_raise_nofile(0);
    long want = (long)srv.o.max_clients + 2 * SERVER_FD_RESERVE;
    max_fds = (int)(limit > 0 && limit < want ? limit : want);
    size_t line_bound = srv.o.mode == MODE_CHAT ? chat_queue_max(srv.o.max_frame) : 0;
    out_max = line_bound > 0 ? line_bound : (size_t)OUT_BOUND + SCRATCH_SIZE + srv.o.max_frame;
    by_fd = calloc((size_t)max_fds, sizeof(struct conn *));
    loop = by_fd != NULL ? ev_loop_new(backend, max_fds) : NULL;
    if (loop == NULL || ev_loop_set(loop, srv.sigfd, EV_READ) == -1 ||
        ev_loop_set(loop, srv.lfd, EV_READ) == -1) {
        log_warn("event loop (%s):", backend->name);
        return 1;
    }
    if (!worker)
        server_announce(&srv);
    run_loop();
    while (cs.head != NULL)
        conn_close(cs.head);
    ev_loop_free(loop);
    free(by_fd);
    return 0;
}

/* --workers N: each worker runs the same loop (select_server/workers.c
 * is the master that starts and supervises them). */
static const struct ev_backend *backend;

static int serve_worker(struct stats_own *own)
{
    me = own;
    is_worker = 1;
    return serve(backend, 1);
}

int main(int argc, char **argv)
{
    char about[512];
    snprintf(about, sizeof about,
             "Model: one thread, non-blocking sockets, one event loop (--backend).\n"
             "A client that leaves %d KiB of echo unread is not read until it drains.\n"
             CHAT_HELP
             "The select backend serves descriptors below FD_SETSIZE (%d) only.\n",
             OUT_BOUND / 1024, FD_SETSIZE);
    const struct opt_model model = {"select_server", OPT_MODES_ALL, workers_opts, about,
                                    workers_check};
    int code;
    if (server_start(&srv, argc, argv, &model, SERVER_WATCH_CHILD, &code) == -1)
        return code;
    backend = ev_backend_find(srv.o.backend);
    char why[256];
    if (strcmp(srv.o.backend, "uring") == 0 && uring_probe(why, sizeof why) == -1) {
        log_warn("io_uring unavailable: %s; use --backend epoll or poll", why);
        server_release(&srv);
        return 1;
    }
    if (backend == NULL && strcmp(srv.o.backend, "uring") != 0) {
        log_warn("--backend %s is not available in this build", srv.o.backend);
        server_release(&srv);
        return 1;
    }
    if (backend != NULL && strcmp(backend->name, "select") == 0 &&
        srv.o.max_clients + SERVER_FD_RESERVE > FD_SETSIZE)
        log_warn("the select backend serves descriptors below FD_SETSIZE %d: room for "
                 "about %d clients, not --max-clients %lu; connections past it are "
                 "closed (use --backend poll or epoll)", FD_SETSIZE,
                 FD_SETSIZE - SERVER_FD_RESERVE, srv.o.max_clients);
    int rc = srv.o.workers > 1 ? workers_run(&srv, serve_worker) : serve(backend, 0);
    if (rc == 0)
        server_finish(&srv);
    else
        server_release(&srv);    /* no normal shutdown line after a failure */
    return rc;
}
