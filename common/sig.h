/* sig: signal set-up for servers.  SIGPIPE is ignored; SIGINT, SIGTERM
 * and SIGHUP (closing the terminal) stop the server the same way; they
 * (and SIGCHLD if asked) set a flag and write one byte to a self-pipe, so
 * a server blocked in poll(2) wakes without racing the flag.  A second
 * stop signal asks to end the drain at once. */
#ifndef ECHO_SIG_H
#define ECHO_SIG_H

#include <signal.h>
#include <sys/types.h>

extern volatile sig_atomic_t sig_stop;   /* SIGINT, SIGTERM or SIGHUP arrived */
extern volatile sig_atomic_t sig_hurry;  /* a second one: end the drain now */
extern volatile sig_atomic_t sig_last;   /* the last stop signal's number */
extern volatile sig_atomic_t sig_stops;  /* stop signals so far */
extern volatile sig_atomic_t sig_chld;   /* SIGCHLD arrived (cleared by caller) */

/* Called from the handler on every stop signal, after sig_stop (and
 * sig_hurry) are set, when not NULL: it must be async-signal-safe.  A
 * forked child that keeps the parent's handlers sets it instead of
 * installing its own. */
extern void (*volatile sig_stop_hook)(void);

enum { SIG_WATCH_CHILD = 1 };

/* Install the handlers (SA_RESTART) and create the self-pipe.  Returns
 * its read end (non-blocking, close-on-exec) to poll for POLLIN, or -1
 * with errno. */
int sig_setup(int flags);

/* In a forked child: stop signals sent by parent are counted apart from
 * the others.  Ctrl-C reaches a child twice (from the terminal, and passed
 * on by its parent): that is one stop, not a second one.  The parent
 * passes a second stop on as a second signal. */
void sig_set_parent(pid_t parent);

/* Empty the self-pipe after it polled readable. */
void sig_drain(int fd);

/* Close both ends of the self-pipe (a forked child that does not need it). */
void sig_close(void);

/* sigaction(signo) with handler (or SIG_IGN/SIG_DFL), an empty mask and
 * the given sa_flags.  0 or -1. */
int sig_handle(int signo, void (*handler)(int), int sa_flags);

#endif
