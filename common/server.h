/* server: what every server main does the same way, so each main can tell
 * only its own model's story: parse the options, set up signals, open the
 * access log, listen and print the listening line; accept with EMFILE
 * handled; refuse a client; print the shutdown line. */
#ifndef ECHO_SERVER_H
#define ECHO_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/opt.h"
#include "common/stats.h"

/* Descriptors kept back from --max-clients for the server itself
 * (listener, self-pipe, access log, the EMFILE reserve, stdio...). */
#define SERVER_FD_RESERVE 32

struct server {
    const char *prog;
    enum model model;
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

/* Parse argv and start the server up to a listening socket:
 * --help/--version, usage errors (exit 2) and start-up failures (exit 1)
 * return -1 with *code set.  about: the model's lines for --help.
 * sig_flags: for sig_setup(). */
int server_start(struct server *srv, int argc, char **argv, enum model model,
                 const char *about, int sig_flags, int *code);

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

/* The blocking servers' main loop: wait on the listener and the
 * self-pipe, then hand every pending connection to serve (a blocking
 * socket and its peer text).  on_wake (may be NULL; fork_server reaps
 * there) runs after each wake-up and after each serve, so it must be cheap
 * when there is nothing to do.  Returns when SIGINT/SIGTERM arrives. */
void server_accept_loop(struct server *srv, void (*serve)(int fd, const char *peer),
                        void (*on_wake)(void));

/* Close a connection the server will not serve, with the status line
 * "refused PEER: WHY" (WHY NULL: at --max-clients N). */
void server_refuse(struct server *srv, int fd, const char *peer, const char *why);

/* Stop accepting: close the listener, so new connects are refused. */
void server_close_listener(struct server *srv);

/* Print the shutdown line and release what server_start took. */
void server_finish(struct server *srv);

#endif
