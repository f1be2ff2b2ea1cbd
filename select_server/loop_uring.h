/* loop_uring: select_server's completion loop (--backend uring). */
#ifndef ECHO_LOOP_URING_H
#define ECHO_LOOP_URING_H

#include "common/server.h"
#include "common/stats.h"

/* Serve srv->lfd with one io_uring until the drain ends, as serve() does
 * with an ev_loop: same protocol, limits, status lines and shutdown.
 * me: a worker's share of the counters (NULL if not a worker); worker: a
 * --workers process (the master prints the listening line).  Returns 0,
 * or 1 if the ring could not be set up (reported). */
int uring_serve(struct server *srv, struct stats_own *me, int worker);

#endif
