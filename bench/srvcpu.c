/* srvcpu: CPU time of a process tree from /proc. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/srvcpu.h"


/* utime, stime, cutime, cstime (ticks) from /proc/PID/stat. */
static int read_stat(pid_t pid, unsigned long long t[4])
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int saved = errno;
    close(fd);
    if (n <= 0) {
        errno = n == 0 ? ESRCH : saved;
        return -1;
    }
    buf[n] = '\0';
    /* after "pid (comm) ": field 3 is the state; utime is field 14 */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        goto bad;
    p++;
    for (int field = 3; field < 14; field++) {
        p = strchr(p + 1, ' ');
        if (p == NULL)
            goto bad;
    }
    for (int i = 0; i < 4; i++) {
        char *end;
        errno = 0;
        t[i] = strtoull(p + 1, &end, 10);
        if (end == p + 1 || errno != 0)
            goto bad;
        p = end;
    }
    return 0;
bad:
    errno = EPROTO;
    return -1;
}

static uint64_t tick_ns(void)
{
    long hz = sysconf(_SC_CLK_TCK);
    return 1000000000u / (uint64_t)(hz > 0 ? hz : 100);
}

/* The exact CPU time of pid's live threads (schedstat's first field,
 * ns), or -1 if the kernel has no schedstat. */
static int64_t exact_ns(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int64_t sum = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && sum >= 0) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char spath[320], buf[128];
        snprintf(spath, sizeof spath, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        int fd = open(spath, O_RDONLY | O_CLOEXEC);
        if (fd == -1) {
            if (errno != ENOENT)
                sum = -1;       /* no schedstat at all */
            continue;           /* a thread that just ended */
        }
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            buf[n] = '\0';
            sum += (int64_t)strtoull(buf, NULL, 10);
        }
    }
    closedir(d);
    return sum;
}

/* The descendants still to visit: a breadth-first walk, no recursion. */
struct pids {
    pid_t *v;
    size_t n, cap;
};

#define MAX_PIDS (1u << 22)

static void push(struct pids *l, pid_t pid)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        pid_t *v = cap <= MAX_PIDS ? realloc(l->v, cap * sizeof *v) : NULL;
        if (v == NULL)
            return;             /* out of memory: the rest is not counted */
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = pid;
}

/* Append every live child of every thread of pid to l. */
static void push_children(pid_t pid, struct pids *l)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char cpath[320];
        snprintf(cpath, sizeof cpath, "/proc/%d/task/%s/children", (int)pid, e->d_name);
        int fd = open(cpath, O_RDONLY | O_CLOEXEC);
        if (fd == -1)
            continue;
        /* "PID PID ... ": read it whole (8 bytes a child at most) */
        size_t len = 0, cap = 4096;
        char *buf = malloc(cap);
        ssize_t n;
        while (buf != NULL && (n = read(fd, buf + len, cap - len - 1)) > 0) {
            len += (size_t)n;
            if (cap - len - 1 == 0) {
                char *bigger = realloc(buf, cap * 2);
                if (bigger == NULL)
                    break;
                buf = bigger;
                cap *= 2;
            }
        }
        close(fd);
        if (buf == NULL)
            continue;
        buf[len] = '\0';
        for (char *p = buf, *end; *p != '\0'; p = end) {
            long child = strtol(p, &end, 10);
            if (end == p)
                break;
            push(l, (pid_t)child);
        }
        free(buf);
    }
    closedir(d);
}

/* A live descendant: its threads exactly (ticks if need be), its reaped
 * children by ticks.  0, or -1 if it is gone. */
static int add_one(pid_t pid, struct srvcpu *sum)
{
    unsigned long long t[4];
    if (read_stat(pid, t) == -1)
        return -1;         /* a child that went meanwhile: its parent has it */
    int64_t exact = exact_ns(pid);
    sum->total_ns += (exact >= 0 ? (uint64_t)exact : (t[0] + t[1]) * tick_ns()) +
                     (t[2] + t[3]) * tick_ns();
    sum->user_ticks += t[0] + t[2];
    sum->sys_ticks += t[1] + t[3];
    return 0;
}

int srvcpu_read(pid_t pid, struct srvcpu *out)
{
    unsigned long long t[4];
    struct pids l = {NULL, 0, 0};
    *out = (struct srvcpu){0, 0, 0};
    /* descendants first: one reaped between the two reads is then counted
     * twice (rather than not at all), a tick or so at worst */
    push_children(pid, &l);
    for (size_t i = 0; i < l.n; i++)
        if (add_one(l.v[i], out) == 0)
            push_children(l.v[i], &l);
    free(l.v);
    if (read_stat(pid, t) == -1)
        return -1;
    /* the process itself by ticks: its exited threads are only there */
    out->total_ns += (t[0] + t[1] + t[2] + t[3]) * tick_ns();
    out->user_ticks += t[0] + t[2];
    out->sys_ticks += t[1] + t[3];
    return 0;
}

void srvcpu_diff(const struct srvcpu *a, const struct srvcpu *b, uint64_t *user_us,
                 uint64_t *sys_us)
{
    uint64_t total = b->total_ns > a->total_ns ? (b->total_ns - a->total_ns) / 1000 : 0;
    uint64_t u = b->user_ticks > a->user_ticks ? b->user_ticks - a->user_ticks : 0;
    uint64_t s = b->sys_ticks > a->sys_ticks ? b->sys_ticks - a->sys_ticks : 0;
    *user_us = u + s > 0 ? (uint64_t)((double)total * (double)u / (double)(u + s)) : 0;
    *sys_us = total - *user_us;
}
