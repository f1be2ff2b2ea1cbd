/* loop_uring: select_server --backend uring, the completion model.
 *
 * The readiness loop (select_server.c) asks "which sockets are ready?"
 * and then makes one read or write system call per ready socket.  This
 * loop instead hands the kernel the I/O itself and collects the results:
 *   accept     one multishot ACCEPT: a completion per new client, no
 *              resubmission (re-armed when an error such as EMFILE ends it)
 *   receive    one multishot RECV per client, IOSQE_BUFFER_SELECT: the
 *              kernel picks a buffer from a shared ring only when data
 *              arrives, so an idle client holds no buffer at all; the
 *              buffer goes back to the ring as soon as proto.c has made
 *              its replies
 *   send       replies collect in the client's out buffer; one SEND per
 *              client in flight, submitted once per loop turn, so the
 *              replies of many reads go out together
 *   signals    a multishot POLL on the self-pipe
 *   timers     the wait itself times out (IORING_ENTER_EXT_ARG)
 * and one io_uring_enter per turn submits everything queued and reaps
 * every completion ready, waiting a moment for a batch when busy (see
 * turn): a busy server makes far fewer system calls than it serves
 * messages.
 *
 * A send's bytes must stay put until it completes, so while one is in
 * flight new replies go to a second buffer (more), which becomes out when
 * out is sent.  Backpressure: a client with OUT_BOUND bytes unsent has its
 * receive cancelled and re-armed only once it drains; what the kernel had
 * already received for it by then waits in its buffers (select_server/
 * stash.c), as does input past its share of a turn.  Ending a client
 * shuts its socket down, which ends what it has in flight; its memory and
 * descriptor go when the last of those completes (user_data points at it
 * until then). */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/chat.h"
#include "common/log.h"
#include "common/net.h"
#include "common/sig.h"
#include "common/sys.h"
#include "select_server/conn.h"
#include "select_server/loop_uring.h"
#include "select_server/stash.h"
#include "select_server/uring.h"

#define OUT_BOUND (64 * 1024)     /* unsent bytes at which receiving stops */
#define RING_SQES 1024
#define RING_CQES 16384           /* room for a burst from thousands of clients */
#define NBUFS 256                 /* provided receive buffers, shared by all: */
#define BUF_SIZE 16384            /* 4 MiB; 1.1x the stream MB/s of 512 x 4 KiB */
#define BUF_GROUP 1
#define ACCEPTS_PER_TURN 256
#define WAIT_MAX_MS 1000          /* the longest sleep (see turn) */
#define BATCH_FROM 8              /* a turn this busy starts batching (see turn) */
#define BATCH_MAX 64              /* completions a busy loop waits to gather... */
#define BATCH_WAIT_US 50          /* ...for this long at most, once it has one */
#define TURN_BYTES (64 * 1024)    /* input taken from one client per turn */
#define HELD_UNSENT (4 * OUT_BOUND) /* unsent at which held input waits */
#define HELD_FAIR 8               /* buffers a client may hold when the ring runs low */
#define HOLD_MAX 1024             /* replies sent from the receive buffer: small
                                     messages; a stream is better copied into one
                                     big send per turn than sent a buffer at a time */

/* What a completion is about: the low bits of user_data (a struct uconn
 * is at least 8-aligned, so the rest is its address). */
enum { T_ACCEPT = 1, T_LISTEN, T_SIGNAL, T_RECV, T_SEND, T_CANCEL, T_MASK = 7 };

/* State beyond struct conn: what is in flight. */
enum { U_RECV = 1, U_SEND = 2, U_RECV_CANCEL = 4, U_ENDED = 8, U_DIRTY = 16 };

struct uconn {
    struct conn c;                /* first: conn.c knows only this part */
    unsigned st;                  /* U_* */
    struct buf more;              /* replies made while a send is in flight */
    struct uconn *dirty_next;     /* U_DIRTY: look at it before the next wait */
    struct stash *stash;          /* input past this turn's share, or NULL */
    const char *hold_p;           /* replies sent straight from a received */
    size_t hold_n;                /* buffer (hold_bid), ahead of out, or NULL */
    unsigned hold_bid;
    uint64_t turn;                /* the turn turn_bytes counts */
    size_t turn_bytes;
};

static struct server *srv;
static int is_worker;
static struct conns cs;
static struct uring ring;
static struct uring_bufs bufs;
static int accept_armed, signal_armed;
static int accept_polled;         /* after an accept error: wait for POLLIN first */
static struct uconn *dirty;
static struct conn *zombies;      /* ended, with requests still in flight */
static size_t out_max;            /* hard cap of each of a client's buffers */
static uint64_t turn_no;
/* Batching (see turn): whether the loop is busy enough to gather
 * completions, and the sends submitted since the last wait. */
static int batching;
static unsigned sends_queued;
static unsigned bufs_out;         /* provided buffers the ring does not have */
/* The received buffer proto.c is reading now (on_data), so that a reply
 * which is a run of it can be sent from it without a copy. */
static const char *in_base;
static size_t in_len;
static unsigned in_bid;
static int in_kept;               /* a reply holds it: not given back yet */

static void on_data(struct uconn *u, const char *p, size_t n);
static void stash_drop(struct uconn *u);

/* ---- submissions ---- */

/* An SQE, handing the full ring over first if need be. */
static struct io_uring_sqe *sqe_get(void)
{
    struct io_uring_sqe *sqe = uring_sqe(&ring);
    while (sqe == NULL) {
        if (uring_submit(&ring, 0, 0) == -1 && errno != EINTR && errno != EAGAIN &&
            errno != EBUSY)
            log_warn("io_uring_enter:");
        sqe = uring_sqe(&ring);
    }
    return sqe;
}

static uint64_t tag(struct uconn *u, unsigned t)
{
    return (uint64_t)(uintptr_t)u | t;
}

static void submit_cancel(uint64_t target)
{
    struct io_uring_sqe *sqe = sqe_get();
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->fd = -1;
    sqe->addr = target;
    sqe->user_data = T_CANCEL;
}

static void arm_recv(struct uconn *u)
{
    struct io_uring_sqe *sqe = sqe_get();
    sqe->opcode = IORING_OP_RECV;
    sqe->fd = u->c.fd;
    sqe->ioprio = IORING_RECV_MULTISHOT;
    sqe->flags = IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUF_GROUP;
    sqe->user_data = tag(u, T_RECV);
    u->st |= U_RECV;
    u->st &= ~(unsigned)U_RECV_CANCEL;
}

static void submit_send(struct uconn *u)
{
    struct io_uring_sqe *sqe = sqe_get();
    sqe->opcode = IORING_OP_SEND;
    sqe->fd = u->c.fd;
    sqe->addr = (uint64_t)(uintptr_t)(u->hold_p != NULL ? u->hold_p : buf_head(&u->c.out));
    sqe->len = (uint32_t)(u->hold_p != NULL ? u->hold_n : buf_len(&u->c.out));
    sqe->msg_flags = MSG_NOSIGNAL;
    sqe->user_data = tag(u, T_SEND);
    u->st |= U_SEND;
    sends_queued++;
}

/* Normally one multishot accept.  Out of descriptors, accept fails at
 * once whether or not a client is waiting, so re-arming it would spin:
 * then wait for the listener to be readable and accept by hand until
 * descriptors are free again. */
static void arm_accept(void)
{
    if (accept_armed || cs.draining || srv->lfd < 0 || server_paused_ms(srv) >= 0)
        return;
    struct io_uring_sqe *sqe = sqe_get();
    sqe->fd = srv->lfd;
    if (accept_polled) {
        sqe->opcode = IORING_OP_POLL_ADD;
        sqe->poll32_events = POLLIN;
        sqe->user_data = T_LISTEN;
    } else {
        sqe->opcode = IORING_OP_ACCEPT;
        sqe->ioprio = IORING_ACCEPT_MULTISHOT;
        sqe->accept_flags = SOCK_CLOEXEC;
        sqe->user_data = T_ACCEPT;
    }
    accept_armed = 1;
}

static void arm_signal(void)
{
    if (signal_armed)
        return;
    struct io_uring_sqe *sqe = sqe_get();
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = srv->sigfd;
    sqe->len = IORING_POLL_ADD_MULTI;
    sqe->poll32_events = POLLIN;
    sqe->user_data = T_SIGNAL;
    signal_armed = 1;
}

/* ---- a client's state ---- */

static void mark_dirty(struct uconn *u)
{
    if (u->st & U_DIRTY)
        return;
    u->st |= U_DIRTY;
    u->dirty_next = dirty;
    dirty = u;
}

static size_t unsent(const struct uconn *u)
{
    return u->hold_n + buf_len(&u->c.out) + buf_len(&u->more);
}

/* The client is over: account for it now, cancel what it has in flight;
 * it is freed once nothing is (see flush_dirty). */
static void u_close(struct conn *c)
{
    struct uconn *u = (struct uconn *)c;
    if (u->st & U_ENDED)
        return;
    conn_end(&cs, c);
    u->st |= U_ENDED;
    stash_drop(u);
    c->next = zombies;                               /* off the client list: on this one */
    if (zombies != NULL)
        zombies->prev = c;
    zombies = c;
    /* shutdown ends whatever it has in flight (the receive sees EOF, a
     * send EPIPE) and the peer sees the end now, not when those
     * completions have been reaped; a cancel could miss a request that
     * is just running */
    if (u->st & (U_RECV | U_SEND))
        (void)shutdown(c->fd, SHUT_RDWR);
    mark_dirty(u);
}

/* Give a provided buffer back to the kernel. */
static void buf_back(unsigned bid)
{
    bufs_out--;
    uring_bufs_put(&bufs, bid);
}

/* ---- input held for later turns ----
 *
 * One multishot receive may fill many buffers before the loop sees the
 * first (the kernel reads while data is there), yet no client should get
 * more than TURN_BYTES of the loop's attention per turn: a chat talker
 * would otherwise pile a megabyte on every listener before any of it is
 * sent.  So input past a client's share waits here, its buffers held and
 * its receive cancelled, and is taken a share per turn. */

/* on_data over received buffer bid; 1 if a reply now holds it. */
static int on_buffer(struct uconn *u, unsigned bid, size_t n)
{
    in_base = uring_buf(&bufs, bid);
    in_len = n;
    in_bid = bid;
    in_kept = 0;
    on_data(u, in_base, n);
    in_base = NULL;
    return in_kept;
}

static int budget_left(struct uconn *u)
{
    if (u->turn != turn_no) {
        u->turn = turn_no;
        u->turn_bytes = 0;
    }
    return u->turn_bytes < TURN_BYTES;
}

/* Backpressure for received input: none is turned into replies while
 * HELD_UNSENT is unsent, so a client whose peer reads slowly holds
 * buffers, not a growing queue.  (At OUT_BOUND, where receiving stops,
 * a stream lost 12% of its MB/s: sends of 64 KiB at most, a gap after
 * each.)  Unless its held buffers starve the others (a quarter of the
 * ring left, and it holds more than HELD_FAIR): then they are copied
 * after all, memory rather than a stalled ring, a turn's share at a
 * time. */
static int held_blocked(const struct uconn *u)
{
    return unsent(u) >= HELD_UNSENT &&
           !(bufs_out > NBUFS - NBUFS / 4 && stash_len(u->stash) > HELD_FAIR);
}

/* Give every held buffer back (the client is gone or reads no more). */
static void stash_drop(struct uconn *u)
{
    struct held h;
    while (stash_pop(u->stash, &h))
        if (!h.eof)
            buf_back(h.bid);
    stash_free(&u->stash);
}

/* Take this turn's share of what is held. */
static void stash_run(struct uconn *u)
{
    struct held h;
    while (!(u->c.flags & CONN_READ_EOF) && !held_blocked(u) && budget_left(u) &&
           stash_pop(u->stash, &h)) {
        if (h.eof) {
            on_data(u, NULL, 0);
            continue;
        }
        if (!on_buffer(u, h.bid, h.len))
            buf_back(h.bid);
        u->turn_bytes += h.len;
    }
    if (stash_len(u->stash) == 0 || (u->c.flags & CONN_READ_EOF))
        stash_drop(u);
}

/* Nothing names an ended client any more: let it go. */
static void u_free(struct uconn *u)
{
    struct conn *c = &u->c;
    *(c->prev != NULL ? &c->prev->next : &zombies) = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (u->hold_p != NULL)
        buf_back(u->hold_bid);                       /* no send reads it any more */
    buf_free(&u->more);
    conn_free(c);
}

/* Stop receiving (EOF, a protocol fault, backpressure). */
static void stop_recv(struct uconn *u)
{
    if ((u->st & U_RECV) && !(u->st & U_RECV_CANCEL)) {
        submit_cancel(tag(u, T_RECV));
        u->st |= U_RECV_CANCEL;
    }
}

/* What a live client needs now, as conn_update in select_server.c:
 * close it when all owed is sent after EOF, else send what is queued and
 * receive unless it sent EOF or has OUT_BOUND unsent. */
static void u_update(struct uconn *u)
{
    struct conn *c = &u->c;
    if (!(u->st & U_SEND) && u->hold_p == NULL && buf_len(&c->out) == 0 &&
        buf_len(&u->more) > 0) {
        struct buf t = c->out;                       /* out is empty: more goes next */
        c->out = u->more;
        u->more = t;
    }
    if ((c->flags & CONN_READ_EOF) && unsent(u) == 0 && !(u->st & U_SEND)) {
        u_close(c);                                  /* all owed is sent: done */
        return;
    }
    if (!(u->st & U_SEND) && (u->hold_p != NULL || buf_len(&c->out) > 0))
        submit_send(u);
    if (c->flags & CONN_READ_EOF || unsent(u) >= OUT_BOUND || u->stash != NULL)
        stop_recv(u);
    else if (!(u->st & U_RECV))
        arm_recv(u);
}

/* Before the next wait: send, re-arm, or free each client touched this
 * turn. */
static void flush_dirty(void)
{
    struct uconn *later = NULL;                      /* input held for the next turn */
    while (dirty != NULL) {
        struct uconn *u = dirty;
        dirty = u->dirty_next;
        u->st &= ~(unsigned)U_DIRTY;
        if (!(u->st & U_ENDED)) {
            if (u->stash != NULL)
                stash_run(u);
            if (u->st & U_ENDED)
                continue;                            /* a fault closed it at once */
            u_update(u);
            /* more held: the next turn takes its share, unless it waits
             * for a send to drain (that completion brings it back) */
            if (u->stash != NULL && !held_blocked(u) && !(u->st & (U_ENDED | U_DIRTY))) {
                u->st |= U_DIRTY;
                u->dirty_next = later;
                later = u;
            }
        } else if (!(u->st & (U_RECV | U_SEND))) {
            u_free(u);
        }
    }
    dirty = later;
}

/* Where new replies go: out, unless a send from out is in flight or
 * older replies already wait in more (order is kept). */
static struct buf *queue_of(struct uconn *u)
{
    return (u->st & U_SEND) || u->hold_p != NULL || buf_len(&u->more) > 0 ? &u->more
                                                                           : &u->c.out;
}

/* proto's emit: queue replies; the turn's end sends them. */
static int u_emit(void *ctx, const char *p, size_t n)
{
    struct uconn *u = ctx;
    if (in_base != NULL && p >= in_base && p + n <= in_base + in_len && !(u->st & U_SEND) &&
        buf_len(&u->more) == 0) {
        /* a run of the received buffer: send from it, no copy (if the
         * ring keeps an eighth of its buffers for the others) */
        if (u->hold_p != NULL && u->hold_bid == in_bid && p == u->hold_p + u->hold_n) {
            u->hold_n += n;
            mark_dirty(u);
            return 0;
        }
        if (u->hold_p == NULL && buf_len(&u->c.out) == 0 && bufs_out < NBUFS - NBUFS / 8 &&
            in_len <= HOLD_MAX) {
            u->hold_p = p;
            u->hold_n = n;
            u->hold_bid = in_bid;
            in_kept = 1;
            mark_dirty(u);
            return 0;
        }
    }
    struct buf *q = queue_of(u);
    if (buf_append(q, p, n, out_max) == -1) {
        conn_set_reason(&u->c, "out of memory for its replies");
        return -1;
    }
    mark_dirty(u);
    return 0;
}

/* ---- chat ---- */

/* chat_in's deliver: queue a line from c for every other client (the
 * turn's end sends it); a client whose queue would pass its bound is
 * disconnected instead. */
static int broadcast(void *ctx, const char *line, size_t len)
{
    struct conn *c = ctx;
    size_t bound = chat_queue_max(srv->o.max_frame);
    for (struct conn *t = cs.head; t != NULL; t = t->next) {
        struct uconn *u = (struct uconn *)t;
        if (t == c || (t->flags & (CONN_CLOSE_ASAP | CONN_READ_EOF)))
            continue;
        /* out and more together stay within the bound */
        struct buf *q = queue_of(u);
        size_t other = unsent(u) - buf_len(q);
        if (other > bound || chat_enqueue(q, bound - other, c->id, line, len) == -1) {
            char why[96];
            snprintf(why, sizeof why, "chat queue over %zu bytes (not reading fast enough)", bound);
            conn_kill(&cs, t, why);
        } else {
            mark_dirty(u);
        }
    }
    return 0;
}

/* ---- completions ---- */

/* n > 0 bytes received into p, or EOF (n == 0). */
static void on_data(struct uconn *u, const char *p, size_t n)
{
    struct conn *c = &u->c;
    char why[160] = "";
    int fault;
    if (n == 0) {
        c->flags |= CONN_READ_EOF;                   /* send what is owed, then close */
        if (srv->o.mode == MODE_CHAT)
            fault = chat_eof(&c->chat, broadcast, c) == -1; /* a real EOF: its last line counts */
        else
            fault = proto_eof(&c->proto, u_emit, u, why, sizeof why) != PROTO_OK;
    } else {
        conn_got(&cs, c, n);
        if (srv->o.mode == MODE_CHAT)
            fault = chat_feed(&c->chat, p, n, broadcast, c, why, sizeof why) == -1;
        else
            fault = proto_feed(&c->proto, p, n, u_emit, u, why, sizeof why) != PROTO_OK;
    }
    if (fault) {
        if (why[0] != '\0')
            conn_set_reason(c, why);
        c->flags |= CONN_READ_EOF;                   /* flush the replies owed, then close */
    }
    mark_dirty(u);
}

static void on_recv(struct uconn *u, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        u->st &= ~(unsigned)(U_RECV | U_RECV_CANCEL); /* this receive is over */
    int live = !(u->st & U_ENDED) && !(u->c.flags & CONN_READ_EOF);
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        bufs_out++;
        struct held h = {(uint16_t)bid, 0, (uint32_t)cqe->res};
        if (live && cqe->res > 0 && u->stash == NULL && !held_blocked(u) && budget_left(u)) {
            if (on_buffer(u, bid, (size_t)cqe->res))
                bid = UINT16_MAX + 1u;                /* a reply is sent from it */
            u->turn_bytes += (size_t)cqe->res;
        } else if (live && cqe->res > 0 && stash_push(&u->stash, h) == 0) {
            stop_recv(u);                            /* past its share, or backed up: later */
            bid = UINT16_MAX + 1u;
        } else if (live && cqe->res > 0) {
            conn_set_reason(&u->c, "out of memory for its input");
            u_close(&u->c);
        }
        if (bid <= UINT16_MAX)
            buf_back(bid);                           /* copied out: the ring has it back */
    } else if (live && cqe->res == 0) {
        if (u->stash == NULL || stash_push(&u->stash, (struct held){0, 1, 0}) == -1)
            on_data(u, NULL, 0);
    } else if (live && cqe->res < 0 && cqe->res != -ENOBUFS && cqe->res != -ECANCELED) {
        u_close(&u->c);                              /* reset: just gone */
    }
    mark_dirty(u);                                   /* re-arm, or free */
}

static void on_send(struct uconn *u, const struct io_uring_cqe *cqe)
{
    u->st &= ~(unsigned)U_SEND;
    if (!(u->st & U_ENDED)) {
        if (cqe->res < 0) {
            u_close(&u->c);                          /* EPIPE, reset: gone */
        } else if (cqe->res > 0 && u->hold_p != NULL) {
            u->hold_p += cqe->res;
            u->hold_n -= (size_t)cqe->res;
            if (u->hold_n == 0) {
                buf_back(u->hold_bid);               /* sent: the ring has it back */
                u->hold_p = NULL;
            }
            conn_touch(&cs, &u->c);
        } else if (cqe->res > 0) {
            buf_consume(&u->c.out, (size_t)cqe->res);
            conn_touch(&cs, &u->c);
        }
    }
    mark_dirty(u);
}

static void new_client(int fd, const char *peer)
{
    char text[NET_ADDR_MAX] = "?";
    if (peer == NULL && !srv->o.quiet) {             /* multishot accept brings no address */
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
            (void)net_format_addr((struct sockaddr *)&ss, len, text, sizeof text);
    }
    struct conn *c = conn_accept(&cs, fd, peer != NULL ? peer : text, sizeof(struct uconn), NULL);
    if (c != NULL)
        mark_dirty((struct uconn *)c);
}

/* The listener is readable after an accept error: accept by hand, where
 * server_accept sheds or pauses as the readiness loop does.  Once a
 * client is accepted again, the multishot accept comes back. */
static void accept_by_hand(void)
{
    char peer[NET_ADDR_MAX];
    for (int i = 0; i < ACCEPTS_PER_TURN && !cs.draining; i++) {
        int fd = server_accept(srv, 0, peer, sizeof peer);
        if (fd < 0)
            return;
        accept_polled = 0;
        new_client(fd, peer);
    }
}

static void on_accept(const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        accept_armed = 0;
    if (cqe->res >= 0 && cs.draining)
        close(cqe->res);                             /* accepted as the drain began */
    else if (cqe->res >= 0)
        new_client(cqe->res, NULL);
    else if (cqe->res != -ECANCELED && !cs.draining)
        accept_polled = 1;                           /* EMFILE and the like */
}

static void on_cqe(const struct io_uring_cqe *cqe)
{
    struct uconn *u = (struct uconn *)(uintptr_t)(cqe->user_data & ~(uint64_t)T_MASK);
    switch (cqe->user_data & T_MASK) {
    case T_ACCEPT:
        on_accept(cqe);
        break;
    case T_LISTEN:
        accept_armed = 0;
        if (cqe->res > 0 && !cs.draining)
            accept_by_hand();
        break;
    case T_SIGNAL:
        if (!(cqe->flags & IORING_CQE_F_MORE))
            signal_armed = 0;
        sig_drain(srv->sigfd);
        break;
    case T_RECV:
        on_recv(u, cqe);
        break;
    case T_SEND:
        on_send(u, cqe);
        break;
    default:
        break;                                       /* a cancel's own result */
    }
}

/* ---- the loop ---- */

static void start_drain(void)
{
    cs.draining = 1;
    if (accept_armed)
        submit_cancel(accept_polled ? T_LISTEN : T_ACCEPT);
    server_close_listener(srv);                      /* new connects are refused */
    /* a worker's clients are counted in the master's line */
    cs.drain_deadline = server_drain_begin(srv, is_worker ? 0 : (long)cs.n);
}

/* Submit this turn's requests, sleep until something completes (or
 * timeout_ms), then handle every completion ready.  -1 on a ring error.
 *
 * Batching.  Each wake-up costs a system call and two context switches,
 * about as much as the I/O of a message, so a busy loop should wake once
 * for many completions, not once for each.  Once a turn reaps at least
 * BATCH_FROM completions (sends aside) the loop is busy: each wait then
 * asks the kernel for half as many completions as there are clients (at
 * most BATCH_MAX), beyond the sends just submitted (those mostly complete
 * at once and would end the wait early), but settles for one once
 * BATCH_WAIT_US have passed.  A turn that brings a lone completion makes
 * it quiet again: it waits for one, as the readiness loop does.  So one
 * client in ping-pong never waits the extra microseconds, a few clients
 * are not made to wait for each other, and 500 busy ones cost about 0.07
 * system calls per message instead of epoll's 2.  (Measured: asking for
 * as many as the last turn brought, from 2 up, halved the throughput of
 * 2 to 4 clients; a 200 us minimum, that of 8.) */
static int turn(int timeout_ms)
{
    /* a signal normally ends the wait at once (EINTR), but valgrind
     * holds signals while a thread is in io_uring_enter and delivers them
     * only in system calls it knows may block: so never sleep longer than
     * WAIT_MAX_MS, and after a wait that timed out, poll the self-pipe
     * (one cheap call a second on an idle server) */
    if (timeout_ms < 0 || timeout_ms > WAIT_MAX_MS)
        timeout_ms = WAIT_MAX_MS;
    unsigned wait_nr = timeout_ms == 0 ? 0 : 1;
    if (wait_nr > 0 && batching) {
        unsigned want = cs.n / 2 < BATCH_MAX ? (unsigned)(cs.n / 2) : BATCH_MAX;
        wait_nr = (want > 1 ? want : 2) + sends_queued;
    }
    int rc = uring_submit_batch(&ring, wait_nr, wait_nr > 1 ? BATCH_WAIT_US : 0, timeout_ms);
    if (rc == -1 && errno != EINTR && errno != ETIME && errno != EAGAIN && errno != EBUSY) {
        log_warn("io_uring_enter:");
        return -1;
    }
    if (rc == -1 && errno == ETIME)
        (void)poll(&(struct pollfd){.fd = srv->sigfd, .events = POLLIN}, 1, 0);
    cs.now = sys_now_ms();
    turn_no++;
    unsigned head, n = uring_cq_ready(&ring, &head);
    unsigned others = 0;
    for (unsigned i = 0; i < n; i++) {
        const struct io_uring_cqe *cqe = uring_cqe_at(&ring, head + i);
        others += (cqe->user_data & T_MASK) != T_SEND;
        on_cqe(cqe);
    }
    uring_cq_advance(&ring, n);
    sends_queued = 0;
    if (wait_nr > 0 && others >= BATCH_FROM && uring_can_batch(&ring))
        batching = 1;                              /* busy: gather from now on */
    else if (wait_nr > 0 && others <= 1)
        batching = 0;                              /* a lone completion: quiet again */
    conns_reap(&cs, u_close);
    return 0;
}

static void run_loop(void)
{
    for (;;) {
        cs.now = sys_now_ms();
        if (sig_stop && !cs.draining)
            start_drain();
        conns_expire(&cs, u_close);
        flush_dirty();
        if (cs.draining && cs.n == 0)
            return;
        arm_accept();
        arm_signal();
        /* held input waiting: look, but do not sleep */
        if (turn(dirty != NULL ? 0 : conns_next_timeout(&cs)) == -1)
            return;
    }
}

/* Cancel everything and wait (a moment at most) until nothing is in
 * flight: a request holds its socket open, so without this the listener
 * could outlive the process for a moment (a restart would find the port
 * in use) and clients would see their close late. */
static void quiesce(void)
{
    while (cs.head != NULL)
        u_close(cs.head);
    if (accept_armed)
        submit_cancel(accept_polled ? T_LISTEN : T_ACCEPT);
    if (signal_armed)
        submit_cancel(T_SIGNAL);
    int64_t deadline = sys_now_ms() + 1000;
    for (;;) {
        flush_dirty();
        if ((!accept_armed && !signal_armed && zombies == NULL) || sys_now_ms() >= deadline)
            return;
        if (turn(100) == -1)
            return;
    }
}

int uring_serve(struct server *s, struct stats_own *me, int worker)
{
    char err[256];
    srv = s;
    is_worker = worker;
    conns_init(&cs, srv, me);
    size_t line_bound = srv->o.mode == MODE_CHAT ? chat_queue_max(srv->o.max_frame) : 0;
    /* what one turn of receives can add on top of the bound (the kernel
     * may fill every provided buffer before we see the first) */
    out_max = line_bound > 0 ? line_bound
                             : (size_t)OUT_BOUND + (size_t)NBUFS * BUF_SIZE + srv->o.max_frame;
    /* replies that are copied come and go by the thousand per second:
     * keep glibc from giving the top of the heap back (brk) each time.
     * It is process-wide, and this process is this loop.  (Measured
     * without it: 50 x 4 KiB then a stream, 5,214 brk calls beside
     * 12,640 io_uring_enter; the readiness loop copies nothing it keeps.) */
    (void)mallopt(M_TRIM_THRESHOLD, 4 << 20);
    (void)mallopt(M_TOP_PAD, 1 << 20);
    if (uring_init(&ring, RING_SQES, RING_CQES, err, sizeof err) == -1) {
        log_warn("io_uring unavailable: %s; use --backend epoll or poll", err);
        return 1;
    }
    if (uring_bufs_init(&ring, &bufs, BUF_GROUP, NBUFS, BUF_SIZE, err, sizeof err) == -1) {
        log_warn("io_uring unavailable: %s; use --backend epoll or poll", err);
        uring_free(&ring);
        return 1;
    }
    /* accepted sockets inherit TCP_NODELAY from the listener on Linux:
     * one call here instead of one per client */
    int on = 1;
    (void)setsockopt(srv->lfd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    /* A loop that waits for batches wants to run when its batch is in,
     * not the moment a completion arrives: as SCHED_BATCH (any user may
     * ask) its wake-ups do not preempt whatever runs on its CPU.  That
     * matters only where the CPU is shared, e.g. with the clients on one
     * CPU: there the short batch wait's timer would otherwise cut into
     * the clients' turn thousands of times a second (measured: 500 x 64 B
     * on one CPU, 1.4x the messages per second with it, and the same
     * with a CPU each).  This thread only: workers are processes. */
    if (uring_can_batch(&ring)) {
        struct sched_param sp = {.sched_priority = 0};
        (void)sched_setscheduler(0, SCHED_BATCH, &sp);   /* refused: smaller batches, no more */
    }
    if (!worker)
        server_announce(srv);
    run_loop();
    quiesce();
    /* closing the ring cancels whatever is still in flight */
    uring_free(&ring);
    dirty = NULL;
    while (zombies != NULL)
        u_free((struct uconn *)zombies);
    uring_bufs_free(NULL, &bufs);
    return 0;
}
