/* kids: waitpid(WNOHANG) in a loop, as Stevens' sig_chld_waitpid, but
 * called from the main loop rather than from the handler. */
#include <sys/wait.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>

#include "common/kids.h"
#include "common/log.h"
#include "common/sig.h"
#include "common/sys.h"

int kids_init(struct kids *k, size_t cap, const char *what)
{
    k->pid = calloc(cap, sizeof *k->pid);
    k->n = 0;
    k->cap = cap;
    k->what = what;
    return k->pid == NULL ? -1 : 0;
}

void kids_free(struct kids *k)
{
    free(k->pid);
    k->pid = NULL;
    k->n = k->cap = 0;
}

void kids_add(struct kids *k, pid_t pid)
{
    k->pid[k->n++] = pid;
}

void kids_reap(struct kids *k)
{
    pid_t pid;
    int status;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < k->n; i++) {
            if (k->pid[i] == pid) {
                k->pid[i] = k->pid[--k->n];
                break;
            }
        }
        if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
            log_warn("%s %ld died of signal %d", k->what, (long)pid, WTERMSIG(status));
        else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
            log_warn("%s %ld exited with status %d", k->what, (long)pid, WEXITSTATUS(status));
    }
}

void kids_stop(struct kids *k, int sig, int sigfd, int64_t deadline_ms)
{
    for (size_t i = 0; i < k->n; i++)
        kill(k->pid[i], sig);
    for (;;) {
        kids_reap(k);
        if (k->n == 0)
            return;
        int64_t left = deadline_ms - sys_now_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = {.fd = sigfd, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) > 0)
            sig_drain(sigfd);
    }
    log_warn("%zu %s(es) did not finish in time; killing them", k->n, k->what);
    for (size_t i = 0; i < k->n; i++)
        kill(k->pid[i], SIGKILL);
    while (k->n > 0 && waitpid(-1, NULL, 0) > 0)
        k->n--;
}
