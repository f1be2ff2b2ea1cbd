/* fuzz.h: what both decoder harnesses share: the invariant check, the
 * number of chunk sizes at the start of an input, and allocation-failure
 * injection.  Included once by each harness (each is its own program). */
#ifndef ECHO_FUZZ_H
#define ECHO_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                            \
    do {                                                                    \
        if (!(c)) {                                                         \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,     \
                    __LINE__, #c);                                          \
            abort();                                                        \
        }                                                                   \
    } while (0)

#define NCHUNK 4

/* Allocation failures.  tests/fuzz/run.sh compiles the decoder and this
 * file with -Drealloc=fuzz_realloc (the decoders allocate only through
 * realloc), so the input can make one call fail; built without it, no
 * allocation fails. */
#ifdef realloc
#undef realloc
void *realloc(void *p, size_t n);
void *fuzz_realloc(void *p, size_t n);
static unsigned alloc_calls, alloc_fail_at;
void *fuzz_realloc(void *p, size_t n)
{
    if (alloc_fail_at != 0 && ++alloc_calls == alloc_fail_at)
        return NULL;
    return realloc(p, n);
}
#define ALLOC_FAILED() (alloc_fail_at != 0 && alloc_calls >= alloc_fail_at)
#define ALLOC_SETUP(b)                                                      \
    do {                                                                    \
        alloc_calls = 0;                                                    \
        alloc_fail_at = (b) >= 0xf0u ? ((b) & 0x0fu) + 1u : 0u;             \
    } while (0)
#else
#define ALLOC_FAILED() 0
#define ALLOC_SETUP(b) ((void)(b))
#endif

/* An input: byte 0 the limit, byte 1 the allocation to fail, NCHUNK
 * chunk sizes, then the stream. */
struct fuzz_input {
    unsigned max_byte;
    const uint8_t *chunks;
    const char *in;
    size_t n;
};

static int fuzz_parse(const uint8_t *data, size_t size, struct fuzz_input *f)
{
    if (size < 2 + NCHUNK)
        return -1;
    f->max_byte = data[0];
    ALLOC_SETUP(data[1]);
    f->chunks = data + 2;
    f->in = (const char *)(data + 2 + NCHUNK);
    f->n = size - 2 - NCHUNK;
    return 0;
}

/* Chunk c of the stream, starting at pos: its size (1..255 from the chunk
 * bytes, 0 = the rest) in *k, copied into a heap block of exactly that
 * size so AddressSanitizer catches a read past it.  The caller frees it. */
static char *fuzz_chunk(const struct fuzz_input *f, size_t c, size_t pos, size_t *k)
{
    *k = f->chunks[c % NCHUNK];
    if (*k == 0 || *k > f->n - pos)
        *k = f->n - pos;
    char *buf = malloc(*k);
    CHECK(buf != NULL);
    memcpy(buf, f->in + pos, *k);
    return buf;
}

#endif
