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
#include "framing/frame.h"
#include "framing/line.h"

void session_start(struct session *s, int fd, uint64_t id, const char *peer,
                   const struct opts *o)
{
    s->fd = fd;
    s->id = id;
    s->o = o;
    s->bytes = 0;
    s->reason[0] = '\0';
    s->run = NULL;
    s->run_len = 0;
    if (o->idle_timeout > 0) {
        /* a read or write that waits this long fails with EAGAIN: idle */
        struct timeval tv = {.tv_sec = (time_t)o->idle_timeout, .tv_usec = 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    log_client("client %" PRIu64 " connected from %s", id, peer);
}

/* A write or read failed: EAGAIN means the idle timer ran out; anything
 * else (EPIPE, ECONNRESET) is the client going away, no reason needed. */
static void io_failed(struct session *s)
{
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        snprintf(s->reason, sizeof s->reason, "idle for %u s (--idle-timeout)",
                 s->o->idle_timeout);
}

/* Output is gathered as one run of the input buffer, so a read holding
 * many whole messages is echoed with one write. */
static int out_flush(struct session *s)
{
    if (s->run_len == 0)
        return 0;
    ssize_t w = io_write_all(s->fd, s->run, s->run_len);
    s->run_len = 0;
    if (w < 0) {
        io_failed(s);
        return -1;
    }
    return 0;
}

static int out_run(struct session *s, const char *p, size_t n)
{
    if (s->run_len > 0 && s->run + s->run_len == p) {
        s->run_len += n;
        return 0;
    }
    if (out_flush(s) == -1)
        return -1;
    s->run = p;
    s->run_len = n;
    return 0;
}

/* Bytes outside the input buffer (a decoder's own copy): write now. */
static int out_now(struct session *s, const void *p, size_t n)
{
    if (out_flush(s) == -1)
        return -1;
    if (io_write_all(s->fd, p, n) < 0) {
        io_failed(s);
        return -1;
    }
    return 0;
}

static int feed_lines(struct session *s, struct line_dec *d, const char *p, size_t n)
{
    while (n > 0) {
        enum line_status st;
        size_t used = line_dec_feed(d, p, n, &st);
        if (st == LINE_TOO_BIG) {
            snprintf(s->reason, sizeof s->reason, "line exceeds --max-frame %" PRIu32 " bytes",
                     s->o->max_frame);
            return -1;
        }
        if (st == LINE_NOMEM) {
            snprintf(s->reason, sizeof s->reason, "out of memory for a line");
            return -1;
        }
        if (st == LINE_READY) {
            size_t len;
            const char *msg = line_dec_msg(d, &len);
            /* a line that arrived whole points into the input */
            int rc = msg != d->buf ? out_run(s, msg, len) : out_now(s, msg, len);
            if (rc == -1)
                return -1;
        }
        p += used;
        n -= used;
    }
    return out_flush(s);
}

static int feed_frames(struct session *s, struct frame_dec *d, const char *p, size_t n)
{
    const char *start = p;
    while (n > 0) {
        enum frame_status st;
        size_t used = frame_dec_feed(d, p, n, &st);
        if (st == FRAME_TOO_BIG) {
            snprintf(s->reason, sizeof s->reason,
                     "frame of %" PRIu32 " bytes exceeds --max-frame %" PRIu32,
                     d->len, s->o->max_frame);
            return -1;
        }
        if (st == FRAME_NOMEM) {
            snprintf(s->reason, sizeof s->reason, "out of memory for a frame of %" PRIu32 " bytes",
                     d->len);
            return -1;
        }
        if (st == FRAME_READY) {
            uint32_t len;
            const char *msg = frame_dec_msg(d, &len);
            int rc;
            if (msg != d->body && (size_t)(msg - start) >= FRAME_HDR)
                rc = out_run(s, msg - FRAME_HDR, FRAME_HDR + (size_t)len); /* as it came */
            else if ((rc = out_now(s, d->hdr, FRAME_HDR)) == 0)
                rc = out_now(s, msg, len);
            if (rc == -1)
                return -1;
        }
        p += used;
        n -= used;
    }
    return out_flush(s);
}

/* What EOF leaves behind: line mode echoes a partial line, framed mode
 * reports a truncated frame. */
static void at_eof(struct session *s, struct line_dec *ld, struct frame_dec *fd)
{
    if (s->o->mode == MODE_LINE && line_dec_flush(ld)) {
        size_t len;
        const char *msg = line_dec_msg(ld, &len);
        (void)out_now(s, msg, len);
    } else if (s->o->mode == MODE_FRAMED && frame_dec_partial(fd) > 0) {
        if (fd->hdr_len < FRAME_HDR)
            snprintf(s->reason, sizeof s->reason,
                     "incomplete frame at EOF (%zu of %d header bytes)", fd->hdr_len, FRAME_HDR);
        else
            snprintf(s->reason, sizeof s->reason,
                     "incomplete frame at EOF (%zu of %" PRIu32 " payload bytes)",
                     fd->body_len, fd->len);
    }
}

void session_run(struct session *s)
{
    struct line_dec ld;
    struct frame_dec fd;
    line_dec_init(&ld, s->o->max_frame);
    frame_dec_init(&fd, s->o->max_frame);
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
            at_eof(s, &ld, &fd);
            break;
        }
        size_t n = (size_t)r;
        s->bytes += n;
        int rc;
        if (s->o->mode == MODE_LINE)
            rc = feed_lines(s, &ld, buf, n);
        else if (s->o->mode == MODE_FRAMED)
            rc = feed_frames(s, &fd, buf, n);
        else
            rc = out_now(s, buf, n);
        if (rc == -1)
            break;
        /* a full small buffer means a stream: move to the big one */
        if (n == cap && big == NULL && (big = malloc(SESSION_BIG_BUF)) != NULL) {
            buf = big;
            cap = SESSION_BIG_BUF;
        }
    }
    free(big);
    line_dec_free(&ld);
    frame_dec_free(&fd);
}

void session_finish(struct session *s, const char *cut_reason, int access_fd,
                    struct stats *st)
{
    const char *why = cut_reason != NULL ? cut_reason : s->reason;
    if (why[0] != '\0')
        log_client("client %" PRIu64 ": %s", s->id, why);
    log_client("client %" PRIu64 " disconnected (received %" PRIu64 " bytes)", s->id, s->bytes);
    if (access_fd >= 0 && log_access(access_fd, s->id, s->bytes) == -1)
        log_warn("access log:");
    atomic_fetch_add(&st->bytes, s->bytes);
}
