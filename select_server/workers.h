/* workers: select_server's own command line (--backend, --workers) and
 * its --workers master: N processes, each with its own listener on the
 * same port (SO_REUSEPORT) and its own event loop, supervised through
 * common/kids.c (nginx's model). */
#ifndef ECHO_WORKERS_H
#define ECHO_WORKERS_H

#include "common/opt.h"
#include "common/server.h"
#include "common/stats.h"

/* --backend NAME (poll, select, epoll, uring) and --workers N (1-64). */
extern const struct opt_own workers_opts[];

/* The model's check: --backend defaults to poll; chat with --workers > 1
 * is refused (each worker would be a room of its own). */
int workers_check(struct opts *o, char *err, size_t errlen);

/* The master: start srv->o.workers workers, each calling serve(own) in a
 * fresh process on its own listener (srv->lfd, srv->sigfd set up for it;
 * own: its share of the counters) and exiting with its result; replace
 * any that dies; on a stop signal, close the listeners, announce the
 * drain and stop them all.  0, or 1 if they could not start or every
 * worker is gone. */
int workers_run(struct server *srv, int (*serve)(struct stats_own *own));

#endif
