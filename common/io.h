/* io: reads and writes that survive partial transfers, EINTR and EAGAIN. */
#ifndef ECHO_IO_H
#define ECHO_IO_H

#include <stddef.h>
#include <sys/types.h>

/* Blocking descriptors (Stevens' writen/readn).  io_write_all writes all n
 * bytes or returns -1 with errno (EAGAIN: a SO_SNDTIMEO expired).
 * io_read_all returns n, or fewer at EOF, or -1 with errno. */
ssize_t io_write_all(int fd, const void *buf, size_t n);
ssize_t io_read_all(int fd, void *buf, size_t n);

/* Non-blocking descriptors: one read or write, EINTR retried, with
 * EAGAIN kept apart from EOF and from errors. */
enum io_status { IO_OK, IO_AGAIN, IO_EOF, IO_ERR };
enum io_status io_read(int fd, void *buf, size_t cap, size_t *got);
enum io_status io_write(int fd, const void *buf, size_t n, size_t *put);

#endif
