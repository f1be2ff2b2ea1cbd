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
 * only ever looks at the head of the list.
 *
 * Signals arrive through the self-pipe (common/sig.c), an ordinary
 * descriptor in the loop.  On SIGINT/SIGTERM the listener is closed and
 * the loop runs on until the clients are gone or --drain runs out.
 *
 * --workers N: N processes, each with its own listener on the same port
 * (SO_REUSEPORT) and its own loop; the kernel spreads connections over
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
#include "common/kids.h"
#include "common/log.h"
#include "common/net.h"
#include "common/proto.h"
#include "common/server.h"
#include "common/sig.h"
#include "common/sys.h"
#include "select_server/ev.h"

#define SCRATCH_SIZE (64 * 1024)   /* one read, shared by every client */
#define OUT_BOUND (64 * 1024)      /* unsent bytes at which reading stops */
#define ACCEPTS_PER_TURN 256       /* others get their turn too */
#define WORKER_GRACE_MS 2000

enum { CONN_READ_EOF = 1, CONN_CLOSE_ASAP = 2 };

struct conn {
    int fd;
    unsigned flags;
    uint64_t id;
    uint64_t bytes;               /* received */
    int64_t last_active;          /* ms */
    struct conn *prev, *next;     /* all clients, least recently active first */
    struct conn *dead_next;       /* CONN_CLOSE_ASAP: closed at the end of the turn */
    char *reason;                 /* why the server ends it, or NULL */
    struct buf out;               /* replies or chat lines not yet written */
    struct proto proto;           /* decoder state (echo, line, framed) */
    struct chat_in chat;          /* chat mode: its line decoder */
};

static struct server srv;
static struct ev_loop *loop;
static struct conn **by_fd;       /* conn of each descriptor */
static int max_fds;
static struct conn *head, *tail, *dead;
static size_t nconns;
static int64_t now;               /* ms, read once per turn */
static int draining;
static int64_t drain_deadline;
static size_t out_max;            /* hard cap of a client's buffer */
static struct stats_own *me;      /* a worker's share of the counters, or NULL */
static int is_worker;              /* this process is a --workers worker */
static char scratch[SCRATCH_SIZE];

/* ---- a client's bookkeeping ---- */

static void list_unlink(struct conn *c)
{
    *(c->prev ? &c->prev->next : &head) = c->next;
    *(c->next ? &c->next->prev : &tail) = c->prev;
    c->prev = c->next = NULL;
}

static void list_append(struct conn *c)
{
    c->prev = tail;
    c->next = NULL;
    *(tail ? &tail->next : &head) = c;
    tail = c;
}

/* Something was read or written: the client moves to the end of the
 * idle order. */
static void touch(struct conn *c)
{
    c->last_active = now;
    if (srv.o.idle_timeout > 0 && c != tail) {
        list_unlink(c);
        list_append(c);
    }
}

static void set_reason(struct conn *c, const char *why)
{
    if (c->reason == NULL && why != NULL)
        c->reason = strdup(why);
}

static void conn_close(struct conn *c)
{
    log_client_end(c->id, c->bytes, c->reason, srv.access_fd);
    if (me != NULL)
        atomic_fetch_sub(&me->bytes, c->bytes);
    atomic_fetch_add(&srv.st->bytes, c->bytes);
    stats_seat_give(srv.st, me);
    ev_loop_set(loop, c->fd, 0);
    close(c->fd);
    by_fd[c->fd] = NULL;
    list_unlink(c);
    nconns--;
    buf_free(&c->out);
    proto_free(&c->proto);
    chat_in_free(&c->chat);
    free(c->reason);
    free(c);
}

/* End c later in this turn (others may be iterating over the list). */
static void conn_kill(struct conn *c, const char *why)
{
    if (c->flags & CONN_CLOSE_ASAP)
        return;
    set_reason(c, why);
    c->flags |= CONN_CLOSE_ASAP;
    c->dead_next = dead;
    dead = c;
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
        set_reason(c, strerror(errno));
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
        touch(c);
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
            touch(c);
        p += put;
        n -= put;
    }
    if (n > 0 && buf_append(&c->out, p, n, out_max) == -1) {
        set_reason(c, "out of memory for its replies");
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
    for (struct conn *t = head; t != NULL; t = t->next) {
        if (t == c || (t->flags & (CONN_CLOSE_ASAP | CONN_READ_EOF)))
            continue;
        if (chat_enqueue(&t->out, bound, c->id, line, len) == -1) {
            char why[96];
            snprintf(why, sizeof why, "chat queue over %zu bytes (not reading fast enough)", bound);
            conn_kill(t, why);
        } else if (ev_loop_set(loop, t->fd, conn_mask(t)) == -1) {
            set_reason(t, strerror(errno));
            conn_kill(t, NULL);
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
        c->bytes += n;
        if (me != NULL)
            atomic_fetch_add_explicit(&me->bytes, n, memory_order_relaxed);
        touch(c);
        if (srv.o.mode == MODE_CHAT)
            fault = chat_feed(&c->chat, scratch, n, broadcast, c, why, sizeof why) == -1;
        else if (proto_feed(&c->proto, scratch, n, conn_send, c, why, sizeof why) != PROTO_OK)
            fault = 1;
    }
    if (fault) {
        if (why[0] != '\0')
            set_reason(c, why);
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
        /* take a seat first: with --workers the count is shared */
        if (stats_seat_take(srv.st, me, srv.o.max_clients) == -1) {
            server_refuse(&srv, fd, peer, NULL);
            continue;
        }
        struct conn *c = fd < max_fds ? calloc(1, sizeof *c) : NULL;
        if (c == NULL) {
            stats_seat_give(srv.st, me);
            server_refuse(&srv, fd, peer, fd < max_fds ? "out of memory" : "descriptor table full");
            continue;
        }
        c->fd = fd;
        c->id = stats_number(srv.st);
        c->last_active = now;
        proto_init(&c->proto, srv.o.mode, srv.o.max_frame);
        chat_in_init(&c->chat, srv.o.max_frame);
        by_fd[fd] = c;
        list_append(c);
        nconns++;
        log_client_start(c->id, peer);
        if (ev_loop_set(loop, fd, EV_READ) == -1) {
            char why[128];
            if (errno == ERANGE)
                snprintf(why, sizeof why, "descriptor %d is past FD_SETSIZE %d of the select "
                         "backend (use --backend poll or epoll)", fd, FD_SETSIZE);
            else
                snprintf(why, sizeof why, "event loop: %s", strerror(errno));
            set_reason(c, why);
            conn_close(c);
        }
    }
}

/* ---- the loop ---- */

static void start_drain(void)
{
    draining = 1;
    ev_loop_set(loop, srv.lfd, 0);
    server_close_listener(&srv);                    /* new connects are refused */
    /* a worker's clients are counted in the master's line */
    drain_deadline = server_drain_begin(&srv, is_worker ? 0 : (long)nconns);
}

/* Idle clients are at the head of the list; the drain has a deadline. */
static void expire(void)
{
    int64_t idle_ms = (int64_t)srv.o.idle_timeout * 1000;
    while (idle_ms > 0 && head != NULL && now - head->last_active >= idle_ms) {
        char why[64];
        snprintf(why, sizeof why, "idle for %u s (--idle-timeout)", srv.o.idle_timeout);
        set_reason(head, why);
        conn_close(head);
    }
    if (draining && server_drain_over(drain_deadline)) {
        char why[64];
        snprintf(why, sizeof why, "drain time of %u s ran out", srv.o.drain);
        while (head != NULL) {
            set_reason(head, why);
            conn_close(head);
        }
    }
}

/* How long the loop may sleep: until the next timer, if any. */
static int next_timeout(void)
{
    int64_t t = -1;
    if (srv.o.idle_timeout > 0 && head != NULL)
        t = head->last_active + (int64_t)srv.o.idle_timeout * 1000 - now;
    if (draining && (t < 0 || drain_deadline - now < t))
        t = drain_deadline - now;
    int paused = draining ? -1 : server_paused_ms(&srv);
    if (paused >= 0 && (t < 0 || paused < t))
        t = paused;
    return t < 0 ? -1 : (int)(t > 0 ? t : 0);
}

static void reap_dead(void)
{
    while (dead != NULL) {
        struct conn *c = dead;
        dead = c->dead_next;
        conn_close(c);
    }
}

static void run_loop(void)
{
    for (;;) {
        now = sys_now_ms();
        if (sig_stop && !draining)
            start_drain();
        expire();
        if (draining && nconns == 0)
            return;
        /* the listener sleeps while accept is paused after EMFILE */
        if (!draining)
            ev_loop_set(loop, srv.lfd, server_paused_ms(&srv) < 0 ? EV_READ : 0);
        int n = ev_loop_wait(loop, next_timeout());
        if (n == -1) {
            log_warn("event loop:");
            return;
        }
        now = sys_now_ms();
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
        reap_dead();
        if (accept_ready && !draining)
            on_accept();
    }
}

/* One event loop over srv.lfd, until the drain ends. */
static int serve(const struct ev_backend *backend, int worker)
{
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
    while (head != NULL)
        conn_close(head);
    ev_loop_free(loop);
    free(by_fd);
    return 0;
}

/* --workers N: N copies of the loop, each on its own listener. */
struct workers {
    const struct ev_backend *backend;
    struct kids *kids;
    int *lfds;                  /* kept by the master for replacements */
    unsigned n;
};

/* kids_supervise's start: the worker for slot, on lfds[slot]. */
static pid_t start_worker(size_t slot, void *ctx)
{
    struct workers *w = ctx;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* the worker: its own listener, its own self-pipe, its own share */
    for (unsigned k = 0; k < w->n; k++)
        if (k != slot)
            close(w->lfds[k]);
    srv.lfd = w->lfds[slot];
    me = &w->kids->kid[slot].own;
    is_worker = 1;
    sig_close();
    sig_handle(SIGCHLD, SIG_DFL, 0);
    srv.sigfd = sig_setup(0);
    int rc = srv.sigfd < 0 || kids_child_init(parent) == -1 ? 1 : serve(w->backend, 1);
    server_close_listener(&srv);
    sig_close();
    if (srv.access_fd >= 0)
        close(srv.access_fd);
    if (srv.reserve_fd >= 0)
        close(srv.reserve_fd);
    _exit(rc);
}

static int run_workers(const struct ev_backend *backend)
{
    struct workers w = {backend, kids_new(srv.o.workers, "worker", srv.st),
                        calloc(srv.o.workers, sizeof(int)), srv.o.workers};
    if (w.lfds == NULL || w.kids == NULL) {
        log_warn("workers:");
        free(w.lfds);
        kids_free(w.kids);
        return 1;
    }
    w.lfds[0] = srv.lfd;
    for (unsigned i = 1; i < w.n; i++) {
        char err[256];
        if ((w.lfds[i] = net_listen_again(srv.lfd, err, sizeof err)) == -1) {
            log_warn("worker %u: %s", i + 1, err);
            while (--i > 0)
                close(w.lfds[i]);
            free(w.lfds);
            kids_free(w.kids);
            return 1;
        }
    }
    server_announce(&srv);
    srv.lfd = -1;              /* the master never accepts */
    kids_supervise(w.kids, start_worker, &w);
    while (!sig_stop && w.kids->n > 0) {
        if (server_wait(&srv, 0) < 0)
            break;
        kids_reap(w.kids);
    }
    /* the master's copies go; the workers close theirs as they drain,
     * and then the kernel refuses new connections */
    for (unsigned i = 0; i < w.n; i++)
        close(w.lfds[i]);
    free(w.lfds);
    int rc = 0;
    if (w.kids->n == 0) {
        log_warn("every worker is gone; stopping");
        rc = 1;
    }
    int64_t deadline = server_drain_begin(&srv, rc == 0 ? atomic_load(&srv.st->active) : 0);
    kids_stop(w.kids, SIGTERM, srv.sigfd, deadline + WORKER_GRACE_MS);
    kids_free(w.kids);
    return rc;
}

static const char *const backends[] = {"poll", "select", "epoll", "uring", NULL};

static int set_backend(struct opts *o, const char *arg, char *err, size_t errlen)
{
    int i = opt_choice("backend", arg, backends, err, errlen);
    if (i < 0)
        return -1;
    o->backend = backends[i];
    return 0;
}

static int set_workers(struct opts *o, const char *arg, char *err, size_t errlen)
{
    unsigned long long v;
    if (opt_range("workers", arg, 1, 64, &v, err, errlen) == -1)
        return -1;
    o->workers = (unsigned)v;
    return 0;
}

/* Chat needs one client list; each worker would be a room of its own. */
static int check(struct opts *o, char *err, size_t errlen)
{
    if (o->backend == NULL)
        o->backend = "poll";
    if (o->mode != MODE_CHAT || o->workers < 2)
        return 0;
    snprintf(err, errlen, "--mode chat needs one shared list of clients, and "
             "--workers %u would make %u separate rooms; use one worker", o->workers, o->workers);
    return -1;
}

static const struct opt_own own_opts[] = {
    {"backend", "      --backend NAME      event loop: poll, select, epoll or uring\n"
                "                          (io_uring, Linux) (default poll)\n", set_backend},
    {"workers", "      --workers N         processes, each with its own event loop, sharing\n"
                "                          the port (1-64, default 1; not with chat)\n", set_workers},
    {NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
    char about[512];
    snprintf(about, sizeof about,
             "Model: one thread, non-blocking sockets, one event loop (--backend).\n"
             "A client that leaves %d KiB of echo unread is not read until it drains.\n"
             CHAT_HELP
             "The select backend serves descriptors below FD_SETSIZE (%d) only.\n",
             OUT_BOUND / 1024, FD_SETSIZE);
    const struct opt_model model = {"select_server", OPT_MODES_ALL, own_opts, about, check};
    int code;
    if (server_start(&srv, argc, argv, &model, SERVER_WATCH_CHILD, &code) == -1)
        return code;
    const struct ev_backend *backend = ev_backend_find(srv.o.backend);
    if (backend == NULL) {
        log_warn("--backend %s is not available in this build", srv.o.backend);
        return 1;
    }
    if (strcmp(backend->name, "select") == 0 &&
        srv.o.max_clients + SERVER_FD_RESERVE > FD_SETSIZE)
        log_warn("the select backend serves descriptors below FD_SETSIZE %d: room for "
                 "about %d clients, not --max-clients %lu; connections past it are "
                 "closed (use --backend poll or epoll)", FD_SETSIZE,
                 FD_SETSIZE - SERVER_FD_RESERVE, srv.o.max_clients);
    int rc = srv.o.workers > 1 ? run_workers(backend) : serve(backend, 0);
    if (rc == 0)                 /* no normal shutdown line after a failure */
        server_finish(&srv);
    return rc;
}
