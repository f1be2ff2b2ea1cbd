/* log: one write(2) per line, and never a stalled server.
 *
 * A server's stdout may be a pipe nobody reads (a paused `| less`) or a
 * terminal stopped with Ctrl-S; its access log may be a FIFO whose reader
 * went to sleep.  A blocking write there would stop the server: the accept
 * loop, or for select_server every client at once.  So once log_detach()
 * has run, every line goes out with a write that cannot block, and a line
 * the output cannot take at once is dropped and counted.  The count lives
 * in a shared page, so fork_server's children and select_server's workers
 * add to the same one, and the first line that gets through again says how
 * many were lost before it.  Lines that matter most (listening, shutting
 * down) wait a little for room before they give up. */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sys.h"

#define LINE_MAX_LEN 1024
/* How long a status line (not a per-client line) waits for room. */
#define STATUS_WAIT_MS 1000

/* How a line reaches its descriptor without blocking. */
enum how {
    HOW_WRITE,   /* write(2): a file, or a descriptor of our own made non-blocking */
    HOW_SEND,    /* a socket: send(MSG_DONTWAIT) leaves its flags alone */
    HOW_POLL,    /* no non-blocking way: write only when poll says there is room */
};

enum { SINK_OUT, SINK_ERR, SINK_ACCESS, SINK_N };

struct sink {
    enum how how;
    const char *what;        /* for the dropped-lines notice */
    char rest[LINE_MAX_LEN]; /* the tail of a line a terminal took only in part */
    size_t rest_len;
};

static struct sink sinks[SINK_N] = {
    {HOW_WRITE, "status", {0}, 0}, {HOW_WRITE, "error", {0}, 0}, {HOW_WRITE, "access log", {0}, 0},
};
/* Lines dropped per sink, not yet reported: in a shared page after
 * log_detach(), so every process of a server counts into one place. */
static atomic_ulong own_dropped[SINK_N];
static atomic_ulong *dropped = own_dropped;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int detached;

static const char *log_prog = "echo";
static int log_quiet;

void log_init(const char *prog, int quiet)
{
    log_prog = prog;
    log_quiet = quiet;
}

/* Where a line for fd can go without blocking.  A pipe, FIFO or terminal
 * is opened again through /proc: a new open file description of the same
 * pipe or terminal, which we may make non-blocking without touching the
 * one the shell shares; dup2 puts it in fd's place. */
static enum how sink_setup(int fd)
{
    struct stat st;
    int fl = fcntl(fd, F_GETFL);
    if (fstat(fd, &st) == -1 || fl == -1 || (fl & O_NONBLOCK))
        return HOW_WRITE;            /* closed (writes fail at once), or already non-blocking */
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
        return HOW_WRITE;            /* a file never waits for a reader */
    if (S_ISSOCK(st.st_mode))
        return HOW_SEND;
    char path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int again = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | (fl & O_APPEND));
    if (again == -1)
        return HOW_POLL;
    int rc = dup2(again, fd);
    close(again);
    return rc == -1 ? HOW_POLL : HOW_WRITE;
}

int log_detach(void)
{
    void *page = mmap(NULL, sizeof own_dropped, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return -1;
    dropped = page;
    for (int i = 0; i < SINK_N; i++)
        atomic_init(&dropped[i], 0);
    sinks[SINK_OUT].how = sink_setup(STDOUT_FILENO);
    sinks[SINK_ERR].how = sink_setup(STDERR_FILENO);
    detached = 1;
    return 0;
}

/* One attempt to put n bytes on fd, never blocking: how many went. */
static size_t put(const struct sink *k, int fd, const char *p, size_t n)
{
    if (k->how == HOW_POLL) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT))
            return 0;
    }
    for (;;) {
        ssize_t w = k->how == HOW_SEND ? send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL)
                                       : write(fd, p, n);
        if (w >= 0)
            return (size_t)w;
        if (errno != EINTR)
            return 0;
    }
}

/* Write one whole line to sink i (lock held), or drop and count it.
 * wait_ms: how long it may wait for room (only before any of it went).
 * Returns how many earlier lines this one reports as lost. */
static unsigned long sink_line(int i, int fd, const char *line, size_t n, int wait_ms)
{
    struct sink *k = &sinks[i];
    char both[2 * LINE_MAX_LEN];
    size_t len = 0;
    /* first the end of a line cut in two, or nothing else may follow */
    if (k->rest_len > 0) {
        size_t w = put(k, fd, k->rest, k->rest_len);
        memmove(k->rest, k->rest + w, k->rest_len - w);
        k->rest_len -= w;
        if (k->rest_len > 0) {
            atomic_fetch_add(&dropped[i], 1);
            return 0;
        }
    }
    /* lines lost before this one are reported with it, in one write */
    unsigned long lost = atomic_exchange(&dropped[i], 0);
    if (lost > 0 && i != SINK_ACCESS)
        len = (size_t)snprintf(both, LINE_MAX_LEN, "%s: %lu %s lines dropped: %s could not keep up\n",
                               log_prog, lost, k->what, i == SINK_OUT ? "stdout" : "stderr");
    memcpy(both + len, line, n);
    len += n;
    size_t w = put(k, fd, both, len);
    int64_t deadline = sys_now_ms() + wait_ms;
    while (w == 0 && detached && wait_ms > 0 && sys_now_ms() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        if (poll(&pfd, 1, (int)(deadline - sys_now_ms())) == 1)
            w = put(k, fd, both, len);
    }
    if (w == 0) {
        atomic_fetch_add(&dropped[i], lost + 1);   /* this line and the notice's count */
        return 0;
    }
    memcpy(k->rest, both + w, len - w);            /* a terminal took part of it */
    k->rest_len = len - w;
    return lost;
}

static void sink_write(int i, int fd, const char *line, size_t n, int wait_ms)
{
    int saved = errno;
    pthread_mutex_lock(&lock);
    unsigned long lost = sink_line(i, fd, line, n, wait_ms);
    /* the access log's format has no room for a notice: say it on stderr */
    if (lost > 0 && i == SINK_ACCESS) {
        char note[LINE_MAX_LEN];
        int len = snprintf(note, sizeof note, "%s: access log: %lu lines dropped: its reader "
                           "could not keep up\n", log_prog, lost);
        (void)sink_line(SINK_ERR, STDERR_FILENO, note, (size_t)len, 0);
    }
    pthread_mutex_unlock(&lock);
    errno = saved;
}

/* Format into line and add '\n'.  Returns the length. */
__attribute__((format(printf, 4, 0)))
static size_t format(char *line, const char *prefix, int with_errno, const char *fmt, va_list ap)
{
    int saved = errno;
    size_t n = 0;
    if (prefix != NULL)
        n = (size_t)snprintf(line, LINE_MAX_LEN, "%s: ", prefix);
    int r = vsnprintf(line + n, LINE_MAX_LEN - n, fmt, ap);
    n = r < 0 ? n : n + (size_t)r;
    if (n > LINE_MAX_LEN - 2)
        n = LINE_MAX_LEN - 2;
    if (with_errno)
        n += (size_t)snprintf(line + n, LINE_MAX_LEN - n, " %s", strerror(saved));
    if (n > LINE_MAX_LEN - 2)
        n = LINE_MAX_LEN - 2;
    line[n++] = '\n';
    errno = saved;
    return n;
}

void log_status(const char *fmt, ...)
{
    char line[LINE_MAX_LEN];
    va_list ap;
    va_start(ap, fmt);
    size_t n = format(line, NULL, 0, fmt, ap);
    va_end(ap);
    sink_write(SINK_OUT, STDOUT_FILENO, line, n, STATUS_WAIT_MS);
}

void log_client(const char *fmt, ...)
{
    if (log_quiet)
        return;
    char line[LINE_MAX_LEN];
    va_list ap;
    va_start(ap, fmt);
    size_t n = format(line, NULL, 0, fmt, ap);
    va_end(ap);
    sink_write(SINK_OUT, STDOUT_FILENO, line, n, 0);
}

void log_warn(const char *fmt, ...)
{
    char line[LINE_MAX_LEN];
    size_t len = strlen(fmt);
    va_list ap;
    va_start(ap, fmt);
    size_t n = format(line, log_prog, len > 0 && fmt[len - 1] == ':', fmt, ap);
    va_end(ap);
    sink_write(SINK_ERR, STDERR_FILENO, line, n, 0);
}

void log_client_start(uint64_t id, const char *peer)
{
    log_client("client %" PRIu64 " connected from %s", id, peer);
}

void log_client_end(uint64_t id, uint64_t bytes, const char *why, int access_fd)
{
    if (why != NULL && why[0] != '\0')
        log_client("client %" PRIu64 ": %s", id, why);
    log_client("client %" PRIu64 " disconnected (received %" PRIu64 " bytes)", id, bytes);
    if (access_fd >= 0)
        log_access(access_fd, id, bytes);
}

int log_access_open(const char *path)
{
    /* non-blocking: a FIFO with no reader fails at once (ENXIO) instead
     * of hanging start-up, and a reader that stops costs lines, not
     * service */
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0644);
}

void log_access(int fd, uint64_t client, uint64_t bytes)
{
    char line[80];
    int n = snprintf(line, sizeof line, "[client %" PRIu64 "]: received %" PRIu64 " bytes\n",
                     client, bytes);
    sink_write(SINK_ACCESS, fd, line, (size_t)n, 0);
}
