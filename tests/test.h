/* test: the suite's own test framework, a page long.
 *
 * Each case runs in its own forked process group with a timeout, so a
 * crash or a hang fails that case alone and whatever it started (server
 * processes included) is killed with it.  Checks stop the case at the
 * first failure, printing the expression, both values and file:line. */
#ifndef ECHO_TEST_H
#define ECHO_TEST_H

#include <stddef.h>
#include <string.h>

enum { TEST_SLOW = 1 };   /* runs only with TEST_SLOW=1 in the environment */

/* Register a case: name (copied), its function and argument, a timeout
 * in seconds, flags. */
void test_add(const char *name, void (*fn)(const void *arg), const void *arg,
              int timeout_s, int flags);

/* Printf-style test_add name. */
void test_addf(void (*fn)(const void *arg), const void *arg, int timeout_s,
               int flags, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* End the case: failed, or skipped (with the reason). */
_Noreturn void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
_Noreturn void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Note something in the case's log (shown with -v or on failure). */
void test_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define CHECK(e) \
    do { if (!(e)) test_fail(__FILE__, __LINE__, "%s", #e); } while (0)

#define CHECK_MSG(e, ...) \
    do { if (!(e)) test_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)

#define CHECK_INT(a, op, b)                                                   \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (!(a_ op b_))                                                      \
            test_fail(__FILE__, __LINE__, "%s %s %s (%lld vs %lld)",          \
                      #a, #op, #b, a_, b_);                                   \
    } while (0)

#define CHECK_EQ(a, b) CHECK_INT(a, ==, b)

#define CHECK_STR(a, b)                                                       \
    do {                                                                      \
        const char *a_ = (a), *b_ = (b);                                      \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                  \
            test_fail(__FILE__, __LINE__, "%s == %s (\"%s\" vs \"%s\")",      \
                      #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");        \
    } while (0)

#define CHECK_HAS(hay, needle)                                                \
    do {                                                                      \
        const char *h_ = (hay), *n_ = (needle);                               \
        if (h_ == NULL || strstr(h_, n_) == NULL)                             \
            test_fail(__FILE__, __LINE__, "%s contains \"%s\" (it is \"%.400s\")", \
                      #hay, n_, h_ ? h_ : "(null)");                          \
    } while (0)

#define CHECK_MEM(a, b, n)                                                    \
    do {                                                                      \
        if (memcmp((a), (b), (n)) != 0)                                       \
            test_fail(__FILE__, __LINE__, "%s and %s differ in %zu bytes",    \
                      #a, #b, (size_t)(n));                                   \
    } while (0)

/* Each test file registers its cases with one of these. */
void unit_tests(void);
void server_tests(void);
void client_tests(void);
void model_tests(void);
void chat_tests(void);
void supervise_tests(void);
void fault_tests(void);
void docs_tests(void);
void stall_tests(void);
void bench_tests(void);
void uring_tests(void);

#endif
