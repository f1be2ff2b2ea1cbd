/* session: the blocking protocol loop shared by fork_server and
 * thread_server. */
#include <sys/socket.h>
#include <sys/time.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/io.h"
#include "common/log.h"
#include "common/session.h"
#include "common/proto.h"

void session_start(struct session *s, int fd, uint64_t id, const char *peer,
                   const struct opts *o)
{
    s->fd = fd;
    s->id = id;
    s->o = o;
    s->bytes = 0;
    s->live = NULL;
    s->reason[0] = '\0';
    if (o->idle_timeout > 0) {
        /* a read or write that waits this long fails with EAGAIN: idle */
        struct timeval tv = {.tv_sec = (time_t)o->idle_timeout, .tv_usec = 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    log_client_start(id, peer);
}

/* A write or read failed: EAGAIN means the idle timer ran out; anything
 * else (EPIPE, ECONNRESET) is the client going away, no reason needed. */
static void io_failed(struct session *s)
{
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        snprintf(s->reason, sizeof s->reason, "idle for %u s (--idle-timeout)",
                 s->o->idle_timeout);
}

/* proto's emit: a blocking write of the whole reply is the backpressure. */
static int emit(void *ctx, const char *p, size_t n)
{
    struct session *s = ctx;
    if (io_write_all(s->fd, p, n) < 0) {
        io_failed(s);
        return -1;
    }
    return 0;
}

void session_run(struct session *s)
{
    struct proto pr;
    proto_init(&pr, s->o->mode, s->o->max_frame);
    char *buf = s->small, *big = NULL;
    size_t cap = sizeof s->small;
    for (;;) {
        ssize_t r = read(s->fd, buf, cap);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            io_failed(s);
            break;
        }
        if (r == 0) {
            proto_eof(&pr, emit, s, s->reason, sizeof s->reason);
            break;
        }
        s->bytes += (size_t)r;
        if (s->live != NULL)
            atomic_store_explicit(s->live, s->bytes, memory_order_relaxed);
        if (proto_feed(&pr, buf, (size_t)r, emit, s, s->reason, sizeof s->reason) != PROTO_OK)
            break;
        /* a full small buffer means a stream: move to the big one */
        if ((size_t)r == cap && big == NULL && (big = malloc(SESSION_BIG_BUF)) != NULL) {
            buf = big;
            cap = SESSION_BIG_BUF;
        }
    }
    free(big);
    proto_free(&pr);
}

void session_finish(struct session *s, const char *cut_reason, int access_fd,
                    struct stats *st)
{
    log_client_end(s->id, s->bytes, cut_reason != NULL ? cut_reason : s->reason, access_fd);
    if (s->live != NULL)      /* never counted twice; at worst not at all */
        atomic_store(s->live, 0);
    atomic_fetch_add(&st->bytes, s->bytes);
}
