/* log: one write(2) per line. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/io.h"
#include "common/log.h"

#define LINE_MAX_LEN 1024

static const char *log_prog = "echo";
static int log_quiet;

void log_init(const char *prog, int quiet)
{
    log_prog = prog;
    log_quiet = quiet;
}

/* Format into line, add '\n', write once.  A failing stdout is ignored:
 * the server's clients matter more than its log. */
__attribute__((format(printf, 4, 0)))
static void emit(int fd, const char *prefix, int with_errno, const char *fmt, va_list ap)
{
    char line[LINE_MAX_LEN];
    int saved = errno;
    size_t n = 0;
    if (prefix != NULL)
        n = (size_t)snprintf(line, sizeof line, "%s: ", prefix);
    int r = vsnprintf(line + n, sizeof line - n, fmt, ap);
    n = r < 0 ? n : n + (size_t)r;
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    if (with_errno)
        n += (size_t)snprintf(line + n, sizeof line - n, " %s", strerror(saved));
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    (void)io_write_all(fd, line, n);
    errno = saved;
}

void log_status(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(STDOUT_FILENO, NULL, 0, fmt, ap);
    va_end(ap);
}

void log_client(const char *fmt, ...)
{
    if (log_quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(STDOUT_FILENO, NULL, 0, fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    size_t len = strlen(fmt);
    va_list ap;
    va_start(ap, fmt);
    emit(STDERR_FILENO, log_prog, len > 0 && fmt[len - 1] == ':', fmt, ap);
    va_end(ap);
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
    if (access_fd >= 0 && log_access(access_fd, id, bytes) == -1)
        log_warn("access log:");
}

int log_access_open(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

int log_access(int fd, uint64_t client, uint64_t bytes)
{
    char line[80];
    int n = snprintf(line, sizeof line, "[client %" PRIu64 "]: received %" PRIu64 " bytes\n",
                     client, bytes);
    return io_write_all(fd, line, (size_t)n) < 0 ? -1 : 0;
}
