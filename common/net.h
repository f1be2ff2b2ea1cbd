/* net: sockets.  Listen, connect, accept, non-blocking switch, address text.
 * Errors: -1 with errno; where a step can fail in more than one way the
 * caller's err buffer gets "STEP ADDR:PORT: reason" (the shape SPEC.md
 * prints at start-up). */
#ifndef ECHO_NET_H
#define ECHO_NET_H

#include <stddef.h>
#include <sys/socket.h>

/* Room for "[ipv6-address%scope]:65535" and its NUL. */
#define NET_ADDR_MAX 80
/* Accept backlog; Linux clamps it to net.core.somaxconn. */
#define NET_BACKLOG 4096

/* Bind and listen on HOST:PORT (HOST a literal or a name, PORT a number,
 * "0" for any free port).  IPv4 results are tried before IPv6 ones, so
 * "localhost" listens on 127.0.0.1; "::" is dual-stack where the OS allows.
 * SO_REUSEADDR always; SO_REUSEPORT when reuseport (select_server
 * --workers).  The socket is non-blocking and close-on-exec.
 * Returns the descriptor, or -1 with err "bind ADDR:PORT: reason". */
int net_listen(const char *host, const char *port, int reuseport,
               char *err, size_t errlen);

/* Another listener on exactly lfd's address and port (both need
 * SO_REUSEPORT): select_server's workers each get one, and the kernel
 * spreads connections over them.  fd, or -1 with err as net_listen. */
int net_listen_again(int lfd, char *err, size_t errlen);

/* Connect to HOST:PORT, trying each address the name resolves to in turn.
 * Returns a blocking, close-on-exec descriptor with TCP_NODELAY set, or -1
 * with err "connect ADDR:PORT: reason" (of the last address tried) or
 * "resolve HOST: reason". */
int net_connect(const char *host, const char *port, char *err, size_t errlen);

/* Accept one connection from a non-blocking listener.  The new descriptor
 * is close-on-exec, non-blocking if nonblock, with TCP_NODELAY; peer (if
 * not NULL) receives "IP:PORT".  EINTR and ECONNABORTED are retried.
 * Returns -1 with errno (EAGAIN: nothing pending). */
int net_accept(int lfd, int nonblock, char *peer, size_t peerlen);

/* Accept and close one pending connection with the help of a reserved
 * descriptor, after accept failed with EMFILE/ENFILE (libuv's trick): close
 * *reserve, accept, close, reopen *reserve on /dev/null.  Returns 0 if a
 * connection was shed, -1 with errno if not. */
int net_shed(int lfd, int *reserve);

/* Set or clear O_NONBLOCK.  0 or -1 with errno. */
int net_set_nonblock(int fd, int on);

/* "1.2.3.4:80" or "[::1]:80"; IPv4-mapped IPv6 shown as IPv4.
 * Returns 0, or -1 (EAFNOSUPPORT) for other families. */
int net_format_addr(const struct sockaddr *sa, socklen_t len,
                    char *out, size_t outlen);

/* The local address of fd, formatted as above; port receives the port
 * number if not NULL. */
int net_local_addr(int fd, char *out, size_t outlen, unsigned *port);

#endif
