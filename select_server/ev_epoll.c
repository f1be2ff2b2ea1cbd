/* ev_epoll: Linux.  The kernel keeps the interest list, so a wait costs
 * in proportion to the ready descriptors, not to all of them; interest
 * changes are system calls (EPOLL_CTL_ADD/MOD/DEL), which is why the loop
 * above skips unchanged masks.  Elsewhere this backend does not exist. */
#include <errno.h>
#include <stdlib.h>

#include "select_server/ev.h"

#ifdef __linux__
#include <sys/epoll.h>
#include <unistd.h>

struct epoll_state {
    int ep;
    struct epoll_event *events;
    int nevents;
};

static void *epoll_create_state(int max_fds)
{
    (void)max_fds;
    struct epoll_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    if (s->ep == -1) {
        int saved = errno;
        free(s);
        errno = saved;
        return NULL;
    }
    return s;
}

static void epoll_destroy(void *st)
{
    struct epoll_state *s = st;
    close(s->ep);
    free(s->events);
    free(s);
}

static int epoll_set(void *st, int fd, int old_mask, int new_mask)
{
    struct epoll_state *s = st;
    struct epoll_event ev = {0};
    ev.events = (new_mask & EV_READ ? EPOLLIN : 0u) | (new_mask & EV_WRITE ? EPOLLOUT : 0u);
    ev.data.fd = fd;
    int op = old_mask == 0 ? EPOLL_CTL_ADD : new_mask == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    return epoll_ctl(s->ep, op, fd, &ev);
}

static int epoll_wait_ready(void *st, struct ev_ready *out, int max, int ms)
{
    struct epoll_state *s = st;
    if (s->nevents < max) {
        struct epoll_event *e = realloc(s->events, (size_t)max * sizeof *e);
        if (e == NULL)
            return -1;
        s->events = e;
        s->nevents = max;
    }
    int r = epoll_wait(s->ep, s->events, max, ms);
    if (r <= 0)
        return r == -1 && errno == EINTR ? 0 : r;
    for (int i = 0; i < r; i++) {
        uint32_t e = s->events[i].events;
        out[i].fd = s->events[i].data.fd;
        out[i].mask = ((e & (EPOLLIN | EPOLLHUP | EPOLLERR)) ? EV_READ : 0) |
                      ((e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) ? EV_WRITE : 0);
    }
    return r;
}

const struct ev_backend ev_epoll = {"epoll", epoll_create_state, epoll_destroy, epoll_set,
                                    epoll_wait_ready};
#else
const struct ev_backend ev_epoll = {"epoll", NULL, NULL, NULL, NULL};
#endif
