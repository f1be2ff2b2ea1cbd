/* ev_poll: the POSIX default.  One pollfd array kept between waits (not
 * rebuilt each time), a descriptor-to-slot index, removal by moving the
 * last slot into the hole (as libuv's posix-poll.c).  poll(2) itself
 * scans every slot: O(n) per wait, in the kernel and here. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "select_server/ev.h"

struct poll_state {
    struct pollfd *fds;
    int n;
    int *slot;          /* slot of each descriptor, -1 if none */
};

static void *poll_create(int max_fds)
{
    struct poll_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->fds = calloc((size_t)max_fds, sizeof *s->fds);
    s->slot = malloc((size_t)max_fds * sizeof *s->slot);
    if (s->fds == NULL || s->slot == NULL) {
        free(s->fds);
        free(s->slot);
        free(s);
        errno = ENOMEM;
        return NULL;
    }
    for (int i = 0; i < max_fds; i++)
        s->slot[i] = -1;
    return s;
}

static void poll_destroy(void *st)
{
    struct poll_state *s = st;
    free(s->fds);
    free(s->slot);
    free(s);
}

static short to_events(int mask)
{
    return (short)((mask & EV_READ ? POLLIN : 0) | (mask & EV_WRITE ? POLLOUT : 0));
}

static int poll_set(void *st, int fd, int old_mask, int new_mask)
{
    struct poll_state *s = st;
    (void)old_mask;
    int i = s->slot[fd];
    if (new_mask == 0) {                 /* remove: last slot fills the hole */
        if (i < 0)
            return 0;
        s->fds[i] = s->fds[--s->n];
        s->slot[s->fds[i].fd] = i;
        s->slot[fd] = -1;
        return 0;
    }
    if (i < 0) {                         /* add at the end */
        i = s->n++;
        s->slot[fd] = i;
        s->fds[i].fd = fd;
    }
    s->fds[i].events = to_events(new_mask);
    return 0;
}

static int poll_wait(void *st, struct ev_ready *out, int max, int ms)
{
    struct poll_state *s = st;
    int r = poll(s->fds, (nfds_t)s->n, ms);
    if (r <= 0)
        return r == -1 && errno == EINTR ? 0 : r;
    int k = 0;
    for (int i = 0; i < s->n && k < r && k < max; i++) {
        short re = s->fds[i].revents;
        if (re == 0)
            continue;
        int mask = 0;
        if (re & (POLLIN | POLLHUP | POLLERR | POLLNVAL))
            mask |= EV_READ;
        if (re & (POLLOUT | POLLHUP | POLLERR | POLLNVAL))
            mask |= EV_WRITE;
        out[k].fd = s->fds[i].fd;
        out[k].mask = mask;
        k++;
    }
    return k;
}

const struct ev_backend ev_poll = {"poll", poll_create, poll_destroy, poll_set, poll_wait};
