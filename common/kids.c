/* kids: waitpid(WNOHANG) in a loop, as Stevens' sig_chld_waitpid, but
 * called from the main loop rather than from the handler. */
#include <sys/mman.h>
#include <sys/wait.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>

#include "common/kids.h"
#include "common/log.h"
#include "common/sig.h"
#include "common/sys.h"

static size_t kids_size(size_t cap)
{
    return sizeof(struct kids) + cap * sizeof(pid_t);
}

struct kids *kids_new(size_t cap, const char *what)
{
    void *p = mmap(NULL, kids_size(cap), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    struct kids *k = p;
    k->n = 0;
    k->cap = cap;
    k->what = what;
    return k;
}

void kids_free(struct kids *k)
{
    if (k != NULL)
        munmap(k, kids_size(k->cap));
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
