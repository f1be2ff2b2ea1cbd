/* frame: incremental length-prefix decoder and the header encoder. */
#include <stdlib.h>
#include <string.h>

#include "framing/frame.h"

/* A payload buffer this small is kept for the next split message. */
#define FRAME_KEEP 4096

void frame_dec_init(struct frame_dec *d, uint32_t max)
{
    memset(d, 0, sizeof *d);
    d->max = max;
}

void frame_put_len(unsigned char out[FRAME_HDR], uint32_t len)
{
    out[0] = (unsigned char)(len >> 24);
    out[1] = (unsigned char)(len >> 16);
    out[2] = (unsigned char)(len >> 8);
    out[3] = (unsigned char)len;
}

uint32_t frame_get_len(const unsigned char in[FRAME_HDR])
{
    return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 |
           (uint32_t)in[2] << 8 | (uint32_t)in[3];
}

/* Start the next message once the caller has seen the last one. */
static void reset(struct frame_dec *d)
{
    d->ready = 0;
    d->hdr_len = 0;
    d->body_len = 0;
    d->msg = NULL;
    if (d->body_cap > FRAME_KEEP) {
        free(d->body);
        d->body = NULL;
        d->body_cap = 0;
    }
}

/* Make room for want payload bytes: at least double, never past len. */
static int grow(struct frame_dec *d, size_t want)
{
    if (want <= d->body_cap)
        return 0;
    size_t cap = d->body_cap < 256 ? 256 : d->body_cap * 2;
    if (cap < want)
        cap = want;
    if (cap > d->len)
        cap = d->len;
    char *p = realloc(d->body, cap);
    if (p == NULL)
        return -1;
    d->body = p;
    d->body_cap = cap;
    return 0;
}

size_t frame_dec_feed(struct frame_dec *d, const char *p, size_t n,
                      enum frame_status *st)
{
    size_t used = 0;
    if (d->ready)
        reset(d);
    /* header: up to 4 bytes, possibly across feeds */
    while (d->hdr_len < FRAME_HDR && used < n) {
        d->hdr[d->hdr_len++] = (unsigned char)p[used++];
        if (d->hdr_len == FRAME_HDR) {
            d->len = frame_get_len(d->hdr);
            if (d->len > d->max) {
                *st = FRAME_TOO_BIG;   /* refused before any allocation */
                return used;
            }
        }
    }
    if (d->hdr_len < FRAME_HDR) {
        *st = FRAME_MORE;
        return used;
    }
    size_t need = d->len - d->body_len;
    size_t avail = n - used;
    /* whole payload in this input: hand it out without copying */
    if (d->body_len == 0 && avail >= need) {
        d->msg = p + used;
        d->ready = 1;
        *st = FRAME_READY;
        return used + need;
    }
    size_t take = avail < need ? avail : need;
    if (take > 0 && grow(d, d->body_len + take) == -1) {
        *st = FRAME_NOMEM;
        return used;
    }
    if (take > 0)
        memcpy(d->body + d->body_len, p + used, take);
    d->body_len += take;
    used += take;
    if (d->body_len < d->len) {
        *st = FRAME_MORE;
        return used;
    }
    d->msg = d->body;
    d->ready = 1;
    *st = FRAME_READY;
    return used;
}

const char *frame_dec_msg(const struct frame_dec *d, uint32_t *len)
{
    *len = d->len;
    return d->msg != NULL ? d->msg : "";
}

size_t frame_dec_partial(const struct frame_dec *d)
{
    return d->ready ? 0 : d->hdr_len + d->body_len;
}

void frame_dec_free(struct frame_dec *d)
{
    free(d->body);
    d->body = NULL;
    d->body_cap = 0;
}
