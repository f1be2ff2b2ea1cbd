/* buf: a bounded byte queue with head/tail offsets (no memmove per write).
 * Storage is taken on the first append and given back when the queue
 * empties, so an idle connection holds no buffer at all. */
#ifndef ECHO_BUF_H
#define ECHO_BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t head, tail;   /* queued bytes are data[head..tail) */
    size_t cap;
};

static inline size_t buf_len(const struct buf *b) { return b->tail - b->head; }
static inline const char *buf_head(const struct buf *b)
{
    return b->data != NULL ? b->data + b->head : "";
}

/* Make room for n more bytes at the tail, keeping the whole queue within
 * max bytes, and return where to write them (they count as queued).
 * NULL with errno ENOBUFS (over max) or ENOMEM; nothing changes then. */
char *buf_extend(struct buf *b, size_t n, size_t max);

/* buf_extend and copy.  0 or -1 with errno. */
int buf_append(struct buf *b, const void *p, size_t n, size_t max);

/* Drop n bytes from the head; an empty queue gives its storage back. */
void buf_consume(struct buf *b, size_t n);

void buf_free(struct buf *b);

#endif
