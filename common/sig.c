/* sig: flags and a self-pipe; handlers do nothing unsafe. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/sig.h"

volatile sig_atomic_t sig_stop;
volatile sig_atomic_t sig_chld;
volatile sig_atomic_t sig_hurry;
volatile sig_atomic_t sig_last;
volatile sig_atomic_t sig_stops;
void (*volatile sig_stop_hook)(void);
static int pipe_fd[2] = {-1, -1};
static volatile sig_atomic_t stops_parent, stops_other;
static pid_t parent_pid;

static void on_signal(int signo, siginfo_t *info, void *uctx)
{
    (void)uctx;
    int saved = errno;
    if (signo == SIGCHLD) {
        sig_chld = 1;
    } else {
        if (parent_pid != 0 && info != NULL && info->si_pid == parent_pid)
            stops_parent++;
        else
            stops_other++;
        sig_last = signo;
        sig_stops++;
        sig_stop = 1;
        if (stops_parent >= 2 || stops_other >= 2)
            sig_hurry = 1;
        if (sig_stop_hook != NULL)
            sig_stop_hook();
    }
    unsigned char b = (unsigned char)signo;
    /* No pipe (closed), or a full one: a wake-up is pending, nothing lost. */
    if (pipe_fd[1] >= 0 && write(pipe_fd[1], &b, 1) < 0) {
        /* nothing to do */
    }
    errno = saved;
}

int sig_handle(int signo, void (*handler)(int), int sa_flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = sa_flags;
    sigemptyset(&sa.sa_mask);
    return sigaction(signo, &sa, NULL);
}

static int handle_info(int signo, int sa_flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = sa_flags | SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    return sigaction(signo, &sa, NULL);
}

void sig_set_parent(pid_t parent)
{
    parent_pid = parent;
    stops_parent = stops_other = 0;
    sig_hurry = 0;
}

static int pipe_cloexec_nonblock(int fd[2])
{
    if (pipe(fd) == -1)
        return -1;
    for (int i = 0; i < 2; i++) {
        if (fcntl(fd[i], F_SETFD, FD_CLOEXEC) == -1 ||
            fcntl(fd[i], F_SETFL, O_NONBLOCK) == -1) {
            int saved = errno;
            close(fd[0]);
            close(fd[1]);
            errno = saved;
            return -1;
        }
    }
    return 0;
}

int sig_setup(int flags)
{
    if (sig_handle(SIGPIPE, SIG_IGN, 0) == -1)
        return -1;
    if (pipe_fd[0] == -1 && pipe_cloexec_nonblock(pipe_fd) == -1)
        return -1;
    sig_stop = 0;
    sig_chld = 0;
    sig_hurry = 0;
    stops_parent = stops_other = 0;
    if (handle_info(SIGINT, SA_RESTART) == -1 || handle_info(SIGTERM, SA_RESTART) == -1 ||
        handle_info(SIGHUP, SA_RESTART) == -1)
        return -1;
    if ((flags & SIG_WATCH_CHILD) &&
        handle_info(SIGCHLD, SA_RESTART | SA_NOCLDSTOP) == -1)
        return -1;
    return pipe_fd[0];
}

void sig_drain(int fd)
{
    unsigned char buf[64];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

void sig_close(void)
{
    for (int i = 0; i < 2; i++) {
        if (pipe_fd[i] != -1)
            close(pipe_fd[i]);
        pipe_fd[i] = -1;
    }
}
