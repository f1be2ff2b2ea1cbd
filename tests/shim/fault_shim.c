/* fault_shim: an LD_PRELOAD library for the fault tests.  It makes chosen
 * calls of fork() and pthread_create() fail with EAGAIN, as they do when a
 * process or thread limit is reached (RLIMIT_NPROC, which root ignores,
 * cannot be used for that in CI).  FAULT_FAIL="2,3" fails the 2nd and 3rd
 * call, counting both functions together.
 *
 * FAULT_URING_SETUP=EPERM (or ENOSYS, EACCES) makes syscall(2)'s
 * io_uring_setup fail with that error, as on a kernel with
 * kernel.io_uring_disabled, without io_uring, or behind a seccomp filter
 * (glibc's syscall() is an ordinary function, so it can be wrapped). */
#include <sys/syscall.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int calls;

/* Is this call one of those FAULT_FAIL lists? */
static int should_fail(void)
{
    int n = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
    const char *spec = getenv("FAULT_FAIL");
    while (spec != NULL && *spec != '\0') {
        char *end;
        long k = strtol(spec, &end, 10);
        if (end == spec)
            break;
        if (k == n)
            return 1;
        spec = *end == ',' ? end + 1 : end;
    }
    return 0;
}

/* The next definition of name (libc's), as a function pointer. */
static void *next(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

pid_t fork(void)
{
    if (should_fail()) {
        errno = EAGAIN;
        return -1;
    }
    pid_t (*real)(void);
    void *sym = next("fork");
    memcpy(&real, &sym, sizeof real);
    return real();
}

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    if (should_fail())
        return EAGAIN;
    int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    void *sym = next("pthread_create");
    memcpy(&real, &sym, sizeof real);
    return real(t, attr, fn, arg);
}

long syscall(long nr, ...)
{
    va_list ap;
    long a[6];
    va_start(ap, nr);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
#ifdef __NR_io_uring_setup
    const char *e = getenv("FAULT_URING_SETUP");
    if (nr == __NR_io_uring_setup && e != NULL && *e != '\0') {
        errno = strcmp(e, "ENOSYS") == 0 ? ENOSYS : strcmp(e, "EACCES") == 0 ? EACCES : EPERM;
        return -1;
    }
#endif
    long (*real)(long, ...);
    void *sym = next("syscall");
    memcpy(&real, &sym, sizeof real);
    return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
