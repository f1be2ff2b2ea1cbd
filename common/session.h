/* session: one client served over a blocking socket, in echo, line or
 * framed mode.  fork_server runs it in a child process, thread_server in a
 * thread; the protocol is the same code either way.
 *
 * Memory per client is bounded: the read buffer starts small (inside
 * struct session) and grows to SESSION_BIG_BUF only when a read fills it;
 * a blocking write of each echo before the next read is the backpressure;
 * line and frame decoders hold at most --max-frame bytes. */
#ifndef ECHO_SESSION_H
#define ECHO_SESSION_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/opt.h"
#include "common/stats.h"

#define SESSION_SMALL_BUF 256
#define SESSION_BIG_BUF (64 * 1024)
#define SESSION_REASON_MAX 160

struct session {
    int fd;
    uint64_t id;                    /* client number */
    const struct opts *o;
    uint64_t bytes;                 /* received from the client */
    atomic_uint_fast64_t *live;     /* NULL, or where bytes is published as
                                       it grows (a supervised child's share:
                                       counted even if the child dies) */
    char reason[SESSION_REASON_MAX];/* why the server ended it, or "" */
    char small[SESSION_SMALL_BUF];
};

/* Set up s (s->live = NULL) for client id on fd (blocking); applies --idle-timeout as
 * SO_RCVTIMEO/SO_SNDTIMEO.  Prints "client N connected from PEER". */
void session_start(struct session *s, int fd, uint64_t id, const char *peer,
                   const struct opts *o);

/* Serve until the client closes, fails, idles out or breaks the protocol.
 * Another thread or a signal handler may end it early with shutdown(2). */
void session_run(struct session *s);

/* Report the end: "client N: REASON" (cut_reason overrides s->reason when
 * the server cut the client off), "client N disconnected (...)", the
 * access-log line, and the bytes into st.  Does not close fd. */
void session_finish(struct session *s, const char *cut_reason, int access_fd,
                    struct stats *st);

#endif
