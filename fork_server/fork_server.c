/* fork_server: one child process per connection, or (--prefork N) N
 * children forked at start, each serving clients one after another.
 *
 * Per connection (the default).  The parent only accepts.  For each
 * connection it forks; the child closes its copy of the listener, serves
 * the client (common/session.c) and exits, while the parent closes its
 * copy of the client socket and goes back to waiting.  A process per
 * client is the oldest Unix server model (inetd, Stevens' tcpserv01):
 * simple, isolated (a crash takes one client down), and as costly as a
 * fork.
 *
 * Pre-forked (--prefork N, Apache's prefork, Stevens' serv02).  The parent
 * forks N children before any client arrives and then only supervises
 * (common/kids.c): a child that dies is reported and replaced.  Each child
 * loops accept -> serve -> accept on the shared listener, blocking in
 * accept(2): Linux wakes one blocked acceptor per connection, so there is
 * no thundering herd (README measures it).  An accept lock (a shared
 * mutex) keeps client numbers in accept order; it costs some churn
 * throughput, measured too.  Client N+1 waits in the listen backlog until
 * a child is free.
 *
 * How the parent keeps count: client numbers and byte totals are atomics
 * in a MAP_SHARED page (common/stats.c) every process adds to; a pipe per
 * child would do too, but shared atomics cost no descriptor and no
 * parsing.  Per connection, the parent numbers clients before forking, so
 * numbers follow accept order, and --max-clients counts live children.
 * Pre-forked, a child numbers its client right after accept, under the
 * accept lock, and takes a --max-clients seat in the shared count.  Each child publishes its
 * current client's bytes in its slot of the supervisor's table, so a
 * child that dies still has them counted.
 *
 * No zombies: SIGCHLD wakes the parent through the self-pipe and it reaps
 * every finished child at once with waitpid(WNOHANG).  No orphans: each
 * child asks for SIGTERM when the parent dies (PR_SET_PDEATHSIG).
 *
 * Shutdown: on SIGINT/SIGTERM/SIGHUP the parent shuts the listener down
 * (new connects are refused by the kernel, and idle pre-forked children
 * return from accept), passes SIGTERM on to every child and waits.  A
 * child that gets SIGTERM keeps serving for --drain seconds (alarm(2));
 * when the alarm rings, or a second stop signal comes, its handler shuts
 * the socket down, which ends the session wherever it is blocked.  When
 * the last child is reaped the parent prints the totals. */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/kids.h"
#include "common/log.h"
#include "common/net.h"
#include "common/server.h"
#include "common/session.h"
#include "common/sig.h"
#include "common/sys.h"

/* The parent waits this much longer than --drain for children to report. */
#define CHILD_GRACE_MS 2000
/* A pre-forked child whose accept fails (not for lack of a client)
 * retries after this long. */
#define ACCEPT_RETRY_MS 100

static struct server srv;
static struct kids *kids;   /* live children */
static pid_t parent_pid;

/* ---- a child ---- */

static int child_fd = -1;   /* the client being served, or -1 */
static volatile sig_atomic_t child_draining, child_cut;

/* SIGALRM: the drain time is up.  shutdown(2) is async-signal-safe and
 * makes a blocked read return 0 and a blocked write fail. */
static void child_on_alarm(int signo)
{
    (void)signo;
    child_cut = 1;
    if (child_fd >= 0)
        shutdown(child_fd, SHUT_RDWR);
}

/* A stop signal (the inherited handler calls this through sig_stop_hook):
 * keep serving, but only for --drain more seconds; a second stop ends it
 * now.  An idle pre-forked child whose parent is gone shuts the listener
 * down itself, which ends its accept. */
static void child_on_stop(void)
{
    if (child_fd < 0 && srv.lfd >= 0 && getppid() != parent_pid)
        shutdown(srv.lfd, SHUT_RD);
    if (sig_hurry || (srv.o.drain == 0 && child_fd >= 0)) {
        child_on_alarm(SIGALRM);
    } else if (!child_draining && child_fd >= 0) {
        child_draining = 1;
        alarm(srv.o.drain);
    }
}

/* A child's end: close what it holds of the parent's, and go. */
static _Noreturn void child_exit(void)
{
    if (srv.lfd >= 0)
        close(srv.lfd);
    if (srv.access_fd >= 0)
        close(srv.access_fd);
    sig_close();
    _exit(0);
}

/* Everything a new child does first: die with the parent (or end now if
 * it is already gone), drop the parent's self-pipe, take the stop and
 * alarm signals. */
static void child_init(void)
{
    if (kids_child_init(parent_pid) == -1)
        child_exit();
    sig_close();
    sig_handle(SIGALRM, child_on_alarm, SA_RESTART);
    sig_stop_hook = child_on_stop;
}

/* Serve one client on fd (blocking). */
static void child_serve(int fd, uint64_t id, const char *peer, struct stats_own *own)
{
    struct session s;
    session_start(&s, fd, id, peer, &srv.o);
    s.live = &own->bytes;
    child_fd = fd;
    if (sig_stop)              /* a stop that came before child_fd was set */
        child_on_stop();
    session_run(&s);
    char cut[64];
    if (child_cut)
        snprintf(cut, sizeof cut, "drain time of %u s ran out", srv.o.drain);
    session_finish(&s, child_cut ? cut : NULL, srv.access_fd, srv.st);
    child_fd = -1;
    close(fd);
}

/* The child of one connection: serve it and exit. */
static void child_main(int fd, uint64_t id, const char *peer, struct stats_own *own)
{
    close(srv.lfd);            /* the listener is not ours */
    srv.lfd = -1;
    child_init();
    child_serve(fd, id, peer, own);
    child_exit();
}

/* The accept lock: one child at a time accepts and numbers its client,
 * so numbers follow the kernel's accept order (without it, two children
 * returning from accept at once number in either order).  It does not
 * prevent a thundering herd, there is none to prevent (README).  A
 * process-shared robust mutex: a child killed while holding it hands it
 * on (EOWNERDEAD). */
static pthread_mutex_t *accept_lock;

static int accept_lock_init(void)
{
    void *p = mmap(NULL, sizeof(pthread_mutex_t), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    accept_lock = p;
    pthread_mutexattr_t a;
    int rc;
    if ((rc = pthread_mutexattr_init(&a)) != 0 ||
        (rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) != 0 ||
        (rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) != 0 ||
        (rc = pthread_mutex_init(accept_lock, &a)) != 0) {
        errno = rc;
        return -1;
    }
    pthread_mutexattr_destroy(&a);
    return 0;
}

/* Under the lock: accept (blocking), take a seat and a number (*id, 0
 * when --max-clients is reached).  The descriptor, or -1 with errno. */
static int accept_numbered(struct stats_own *own, char *peer, size_t peerlen, uint64_t *id)
{
    if (pthread_mutex_lock(accept_lock) == EOWNERDEAD)
        pthread_mutex_consistent(accept_lock);
    int fd = net_accept(srv.lfd, 0, peer, peerlen);
    int err = errno;
    *id = 0;
    if (fd >= 0 && stats_seat_take(srv.st, own, srv.o.max_clients) == 0)
        *id = stats_number(srv.st);
    pthread_mutex_unlock(accept_lock);
    errno = err;
    return fd;
}

/* A pre-forked child: accept, serve, accept, ... until stopped. */
static void prefork_main(struct stats_own *own)
{
    child_init();
    while (!sig_stop) {
        char peer[NET_ADDR_MAX];
        uint64_t id;
        int fd = accept_numbered(own, peer, sizeof peer, &id);
        if (fd < 0) {
            if (sig_stop || errno == EINVAL)                   /* shut down */
                break;
            log_warn("accept:");
            poll(NULL, 0, ACCEPT_RETRY_MS);
            continue;
        }
        if (id == 0) {
            server_refuse(&srv, fd, peer, NULL);
            continue;
        }
        child_serve(fd, id, peer, own);
        stats_seat_give(srv.st, own);
    }
    child_exit();
}

/* kids_supervise's start: one pre-forked child for slot. */
static pid_t start_prefork(size_t slot, void *ctx)
{
    (void)ctx;
    pid_t pid = fork();
    if (pid == 0)
        prefork_main(&kids->kid[slot].own);
    return pid;
}

/* ---- the parent ---- */

/* After every wake-up and every fork: reap what SIGCHLD announced. */
static void reap(void)
{
    if (!sig_chld)
        return;
    sig_chld = 0;
    kids_reap(kids);
}

/* Fork a child for one accepted client, or refuse it. */
static void spawn(int fd, const char *peer)
{
    if (kids->n >= srv.o.max_clients) {
        server_refuse(&srv, fd, peer, NULL);
        return;
    }
    uint64_t id = atomic_load(&srv.st->clients) + 1;
    size_t slot = kids_claim(kids);
    pid_t pid = fork();
    if (pid == 0)
        child_main(fd, id, peer, &kids->kid[slot].own);
    if (pid == -1) {
        char why[128];
        snprintf(why, sizeof why, "fork: %s", strerror(errno));
        server_refuse(&srv, fd, peer, why);
        return;
    }
    atomic_store(&srv.st->clients, id);
    kids_set(kids, slot, pid);
    close(fd);   /* the child has it now */
}

/* Per connection: accept -> fork, until a stop signal. */
static void accept_loop(void)
{
    while (!sig_stop) {
        int ready = server_wait(&srv, 1);
        reap();
        if (ready < 0)
            return;
        char peer[NET_ADDR_MAX];
        int fd;
        while (ready && !sig_stop && (fd = server_accept(&srv, 0, peer, sizeof peer)) >= 0) {
            spawn(fd, peer);
            reap();            /* under a steady stream of connects too */
        }
    }
}

/* Pre-forked: the children accept; the parent replaces the ones that
 * die, until a stop signal.  -1 if every child is gone. */
static int supervise_loop(void)
{
    /* children block in accept: Linux wakes one per connection */
    if (net_set_nonblock(srv.lfd, 0) == -1) {
        log_warn("listener:");
        return -1;
    }
    if (accept_lock_init() == -1) {
        log_warn("accept lock:");
        return -1;
    }
    /* ready once the children are: the listening line comes after */
    if (kids_supervise(kids, start_prefork, NULL) == 0) {
        log_warn("no child process could be started");
        return -1;
    }
    server_announce(&srv);
    while (!sig_stop && kids->n > 0) {
        if (server_wait(&srv, 0) < 0)
            return -1;
        reap();
    }
    if (kids->n > 0)
        return 0;
    log_warn("every child process is gone; stopping");
    return -1;
}

/* Separate processes share no client list: chat is refused. */
static int check(struct opts *o, char *err, size_t errlen)
{
    if (o->mode != MODE_CHAT)
        return 0;
    snprintf(err, errlen, "--mode chat needs one shared list of clients, and "
             "separate processes share none; use thread_server or select_server");
    return -1;
}

static const struct opt_own own_opts[] = {
    OPT_OWN_NUMBER("prefork", "      --prefork N         N children forked at start, each serving\n"
                              "                          clients one after another (1-1024)\n",
                   1, 1024, prefork),
    {NULL, NULL, NULL, 0, 0, 0},
};

static const struct opt_model model = {
    .prog = "fork_server",
    .modes = OPT_MODE(MODE_ECHO) | OPT_MODE(MODE_LINE) | OPT_MODE(MODE_FRAMED),
    .own = own_opts,
    .about = "Model: one child process per connection.  The parent accepts and\n"
             "forks; each child serves one client and exits; SIGCHLD reaps them.\n"
             "--prefork N: N children forked at start, each accepting and serving\n"
             "one client at a time; client N+1 waits in the listen backlog.\n"
             "--mode chat is not offered: separate processes share no client list.\n",
    .check = check,
};

int main(int argc, char **argv)
{
    int code;
    if (server_start(&srv, argc, argv, &model, SERVER_WATCH_CHILD | SERVER_FDS_ELSEWHERE,
                     &code) == -1)
        return code;
    parent_pid = getpid();
    size_t cap = srv.o.prefork > 0 ? srv.o.prefork : srv.o.max_clients;
    if ((kids = kids_new(cap, srv.o.prefork > 0 ? "child process" : "client process",
                         srv.st)) == NULL) {
        log_warn("child table:");
        return 1;
    }
    int rc = 0;
    if (srv.o.prefork > 0) {
        rc = supervise_loop();
    } else {
        server_announce(&srv);
        accept_loop();
    }
    /* stop: pass it on to every child; each drains on its own clock.
     * Shutting the shared listener down (Linux) ends it in every
     * process at once: idle pre-forked children return from accept. */
    if (srv.o.prefork > 0)
        (void)shutdown(srv.lfd, SHUT_RD);
    server_close_listener(&srv);
    long clients = srv.o.prefork > 0 ? atomic_load(&srv.st->active) : (long)kids->n;
    int64_t deadline = rc == 0 ? server_drain_begin(&srv, clients) : sys_now_ms();
    kids_stop(kids, SIGTERM, srv.sigfd, deadline + CHILD_GRACE_MS);
    if (rc == 0)
        server_finish(&srv);
    kids_free(kids);
    return rc == 0 ? 0 : 1;
}
