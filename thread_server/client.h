/* client: one client of thread_server, as its thread, the registry
 * (thread_server.c) and chat mode (talk.c) see it.  Each client has its
 * own heap struct, handed to its thread: never `(void *)fd` or a pointer
 * to a variable the accept loop reuses. */
#ifndef ECHO_CLIENT_H
#define ECHO_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/net.h"
#include "common/session.h"

struct client {
    int fd;
    uint64_t id;
    char peer[NET_ADDR_MAX];
    struct session s;             /* here, not on the thread's stack */
    struct client *prev, *next;   /* the registry */
    int cut;                      /* drain ran out */
    /* chat mode: the fields below are guarded by the registry's lock */
    struct buf queue;             /* lines waiting to be written to it */
    pthread_cond_t wake;          /* the writer: queue grew, or ending */
    int ending;                   /* no more lines for it; writer flushes */
    int overflow;                 /* its queue passed the bound */
    int stalled;                  /* its writer idled out */
    uint64_t taken;               /* bytes its writer took off the queue */
    atomic_llong last_active;     /* ms; the writer counts as activity */
};

#endif
