/* io: partial reads and writes, in the shape of Stevens' readn/writen. */
#include <errno.h>
#include <unistd.h>

#include "common/io.h"

ssize_t io_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    size_t left = n;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    return (ssize_t)n;
}

ssize_t io_read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    size_t left = n;
    while (left > 0) {
        ssize_t r = read(fd, p, left);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        p += r;
        left -= (size_t)r;
    }
    return (ssize_t)(n - left);
}

enum io_status io_read(int fd, void *buf, size_t cap, size_t *got)
{
    ssize_t r;
    *got = 0;
    while ((r = read(fd, buf, cap)) < 0 && errno == EINTR)
        ;
    if (r > 0) {
        *got = (size_t)r;
        return IO_OK;
    }
    if (r == 0)
        return IO_EOF;
    return errno == EAGAIN || errno == EWOULDBLOCK ? IO_AGAIN : IO_ERR;
}

enum io_status io_write(int fd, const void *buf, size_t n, size_t *put)
{
    ssize_t w;
    *put = 0;
    while ((w = write(fd, buf, n)) < 0 && errno == EINTR)
        ;
    if (w >= 0) {
        *put = (size_t)w;
        return IO_OK;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK ? IO_AGAIN : IO_ERR;
}
