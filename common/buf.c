/* buf: bounded queue over one growable block. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

#define BUF_FIRST 4096

char *buf_extend(struct buf *b, size_t n, size_t max)
{
    size_t len = buf_len(b);
    if (n > max || len > max - n) {
        errno = ENOBUFS;
        return NULL;
    }
    if (b->tail + n > b->cap) {
        if (len + n <= b->cap) {
            /* room at the front: slide the queue down once */
            memmove(b->data, b->data + b->head, len);
        } else {
            size_t cap = b->cap < BUF_FIRST ? BUF_FIRST : b->cap * 2;
            if (cap < len + n)
                cap = len + n;
            if (cap > max)
                cap = max;
            char *d = malloc(cap);
            if (d == NULL) {
                errno = ENOMEM;
                return NULL;
            }
            if (len > 0)
                memcpy(d, b->data + b->head, len);
            free(b->data);
            b->data = d;
            b->cap = cap;
        }
        b->head = 0;
        b->tail = len;
    }
    char *at = b->data + b->tail;
    b->tail += n;
    return at;
}

int buf_append(struct buf *b, const void *p, size_t n, size_t max)
{
    if (n == 0)
        return 0;
    char *at = buf_extend(b, n, max);
    if (at == NULL)
        return -1;
    memcpy(at, p, n);
    return 0;
}

void buf_consume(struct buf *b, size_t n)
{
    b->head += n;
    if (b->head >= b->tail)
        buf_free(b);
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->head = b->tail = b->cap = 0;
}
