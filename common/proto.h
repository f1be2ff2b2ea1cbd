/* proto: what goes back for the bytes a client sends, in echo, line and
 * framed mode; the one place that knows those modes.  Blocking and
 * event-loop servers differ only in how the reply is written, which they
 * pass in as emit().
 *
 * Replies are runs of the input itself where possible: whole lines and
 * whole frames that arrived in one read are passed on as one run, with no
 * copy, so a read of many messages becomes one write. */
#ifndef ECHO_PROTO_H
#define ECHO_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/opt.h"
#include "framing/frame.h"
#include "framing/line.h"

/* emit: send n bytes back; 0, or -1 to stop (errno set). */
typedef int (*proto_emit)(void *ctx, const char *p, size_t n);

struct proto {
    enum mode mode;
    uint32_t max_frame;
    union {
        struct line_dec line;
        struct frame_dec frame;
    } dec;
};

enum proto_status { PROTO_OK = 0, PROTO_EMIT_FAILED = -1, PROTO_FAULT = -2 };

void proto_init(struct proto *pr, enum mode mode, uint32_t max_frame);
void proto_free(struct proto *pr);

/* Feed n received bytes, emitting every reply they complete.  FAULT
 * (oversize line or frame, no memory) puts the reason for the status line
 * in reason. */
enum proto_status proto_feed(struct proto *pr, const char *p, size_t n,
                             proto_emit emit, void *ctx, char *reason, size_t rlen);

/* The client half-closed: emit a pending partial line (line mode), or
 * report a truncated frame as FAULT (framed mode). */
enum proto_status proto_eof(struct proto *pr, proto_emit emit, void *ctx,
                            char *reason, size_t rlen);

#endif
