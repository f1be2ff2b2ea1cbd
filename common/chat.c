/* chat: line input, message format, queue bound. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/chat.h"

size_t chat_line_max(uint32_t max_frame)
{
    return CHAT_HEAD_MAX + (size_t)max_frame + 1;
}

size_t chat_queue_max(uint32_t max_frame)
{
    size_t two = 2 * chat_line_max(max_frame);
    return two > CHAT_QUEUE_MIN ? two : CHAT_QUEUE_MIN;
}

int chat_enqueue(struct buf *q, size_t max, uint64_t from, const char *line, size_t len)
{
    char head[CHAT_HEAD_MAX + 8];
    int h = snprintf(head, sizeof head, "client %" PRIu64 ": ", from);
    if (len > 0 && line[len - 1] == '\n')
        len--;
    char *at = buf_extend(q, (size_t)h + len + 1, max);
    if (at == NULL)
        return -1;
    memcpy(at, head, (size_t)h);
    memcpy(at + h, line, len);
    at[(size_t)h + len] = '\n';
    return 0;
}

void chat_in_init(struct chat_in *in, uint32_t max_frame)
{
    line_dec_init(&in->dec, max_frame);
    in->max_frame = max_frame;
}

void chat_in_free(struct chat_in *in)
{
    line_dec_free(&in->dec);
}

int chat_feed(struct chat_in *in, const char *p, size_t n, chat_deliver deliver, void *ctx,
              char *reason, size_t rlen)
{
    while (n > 0) {
        enum line_status st;
        size_t used = line_dec_feed(&in->dec, p, n, &st);
        if (st == LINE_READY) {
            size_t len;
            const char *msg = line_dec_msg(&in->dec, &len);
            if (deliver(ctx, msg, len) == -1)
                return -1;
        } else if (st != LINE_MORE) {
            snprintf(reason, rlen, st == LINE_TOO_BIG ? "line exceeds --max-frame %" PRIu32 " bytes"
                     : "out of memory for a line of up to %" PRIu32 " bytes", in->max_frame);
            return -1;
        }
        p += used;
        n -= used;
    }
    return 0;
}

int chat_eof(struct chat_in *in, chat_deliver deliver, void *ctx)
{
    if (!line_dec_flush(&in->dec))
        return 0;
    size_t len;
    const char *msg = line_dec_msg(&in->dec, &len);
    return deliver(ctx, msg, len);
}
