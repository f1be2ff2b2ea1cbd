/* thread_server: one POSIX thread per connection.
 *
 * The main thread accepts; each client gets a detached thread that serves
 * it with blocking reads and writes (common/session.c) and then ends.
 * Threads share the address space, so unlike fork_server the clients can
 * see each other: that is what chat mode needs.
 *
 * Three things the model needs to get right:
 * - Stack size.  Every thread reserves a stack: glibc's default is 8 MiB,
 *   musl's 128 KiB.  We rely on neither and ask for STACK_SIZE.  Only the
 *   pages a thread touches cost memory, so the client's state and read
 *   buffer live in its heap struct client and the stack stays shallow:
 *   a busy thread costs about one page of stack.
 * - The descriptor.  Each thread gets its own heap-allocated struct client
 *   holding the fd, never `(void *)fd` or a pointer to a variable the
 *   accept loop reuses.
 * - Shared state.  The list of live clients, their count, and (in chat
 *   mode) every client's outgoing queue are guarded by one mutex; client
 *   numbers and byte totals are atomics (common/stats.c).
 *
 * Shutdown: on SIGINT/SIGTERM the main thread closes the listener and
 * waits up to --drain seconds for the clients to finish; then it shuts
 * down the sockets of those left, which wakes their threads from read or
 * write, and waits for them to go.
 *
 * With --pool N the threads come first: N of them start with the server
 * and each serves clients one after another (thread_server/pool.c).  The
 * main thread accepts only while a pool thread is free and hands the
 * descriptor over through a bounded queue; client N+1 waits in the
 * kernel's listen backlog until a thread is free (pool_accept_loop).
 * The per-client code, the registry and the drain are the same.
 *
 * Chat mode: each client has a reader (the client's thread) and a writer
 * thread.  A line read by one client is queued for every other client and
 * its writer woken; a client whose queue passes its bound is disconnected,
 * so one slow receiver never blocks the sender or anyone else. */
#include <sys/socket.h>
#include <sys/time.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/chat.h"
#include "common/io.h"
#include "common/log.h"
#include "common/net.h"
#include "common/server.h"
#include "common/session.h"
#include "common/sys.h"
#include "common/sig.h"
#include "framing/line.h"
#include "thread_server/pool.h"

/* Sanitizers need far more stack than the code itself. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STACK_FACTOR 4
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define STACK_FACTOR 4
#endif
#endif
#ifndef STACK_FACTOR
#define STACK_FACTOR 1
#endif
#define STACK_SIZE ((size_t)64 * 1024 * STACK_FACTOR)

/* After the drain, threads get this long to notice their sockets closed. */
#define CUT_GRACE_MS 2000

struct client {
    int fd;
    uint64_t id;
    char peer[NET_ADDR_MAX];
    struct session s;             /* here, not on the thread's stack */
    struct client *prev, *next;   /* the registry */
    int cut;                      /* drain ran out */
    /* chat mode */
    struct buf queue;             /* lines waiting to be written to it */
    pthread_cond_t wake;          /* the writer: queue grew, or ending */
    int ending;                   /* no more lines for it; writer flushes */
    int overflow;                 /* its queue passed the bound */
    int stalled;                  /* its writer idled out */
    atomic_llong last_active;     /* ms; the writer counts as activity */
};

static struct server srv;
static pthread_attr_t attr;                /* client threads: detached */
static pthread_attr_t writer_attr;         /* joinable: chat writers, pool threads */
static pthread_condattr_t cond_attr;       /* CLOCK_MONOTONIC */
/* lock guards the registry, nclients and every client's chat fields */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_gone;            /* nclients dropped to 0 */
static struct client *clients;
static size_t nclients;
static size_t chat_max;                    /* chat queue bound */
static struct pool workers;                /* --pool N */
/* --pool: structs of finished clients, reused by the next ones, so pool
 * threads never call free(): glibc would give each its own arena */
static struct client *spare;

/* ---- chat: a reader and a writer per client ---- */

/* Queue one line from c for every other client.  Called by c's reader. */
static void broadcast(struct client *c, const char *line, size_t len)
{
    pthread_mutex_lock(&lock);
    for (struct client *t = clients; t != NULL; t = t->next) {
        if (t == c || t->ending || t->overflow)
            continue;
        if (chat_enqueue(&t->queue, chat_max, c->id, line, len) == -1) {
            /* too slow (or no memory): its reader sees EOF, its writer EPIPE */
            t->overflow = 1;
            shutdown(t->fd, SHUT_RDWR);
        }
        pthread_cond_signal(&t->wake);
    }
    pthread_mutex_unlock(&lock);
}

/* The writer: move queued lines to the socket, outside the lock. */
static void *chat_writer(void *arg)
{
    struct client *c = arg;
    char out[8192];
    pthread_mutex_lock(&lock);
    for (;;) {
        while (buf_len(&c->queue) == 0 && !c->ending)
            pthread_cond_wait(&c->wake, &lock);
        size_t n = buf_len(&c->queue);
        if (n == 0)
            break;               /* ending, and everything delivered */
        if (n > sizeof out)
            n = sizeof out;
        memcpy(out, buf_head(&c->queue), n);
        buf_consume(&c->queue, n);
        pthread_mutex_unlock(&lock);
        ssize_t w = io_write_all(c->fd, out, n);
        int err = errno;
        pthread_mutex_lock(&lock);
        if (w < 0) {
            c->stalled = err == EAGAIN || err == EWOULDBLOCK;
            c->ending = 1;
            shutdown(c->fd, SHUT_RDWR);   /* wake the reader */
            break;
        }
        atomic_store(&c->last_active, sys_now_ms());
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

/* Idle in chat mode counts lines delivered too: a read that timed out
 * is only idleness if the writer was quiet as well.  Re-arm the receive
 * timeout for what is left and return 1, or return 0 if really idle. */
static int chat_still_busy(struct client *c)
{
    int64_t quiet = sys_now_ms() - atomic_load(&c->last_active);
    int64_t left = (int64_t)srv.o.idle_timeout * 1000 - quiet;
    if (left <= 0)
        return 0;
    struct timeval tv = {.tv_sec = (time_t)(left / 1000), .tv_usec = (suseconds_t)(left % 1000) * 1000};
    (void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return 1;
}

/* Read lines and broadcast them until EOF, an error or a protocol fault. */
static void chat_read(struct client *c, struct session *s)
{
    struct line_dec d;
    line_dec_init(&d, srv.o.max_frame);
    char in[4096];
    for (;;) {
        ssize_t r = read(c->fd, in, sizeof in);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && chat_still_busy(c))
            continue;
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                snprintf(s->reason, sizeof s->reason, "idle for %u s (--idle-timeout)",
                         srv.o.idle_timeout);
            break;
        }
        if (r == 0) {
            if (line_dec_flush(&d)) {          /* a last line without '\n' */
                size_t len;
                const char *msg = line_dec_msg(&d, &len);
                broadcast(c, msg, len);
            }
            break;
        }
        s->bytes += (size_t)r;
        atomic_store(&c->last_active, sys_now_ms());
        for (size_t off = 0; off < (size_t)r;) {
            enum line_status st;
            off += line_dec_feed(&d, in + off, (size_t)r - off, &st);
            if (st == LINE_READY) {
                size_t len;
                const char *msg = line_dec_msg(&d, &len);
                broadcast(c, msg, len);
            } else if (st != LINE_MORE) {
                snprintf(s->reason, sizeof s->reason, st == LINE_TOO_BIG ?
                         "line exceeds --max-frame %" PRIu32 " bytes" :
                         "out of memory for a line of up to %" PRIu32 " bytes",
                         srv.o.max_frame);
                goto out;
            }
        }
    }
out:
    line_dec_free(&d);
}

/* Not inlined into client_thread: its buffers would cost every thread
 * stack pages, chat or not. */
__attribute__((noinline)) static void chat_run(struct client *c, struct session *s)
{
    pthread_t writer;
    atomic_store(&c->last_active, sys_now_ms());
    int rc = pthread_create(&writer, &writer_attr, chat_writer, c);
    if (rc != 0) {
        snprintf(s->reason, sizeof s->reason, "no writer thread: %s", strerror(rc));
        return;
    }
    chat_read(c, s);
    pthread_mutex_lock(&lock);
    /* a clean EOF lets the writer deliver what is queued; else stop now */
    if (s->reason[0] != '\0' || c->cut || c->overflow)
        shutdown(c->fd, SHUT_RDWR);
    c->ending = 1;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&lock);
    if ((rc = pthread_join(writer, NULL)) != 0)
        log_warn("pthread_join: %s", strerror(rc));
}

/* ---- a client's thread ---- */

/* Last step of a client thread: leave the registry, close, free.  All of
 * it under the lock, so the drain never shuts down a closed descriptor
 * and nothing is left allocated when the main thread sees 0 clients. */
/* Take c off the registry (lock held). */
static void unlink_client(struct client *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    nclients--;
    atomic_fetch_sub(&srv.st->active, 1);
}

static void leave(struct client *c)
{
    pthread_mutex_lock(&lock);
    unlink_client(c);
    close(c->fd);
    buf_free(&c->queue);
    pthread_cond_destroy(&c->wake);
    c->next = spare;
    if (srv.o.pool > 0)
        spare = c;          /* for the next client (see spare) */
    else
        free(c);
    if (nclients == 0)
        pthread_cond_broadcast(&all_gone);
    pthread_mutex_unlock(&lock);
}

/* Serve one client from start to end: its own thread, or a pool thread. */
static void *client_thread(void *arg)
{
    struct client *c = arg;
    struct session *s = &c->s;
    session_start(s, c->fd, c->id, c->peer, &srv.o);
    if (srv.o.mode == MODE_CHAT)
        chat_run(c, s);
    else
        session_run(s);
    char why[96];
    const char *cut = NULL;
    pthread_mutex_lock(&lock);
    if (c->cut)
        snprintf(why, sizeof why, "drain time of %u s ran out", srv.o.drain);
    else if (c->overflow)
        snprintf(why, sizeof why, "chat queue over %zu bytes (not reading fast enough)", chat_max);
    else if (c->stalled)
        snprintf(why, sizeof why, "idle for %u s (--idle-timeout)", srv.o.idle_timeout);
    if (c->cut || c->overflow || c->stalled)
        cut = why;
    pthread_mutex_unlock(&lock);
    session_finish(s, cut, srv.access_fd, srv.st);
    leave(c);
    return NULL;
}

/* ---- the main thread ---- */

/* Put an accepted client on the registry with the next number, or
 * refuse it (NULL). */
static struct client *admit(int fd, const char *peer)
{
    pthread_mutex_lock(&lock);
    if (nclients >= srv.o.max_clients) {
        pthread_mutex_unlock(&lock);
        server_refuse(&srv, fd, peer, NULL);
        return NULL;
    }
    struct client *c = spare;
    if (c != NULL) {
        spare = c->next;
    } else if ((c = malloc(sizeof *c)) == NULL) {
        pthread_mutex_unlock(&lock);
        server_refuse(&srv, fd, peer, "out of memory");
        return NULL;
    }
    memset(c, 0, sizeof *c);
    uint64_t id = atomic_load(&srv.st->clients) + 1;
    c->fd = fd;
    c->id = id;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    pthread_cond_init(&c->wake, &cond_attr);
    c->next = clients;
    if (clients != NULL)
        clients->prev = c;
    clients = c;
    nclients++;
    atomic_fetch_add(&srv.st->active, 1);
    pthread_mutex_unlock(&lock);
    return c;
}

/* Start a thread for one accepted client, or refuse it. */
static void spawn(int fd, const char *peer)
{
    struct client *c = admit(fd, peer);
    if (c == NULL)
        return;
    uint64_t id = c->id;
    pthread_t tid;
    int rc = pthread_create(&tid, &attr, client_thread, c);
    if (rc == 0) {
        atomic_store(&srv.st->clients, id);   /* not c->id: c may be gone already */
        return;
    }
    pthread_mutex_lock(&lock);
    unlink_client(c);
    buf_free(&c->queue);   /* chat lines may have been queued already */
    pthread_mutex_unlock(&lock);
    pthread_cond_destroy(&c->wake);
    free(c);
    char why[128];
    snprintf(why, sizeof why, "pthread_create: %s", strerror(rc));
    server_refuse(&srv, fd, peer, why);
}

/* --pool: hand one accepted client to a free pool thread. */
static void hand_over(int fd, const char *peer)
{
    struct client *c = admit(fd, peer);
    if (c == NULL)
        return;
    atomic_store(&srv.st->clients, c->id);
    pool_put(&workers, c);
}

/* --pool: accept only while a pool thread is free to serve at once; else
 * leave the listener alone (the next client waits in the kernel's backlog)
 * and wait for a thread to free up.  Returns on SIGINT/SIGTERM. */
static void pool_accept_loop(void)
{
    while (!sig_stop) {
        int seat = pool_has_seat(&workers);
        int paused = seat ? server_paused_ms(&srv) : -1;
        struct pollfd pfd[3] = {
            {.fd = seat && paused < 0 ? srv.lfd : -1, .events = POLLIN},
            {.fd = srv.sigfd, .events = POLLIN},
            {.fd = seat ? -1 : pool_seat_fd(&workers), .events = POLLIN},
        };
        if (poll(pfd, 3, paused) == -1 && errno != EINTR) {
            log_warn("poll:");
            return;
        }
        if (pfd[1].revents & POLLIN)
            sig_drain(srv.sigfd);
        if (!(pfd[0].revents & POLLIN))
            continue;
        char peer[NET_ADDR_MAX];
        int fd;
        while (!sig_stop && pool_has_seat(&workers) &&
               (fd = server_accept(&srv, 0, peer, sizeof peer)) >= 0)
            hand_over(fd, peer);
    }
}

/* Wait (lock held) until no client is left or deadline_ms passes. */
static void wait_all_gone(int64_t deadline_ms)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline_ms / 1000),
                          .tv_nsec = (long)(deadline_ms % 1000) * 1000000};
    while (nclients > 0 && pthread_cond_timedwait(&all_gone, &lock, &ts) != ETIMEDOUT)
        ;
}

/* Give clients --drain seconds, then shut the rest down.  Returns how
 * many threads are still serving a client after that. */
static size_t drain_clients(void)
{
    pthread_mutex_lock(&lock);
    wait_all_gone(sys_now_ms() + (int64_t)srv.o.drain * 1000);
    for (struct client *c = clients; c != NULL; c = c->next) {
        c->cut = 1;
        c->ending = 1;
        shutdown(c->fd, SHUT_RDWR);
        pthread_cond_signal(&c->wake);
    }
    wait_all_gone(sys_now_ms() + CUT_GRACE_MS);
    if (nclients > 0)
        log_warn("%zu client threads did not finish in time", nclients);
    size_t left = nclients;
    pthread_mutex_unlock(&lock);
    return left;
}

static int threads_init(void)
{
    /* Our own stack size, never the C library's default. */
    size_t stack = STACK_SIZE;
    long min = sysconf(_SC_THREAD_STACK_MIN);
    if (min > 0 && stack < (size_t)min)
        stack = (size_t)min;
    int rc;
    if ((rc = pthread_attr_init(&attr)) != 0 ||
        (rc = pthread_attr_setstacksize(&attr, stack)) != 0 ||
        (rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED)) != 0 ||
        (rc = pthread_attr_init(&writer_attr)) != 0 ||
        (rc = pthread_attr_setstacksize(&writer_attr, stack)) != 0 ||
        (rc = pthread_condattr_init(&cond_attr)) != 0 ||
        (rc = pthread_condattr_setclock(&cond_attr, CLOCK_MONOTONIC)) != 0 ||
        (rc = pthread_cond_init(&all_gone, &cond_attr)) != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    char about[768];
    snprintf(about, sizeof about,
             "Model: one POSIX thread per connection, each with a %zu KiB stack\n"
             "(set explicitly: glibc's default is 8 MiB, musl's 128 KiB).\n"
             "--pool N: N threads start with the server and serve clients one\n"
             "after another; client N+1 waits in the listen backlog until a thread\n"
             "is free (use --idle-timeout so idle clients cannot hold the pool).\n"
             "Chat: at most %d KiB (or one --max-frame line) waits for a client;\n"
             "a client that falls further behind is disconnected.\n",
             STACK_SIZE / 1024, CHAT_QUEUE_MAX / 1024);
    int code;
    if (server_start(&srv, argc, argv, MODEL_THREAD, about, 0, &code) == -1)
        return code;
    chat_max = chat_queue_max(srv.o.max_frame);
    if (threads_init() == -1) {
        log_warn("thread attributes:");
        return 1;
    }
    if (srv.o.pool > 0 && pool_start(&workers, srv.o.pool, &writer_attr, client_thread) == -1) {
        log_warn("starting %u pool threads:", srv.o.pool);
        return 1;
    }
    server_announce(&srv);
    if (srv.o.pool > 0)
        pool_accept_loop();
    else
        server_accept_loop(&srv, spawn, NULL);
    server_close_listener(&srv);
    size_t left = drain_clients();
    if (srv.o.pool > 0 && left == 0) {
        pool_stop(&workers);       /* every pool thread is idle: join them */
        for (struct client *c; (c = spare) != NULL; free(c))
            spare = c->next;
    }
    server_finish(&srv);
    pthread_attr_destroy(&attr);
    pthread_attr_destroy(&writer_attr);
    return 0;
}
