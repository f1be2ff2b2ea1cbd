/* srvcpu: CPU time of a process tree from /proc. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/srvcpu.h"

#define MAX_DEPTH 4

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

static void add_tree(pid_t pid, int depth, unsigned long long sum[2]);

/* Every live child of every thread of pid. */
static void add_children(pid_t pid, int depth, unsigned long long sum[2])
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
            add_tree((pid_t)child, depth + 1, sum);
        }
        free(buf);
    }
    closedir(d);
}

static void add_tree(pid_t pid, int depth, unsigned long long sum[2])
{
    unsigned long long t[4];
    if (read_stat(pid, t) == -1)
        return;            /* a child that went meanwhile: its parent has it */
    sum[0] += t[0] + t[2];
    sum[1] += t[1] + t[3];
    if (depth < MAX_DEPTH)
        add_children(pid, depth, sum);
}

int srvcpu_read(pid_t pid, struct srvcpu *out)
{
    unsigned long long t[4], sum[2] = {0, 0};
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    /* children first: one reaped between the two reads is then counted
     * twice (rather than not at all), a tick or so at worst */
    add_children(pid, 0, sum);
    if (read_stat(pid, t) == -1)
        return -1;
    sum[0] += t[0] + t[2];
    sum[1] += t[1] + t[3];
    out->user_us = sum[0] * 1000000ULL / (unsigned long long)hz;
    out->sys_us = sum[1] * 1000000ULL / (unsigned long long)hz;
    return 0;
}
