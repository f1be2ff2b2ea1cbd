/* chat: message format. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/chat.h"

size_t chat_queue_max(uint32_t max_frame)
{
    size_t one_line = (size_t)max_frame + CHAT_HEAD_MAX + 1;
    return one_line > CHAT_QUEUE_MAX ? one_line : CHAT_QUEUE_MAX;
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
