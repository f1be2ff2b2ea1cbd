/* line: the incremental line splitter for line and chat modes.  Same shape
 * as frame.h: feed bytes split anywhere, get whole '\n'-terminated lines;
 * a line longer than max (not counting '\n') is refused as soon as max+1
 * bytes are pending without a newline. */
#ifndef ECHO_LINE_H
#define ECHO_LINE_H

#include <stddef.h>

enum line_status {
    LINE_MORE,      /* all input consumed, no whole line yet */
    LINE_READY,     /* a line is ready: line_dec_msg() */
    LINE_TOO_BIG,   /* more than max bytes without a newline: close */
    LINE_NOMEM      /* no memory for the pending line: close */
};

struct line_dec {
    size_t max;
    char *buf;                 /* the pending partial line */
    size_t len, cap;
    const char *msg;           /* READY: the line, in buf or in the input */
    size_t msg_len;            /* including its '\n' */
    int ready;
};

void line_dec_init(struct line_dec *d, size_t max);

/* Consume bytes from p[0..n), stopping after one line (READY) or at
 * TOO_BIG/NOMEM.  A READY line includes its '\n' and stays valid until the
 * next call; it points into p when it arrived whole. */
size_t line_dec_feed(struct line_dec *d, const char *p, size_t n,
                     enum line_status *st);

/* At EOF: if a partial line is pending, make it the READY message (with
 * no '\n') and return 1; else 0. */
int line_dec_flush(struct line_dec *d);

const char *line_dec_msg(const struct line_dec *d, size_t *len);

/* Bytes of a partial line pending. */
size_t line_dec_partial(const struct line_dec *d);

void line_dec_free(struct line_dec *d);

#endif
