/* ev_select: the oldest interface.  Master fd_sets copied before every
 * select(2), which overwrites its arguments; a scan up to the highest
 * descriptor afterwards.  An fd_set holds descriptors below FD_SETSIZE
 * (1024 on Linux) only: set() refuses the rest with ERANGE instead of
 * writing past the set (undefined behaviour), and the server closes that
 * client with a status line. */
#include <sys/select.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "select_server/ev.h"

struct select_state {
    fd_set rd, wr;      /* interest */
    int maxfd;          /* highest descriptor in either set, or -1 */
};

static void *select_create(int max_fds)
{
    (void)max_fds;
    struct select_state *s = malloc(sizeof *s);
    if (s == NULL)
        return NULL;
    FD_ZERO(&s->rd);
    FD_ZERO(&s->wr);
    s->maxfd = -1;
    return s;
}

static void select_destroy(void *st)
{
    free(st);
}

static int select_set(void *st, int fd, int old_mask, int new_mask)
{
    struct select_state *s = st;
    (void)old_mask;
    if (fd >= FD_SETSIZE) {
        errno = ERANGE;
        return -1;
    }
    if (new_mask & EV_READ)
        FD_SET(fd, &s->rd);
    else
        FD_CLR(fd, &s->rd);
    if (new_mask & EV_WRITE)
        FD_SET(fd, &s->wr);
    else
        FD_CLR(fd, &s->wr);
    if (new_mask != 0 && fd > s->maxfd)
        s->maxfd = fd;
    while (s->maxfd >= 0 && !FD_ISSET(s->maxfd, &s->rd) && !FD_ISSET(s->maxfd, &s->wr))
        s->maxfd--;
    return 0;
}

static int select_wait(void *st, struct ev_ready *out, int max, int ms)
{
    struct select_state *s = st;
    fd_set rd = s->rd, wr = s->wr;     /* select() overwrites its sets */
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    int r = select(s->maxfd + 1, &rd, &wr, NULL, ms < 0 ? NULL : &tv);
    if (r <= 0)
        return r == -1 && errno == EINTR ? 0 : r;
    int k = 0;
    for (int fd = 0; fd <= s->maxfd && k < max; fd++) {
        int mask = (FD_ISSET(fd, &rd) ? EV_READ : 0) | (FD_ISSET(fd, &wr) ? EV_WRITE : 0);
        if (mask != 0) {
            out[k].fd = fd;
            out[k].mask = mask;
            k++;
        }
    }
    return k;
}

const struct ev_backend ev_select = {"select", select_create, select_destroy, select_set,
                                     select_wait};
