/* chat: the one chat module both chat servers (and any event loop) use.
 *
 * - Input: a client's bytes become whole lines (struct chat_in, a line
 *   decoder); each complete line goes to a callback, which decides how to
 *   reach the other clients.  A line longer than --max-frame ends the
 *   client, with the reason for its status line.  At a real EOF (the peer
 *   half-closed or closed) a partial line is delivered as if it ended with
 *   '\n'; a line a client never finished is never delivered otherwise (not
 *   when the server cuts it: overflow, idle timeout, drain, error).
 * - Output: the one line format, "client N: LINE\n".
 * - The bound on what may wait for a receiver: 256 KiB, or two of the
 *   longest lines if more, so a receiver that keeps up always has room
 *   for the next line while it is still reading the last one. */
#ifndef ECHO_CHAT_H
#define ECHO_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "framing/line.h"

#define CHAT_QUEUE_MIN (256 * 1024)
#define CHAT_HEAD_MAX 32    /* "client 18446744073709551615: " */

/* For --help: the bound, in the words the servers use. */
#define CHAT_HELP \
    "Chat: at most 256 KiB, or two of the longest lines (--max-frame) if more,\n" \
    "waits for a client; a client that falls further behind is disconnected.\n"

/* The longest line a recipient can be sent, and the queue bound, for a
 * given --max-frame. */
size_t chat_line_max(uint32_t max_frame);
size_t chat_queue_max(uint32_t max_frame);

/* Queue "client FROM: LINE\n" on q (line may or may not end in '\n').
 * All or nothing: -1 with errno ENOBUFS when q would hold more than max
 * bytes, ENOMEM when out of memory. */
int chat_enqueue(struct buf *q, size_t max, uint64_t from, const char *line, size_t len);

/* A complete line from the client (with its '\n', or without at EOF),
 * valid during the call.  0, or -1 to stop feeding. */
typedef int (*chat_deliver)(void *ctx, const char *line, size_t len);

struct chat_in {
    struct line_dec dec;
    uint32_t max_frame;
};

void chat_in_init(struct chat_in *in, uint32_t max_frame);
void chat_in_free(struct chat_in *in);

/* n bytes received: deliver every line they complete.  0, or -1 when the
 * client must go: a line over --max-frame or no memory for it (the reason
 * for its status line is put in reason), or deliver returned -1 (reason
 * left as it is). */
int chat_feed(struct chat_in *in, const char *p, size_t n, chat_deliver deliver, void *ctx,
              char *reason, size_t rlen);

/* The client sent EOF (read returned 0 and the server did not cut it):
 * deliver a pending partial line.  0, or what deliver returned. */
int chat_eof(struct chat_in *in, chat_deliver deliver, void *ctx);

#endif
