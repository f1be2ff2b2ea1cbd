/* pool: a fixed set of threads fed through a bounded hand-over
 * (thread_server --pool N).
 *
 * Each thread has a one-item mailbox; the idle threads wait on a stack.
 * The main thread hands an item (a client) over only when a thread is
 * idle to take it at once (pool_has_seat), so at most N items are ever
 * in the pool's hands: a client the pool cannot serve yet stays in the
 * kernel's listen backlog, where it belongs, instead of in our memory.
 * The thread idle for the shortest time gets the next item (last in,
 * first out): its stack and cache lines are still warm, and under churn
 * a few threads do the work while the others' stacks stay untouched. */
#ifndef ECHO_POOL_H
#define ECHO_POOL_H

#include <pthread.h>
#include <stddef.h>

#include "common/server.h"

struct pool_worker {
    struct pool *pool;
    pthread_t tid;
    pthread_cond_t wake;        /* an item in the mailbox, or stopping */
    void *item;                 /* the mailbox */
};

struct pool {
    pthread_mutex_t mu;
    struct pool_worker *w;      /* n workers */
    unsigned n, started;
    unsigned *idle;             /* stack of idle workers' indices */
    unsigned nidle;
    int stopping;
    int want_seat;              /* the main thread waits on seat_fd */
    int seat_written;           /* a byte is in the pipe */
    int seat_fd[2];             /* pipe: a thread became idle */
    void *(*serve)(void *item);
};

/* Start n threads (attr: stack size, joinable) that each call serve(item)
 * (a thread start routine; what it returns is ignored) item after item.  0, or -1 with errno (nothing left running). */
int pool_start(struct pool *p, unsigned n, const pthread_attr_t *attr,
               void *(*serve)(void *item));

/* 1 if an idle thread would take an item handed over now.  0 if not:
 * then pool_seat_fd() turns readable when a thread frees up. */
int pool_has_seat(struct pool *p);
int pool_seat_fd(const struct pool *p);

/* The accept loop's wait with a pool: as server_wait (1: accept may be
 * called, 0: not yet, -1: poll error, reported), but the listener is
 * watched only while a thread is idle; until then the main thread sleeps
 * until one is, or a signal comes. */
int pool_wait(struct pool *p, struct server *srv);

/* Hand item to an idle thread; only after pool_has_seat() said 1. */
void pool_put(struct pool *p, void *item);

/* Let the threads end once their current item is served, join them and
 * free the pool. */
void pool_stop(struct pool *p);

#endif
