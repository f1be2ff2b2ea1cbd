/* frame_fuzz: libFuzzer harness for the length-prefix decoder
 * (framing/frame.c).
 *
 * Input layout:
 *   byte 0      the limit: max = b & 0x7f, or (b & 0x7f) * 128 when the top
 *               bit is set, so small limits are hit often and payloads past
 *               the decoder's kept-buffer size (4096) are reachable too
 *   byte 1      0xf0..0xff: make the ((b & 0x0f) + 1)th realloc() of the
 *               decoder fail, to drive the NOMEM path; else none fails
 *   bytes 2..5  chunk sizes, used in turn: 1..255, or 0 = all the rest
 *   the rest    the stream, fed in those chunks the way a server does
 *               (feed, act on READY, close on TOO_BIG or NOMEM)
 *
 * Each chunk is copied into a heap block of exactly its size, so a read past
 * the chunk, or a READY message used after its chunk is gone, is caught by
 * AddressSanitizer.  Invariants (abort() on violation):
 *   - a feed consumes no more than it was given; MORE means all of it;
 *   - every READY payload is <= max, and its header re-encoded with
 *     frame_put_len() followed by the payload is exactly the consumed input
 *     since the previous message, byte for byte;
 *   - TOO_BIG only right after a header declaring more than max;
 *   - NOMEM only when an allocation was made to fail, with what was consumed
 *     still held (LeakSanitizer checks frame_dec_free() releases it);
 *   - frame_dec_partial() is 0 after READY and otherwise the consumed bytes
 *     not yet part of a message, including after the last chunk. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "framing/frame.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input f;
    if (fuzz_parse(data, size, &f) == -1)
        return 0;
    uint32_t max = f.max_byte & 0x7fu;
    if (f.max_byte & 0x80u)
        max *= 128u;
    const char *in = f.in;
    size_t n = f.n;

    struct frame_dec d;
    frame_dec_init(&d, max);
    size_t pos = 0;        /* input consumed so far */
    size_t msg_start = 0;  /* where the current (unfinished) message began */
    int closed = 0;

    for (size_t c = 0; pos < n && !closed; c++) {
        size_t k;
        char *buf = fuzz_chunk(&f, c, pos, &k);

        size_t off = 0;
        while (off < k) {
            enum frame_status st;
            size_t used = frame_dec_feed(&d, buf + off, k - off, &st);
            CHECK(used <= k - off);
            off += used;
            pos += used;
            if (st == FRAME_MORE) {
                CHECK(off == k);
                CHECK(frame_dec_partial(&d) == pos - msg_start);
            } else if (st == FRAME_READY) {
                uint32_t len;
                const char *msg = frame_dec_msg(&d, &len);
                CHECK(msg != NULL);
                CHECK(len <= max);
                CHECK(pos - msg_start == (size_t)FRAME_HDR + len);
                unsigned char hdr[FRAME_HDR];
                frame_put_len(hdr, len);
                CHECK(memcmp(hdr, in + msg_start, FRAME_HDR) == 0);
                CHECK(frame_get_len(hdr) == len);
                CHECK(memcmp(msg, in + msg_start + FRAME_HDR, len) == 0);
                CHECK(frame_dec_partial(&d) == 0);
                msg_start = pos;
            } else if (st == FRAME_TOO_BIG) {
                /* the header was the last thing consumed, and it is over */
                CHECK(pos - msg_start == FRAME_HDR);
                CHECK(frame_get_len((const unsigned char *)in + msg_start) >
                      max);
                closed = 1;
                break;
            } else {
                /* NOMEM only when an allocation failed; what was consumed
                 * (a header, maybe part of a payload) is still held */
                CHECK(st == FRAME_NOMEM);
                CHECK(ALLOC_FAILED());
                CHECK(pos - msg_start >= FRAME_HDR);
                CHECK(frame_dec_partial(&d) == pos - msg_start);
                closed = 1;
                break;
            }
        }
        free(buf);
    }
    if (!closed) {
        CHECK(pos == n);
        CHECK(frame_dec_partial(&d) == pos - msg_start);
    }
    frame_dec_free(&d);
    return 0;
}
