/* net: listen, connect, accept and address text over getaddrinfo. */
#include <sys/socket.h>
#include <sys/types.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/net.h"

/* Longest address or host name shown in an error: a longer one is cut
 * with "...", so the reason after it always fits the caller's buffer. */
#define ERR_ADDR_MAX 64

static void set_err(char *err, size_t errlen, const char *step,
                    const char *addr, const char *why)
{
    int len = (int)strlen(addr);
    int cut = len > ERR_ADDR_MAX;
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s %.*s%s: %s", step, cut ? ERR_ADDR_MAX - 3 : len, addr,
                 cut ? "..." : "", why);
}

/* err = "STEP ADDR:PORT: strerror(e)" for the address that failed. */
static void addr_err(char *err, size_t errlen, const char *step, const struct sockaddr *sa,
                     socklen_t len, int e)
{
    char addr[NET_ADDR_MAX];
    if (net_format_addr(sa, len, addr, sizeof addr) == -1)
        snprintf(addr, sizeof addr, "?");
    set_err(err, errlen, step, addr, strerror(e));
}

static int resolve(const char *host, const char *port, int passive,
                   struct addrinfo **res, char *err, size_t errlen)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    /* "[::1]", as the suite prints addresses: the brackets only delimit */
    char literal[NET_ADDR_MAX];
    const char *typed = host;
    size_t len = strlen(host);
    if (len > 2 && len < sizeof literal && host[0] == '[' && host[len - 1] == ']') {
        snprintf(literal, sizeof literal, "%.*s", (int)len - 2, host + 1);
        hints.ai_flags |= AI_NUMERICHOST;
        host = literal;
    }
    int rc = getaddrinfo(host, port, &hints, res);
    if (rc != 0) {
        const char *why = rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc);
        set_err(err, errlen, "resolve", typed, why);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int net_set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl == -1)
        return -1;
    fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
    return fcntl(fd, F_SETFL, fl);
}

static int set_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl == -1)
        return -1;
    return fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

/* Close fd keeping errno: the error worth reporting is the one before. */
static void close_keep_errno(int fd)
{
    int saved = errno;
    close(fd);
    errno = saved;
}

static int listen_one(const struct addrinfo *ai, int reuseport)
{
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd == -1)
        return -1;
    int on = 1, off = 0;
    if (set_cloexec(fd) == -1 || net_set_nonblock(fd, 1) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1)
        goto fail;
#ifdef SO_REUSEPORT
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == -1)
        goto fail;
#else
    if (reuseport) {
        errno = ENOTSUP;
        goto fail;
    }
#endif
    /* "::" should take IPv4 clients too; ignore systems that refuse. */
    if (ai->ai_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
        listen(fd, NET_BACKLOG) == -1)
        goto fail;
    return fd;
fail:
    close_keep_errno(fd);
    return -1;
}

int net_listen(const char *host, const char *port, int reuseport,
               char *err, size_t errlen)
{
    struct addrinfo *res;
    if (resolve(host, port, 1, &res, err, errlen) == -1)
        return -1;
    int fd = -1, saved = 0;
    /* IPv4 first, then the rest: "-b localhost" means 127.0.0.1. */
    for (int pass = 0; pass < 2 && fd == -1; pass++) {
        for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
            if ((ai->ai_family == AF_INET) != (pass == 0))
                continue;
            fd = listen_one(ai, reuseport);
            if (fd != -1)
                break;
            saved = errno;
            addr_err(err, errlen, "bind", ai->ai_addr, ai->ai_addrlen, saved);
        }
    }
    freeaddrinfo(res);
    if (fd == -1)
        errno = saved;
    return fd;
}

int net_listen_again(int lfd, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);   /* for the analyzer: getsockname fills it */
    if (getsockname(lfd, (struct sockaddr *)&ss, &len) == -1) {
        set_err(err, errlen, "getsockname", "listener", strerror(errno));
        return -1;
    }
    struct addrinfo ai;
    memset(&ai, 0, sizeof ai);
    ai.ai_family = ss.ss_family;
    ai.ai_socktype = SOCK_STREAM;
    ai.ai_addr = (struct sockaddr *)&ss;
    ai.ai_addrlen = len;
    int fd = listen_one(&ai, 1);
    if (fd == -1) {
        int saved = errno;
        addr_err(err, errlen, "bind", ai.ai_addr, len, saved);
        errno = saved;
    }
    return fd;
}

/* connect(2), and if a signal interrupts it, wait for the connection
 * that goes on in the background (retrying would fail with EALREADY). */
static int connect_one(int fd, const struct addrinfo *ai)
{
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return 0;
    if (errno != EINTR)
        return -1;
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int r;
    while ((r = poll(&pfd, 1, -1)) == -1 && errno == EINTR)
        ;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (r == -1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
        return -1;
    errno = soerr;
    return soerr == 0 ? 0 : -1;
}

int net_connect(const char *host, const char *port, char *err, size_t errlen)
{
    struct addrinfo *res;
    if (resolve(host, port, 0, &res, err, errlen) == -1)
        return -1;
    int fd = -1, saved = 0, on = 1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd != -1 && set_cloexec(fd) == 0) {
            if (connect_one(fd, ai) == 0) {
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
                break;
            }
        }
        saved = errno;
        addr_err(err, errlen, "connect", ai->ai_addr, ai->ai_addrlen, saved);
        if (fd != -1)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd == -1)
        errno = saved;
    return fd;
}

int net_accept(int lfd, int nonblock, char *peer, size_t peerlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd;
    do {
        len = sizeof ss;
#ifdef __linux__
        fd = accept4(lfd, (struct sockaddr *)&ss, &len,
                     SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0));
#else
        fd = accept(lfd, (struct sockaddr *)&ss, &len);
        /* BSDs hand down the listener's O_NONBLOCK: set it explicitly. */
        if (fd != -1 && (set_cloexec(fd) == -1 || net_set_nonblock(fd, nonblock) == -1)) {
            close_keep_errno(fd);
            return -1;
        }
#endif
    } while (fd == -1 && (errno == EINTR || errno == ECONNABORTED));
    if (fd == -1)
        return -1;
    int on = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    if (peer != NULL && net_format_addr((struct sockaddr *)&ss, len, peer, peerlen) == -1)
        snprintf(peer, peerlen, "?");
    return fd;
}

int net_shed(int lfd, int *reserve)
{
    if (*reserve >= 0) {
        close(*reserve);
        *reserve = -1;
    }
    int fd = net_accept(lfd, 1, NULL, 0);
    int saved = errno;
    if (fd != -1)
        close(fd);
    *reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
    errno = saved;
    return fd == -1 ? -1 : 0;
}

int net_format_addr(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        if (inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip) == NULL)
            return -1;
        snprintf(out, outlen, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        unsigned port = ntohs(s6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            if (inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip, sizeof ip) == NULL)
                return -1;
            snprintf(out, outlen, "%s:%u", ip, port);
            return 0;
        }
        if (inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip) == NULL)
            return -1;
        if (s6->sin6_scope_id != 0)
            snprintf(out, outlen, "[%s%%%u]:%u", ip, (unsigned)s6->sin6_scope_id, port);
        else
            snprintf(out, outlen, "[%s]:%u", ip, port);
        return 0;
    }
    errno = EAFNOSUPPORT;
    return -1;
}

int net_local_addr(int fd, char *out, size_t outlen, unsigned *port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);   /* for the analyzer: getsockname fills it */
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
        return -1;
    if (port != NULL) {
        if (ss.ss_family == AF_INET)
            *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else
            *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return net_format_addr((struct sockaddr *)&ss, len, out, outlen);
}
