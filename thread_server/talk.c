/* talk: a reader and a writer thread per chat client (see talk.h). */
#include <sys/socket.h>
#include <sys/time.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/chat.h"
#include "common/io.h"
#include "common/log.h"
#include "common/sys.h"
#include "thread_server/talk.h"

/* A reader's context for chat_in's deliver, and its writer's argument:
 * both live on the reader's stack, which outlives the writer (joined). */
struct talker {
    struct talk *t;
    struct client *c;
};

int talk_init(struct talk *t, pthread_mutex_t *lock, struct client *const *clients,
              const struct opts *o, const pthread_attr_t *writer_attr,
              const pthread_condattr_t *cond_attr)
{
    *t = (struct talk){.lock = lock, .clients = clients, .max = chat_queue_max(o->max_frame),
                       .max_frame = o->max_frame, .idle_timeout = o->idle_timeout,
                       .writer_attr = writer_attr};
    int rc = pthread_cond_init(&t->room, cond_attr);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}

/* Still takes lines (lock held). */
static int receives(const struct client *r)
{
    return !r->ending && !r->overflow;
}

/* Cut r: its queue passed the bound (lock held).  Its reader sees EOF
 * (and knows it was no real one), its writer EPIPE. */
static void cut_overflow(struct client *r)
{
    r->overflow = 1;
    shutdown(r->fd, SHUT_RDWR);
    pthread_cond_signal(&r->wake);
}

/* A receiver that cannot take need more bytes now (lock held), or NULL. */
static struct client *no_room(const struct talk *t, const struct client *c, size_t need)
{
    for (struct client *r = *t->clients; r != NULL; r = r->next)
        if (r != c && receives(r) && buf_len(&r->queue) + need > t->max)
            return r;
    return NULL;
}

/* Wait (lock held) until every receiver has room for need bytes: a
 * receiver whose writer makes no progress for TALK_QUIET_MS is cut; after
 * TALK_WAIT_MAX_MS the wait ends and those still full overflow. */
static void wait_for_room(struct talk *t, struct client *c, size_t need)
{
    int64_t start = sys_now_ms(), quiet_end = 0;
    uint64_t who = 0, seen = 0;
    struct client *r;
    while ((r = no_room(t, c, need)) != NULL && !c->cut && !c->overflow) {
        int64_t now = sys_now_ms();
        if (r->id != who || r->taken != seen) {      /* progress: wait on */
            who = r->id;
            seen = r->taken;
            quiet_end = now + TALK_QUIET_MS;
        } else if (now >= quiet_end) {
            cut_overflow(r);
            continue;
        }
        int64_t until = start + TALK_WAIT_MAX_MS;
        if (now >= until)
            return;
        if (quiet_end < until)
            until = quiet_end;
        struct timespec ts = {.tv_sec = (time_t)(until / 1000),
                              .tv_nsec = (long)(until % 1000) * 1000000};
        t->room_waiters++;
        pthread_cond_timedwait(&t->room, t->lock, &ts);
        t->room_waiters--;
    }
}

/* chat_in's deliver: queue one line from the talker for every other
 * client.  Called by the talker's reader. */
static int broadcast(void *ctx, const char *line, size_t len)
{
    struct talker *me = ctx;
    struct talk *t = me->t;
    struct client *c = me->c;
    size_t need = (size_t)snprintf(NULL, 0, "client %" PRIu64 ": ", c->id) + len + 1;
    if (len > 0 && line[len - 1] == '\n')
        need--;
    pthread_mutex_lock(t->lock);
    wait_for_room(t, c, need);
    for (struct client *r = *t->clients; r != NULL; r = r->next) {
        if (r == c || !receives(r))
            continue;
        if (chat_enqueue(&r->queue, t->max, c->id, line, len) == -1)
            cut_overflow(r);                  /* too slow (or no memory) */
        else
            pthread_cond_signal(&r->wake);
    }
    pthread_mutex_unlock(t->lock);
    return 0;
}

/* Tell readers waiting for room that some was made (lock held). */
static void room_made(struct talk *t)
{
    if (t->room_waiters > 0)
        pthread_cond_broadcast(&t->room);
}

/* The writer: move queued lines to the socket, outside the lock. */
static void *writer(void *arg)
{
    struct talk *t = ((struct talker *)arg)->t;
    struct client *c = ((struct talker *)arg)->c;
    char out[8192];
    pthread_mutex_lock(t->lock);
    for (;;) {
        while (buf_len(&c->queue) == 0 && !c->ending)
            pthread_cond_wait(&c->wake, t->lock);
        size_t n = buf_len(&c->queue);
        if (n == 0)
            break;               /* ending, and everything delivered */
        if (n > sizeof out)
            n = sizeof out;
        memcpy(out, buf_head(&c->queue), n);
        buf_consume(&c->queue, n);
        c->taken += n;
        room_made(t);
        pthread_mutex_unlock(t->lock);
        ssize_t w = io_write_all(c->fd, out, n);
        int err = errno;
        pthread_mutex_lock(t->lock);
        if (w < 0) {
            c->stalled = err == EAGAIN || err == EWOULDBLOCK;
            c->ending = 1;
            shutdown(c->fd, SHUT_RDWR);   /* wake the reader */
            break;
        }
        atomic_store(&c->last_active, sys_now_ms());
    }
    room_made(t);                         /* it takes no more lines */
    pthread_mutex_unlock(t->lock);
    return NULL;
}

/* Idle in chat mode counts lines delivered too: a read that timed out
 * is only idleness if the writer was quiet as well.  Re-arm the receive
 * timeout for what is left and return 1, or return 0 if really idle. */
static int still_busy(const struct talk *t, struct client *c)
{
    int64_t quiet = sys_now_ms() - atomic_load(&c->last_active);
    int64_t left = (int64_t)t->idle_timeout * 1000 - quiet;
    if (left <= 0)
        return 0;
    struct timeval tv = {.tv_sec = (time_t)(left / 1000), .tv_usec = (suseconds_t)(left % 1000) * 1000};
    (void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return 1;
}

/* Did the server itself shut c's socket (lock taken)?  Then a read of 0
 * is no EOF from the peer. */
static int server_cut(const struct talk *t, const struct client *c)
{
    pthread_mutex_lock(t->lock);
    int cut = c->cut || c->overflow || c->ending;
    pthread_mutex_unlock(t->lock);
    return cut;
}

/* Read lines and broadcast them until EOF, an error or a protocol fault. */
static void read_lines(struct talker *me, struct session *s)
{
    struct talk *t = me->t;
    struct client *c = me->c;
    struct chat_in cin;
    chat_in_init(&cin, t->max_frame);
    char in[4096];
    for (;;) {
        ssize_t r = read(c->fd, in, sizeof in);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && still_busy(t, c))
            continue;
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                snprintf(s->reason, sizeof s->reason, "idle for %u s (--idle-timeout)",
                         t->idle_timeout);
            break;
        }
        if (r == 0) {
            /* only a real EOF sends a line the client never finished */
            if (!server_cut(t, c))
                chat_eof(&cin, broadcast, me);
            break;
        }
        s->bytes += (size_t)r;
        atomic_store(&c->last_active, sys_now_ms());
        if (chat_feed(&cin, in, (size_t)r, broadcast, me, s->reason, sizeof s->reason) == -1)
            break;
    }
    chat_in_free(&cin);
}

void talk_run(struct talk *t, struct client *c, struct session *s)
{
    struct talker me = {t, c};
    pthread_t wtid;
    atomic_store(&c->last_active, sys_now_ms());
    int rc = pthread_create(&wtid, t->writer_attr, writer, &me);
    if (rc != 0) {
        snprintf(s->reason, sizeof s->reason, "no writer thread: %s", strerror(rc));
        return;
    }
    read_lines(&me, s);
    pthread_mutex_lock(t->lock);
    /* a clean EOF lets the writer deliver what is queued; else stop now */
    if (s->reason[0] != '\0' || c->cut || c->overflow)
        shutdown(c->fd, SHUT_RDWR);
    c->ending = 1;
    pthread_cond_signal(&c->wake);
    room_made(t);                         /* it takes no more lines */
    pthread_mutex_unlock(t->lock);
    if ((rc = pthread_join(wtid, NULL)) != 0)
        log_warn("pthread_join: %s", strerror(rc));
}
