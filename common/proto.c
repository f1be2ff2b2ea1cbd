/* proto: echo, line and framed replies through one emit callback. */
#include <inttypes.h>
#include <stdio.h>

#include "common/proto.h"

/* Replies waiting to be emitted: one run of the current input. */
struct run {
    proto_emit emit;
    void *ctx;
    const char *p;
    size_t n;
};

static int run_flush(struct run *r)
{
    if (r->n == 0)
        return 0;
    size_t n = r->n;
    r->n = 0;
    return r->emit(r->ctx, r->p, n);
}

/* Bytes of the input: extend the run when they follow it. */
static int run_add(struct run *r, const char *p, size_t n)
{
    if (r->n > 0 && r->p + r->n == p) {
        r->n += n;
        return 0;
    }
    if (run_flush(r) == -1)
        return -1;
    r->p = p;
    r->n = n;
    return 0;
}

/* Bytes held by a decoder (valid only until its next feed): now. */
static int run_now(struct run *r, const char *p, size_t n)
{
    if (run_flush(r) == -1)
        return -1;
    return r->emit(r->ctx, p, n);
}

void proto_init(struct proto *pr, enum mode mode, uint32_t max_frame)
{
    pr->mode = mode;
    pr->max_frame = max_frame;
    if (mode == MODE_FRAMED)
        frame_dec_init(&pr->dec.frame, max_frame);
    else
        line_dec_init(&pr->dec.line, max_frame);
}

void proto_free(struct proto *pr)
{
    if (pr->mode == MODE_FRAMED)
        frame_dec_free(&pr->dec.frame);
    else
        line_dec_free(&pr->dec.line);
}

static enum proto_status feed_lines(struct proto *pr, struct run *r, const char *p, size_t n,
                                    char *reason, size_t rlen)
{
    struct line_dec *d = &pr->dec.line;
    while (n > 0) {
        enum line_status st;
        size_t used = line_dec_feed(d, p, n, &st);
        if (st == LINE_TOO_BIG || st == LINE_NOMEM) {
            snprintf(reason, rlen, st == LINE_TOO_BIG ? "line exceeds --max-frame %" PRIu32 " bytes"
                     : "out of memory for a line of up to %" PRIu32 " bytes", pr->max_frame);
            return run_flush(r) == -1 ? PROTO_EMIT_FAILED : PROTO_FAULT;
        }
        if (st == LINE_READY) {
            size_t len;
            const char *msg = line_dec_msg(d, &len);
            /* a line that arrived whole points into the input */
            if ((msg != d->buf ? run_add(r, msg, len) : run_now(r, msg, len)) == -1)
                return PROTO_EMIT_FAILED;
        }
        p += used;
        n -= used;
    }
    return PROTO_OK;
}

static enum proto_status feed_frames(struct proto *pr, struct run *r, const char *p, size_t n,
                                     char *reason, size_t rlen)
{
    struct frame_dec *d = &pr->dec.frame;
    const char *start = p;
    while (n > 0) {
        enum frame_status st;
        size_t used = frame_dec_feed(d, p, n, &st);
        if (st == FRAME_TOO_BIG || st == FRAME_NOMEM) {
            snprintf(reason, rlen, st == FRAME_TOO_BIG ?
                     "frame of %" PRIu32 " bytes exceeds --max-frame %" PRIu32 :
                     "out of memory for a frame of %" PRIu32 " bytes (--max-frame %" PRIu32 ")",
                     d->len, pr->max_frame);
            return run_flush(r) == -1 ? PROTO_EMIT_FAILED : PROTO_FAULT;
        }
        if (st == FRAME_READY) {
            uint32_t len;
            const char *msg = frame_dec_msg(d, &len);
            int rc;
            if (msg != d->body && (size_t)(msg - start) >= FRAME_HDR)
                rc = run_add(r, msg - FRAME_HDR, FRAME_HDR + (size_t)len); /* as it came */
            else if ((rc = run_now(r, (const char *)d->hdr, FRAME_HDR)) == 0)
                rc = run_now(r, msg, len);
            if (rc == -1)
                return PROTO_EMIT_FAILED;
        }
        p += used;
        n -= used;
    }
    return PROTO_OK;
}

enum proto_status proto_feed(struct proto *pr, const char *p, size_t n,
                             proto_emit emit, void *ctx, char *reason, size_t rlen)
{
    struct run r = {emit, ctx, NULL, 0};
    enum proto_status st = PROTO_OK;
    if (pr->mode == MODE_LINE)
        st = feed_lines(pr, &r, p, n, reason, rlen);
    else if (pr->mode == MODE_FRAMED)
        st = feed_frames(pr, &r, p, n, reason, rlen);
    else
        r = (struct run){emit, ctx, p, n};     /* echo: everything, as is */
    if (st == PROTO_OK && run_flush(&r) == -1)
        st = PROTO_EMIT_FAILED;
    return st;
}

enum proto_status proto_eof(struct proto *pr, proto_emit emit, void *ctx,
                            char *reason, size_t rlen)
{
    if (pr->mode == MODE_LINE && line_dec_flush(&pr->dec.line)) {
        size_t len;
        const char *msg = line_dec_msg(&pr->dec.line, &len);
        return emit(ctx, msg, len) == -1 ? PROTO_EMIT_FAILED : PROTO_OK;
    }
    const struct frame_dec *d = &pr->dec.frame;
    if (pr->mode != MODE_FRAMED || frame_dec_partial(d) == 0)
        return PROTO_OK;
    if (d->hdr_len < FRAME_HDR)
        snprintf(reason, rlen, "incomplete frame at EOF (%zu of %d header bytes)",
                 d->hdr_len, FRAME_HDR);
    else
        snprintf(reason, rlen, "incomplete frame at EOF (%zu of %" PRIu32 " payload bytes)",
                 d->body_len, d->len);
    return PROTO_FAULT;
}
