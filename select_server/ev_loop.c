/* ev_loop: interest masks by descriptor over a backend. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "select_server/ev.h"

#define EV_BATCH 1024   /* ready descriptors taken per wait */

struct ev_loop {
    const struct ev_backend *b;
    void *st;
    int max_fds;
    unsigned char *mask;          /* interest by descriptor */
    struct ev_ready ready[EV_BATCH];
};

const struct ev_backend *ev_backend_find(const char *name)
{
    const struct ev_backend *all[] = {&ev_poll, &ev_select, &ev_epoll};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->create != NULL && strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

struct ev_loop *ev_loop_new(const struct ev_backend *b, int max_fds)
{
    struct ev_loop *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->b = b;
    l->max_fds = max_fds;
    l->mask = calloc((size_t)max_fds, 1);
    l->st = l->mask != NULL ? b->create(max_fds) : NULL;
    if (l->st == NULL) {
        int saved = errno;
        free(l->mask);
        free(l);
        errno = saved;
        return NULL;
    }
    return l;
}

void ev_loop_free(struct ev_loop *l)
{
    if (l == NULL)
        return;
    l->b->destroy(l->st);
    free(l->mask);
    free(l);
}

int ev_loop_set(struct ev_loop *l, int fd, int mask)
{
    if (fd < 0 || fd >= l->max_fds) {
        errno = ERANGE;
        return -1;
    }
    int old = l->mask[fd];
    if (old == mask)
        return 0;
    if (l->b->set(l->st, fd, old, mask) == -1)
        return -1;
    l->mask[fd] = (unsigned char)mask;
    return 0;
}

int ev_loop_get(const struct ev_loop *l, int fd)
{
    return fd >= 0 && fd < l->max_fds ? l->mask[fd] : 0;
}

int ev_loop_wait(struct ev_loop *l, int ms)
{
    return l->b->wait(l->st, l->ready, EV_BATCH, ms);
}

int ev_loop_ready(const struct ev_loop *l, int i, int *fd)
{
    *fd = l->ready[i].fd;
    /* only what is still wanted: an earlier handler of this turn may have
     * changed the interest, or closed the descriptor */
    return l->ready[i].mask & l->mask[*fd];
}
