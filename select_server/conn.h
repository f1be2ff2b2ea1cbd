/* conn: the clients of one select_server loop, whichever shape the loop
 * has (readiness: ev_*.c under select_server.c; completion:
 * loop_uring.c).  A client is a struct conn on one list in order of last
 * activity, so an idle timeout only ever looks at the head; this module
 * numbers and announces clients, keeps that order, remembers why the
 * server ends one, accounts for it when it ends, and runs the idle and
 * drain timers.  How bytes move is the loop's business. */
#ifndef ECHO_CONN_H
#define ECHO_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/chat.h"
#include "common/proto.h"
#include "common/server.h"

enum { CONN_READ_EOF = 1, CONN_CLOSE_ASAP = 2 };

struct conn {
    int fd;
    unsigned flags;
    uint64_t id;
    uint64_t bytes;               /* received */
    int64_t last_active;          /* ms */
    struct conn *prev, *next;     /* all clients, least recently active first */
    struct conn *dead_next;       /* CONN_CLOSE_ASAP: closed at the end of the turn */
    char *reason;                 /* why the server ends it, or NULL */
    struct buf out;               /* replies or chat lines not yet written */
    struct proto proto;           /* decoder state (echo, line, framed) */
    struct chat_in chat;          /* chat mode: its line decoder */
};

/* The clients of one loop, and its clock and drain state. */
struct conns {
    struct server *srv;
    struct stats_own *me;         /* a worker's share of the counters, or NULL */
    struct conn *head, *tail;     /* least recently active first */
    struct conn *dead;            /* CONN_CLOSE_ASAP, to close this turn */
    size_t n;
    int64_t now;                  /* ms, read once per turn */
    int draining;
    int64_t drain_deadline;
};

/* How a loop ends a client now (it must call conn_end, which takes c off
 * the list). */
typedef void (*conn_close_fn)(struct conn *c);

void conns_init(struct conns *cs, struct server *srv, struct stats_own *me);

/* A new client on fd: takes a --max-clients seat (shared by workers),
 * numbers it, prints "client N connected from PEER" and puts it at the
 * end of the list.  size: the loop's struct, which begins with a struct
 * conn.  no_room: refuse it for this reason instead (e.g. the loop's
 * descriptor table is full), or NULL.  NULL when refused (fd is closed,
 * with the status line). */
struct conn *conn_accept(struct conns *cs, int fd, const char *peer, size_t size,
                         const char *no_room);

/* Something was read or written: c moves to the end of the idle order. */
void conn_touch(struct conns *cs, struct conn *c);

/* n bytes were received from c: counted, and c touched. */
void conn_got(struct conns *cs, struct conn *c, size_t n);

/* Why the server ends c (the first reason given wins; NULL: none). */
void conn_set_reason(struct conn *c, const char *why);

/* End c later in this turn (others may be iterating over the list). */
void conn_kill(struct conns *cs, struct conn *c, const char *why);

/* c is over: "client N: WHY", "client N disconnected (...)", the access
 * log, the byte count and the seat; off the list.  Its descriptor and
 * memory stay until conn_free (a completion loop may still have requests
 * in flight that name them). */
void conn_end(struct conns *cs, struct conn *c);

/* Close c's descriptor and free it. */
void conn_free(struct conn *c);

/* Close (close_fn) the clients killed this turn. */
void conns_reap(struct conns *cs, conn_close_fn close_fn);

/* Close the clients idle past --idle-timeout, and all of them when the
 * drain is over (its time ran out, or a second Ctrl-C). */
void conns_expire(struct conns *cs, conn_close_fn close_fn);

/* How long the loop may sleep (ms, -1: no limit): until the next idle
 * timeout, the end of the drain or the end of an accept pause. */
int conns_next_timeout(struct conns *cs);

#endif
