/* pool: N threads, a mailbox each, a stack of the idle ones, one mutex. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sig.h"
#include "thread_server/pool.h"

static void *pool_thread(void *arg)
{
    struct pool_worker *w = arg;
    struct pool *p = w->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        p->idle[p->nidle++] = (unsigned)(w - p->w);
        if (p->want_seat) {                 /* the main thread waits for us */
            p->want_seat = 0;
            char b = 1;
            if (write(p->seat_fd[1], &b, 1) == 1)
                p->seat_written = 1;
        }
        while (w->item == NULL && !p->stopping)
            pthread_cond_wait(&w->wake, &p->mu);
        void *item = w->item;               /* pool_put took us off the stack */
        w->item = NULL;
        if (item == NULL)
            break;                          /* stopping */
        pthread_mutex_unlock(&p->mu);
        (void)p->serve(item);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int pool_start(struct pool *p, unsigned n, const pthread_attr_t *attr,
               void *(*serve)(void *item))
{
    *p = (struct pool){.n = n, .serve = serve, .seat_fd = {-1, -1}};
    int rc = pthread_mutex_init(&p->mu, NULL);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    p->w = calloc(n, sizeof *p->w);
    p->idle = calloc(n, sizeof *p->idle);
    if (p->w == NULL || p->idle == NULL || pipe(p->seat_fd) == -1)
        goto fail;
    for (int i = 0; i < 2; i++)
        if (fcntl(p->seat_fd[i], F_SETFD, FD_CLOEXEC) == -1 ||
            fcntl(p->seat_fd[i], F_SETFL, O_NONBLOCK) == -1)
            goto fail;
    for (; p->started < n; p->started++) {
        struct pool_worker *w = &p->w[p->started];
        w->pool = p;
        if ((rc = pthread_cond_init(&w->wake, NULL)) != 0)
            goto fail_rc;
        if ((rc = pthread_create(&w->tid, attr, pool_thread, w)) != 0) {
            pthread_cond_destroy(&w->wake);
            goto fail_rc;
        }
    }
    return 0;
fail_rc:
    errno = rc;
fail:
    rc = errno;
    pool_stop(p);          /* joins the threads started so far, frees */
    errno = rc;
    return -1;
}

int pool_has_seat(struct pool *p)
{
    pthread_mutex_lock(&p->mu);
    char b[64];
    while (p->seat_written && read(p->seat_fd[0], b, sizeof b) > 0)
        ;                                   /* old wake-ups */
    p->seat_written = 0;
    int seat = p->nidle > 0;
    p->want_seat = !seat;
    pthread_mutex_unlock(&p->mu);
    return seat;
}

int pool_seat_fd(const struct pool *p)
{
    return p->seat_fd[0];
}

int pool_wait(struct pool *p, struct server *srv)
{
    if (pool_has_seat(p))
        return server_wait(srv, 1);
    struct pollfd pfd[2] = {
        {.fd = srv->sigfd, .events = POLLIN},
        {.fd = p->seat_fd[0], .events = POLLIN},
    };
    if (poll(pfd, 2, -1) == -1) {
        if (errno == EINTR)
            return 0;
        log_warn("poll:");
        return -1;
    }
    if (pfd[0].revents & POLLIN)
        sig_drain(srv->sigfd);
    return 0;                               /* a thread is idle: look again */
}

void pool_put(struct pool *p, void *item)
{
    pthread_mutex_lock(&p->mu);
    struct pool_worker *w = &p->w[p->idle[--p->nidle]];   /* the last one idle */
    w->item = item;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&p->mu);
}

void pool_stop(struct pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    for (unsigned i = 0; i < p->started; i++)
        pthread_cond_signal(&p->w[i].wake);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->started; i++) {
        pthread_join(p->w[i].tid, NULL);
        pthread_cond_destroy(&p->w[i].wake);
    }
    pthread_mutex_destroy(&p->mu);
    for (int i = 0; i < 2; i++)
        if (p->seat_fd[i] >= 0)
            close(p->seat_fd[i]);
    free(p->w);
    free(p->idle);
}
