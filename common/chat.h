/* chat: the one line format both chat servers send, and the bound on what
 * may wait for a slow receiver. */
#ifndef ECHO_CHAT_H
#define ECHO_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* A client with more than this many bytes of chat waiting for it is
 * disconnected ("a slow receiver never stalls the others"), or more than
 * one longest line if --max-frame is larger. */
#define CHAT_QUEUE_MAX (256 * 1024)
#define CHAT_HEAD_MAX 32    /* "client 18446744073709551615: " */

/* The queue bound for a given --max-frame. */
size_t chat_queue_max(uint32_t max_frame);

/* Queue "client FROM: LINE\n" on q (line may or may not end in '\n').
 * All or nothing: -1 with errno ENOBUFS when q would hold more than max
 * bytes, ENOMEM when out of memory. */
int chat_enqueue(struct buf *q, size_t max, uint64_t from, const char *line, size_t len);

#endif
