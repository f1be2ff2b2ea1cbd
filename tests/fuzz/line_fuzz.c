/* line_fuzz: libFuzzer harness for the '\n' line splitter
 * (framing/line.c).
 *
 * Input layout:
 *   byte 0      the limit: max = b & 0x7f, or (b & 0x7f) * 64 when the top
 *               bit is set, so small limits are hit often and lines past
 *               the decoder's kept-buffer size (4096) are reachable too
 *   byte 1      0xf0..0xff: make the ((b & 0x0f) + 1)th realloc() of the
 *               decoder fail, to drive the NOMEM path; else none fails
 *   bytes 2..5  chunk sizes, used in turn: 1..255, or 0 = all the rest
 *   the rest    the stream, fed in those chunks the way a server does
 *               (feed, act on READY, close on TOO_BIG or NOMEM), then a
 *               flush at EOF for a last line without '\n'
 *
 * Each chunk is copied into a heap block of exactly its size, so a read past
 * the chunk, or a READY line used after its chunk is gone, is caught by
 * AddressSanitizer.  Invariants (abort() on violation):
 *   - a feed consumes no more than it was given; MORE means all of it;
 *   - every READY line ends with its only '\n' and holds at most max bytes
 *     before it; a flushed line holds no '\n' and at most max bytes;
 *   - the lines, concatenated, are exactly the consumed input;
 *   - TOO_BIG only when the pending bytes plus this call's bytes before any
 *     '\n' exceed max, and then the call consumed exactly max+1-pending;
 *   - NOMEM only when an allocation was made to fail, consuming nothing;
 *   - line_dec_partial() is 0 after READY and otherwise the consumed bytes
 *     not yet part of a line. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "framing/line.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input f;
    if (fuzz_parse(data, size, &f) == -1)
        return 0;
    size_t max = f.max_byte & 0x7fu;
    if (f.max_byte & 0x80u)
        max *= 64u;
    const char *in = f.in;
    size_t n = f.n;

    struct line_dec d;
    line_dec_init(&d, max);
    size_t pos = 0;        /* input consumed so far */
    size_t msg_start = 0;  /* where the pending (unfinished) line began */
    int closed = 0;

    for (size_t c = 0; pos < n && !closed; c++) {
        size_t k;
        char *buf = fuzz_chunk(&f, c, pos, &k);

        size_t off = 0;
        while (off < k) {
            enum line_status st;
            size_t pending = pos - msg_start;
            const char *nl = memchr(buf + off, '\n', k - off);
            size_t body = nl != NULL ? (size_t)(nl - (buf + off)) : k - off;
            size_t used = line_dec_feed(&d, buf + off, k - off, &st);
            CHECK(used <= k - off);
            off += used;
            pos += used;
            if (st == LINE_MORE) {
                CHECK(off == k);
                CHECK(nl == NULL);
                CHECK(pos - msg_start <= max);
                CHECK(line_dec_partial(&d) == pos - msg_start);
            } else if (st == LINE_READY) {
                size_t len;
                const char *msg = line_dec_msg(&d, &len);
                CHECK(msg != NULL);
                CHECK(len >= 1 && len - 1 <= max);
                CHECK(msg[len - 1] == '\n');
                CHECK(memchr(msg, '\n', len - 1) == NULL);
                CHECK(pos - msg_start == len);
                CHECK(memcmp(msg, in + msg_start, len) == 0);
                CHECK(line_dec_partial(&d) == 0);
                msg_start = pos;
            } else if (st == LINE_TOO_BIG) {
                CHECK(pending + body > max);
                CHECK(used == max + 1 - pending);
                CHECK(memchr(in + msg_start, '\n', pos - msg_start) == NULL);
                closed = 1;
                break;
            } else {
                /* NOMEM only when an allocation failed, consuming nothing
                 * of this call; the pending bytes are still held */
                CHECK(st == LINE_NOMEM);
                CHECK(ALLOC_FAILED());
                CHECK(used == 0);
                CHECK(line_dec_partial(&d) == pos - msg_start);
                closed = 1;
                break;
            }
        }
        free(buf);
    }
    if (!closed) {
        size_t pending = pos - msg_start;
        CHECK(pos == n);
        CHECK(line_dec_partial(&d) == pending);
        if (pending > 0) {
            CHECK(line_dec_flush(&d) == 1);
            size_t len;
            const char *msg = line_dec_msg(&d, &len);
            CHECK(msg != NULL);
            CHECK(len == pending && len <= max);
            CHECK(memchr(msg, '\n', len) == NULL);
            CHECK(memcmp(msg, in + msg_start, len) == 0);
            CHECK(line_dec_partial(&d) == 0);
        }
        CHECK(line_dec_flush(&d) == 0);   /* nothing left after a flush */
    }
    line_dec_free(&d);
    return 0;
}
