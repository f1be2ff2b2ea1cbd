/* kids: waitpid(WNOHANG) in a loop, as Stevens' sig_chld_waitpid, but
 * called from the main loop rather than from the handler; a slot table
 * in shared memory so a dead child's share of the counters survives it. */
#include <sys/mman.h>
#include <sys/wait.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "common/kids.h"
#include "common/log.h"
#include "common/sig.h"
#include "common/sys.h"

static size_t kids_size(size_t cap)
{
    return sizeof(struct kids) + cap * sizeof(struct kid);
}

struct kids *kids_new(size_t cap, const char *what, struct stats *st)
{
    void *p = mmap(NULL, kids_size(cap), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    struct kids *k = p;     /* the mapping is zeroed: every slot free */
    k->cap = cap;
    k->what = what;
    k->st = st;
    return k;
}

void kids_free(struct kids *k)
{
    if (k != NULL)
        munmap(k, kids_size(k->cap));
}

size_t kids_claim(struct kids *k)
{
    size_t i = 0;
    while (i < k->hi && k->kid[i].pid != 0)
        i++;
    return i;
}

void kids_set(struct kids *k, size_t slot, pid_t pid)
{
    struct kid *c = &k->kid[slot];
    c->pid = pid;
    c->started = sys_now_ms();
    k->n++;   /* c->own: zero since the slot was freed; the child may use it already */
    if (slot >= k->hi)
        k->hi = slot + 1;
}

static void start_slot(struct kids *k, size_t slot)
{
    pid_t pid = k->start(slot, k->ctx);
    if (pid == -1) {
        log_warn("fork %s:", k->what);
        return;
    }
    unsigned quick = k->kid[slot].quick_deaths;
    kids_set(k, slot, pid);
    k->kid[slot].quick_deaths = quick;
}

size_t kids_supervise(struct kids *k, kids_start_fn *start, void *ctx)
{
    k->start = start;
    k->ctx = ctx;
    for (size_t i = 0; i < k->cap; i++)
        start_slot(k, i);
    return k->n;
}

/* Slot i's child ended with status: settle its share, say what happened
 * and, supervising, start another. */
static void ended(struct kids *k, size_t i, int status)
{
    struct kid *c = &k->kid[i];
    long seats = atomic_exchange(&c->own.active, 0);
    uint64_t bytes = atomic_exchange(&c->own.bytes, 0);
    if (seats != 0)
        atomic_fetch_sub(&k->st->active, seats);
    if (bytes != 0)
        atomic_fetch_add(&k->st->bytes, bytes);
    pid_t pid = c->pid;
    c->pid = 0;
    k->n--;
    int supervised = k->start != NULL && !k->stopping;
    char how[64] = "";
    if (WIFSIGNALED(status) && !(k->stopping && WTERMSIG(status) == SIGKILL))
        snprintf(how, sizeof how, "died of signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else if (WIFEXITED(status) && (WEXITSTATUS(status) != 0 || supervised))
        snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
    if (how[0] != '\0')
        log_warn("%s %ld %s%s", k->what, (long)pid, how,
                 seats > 0 ? "; its clients were cut off" : "");
    if (!supervised)
        return;
    c->quick_deaths = sys_now_ms() - c->started < KIDS_QUICK_MS ? c->quick_deaths + 1 : 0;
    if (c->quick_deaths >= KIDS_QUICK_MAX) {
        log_warn("%s %ld died %u times within %d ms of starting; not replacing it",
                 k->what, (long)pid, c->quick_deaths, KIDS_QUICK_MS);
        return;
    }
    start_slot(k, i);
    if (k->kid[i].pid != 0)
        log_warn("started %s %ld in place of %ld", k->what, (long)k->kid[i].pid, (long)pid);
}

size_t kids_reap(struct kids *k)
{
    pid_t pid;
    int status;
    size_t reaped = 0;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        reaped++;
        for (size_t i = 0; i < k->hi; i++) {
            if (k->kid[i].pid == pid) {
                ended(k, i, status);
                break;
            }
        }
    }
    while (k->hi > 0 && k->kid[k->hi - 1].pid == 0)
        k->hi--;
    return reaped;
}

static void kill_all(struct kids *k, int sig)
{
    for (size_t i = 0; i < k->hi; i++)
        if (k->kid[i].pid != 0)
            kill(k->kid[i].pid, sig);
}

void kids_stop(struct kids *k, int sig, int sigfd, int64_t deadline_ms)
{
    k->stopping = 1;
    kill_all(k, sig);
    int hurried = 0;
    for (;;) {
        kids_reap(k);
        if (k->n == 0)
            return;
        if (sig_hurry && !hurried) {
            hurried = 1;              /* a second Ctrl-C: pass it on */
            kill_all(k, sig);
        }
        int64_t left = deadline_ms - sys_now_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = {.fd = sigfd, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) > 0)
            sig_drain(sigfd);
    }
    log_warn("%zu %s(es) did not finish in time; killing them", k->n, k->what);
    kill_all(k, SIGKILL);
    int status;
    pid_t pid;
    while (k->n > 0 && (pid = waitpid(-1, &status, 0)) > 0)
        for (size_t i = 0; i < k->hi; i++)
            if (k->kid[i].pid == pid)
                ended(k, i, status);
}

int kids_child_init(pid_t parent)
{
#ifdef __linux__
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
        return -1;
#endif
    sig_set_parent(parent);
    /* the parent may have died before prctl: then nobody will tell us */
    if (getppid() != parent)
        return -1;
    return 0;
}
