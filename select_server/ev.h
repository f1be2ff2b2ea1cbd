/* ev: the event loop behind one small interface, with the backend chosen
 * at run time (--backend).  A backend is a table of four functions, as
 * Redis' ae keeps one file per backend; the loop above it remembers each
 * descriptor's interest so callers just say what they want now.
 * Level-triggered: a descriptor stays ready until its data is read or its
 * buffer has room. */
#ifndef ECHO_EV_H
#define ECHO_EV_H

enum { EV_READ = 1, EV_WRITE = 2 };

struct ev_ready {
    int fd;
    int mask;          /* EV_READ | EV_WRITE; errors and hang-ups show as both */
};

struct ev_backend {
    const char *name;                                  /* "poll" "select" "epoll" */
    void *(*create)(int max_fds);                      /* NULL, errno set */
    void (*destroy)(void *st);
    int (*set)(void *st, int fd, int old_mask, int new_mask); /* new 0: remove */
    int (*wait)(void *st, struct ev_ready *out, int max, int ms); /* EINTR: 0 */
};

extern const struct ev_backend ev_poll, ev_select, ev_epoll;

/* The backend called name, or NULL if there is none (epoll off Linux). */
const struct ev_backend *ev_backend_find(const char *name);

struct ev_loop;

/* A loop for descriptors 0..max_fds-1.  NULL with errno. */
struct ev_loop *ev_loop_new(const struct ev_backend *b, int max_fds);
void ev_loop_free(struct ev_loop *l);

/* Make fd's interest mask (0: forget fd).  Costs nothing when unchanged.
 * -1 with errno: ERANGE when fd is out of the backend's reach (select's
 * FD_SETSIZE, or max_fds). */
int ev_loop_set(struct ev_loop *l, int fd, int mask);
int ev_loop_get(const struct ev_loop *l, int fd);

/* Wait up to ms (-1: no limit) and return how many descriptors are
 * ready, to be read with ev_loop_ready(l, 0..n-1); -1 with errno. */
int ev_loop_wait(struct ev_loop *l, int ms);

/* The i-th ready descriptor in *fd; returns its events, limited to the
 * interest it has now (0 once it was removed during this turn). */
int ev_loop_ready(const struct ev_loop *l, int i, int *fd);

#endif
