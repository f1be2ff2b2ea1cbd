/* fork_server: one child process per connection.
 *
 * The parent only accepts.  For each connection it forks; the child closes
 * its copy of the listener, serves the client (common/session.c) and
 * exits, while the parent closes its copy of the client socket and goes
 * back to waiting.  A process per client is the oldest Unix server model
 * (inetd): simple, isolated (a crash takes one client down), and as costly
 * as a fork.
 *
 * How the parent keeps count: it numbers clients before forking, so numbers
 * follow accept order; each child adds the bytes it received to a counter
 * in a MAP_SHARED page (common/stats.c) before it exits.  A pipe per child
 * would do too, but shared atomics cost no descriptor and no parsing.  The
 * parent tracks live children in a table, filled by fork and emptied by
 * waitpid, which is what --max-clients counts.
 *
 * No zombies: SIGCHLD wakes the parent through the self-pipe and it reaps
 * every finished child at once with waitpid(WNOHANG).
 *
 * Shutdown: on SIGINT/SIGTERM the parent closes the listener (new connects
 * are refused by the kernel), passes SIGTERM on to every child and waits.
 * A child that gets SIGTERM keeps serving for --drain seconds (alarm(2));
 * when the alarm rings its handler shuts the socket down, which ends the
 * session wherever it is blocked.  When the last child is reaped the
 * parent prints the totals. */
#include <sys/socket.h>
#include <sys/wait.h>
#include <errno.h>
#include <poll.h>
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

static struct server srv;
static struct kids *kids;   /* live children */

/* ---- the child ---- */

static int child_fd = -1;
static volatile sig_atomic_t child_draining, child_cut;

/* SIGALRM: the drain time is up.  shutdown(2) is async-signal-safe and
 * makes a blocked read return 0 and a blocked write fail. */
static void child_on_alarm(int signo)
{
    (void)signo;
    child_cut = 1;
    shutdown(child_fd, SHUT_RDWR);
}

/* SIGTERM/SIGINT (the parent's handler calls this through sig_stop_hook):
 * keep serving, but only for --drain more seconds. */
static void child_on_stop(void)
{
    if (child_draining)
        return;
    child_draining = 1;
    if (srv.o.drain == 0)
        child_on_alarm(SIGALRM);
    else
        alarm(srv.o.drain);
}

static void child_main(int fd, uint64_t id, const char *peer)
{
    /* the listener and the parent's signal plumbing are not ours */
    close(srv.lfd);
    if (srv.reserve_fd >= 0)
        close(srv.reserve_fd);
    sig_close();
    child_fd = fd;
    sig_handle(SIGALRM, child_on_alarm, SA_RESTART);
    /* the inherited SIGINT/SIGTERM handler now starts our drain clock;
     * a signal that came before this line left sig_stop set */
    sig_stop_hook = child_on_stop;
    if (sig_stop)
        child_on_stop();

    struct session s;
    session_start(&s, fd, id, peer, &srv.o);
    session_run(&s);
    char cut[64];
    if (child_cut)
        snprintf(cut, sizeof cut, "drain time of %u s ran out", srv.o.drain);
    session_finish(&s, child_cut ? cut : NULL, srv.access_fd, srv.st);
    close(fd);
    if (srv.access_fd >= 0)
        close(srv.access_fd);
    _exit(0);
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
    pid_t pid = fork();
    if (pid == 0)
        child_main(fd, id, peer);
    if (pid == -1) {
        char why[128];
        snprintf(why, sizeof why, "fork: %s", strerror(errno));
        server_refuse(&srv, fd, peer, why);
        return;
    }
    atomic_store(&srv.st->clients, id);
    kids_add(kids, pid);
    close(fd);   /* the child has it now */
}

int main(int argc, char **argv)
{
    int code;
    if (server_start(&srv, argc, argv, MODEL_FORK,
                     "Model: one child process per connection.  The parent accepts and\n"
                     "forks; each child serves one client and exits; SIGCHLD reaps them.\n"
                     "--mode chat is not offered: separate processes share no client list.\n",
                     SIG_WATCH_CHILD, &code) == -1)
        return code;
    if ((kids = kids_new(srv.o.max_clients, "client process")) == NULL) {
        log_warn("child table:");
        return 1;
    }
    server_announce(&srv);
    server_accept_loop(&srv, spawn, reap);
    /* pass the stop on to every child; each drains on its own clock */
    server_close_listener(&srv);
    kids_stop(kids, SIGTERM, srv.sigfd,
              sys_now_ms() + (int64_t)srv.o.drain * 1000 + CHILD_GRACE_MS);
    server_finish(&srv);
    kids_free(kids);
    return 0;
}
