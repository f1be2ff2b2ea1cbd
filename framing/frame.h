/* frame: the length-prefix protocol.  A message is a 4-byte big-endian
 * unsigned length L, then L payload bytes.  The decoder is a pure,
 * incremental state machine: feed it bytes split anywhere and it hands out
 * whole messages; a length over the limit is refused from the header alone,
 * before anything is allocated, and the payload buffer grows only with the
 * bytes that actually arrive. */
#ifndef ECHO_FRAME_H
#define ECHO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HDR 4

enum frame_status {
    FRAME_MORE,     /* all input consumed, no whole message yet */
    FRAME_READY,    /* a message is ready: frame_dec_msg() */
    FRAME_TOO_BIG,  /* the header declares more than max: close */
    FRAME_NOMEM     /* no memory for the payload: close */
};

struct frame_dec {
    uint32_t max;
    unsigned char hdr[FRAME_HDR];
    size_t hdr_len;            /* header bytes seen, 0..4 */
    uint32_t len;              /* declared payload length, once hdr_len == 4 */
    char *body;                /* payload arriving in pieces */
    size_t body_len, body_cap;
    const char *msg;           /* READY: payload, in body or in the input */
    int ready;                 /* the last feed returned READY */
};

void frame_dec_init(struct frame_dec *d, uint32_t max);

/* Consume bytes from p[0..n) and return how many were used.  Stops after
 * one message (READY), so the caller can act on it, and at TOO_BIG or
 * NOMEM (the connection should be closed).  A READY message stays valid
 * until the next feed; it may point into p (no copy when it arrived
 * whole). */
size_t frame_dec_feed(struct frame_dec *d, const char *p, size_t n,
                      enum frame_status *st);

/* The READY message's payload and length. */
const char *frame_dec_msg(const struct frame_dec *d, uint32_t *len);

/* Bytes of an unfinished frame held (header and payload); 0 between
 * messages.  At EOF a non-zero value means the frame was truncated. */
size_t frame_dec_partial(const struct frame_dec *d);

void frame_dec_free(struct frame_dec *d);

void frame_put_len(unsigned char out[FRAME_HDR], uint32_t len);
uint32_t frame_get_len(const unsigned char in[FRAME_HDR]);

#endif
