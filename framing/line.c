/* line: incremental '\n' splitter with a length limit. */
#include <stdlib.h>
#include <string.h>

#include "framing/line.h"

/* A pending-line buffer this small is kept for the next split line. */
#define LINE_KEEP 4096

void line_dec_init(struct line_dec *d, size_t max)
{
    memset(d, 0, sizeof *d);
    d->max = max;
}

static void reset(struct line_dec *d)
{
    d->ready = 0;
    d->len = 0;
    d->msg = NULL;
    d->msg_len = 0;
    if (d->cap > LINE_KEEP) {
        free(d->buf);
        d->buf = NULL;
        d->cap = 0;
    }
}

/* Append p[0..n) to the pending line, growing by doubling. */
static int append(struct line_dec *d, const char *p, size_t n)
{
    if (d->len + n > d->cap) {
        size_t cap = d->cap < 128 ? 128 : d->cap * 2;
        if (cap < d->len + n)
            cap = d->len + n;
        char *b = realloc(d->buf, cap);
        if (b == NULL)
            return -1;
        d->buf = b;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, p, n);
    d->len += n;
    return 0;
}

size_t line_dec_feed(struct line_dec *d, const char *p, size_t n,
                     enum line_status *st)
{
    if (d->ready)
        reset(d);
    const char *nl = n > 0 ? memchr(p, '\n', n) : NULL;
    size_t body = nl != NULL ? (size_t)(nl - p) : n;   /* bytes before '\n' */
    /* over the limit: refuse at exactly max+1 pending bytes */
    if (d->len + body > d->max) {
        *st = LINE_TOO_BIG;
        return d->max + 1 - d->len;
    }
    if (nl == NULL) {
        if (n > 0 && append(d, p, n) == -1) {
            *st = LINE_NOMEM;
            return 0;
        }
        *st = LINE_MORE;
        return n;
    }
    if (d->len == 0) {
        /* the whole line is in the input: no copy */
        d->msg = p;
        d->msg_len = body + 1;
    } else {
        if (append(d, p, body + 1) == -1) {
            *st = LINE_NOMEM;
            return 0;
        }
        d->msg = d->buf;
        d->msg_len = d->len;
    }
    d->ready = 1;
    *st = LINE_READY;
    return body + 1;
}

int line_dec_flush(struct line_dec *d)
{
    if (d->ready)
        reset(d);
    if (d->len == 0)
        return 0;
    d->msg = d->buf;
    d->msg_len = d->len;
    d->ready = 1;
    return 1;
}

const char *line_dec_msg(const struct line_dec *d, size_t *len)
{
    *len = d->msg_len;
    return d->msg;
}

size_t line_dec_partial(const struct line_dec *d)
{
    return d->ready ? 0 : d->len;
}

void line_dec_free(struct line_dec *d)
{
    free(d->buf);
    d->buf = NULL;
    d->cap = 0;
    d->len = 0;
}
