/* workers: the master never accepts; it holds each worker's listener so
 * that a replacement can take over the same one (connections that wait in
 * a dead worker's backlog are served by its successor). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/kids.h"
#include "common/log.h"
#include "common/net.h"
#include "common/sig.h"
#include "common/sys.h"
#include "select_server/workers.h"

#define WORKER_GRACE_MS 2000

static const char *const backends[] = {"poll", "select", "epoll", "uring", NULL};

static int set_backend(struct opts *o, const char *arg, char *err, size_t errlen)
{
    int i = opt_choice("backend", arg, backends, err, errlen);
    if (i < 0)
        return -1;
    o->backend = backends[i];
    return 0;
}

const struct opt_own workers_opts[] = {
    {"backend", "      --backend NAME      event loop: poll, select, epoll or uring\n"
                "                          (io_uring, Linux) (default poll)\n", set_backend, 0, 0, 0},
    OPT_OWN_NUMBER("workers", "      --workers N         processes, each with its own event loop,\n"
                              "                          sharing the port (1-64, default 1; not with chat)\n",
                   1, 64, workers),
    {NULL, NULL, NULL, 0, 0, 0},
};

int workers_check(struct opts *o, char *err, size_t errlen)
{
    if (o->backend == NULL)
        o->backend = "poll";
    if (o->mode != MODE_CHAT || o->workers < 2)
        return 0;
    snprintf(err, errlen, "--mode chat needs one shared list of clients, and "
             "--workers %u would make %u separate rooms; use one worker", o->workers, o->workers);
    return -1;
}

struct workers {
    struct server *srv;
    struct kids *kids;
    int *lfds;                  /* kept by the master for replacements */
    unsigned n;
    int (*serve)(struct stats_own *own);
};

/* kids_supervise's start: the worker for slot, on lfds[slot]. */
static pid_t start_worker(size_t slot, void *ctx)
{
    struct workers *w = ctx;
    struct server *srv = w->srv;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* the worker: its own listener, its own self-pipe, its own share */
    for (unsigned k = 0; k < w->n; k++)
        if (k != slot)
            close(w->lfds[k]);
    srv->lfd = w->lfds[slot];
    sig_close();
    sig_handle(SIGCHLD, SIG_DFL, 0);
    srv->sigfd = sig_setup(0);
    int rc = srv->sigfd < 0 || kids_child_init(parent) == -1 ? 1 : w->serve(&w->kids->kid[slot].own);
    server_close_listener(srv);
    sig_close();
    if (srv->access_fd >= 0)
        close(srv->access_fd);
    if (srv->reserve_fd >= 0)
        close(srv->reserve_fd);
    _exit(rc);
}

int workers_run(struct server *srv, int (*serve)(struct stats_own *own))
{
    struct workers w = {srv, kids_new(srv->o.workers, "worker", srv->st),
                        calloc(srv->o.workers, sizeof(int)), srv->o.workers, serve};
    if (w.lfds == NULL || w.kids == NULL) {
        log_warn("workers:");
        free(w.lfds);
        kids_free(w.kids);
        return 1;
    }
    w.lfds[0] = srv->lfd;
    for (unsigned i = 1; i < w.n; i++) {
        char err[256];
        if ((w.lfds[i] = net_listen_again(srv->lfd, err, sizeof err)) == -1) {
            log_warn("worker %u: %s", i + 1, err);
            while (--i > 0)
                close(w.lfds[i]);
            free(w.lfds);
            kids_free(w.kids);
            return 1;
        }
    }
    server_announce(srv);
    srv->lfd = -1;              /* the master never accepts */
    kids_supervise(w.kids, start_worker, &w);
    while (!sig_stop && w.kids->n > 0) {
        if (server_wait(srv, 0) < 0)
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
    int64_t deadline = server_drain_begin(srv, rc == 0 ? atomic_load(&srv->st->active) : 0);
    kids_stop(w.kids, SIGTERM, srv->sigfd, deadline + WORKER_GRACE_MS);
    kids_free(w.kids);
    return rc;
}
