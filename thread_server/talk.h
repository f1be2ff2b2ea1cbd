/* talk: thread_server's chat mode.  Each client has a reader (its own
 * thread) and a writer thread; a line read by one client (common/chat.c)
 * is queued for every other client on the registry and its writer woken.
 *
 * The queue holds two of the longest lines, and a reader whose line does
 * not fit waits a little for the receiver to make room, as select_server's
 * single thread reads the talker only between writes to the others: so a
 * receiver that keeps up is never cut, however long the lines.  A receiver
 * that makes no progress for TALK_QUIET_MS, or still has no room after
 * TALK_WAIT_MAX_MS, is disconnected, so one slow receiver never stalls the
 * others for long.  Only a real EOF from the peer sends a line it never
 * finished; a client the server cut (overflow, drain, idle) sends none. */
#ifndef ECHO_TALK_H
#define ECHO_TALK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/opt.h"
#include "common/session.h"
#include "thread_server/client.h"

#define TALK_QUIET_MS 1000
#define TALK_WAIT_MAX_MS 5000

/* The chat room over the registry. */
struct talk {
    pthread_mutex_t *lock;              /* the registry's lock */
    struct client *const *clients;      /* the registry's list (under lock) */
    size_t max;                         /* queue bound, chat_queue_max() */
    uint32_t max_frame;
    unsigned idle_timeout;
    const pthread_attr_t *writer_attr;  /* joinable, the suite's stack size */
    pthread_cond_t room;                /* a writer took bytes, or ended */
    unsigned room_waiters;
};

/* Set up the room.  0, or -1 with errno. */
int talk_init(struct talk *t, pthread_mutex_t *lock, struct client *const *clients,
              const struct opts *o, const pthread_attr_t *writer_attr,
              const pthread_condattr_t *cond_attr);

/* Serve c in chat mode on its own thread: start its writer, read and
 * broadcast lines until EOF, a fault or a cut, then let the writer finish
 * and join it.  s->reason gets the reason for a fault. */
void talk_run(struct talk *t, struct client *c, struct session *s);

#endif
