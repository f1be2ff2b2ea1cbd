/* server: the pieces every server main uses the same way, so each main
 * can tell only its own model's story (its loop stays in the main): parse
 * the options it declares, set up signals, open the access log, listen and
 * print the listening line; wait for the listener or a signal; accept with
 * EMFILE handled; refuse a client; start and time the drain; print the
 * shutdown line. */
#ifndef ECHO_SERVER_H
#define ECHO_SERVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/opt.h"
#include "common/sig.h"
#include "common/stats.h"

/* Descriptors kept back from --max-clients for the server itself
 * (listener, self-pipe, access log, the EMFILE reserve, stdio...). */
#define SERVER_FD_RESERVE 32

struct server {
    const char *prog;
    struct opts o;
    int lfd;                 /* the listener (non-blocking) */
    int sigfd;               /* self-pipe: SIGINT/SIGTERM(/SIGCHLD) arrived */
    int access_fd;           /* -l FILE, or -1 */
    int reserve_fd;          /* spare descriptor for EMFILE, or -1 */
    struct stats *st;        /* client numbers, bytes, active clients */
    int64_t paused_until;    /* accept paused after EMFILE until then (ms) */
    int64_t shed_warned;     /* when the last EMFILE line was printed (ms) */
    unsigned long shed;      /* connections shed so far */
    long starved_active;     /* clients served when accept last hit EMFILE */
};

/* server_start flags. */
enum {
    SERVER_WATCH_CHILD = SIG_WATCH_CHILD,  /* SIGCHLD wakes the self-pipe */
    SERVER_FDS_ELSEWHERE = 0x100,          /* clients' descriptors live in
                                              child processes: no ulimit
                                              check, no EMFILE reserve */
};

/* Parse argv (the options m declares) and start the server up to a
 * listening socket: --help/--version, usage errors (exit 2) and start-up
 * failures (exit 1) return -1 with *code set. */
int server_start(struct server *srv, int argc, char **argv, const struct opt_model *m,
                 int flags, int *code);

/* Print the listening line, once the server is ready to accept: a
 * script that waits for it may connect and measure at once. */
void server_announce(struct server *srv);

/* Accept one client (nonblock: the new socket's mode), peer text in peer.
 * Returns the descriptor, or -1: errno EAGAIN when nothing is pending or
 * accepting is paused.  Out of descriptors (EMFILE/ENFILE), accepting
 * pauses for a moment if clients left since (st->active fell), else the
 * pending connection is shed with the reserve descriptor; a rate-limited
 * line goes to stderr.  Servers keep st->active up to date. */
int server_accept(struct server *srv, int nonblock, char *peer, size_t peerlen);

/* -1 if the listener should be polled now, else how many ms to wait
 * before polling it again (accept paused after EMFILE). */
int server_paused_ms(struct server *srv);

/* Sleep until the listener has a connection (listener: 1) or a signal
 * arrives (the self-pipe is emptied): 1 if accept may be called, 0 if
 * not (signal, or accepting is paused), -1 on a poll error (reported). */
int server_wait(struct server *srv, int listener);

/* Close a connection the server will not serve, with the status line
 * "refused PEER: WHY" (WHY NULL: at --max-clients N). */
void server_refuse(struct server *srv, int fd, const char *peer, const char *why);

/* Stop accepting: close the listener, so new connects are refused (once
 * every process that shares it has closed it). */
void server_close_listener(struct server *srv);

/* The drain begins: with clients (still connected) > 0, say so in one
 * status line ("draining 3 clients for up to 5 s (Ctrl-C again to stop
 * now)").  Returns the deadline, in sys_now_ms() time. */
int64_t server_drain_begin(struct server *srv, long clients);

/* 1 when the drain is over: the deadline passed or a second stop signal
 * arrived. */
int server_drain_over(int64_t deadline_ms);

/* Threads: wait on cv (mu held, CLOCK_MONOTONIC) until signalled or
 * deadline_ms; with drain, also until a second stop signal (a handler
 * cannot signal a condition variable: the flag is looked at every 50 ms).
 * 0 while time remains (re-check the condition), -1 once it is over. */
int server_cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms, int drain);

/* Print the shutdown line and release what server_start took. */
void server_finish(struct server *srv);

/* Release what server_start took, without the shutdown line (a server
 * that ends in failure). */
void server_release(struct server *srv);

#endif
