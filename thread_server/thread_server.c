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
 * kernel's listen backlog until a thread is free (pool_wait).
 * The per-client code, the registry and the drain are the same.
 *
 * Chat mode (thread_server/talk.c): each client has a reader (the
 * client's thread) and a writer thread; a line read by one client is
 * queued for every other client on the registry and its writer woken. */
#include <sys/socket.h>
#include <sys/time.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
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
#include "thread_server/pool.h"
#include "thread_server/talk.h"

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

static struct server srv;
static pthread_attr_t attr;                /* client threads: detached */
static pthread_attr_t writer_attr;         /* joinable: chat writers, pool threads */
static pthread_condattr_t cond_attr;       /* CLOCK_MONOTONIC */
/* lock guards the registry, nclients and every client's chat fields */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_gone;            /* nclients dropped to 0 */
static struct client *clients;
static size_t nclients;
static struct talk talk;                   /* chat mode (thread_server/talk.c) */
static struct pool workers;                /* --pool N */
/* --pool: structs of finished clients, reused by the next ones, so pool
 * threads never call free(): glibc would give each its own arena */
static struct client *spare;

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
        talk_run(&talk, c, s);
    else
        session_run(s);
    char why[96];
    const char *cut = NULL;
    pthread_mutex_lock(&lock);
    if (c->cut)
        snprintf(why, sizeof why, "drain time of %u s ran out", srv.o.drain);
    else if (c->overflow)
        snprintf(why, sizeof why, "chat queue over %zu bytes (not reading fast enough)", talk.max);
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

/* Start a thread for one accepted client (--pool: hand it to the idle
 * pool thread), or refuse it. */
static void spawn(int fd, const char *peer)
{
    struct client *c = admit(fd, peer);
    if (c == NULL)
        return;
    uint64_t id = c->id;
    if (srv.o.pool > 0) {
        atomic_store(&srv.st->clients, id);
        pool_put(&workers, c);
        return;
    }
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

/* Wait (lock held) until no client is left or the deadline passes (the
 * drain's: or a second stop signal comes). */
static void wait_all_gone(int64_t deadline_ms, int drain)
{
    while (nclients > 0 && server_cond_wait(&all_gone, &lock, deadline_ms, drain) == 0)
        ;
}

/* Give clients --drain seconds, then shut the rest down.  Returns how
 * many threads are still serving a client after that. */
static size_t drain_clients(void)
{
    pthread_mutex_lock(&lock);
    wait_all_gone(server_drain_begin(&srv, (long)nclients), 1);
    for (struct client *c = clients; c != NULL; c = c->next) {
        c->cut = 1;
        c->ending = 1;
        shutdown(c->fd, SHUT_RDWR);
        pthread_cond_signal(&c->wake);
    }
    wait_all_gone(sys_now_ms() + CUT_GRACE_MS, 0);
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

static const struct opt_own own_opts[] = {
    OPT_OWN_NUMBER("pool", "      --pool N            N threads started at start, each serving\n"
                           "                          clients one after another (1-4096)\n",
                   1, 4096, pool),
    {NULL, NULL, NULL, 0, 0, 0},
};

int main(int argc, char **argv)
{
    char about[768];
    snprintf(about, sizeof about,
             "Model: one POSIX thread per connection, each with a %zu KiB stack\n"
             "(set explicitly: glibc's default is 8 MiB, musl's 128 KiB).\n"
             "--pool N: N threads start with the server and serve clients one\n"
             "after another; client N+1 waits in the listen backlog until a thread\n"
             "is free (use --idle-timeout so idle clients cannot hold the pool).\n"
             CHAT_HELP,
             STACK_SIZE / 1024);
    const struct opt_model model = {"thread_server", OPT_MODES_ALL, own_opts, about, NULL};
    int code;
    if (server_start(&srv, argc, argv, &model, 0, &code) == -1)
        return code;
    if (threads_init() == -1 ||
        talk_init(&talk, &lock, &clients, &srv.o, &writer_attr, &cond_attr) == -1) {
        log_warn("thread attributes:");
        return 1;
    }
    if (srv.o.pool > 0 && pool_start(&workers, srv.o.pool, &writer_attr, client_thread) == -1) {
        log_warn("starting %u pool threads:", srv.o.pool);
        return 1;
    }
    server_announce(&srv);
    while (!sig_stop) {                  /* accept -> a thread per client */
        /* --pool: accept only while a pool thread is idle; until then the
         * next client waits in the kernel's listen backlog */
        int ready = srv.o.pool > 0 ? pool_wait(&workers, &srv) : server_wait(&srv, 1);
        if (ready < 0)
            break;
        char peer[NET_ADDR_MAX];
        int fd;
        while (ready && !sig_stop && (srv.o.pool == 0 || pool_has_seat(&workers)) &&
               (fd = server_accept(&srv, 0, peer, sizeof peer)) >= 0)
            spawn(fd, peer);
    }
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
