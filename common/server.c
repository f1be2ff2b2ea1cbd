/* server: start-up, accept and shutdown steps shared by the three mains. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/net.h"
#include "common/server.h"
#include "common/sig.h"
#include "common/sys.h"

/* Accept pauses this long when even the reserve descriptor cannot help,
 * and for a moment of grace when clients left since the limit was hit
 * (their descriptors may be a moment from free). */
#define ACCEPT_PAUSE_MS 100
#define ACCEPT_GRACE_MS 50
/* At most one "out of descriptors" line this often. */
#define SHED_WARN_MS 5000

/* Thread and select servers hold a descriptor per client: make room for
 * --max-clients, or say at once that the limit will shed clients. */
static void fit_nofile(struct server *srv)
{
    long want = (long)srv->o.max_clients + SERVER_FD_RESERVE;
    long have = sys_raise_nofile(want);
    if (have >= 0 && have < want)
        log_warn("descriptor limit %ld leaves room for about %ld clients, not "
                 "--max-clients %lu; connections past it are shed (raise ulimit -n)",
                 have, have > SERVER_FD_RESERVE ? have - SERVER_FD_RESERVE : 0,
                 srv->o.max_clients);
}

static int parse(struct server *srv, int argc, char **argv, const struct opt_model *m,
                 int *code)
{
    char err[256];
    switch (opt_parse(argc, argv, m, &srv->o, err, sizeof err)) {
    case OPT_RUN:
        return 0;
    case OPT_HELP:
        opt_usage(stdout, m);
        *code = 0;
        return -1;
    case OPT_VERSION:
        printf("%s %s\n", srv->prog, VERSION);
        *code = 0;
        return -1;
    case OPT_ERROR:
        break;
    }
    fprintf(stderr, "%s: %s\nTry '%s --help'.\n", srv->prog, err, srv->prog);
    *code = 2;
    return -1;
}

int server_start(struct server *srv, int argc, char **argv, const struct opt_model *m,
                 int flags, int *code)
{
    memset(srv, 0, sizeof *srv);
    srv->prog = m->prog;
    srv->lfd = srv->sigfd = srv->access_fd = srv->reserve_fd = -1;
    srv->starved_active = LONG_MAX;
    if (parse(srv, argc, argv, m, code) == -1)
        return -1;
    log_init(srv->prog, srv->o.quiet);
    *code = 1;
    if (log_detach() == -1) {
        log_warn("log set-up:");
        return -1;
    }
    if ((srv->sigfd = sig_setup(flags & SIG_WATCH_CHILD)) == -1) {
        log_warn("signal set-up:");
        return -1;
    }
    if ((srv->st = stats_new()) == NULL) {
        log_warn("shared counters:");
        return -1;
    }
    if (!(flags & SERVER_FDS_ELSEWHERE))
        fit_nofile(srv);
    if (srv->o.access_log != NULL &&
        (srv->access_fd = log_access_open(srv->o.access_log)) == -1) {
        if (errno == ENXIO)
            log_warn("access log %s: a FIFO that no process is reading", srv->o.access_log);
        else
            log_warn("access log %s:", srv->o.access_log);
        return -1;
    }
    char err[256];
    srv->lfd = net_listen(srv->o.bind, srv->o.port, srv->o.workers > 1, err, sizeof err);
    if (srv->lfd == -1) {
        log_warn("%s", err);
        return -1;
    }
    /* a parent that holds no client descriptor needs no spare */
    if (!(flags & SERVER_FDS_ELSEWHERE))
        srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    *code = 0;
    return 0;
}

void server_announce(struct server *srv)
{
    char addr[NET_ADDR_MAX];
    if (net_local_addr(srv->lfd, addr, sizeof addr, NULL) == -1)
        snprintf(addr, sizeof addr, "%s:%s", srv->o.bind, srv->o.port);
    if (srv->o.backend != NULL)
        log_status("%s: listening on %s (mode %s, backend %s)", srv->prog, addr,
                   opt_mode_name(srv->o.mode), srv->o.backend);
    else
        log_status("%s: listening on %s (mode %s)", srv->prog, addr, opt_mode_name(srv->o.mode));
}

int server_paused_ms(struct server *srv)
{
    if (srv->paused_until == 0)
        return -1;
    int64_t left = srv->paused_until - sys_now_ms();
    if (left <= 0) {
        srv->paused_until = 0;
        return -1;
    }
    return (int)left;
}

/* Out of descriptors.  If clients have left since the limit was last hit,
 * their descriptors are being freed: wait a moment.  Otherwise shed the
 * pending connection (the client sees it closed at once instead of waiting
 * in the backlog).  Say so once in a while, not once per attempt. */
static void out_of_fds(struct server *srv, int err)
{
    int64_t now = sys_now_ms();
    long active = atomic_load(&srv->st->active);
    if (active < srv->starved_active)
        srv->paused_until = now + ACCEPT_GRACE_MS;
    else if (net_shed(srv->lfd, &srv->reserve_fd) == 0)
        srv->shed++;
    else if (errno != EAGAIN)
        srv->paused_until = now + ACCEPT_PAUSE_MS;
    srv->starved_active = active;
    if (srv->shed_warned == 0 || now - srv->shed_warned >= SHED_WARN_MS) {
        log_warn("accept: %s; shedding new connections until descriptors free up "
                 "(%lu shed so far)", strerror(err), srv->shed);
        srv->shed_warned = now;
    }
}

int server_accept(struct server *srv, int nonblock, char *peer, size_t peerlen)
{
    if (server_paused_ms(srv) >= 0 || srv->lfd < 0) {
        errno = EAGAIN;
        return -1;
    }
    int fd = net_accept(srv->lfd, nonblock, peer, peerlen);
    if (fd >= 0 && srv->starved_active != LONG_MAX)
        srv->starved_active = LONG_MAX;       /* descriptors to spare again */
    if (fd >= 0 || errno == EAGAIN || errno == EWOULDBLOCK)
        return fd;
    int err = errno;
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
        out_of_fds(srv, err);
    else
        log_warn("accept: %s", strerror(err));
    errno = EAGAIN;
    return -1;
}

int server_wait(struct server *srv, int listener)
{
    int paused = listener ? server_paused_ms(srv) : -1;
    struct pollfd pfd[2] = {
        {.fd = listener && paused < 0 ? srv->lfd : -1, .events = POLLIN},
        {.fd = srv->sigfd, .events = POLLIN},
    };
    if (poll(pfd, 2, paused) == -1) {
        if (errno == EINTR)
            return 0;
        log_warn("poll:");
        return -1;
    }
    if (pfd[1].revents & POLLIN)
        sig_drain(srv->sigfd);
    return (pfd[0].revents & POLLIN) != 0;
}

void server_refuse(struct server *srv, int fd, const char *peer, const char *why)
{
    if (why != NULL)
        log_client("refused %s: %s", peer, why);
    else
        log_client("refused %s: at --max-clients %lu", peer, srv->o.max_clients);
    close(fd);
}

void server_close_listener(struct server *srv)
{
    if (srv->lfd >= 0)
        close(srv->lfd);
    srv->lfd = -1;
}

/* After Ctrl-C a terminal shows "^C" where the cursor was: start our
 * line on a fresh one. */
static const char *after_ctrl_c(void)
{
    static sig_atomic_t seen;
    if (sig_last != SIGINT || seen == sig_stops || !isatty(STDOUT_FILENO))
        return "";
    seen = sig_stops;
    return "\n";
}

int64_t server_drain_begin(struct server *srv, long clients)
{
    if (clients > 0)
        log_status("%s%s: draining %ld clients for up to %u s (Ctrl-C again to stop now)",
                   after_ctrl_c(), srv->prog, clients, srv->o.drain);
    return sys_now_ms() + (int64_t)srv->o.drain * 1000;
}

int server_drain_over(int64_t deadline_ms)
{
    return sig_hurry || sys_now_ms() >= deadline_ms;
}

void server_finish(struct server *srv)
{
    if (srv->st != NULL)
        log_status("%s%s: shutting down: served %" PRIu64 " clients, received %" PRIu64 " bytes",
                   after_ctrl_c(), srv->prog, (uint64_t)atomic_load(&srv->st->clients),
                   (uint64_t)atomic_load(&srv->st->bytes));
    server_release(srv);
}

void server_release(struct server *srv)
{
    server_close_listener(srv);
    if (srv->access_fd >= 0)
        close(srv->access_fd);
    if (srv->reserve_fd >= 0)
        close(srv->reserve_fd);
    sig_close();
    stats_free(srv->st);
    srv->st = NULL;
    srv->access_fd = srv->reserve_fd = srv->sigfd = -1;
}

#define HURRY_CHECK_MS 50

int server_cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms, int drain)
{
    int64_t now = sys_now_ms();
    if (drain ? server_drain_over(deadline_ms) : now >= deadline_ms)
        return -1;
    int64_t until = deadline_ms;
    if (drain && until > now + HURRY_CHECK_MS)
        until = now + HURRY_CHECK_MS;
    struct timespec ts = {.tv_sec = (time_t)(until / 1000),
                          .tv_nsec = (long)(until % 1000) * 1000000};
    pthread_cond_timedwait(cv, mu, &ts);
    return 0;
}
