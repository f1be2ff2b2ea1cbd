/* echo_bench: a closed-loop load generator for the echo servers.
 *
 * main() parses the command line (options.c), allocates the connections
 * and one worker per thread, connects every connection before the clock
 * starts, runs the measured window (worker.c) and prints what it
 * measured (report.c).  Each connection keeps one message outstanding:
 * write it, read the echo as it comes, compare every byte with what was
 * sent, record the latency, send the next; nothing is allocated per
 * message.  The modes (mode_msg.c, mode_stream.c) sit behind struct bench_mode.
 * Every mode verifies the echo: short (EOF), late (past --timeout),
 * different, or longer than what was sent (the last echo is followed by
 * a half-close and must meet EOF) is an error, counted and described on
 * stderr; the exit status is then 1.  With --server-pid the server's CPU
 * time over the window is measured too (srvcpu.c). */
#include <sys/epoll.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/srvcpu.h"
#include "common/log.h"
#include "common/sig.h"
#include "common/sys.h"
#include "framing/frame.h"

#define FD_MARGIN 32              /* stdio, epoll sets are added on top */
#define RBUF_ECHO (256u << 10)
#define RBUF_STREAM (1u << 20)

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL && n > 0 && size > 0) {
        log_warn("out of memory (%zu x %zu bytes)", n, size);
        exit(1);
    }
    return p;
}

/* Pin to --cpu and pick the thread count (capped at the connections). */
static unsigned long setup_cpus(const struct cfg *cfg)
{
    cpu_set_t set;
    if (cfg->cpu >= 0) {
        CPU_ZERO(&set);
        CPU_SET((size_t)cfg->cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) == -1) {
            log_warn("--cpu %ld:", cfg->cpu);
            exit(1);
        }
    }
    unsigned long n = cfg->threads;
    if (n == 0) {
        long cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                              : sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (unsigned long)cpus : 1;
    }
    return n < cfg->conns ? n : cfg->conns;
}

/* Allocate the connections (with their message buffers, or the stream
 * pattern) and the workers, each with a slice of the connections and its
 * own epoll set. */
static void setup(struct run *r, struct conn **connsp, struct worker **wsp, unsigned long nw)
{
    const struct cfg *cfg = r->cfg;
    unsigned long n = cfg->conns;
    struct conn *conns = xcalloc(n, sizeof *conns);
    struct worker *ws = xcalloc(nw, sizeof *ws);
    r->msg_len = (size_t)cfg->size + (cfg->framed ? FRAME_HDR : 0);
    if (cfg->stream > 0) {
        r->pattern = xcalloc(2, STREAM_PERIOD);
        fill_payload(r->pattern, STREAM_PERIOD, 0, 0);
        memcpy(r->pattern + STREAM_PERIOD, r->pattern, STREAM_PERIOD);
    } else {
        r->msgs = xcalloc(n, r->msg_len);
    }
    for (unsigned long i = 0; i < n; i++) {
        conns[i] = (struct conn){.fd = -1, .st = C_CLOSED, .id = i + 1};
        if (r->msgs != NULL)
            conns[i].msg = r->msgs + i * r->msg_len;
        else
            conns[i].total = cfg->stream / n + (i < cfg->stream % n);
    }
    for (unsigned long k = 0; k < nw; k++) {
        struct worker *w = &ws[k];
        size_t lo = k * n / nw, hi = (k + 1) * n / nw;
        w->run = r;
        w->conns = conns + lo;
        w->nconns = hi - lo;
        w->rcap = cfg->stream > 0 ? RBUF_STREAM : r->msg_len < RBUF_ECHO ? r->msg_len : RBUF_ECHO;
        w->rbuf = xcalloc(1, w->rcap);
        if ((w->ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
            log_warn("epoll_create1:");
            exit(1);
        }
    }
    *connsp = conns;
    *wsp = ws;
}

/* --server-pid: the server's CPU time at the window's two ends. */
struct cpu_probe {
    pid_t pid;
    struct srvcpu at[2];
    int ok[2];
};

static void measure(void *arg, int end)
{
    struct cpu_probe *p = arg;
    if (p->pid > 0)
        p->ok[end] = srvcpu_read(p->pid, &p->at[end]) == 0;
}

/* Merge the workers' counts, report, free the workers; the error count. */
static uint64_t finish(struct run *r, struct worker *ws, unsigned long nw, int64_t start,
                       uint64_t errors, const struct cpu_probe *probe)
{
    struct totals t = {.threads = nw, .errors = errors};
    uint64_t unserved = 0, opened = 0;
    int64_t stop_at = start;
    struct hist *h = xcalloc(1, sizeof *h);
    for (unsigned long k = 0; k < nw; k++) {
        struct worker *w = &ws[k];
        hist_merge(h, &w->hist);
        t.msgs += w->msgs;
        t.bytes += w->bytes;
        t.errors += w->errors;
        unserved += w->unserved;
        opened += w->opened;
        if (w->t_stop > stop_at)
            stop_at = w->t_stop;
        close(w->ep);
        free(w->rbuf);
    }
    unsigned shown = atomic_load(&r->shown);
    if (shown > 10)
        log_warn("%u more errors not shown", shown - 10);
    if (unserved > 0)
        log_warn("%llu of %llu connections got no echo within %.1f s"
                 " (accepted but never served: a full pool or backlog?)",
                 (unsigned long long)unserved, (unsigned long long)opened,
                 (double)r->cfg->timeout_ns / NS);
    if (probe->pid > 0 && start > 0) {
        if (probe->ok[0] && probe->ok[1]) {
            t.have_cpu = 1;
            srvcpu_diff(&probe->at[0], &probe->at[1], &t.cpu_user_us, &t.cpu_sys_us);
        } else {
            log_warn("--server-pid %d: cannot read its CPU time (is it gone?)",
                     (int)probe->pid);
            t.errors++;
        }
    }
    t.elapsed = stop_at - start;
    t.hist = h;
    bench_summary(r->cfg, &t);
    free(h);
    free(ws);
    return t.errors;
}

int main(int argc, char **argv)
{
    struct cfg cfg;
    int code = bench_parse_args(argc, argv, &cfg);
    if (code >= 0)
        return code;
    log_init(PROG, cfg.quiet);
    if (sig_handle(SIGPIPE, SIG_IGN, 0) == -1) {
        log_warn("sigaction:");
        return 1;
    }
    if (cfg.stream > 0 && cfg.conns > cfg.stream)
        cfg.conns = (unsigned long)cfg.stream;
    unsigned long nw = setup_cpus(&cfg);
    long want = (long)(cfg.conns + nw) + FD_MARGIN;
    long have = sys_raise_nofile(want);
    if (have < want) {
        log_warn("%lu connections need %ld descriptors but RLIMIT_NOFILE allows %ld"
                 " (raise the hard limit: ulimit -Hn)", cfg.conns, want, have);
        return 1;
    }
    struct cpu_probe probe = {.pid = cfg.server_pid};
    struct srvcpu now;
    if (probe.pid > 0 && srvcpu_read(probe.pid, &now) == -1) {
        log_warn("--server-pid %d: cannot read /proc/%d/stat:", (int)probe.pid,
                 (int)probe.pid);
        return 1;
    }

    struct run r = {.cfg = &cfg, .mode = mode_of(&cfg)};
    atomic_init(&r.end, INT64_MAX);
    atomic_init(&r.quit, 0);
    atomic_init(&r.closed, 0);
    atomic_init(&r.warming, 0);
    atomic_init(&r.shown, 0);
    atomic_init(&r.idle, 0);
    atomic_init(&r.done, 0);
    struct conn *conns;
    struct worker *ws;
    setup(&r, &conns, &ws, nw);
    if (!cfg.quiet)
        bench_info_line(&cfg, nw);

    /* Until the workers start, SIGINT/SIGTERM simply end the program
     * (net_connect would ride out a handler); from then on they end the
     * measurement and the summary is still printed. */
    uint64_t errors = 0;
    int64_t start = 0;
    if (bench_connect_all(&r, ws, nw, &errors) > 0)
        start = bench_run_workers(&r, ws, nw, measure, &probe);
    for (unsigned long i = 0; i < cfg.conns; i++)
        if (conns[i].fd >= 0)
            close(conns[i].fd);
    errors = finish(&r, ws, nw, start, errors, &probe);
    free(r.msgs);
    free(r.pattern);
    free(conns);
    return errors > 0 ? 1 : 0;
}
