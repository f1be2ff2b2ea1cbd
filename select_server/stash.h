/* stash: a client's received input held for a later turn of the
 * completion loop (select_server/loop_uring.c): a FIFO of provided
 * buffers (their ids and lengths) and, last, the client's EOF.
 *
 * One multishot receive may fill many buffers before the loop sees the
 * first, yet no client gets more than its share of a turn; what is past
 * it waits here, in arrival order, and is taken a share per turn.  The
 * queue only keeps the entries: giving the buffers back to the kernel is
 * the loop's business. */
#ifndef ECHO_STASH_H
#define ECHO_STASH_H

#include <stdint.h>

struct held {
    uint16_t bid;                 /* provided buffer id */
    uint16_t eof;                 /* not a buffer: the client's EOF */
    uint32_t len;                 /* bytes in it */
};

struct stash;                     /* NULL: empty, nothing allocated */

/* Append h, allocating or growing the queue (*sp may be NULL).  0, or -1
 * (out of memory: the queue is as it was). */
int stash_push(struct stash **sp, struct held h);

/* Take the oldest entry into *h: 1, or 0 if s is empty (or NULL). */
int stash_pop(struct stash *s, struct held *h);

/* Entries held (0 for NULL). */
unsigned stash_len(const struct stash *s);

/* Free the queue (entries and all) and set *sp to NULL. */
void stash_free(struct stash **sp);

#endif
