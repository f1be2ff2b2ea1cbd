/* fuzz.h: what both decoder harnesses share: the invariant check, the
 * number of chunk sizes at the start of an input, and allocation-failure
 * injection.  Included once by each harness (each is its own program). */
#ifndef ECHO_FUZZ_H
#define ECHO_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

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

#endif
