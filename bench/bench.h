/* bench: what echo_bench's files share.
 *
 * options.c  the command line (struct cfg) and its pure parsers
 * conn.c     one connection's mechanics, the same in every mode: its
 *            interest set, reads, the byte check, the per-echo timeout,
 *            the final half-close that catches an over-long echo
 * mode_msg.c message modes (echo, framed, churn) behind struct bench_mode
 * mode_stream.c  --stream behind struct bench_mode
 * worker.c   a worker thread's loop, connecting, the measured window
 * report.c   the summary line, CSV, info line
 * srvcpu.c   the server's CPU time from /proc (--server-pid)
 * hist.c     the latency histogram
 * echo_bench.c  main: set up, run, report
 *
 * The mode table is as select_server/ev.h keeps its backends: the worker
 * loop calls a mode's functions and never asks which mode it runs. */
#ifndef ECHO_BENCH_H
#define ECHO_BENCH_H

#include <sys/socket.h>
#include <sys/types.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/hist.h"
#include "common/net.h"

#define PROG "echo_bench"
#define NS 1000000000LL

/* ---- options (options.c) ---- */

struct cfg {
    unsigned long conns, threads;    /* threads 0: not given */
    uint64_t size;                   /* payload bytes per message */
    int64_t dur_ns;                  /* 0: not given */
    int64_t timeout_ns;              /* per-echo timeout */
    uint64_t stream;                 /* total bytes; 0: not streaming */
    int framed, churn, csv, quiet;
    long cpu;                        /* -1: not pinned */
    pid_t server_pid;                /* 0: do not measure the server's CPU */
    const char *host, *port;
};

/* Fill cfg from argv.  Returns -1 to run, or the exit status (0 after
 * --help/--version, 2 after a usage error, already reported). */
int bench_parse_args(int argc, char **argv, struct cfg *cfg);

/* A byte count with an optional K, M or G suffix (powers of 1024), in
 * [min, max].  0 or -1. */
int bench_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Seconds as DIGITS[.DIGITS] (or .DIGITS), more than zero, at most
 * max_s, in ns.  0 or -1. */
int bench_parse_seconds(const char *s, unsigned long long max_s, int64_t *ns);

/* ---- the run ---- */

enum cstate {
    C_CLOSED,       /* not open: done, failed, or never connected */
    C_READY,        /* connected, not started */
    C_CONNECTING,   /* churn: non-blocking connect under way */
    C_BUSY,         /* a message (or the stream) in flight */
    C_IDLE,         /* its last echo is in; waits for the window to close */
    C_CLOSING       /* half-closed: expects EOF and no more bytes */
};

struct conn {
    int fd;
    enum cstate st;
    int want_out;          /* EPOLLOUT is in the interest set */
    int echoed;            /* a byte of echo ever came on this socket */
    int active;            /* counted in worker.active */
    unsigned long id;      /* 1, 2, ... in connect order (churn: the slot) */
    uint64_t seq;          /* the message in flight, from 1 */
    uint64_t sent, got;    /* bytes of the message (or the stream) */
    uint64_t total;        /* stream: this connection's share */
    int64_t t0;            /* send (churn: connect) start, ns */
    int64_t t_wait;        /* waiting for the server since; 0: not */
    unsigned char *msg;    /* the message as sent: [frame header] payload */
};

struct worker;

/* A mode: how a connection starts, reacts to readiness, and stops when
 * the measured window ends. */
struct bench_mode {
    const char *name;                   /* "echo" "framed" "churn" "stream" */
    int warm_up;                        /* one message per connection first */
    void (*start)(struct worker *w, struct conn *c);          /* C_READY */
    void (*event)(struct worker *w, struct conn *c, int in, int out);
    void (*window_end)(struct worker *w, struct conn *c);     /* any open */
};

extern const struct bench_mode mode_echo, mode_churn, mode_stream;
const struct bench_mode *mode_of(const struct cfg *cfg);

struct run;

struct worker {
    pthread_t tid;
    struct run *run;
    int ep;
    struct conn *conns;    /* a slice of run->conns */
    size_t nconns, open;   /* open: not C_CLOSED */
    size_t active;         /* connections with work left in the window */
    unsigned char *rbuf;
    size_t rcap;
    uint64_t msgs, bytes, errors, unserved, opened;
    int64_t t_stop;        /* the end of its measured interval */
    struct hist hist;
};

struct run {
    const struct cfg *cfg;
    const struct bench_mode *mode;
    size_t msg_len;                    /* header + payload */
    unsigned char *msgs;               /* every connection's message */
    unsigned char *pattern;            /* stream: two periods */
    struct sockaddr_storage addr;      /* churn: where to connect */
    socklen_t addrlen;
    char addr_text[NET_ADDR_MAX];
    atomic_llong end;                  /* deadline, ns; SIGINT moves it */
    atomic_int quit;                   /* second SIGINT: stop at once */
    atomic_int closed;                 /* the window is closed and measured */
    atomic_int warming;                /* before the window: nothing counts */
    atomic_uint shown;                 /* error lines printed */
    atomic_uint idle;                  /* workers past their window */
    atomic_uint done;                  /* workers finished */
    pthread_t main_tid;                /* woken with SIGUSR1 by the last */
    unsigned long nworkers;
    pthread_barrier_t ready, go;
};

#define STREAM_PERIOD 1048573u    /* prime, a little under 1 MiB */

/* ---- connections (conn.c) ---- */

/* Count an error for connection id; describe it if few have been. */
void bench_report(struct run *r, uint64_t *errors, unsigned long id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int conn_events(struct worker *w, struct conn *c, int op, int want_out);
void conn_close(struct worker *w, struct conn *c);
void conn_fail(struct worker *w, struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* One read of at most want bytes into w->rbuf; 0 (n set, maybe 0) or -1
 * after failing c (EOF is "closed by server after GOT of LEN bytes"). */
int conn_read(struct worker *w, struct conn *c, uint64_t len, size_t *n);
/* Describe the first byte of got[0..n) differing from want, fail c. */
void conn_mismatch(struct worker *w, struct conn *c, const unsigned char *got,
                   const unsigned char *want, size_t n, uint64_t at);
/* Half-close c and expect EOF with nothing more (C_CLOSING). */
void conn_finish(struct worker *w, struct conn *c);
/* C_CLOSING is readable: EOF closes it (returns 1), a byte is an
 * over-long echo (c fails); 0 while nothing came. */
int conn_closing(struct worker *w, struct conn *c);
/* c has work in the measured window (again), or no more. */
void conn_activate(struct worker *w, struct conn *c);
void conn_deactivate(struct worker *w, struct conn *c);
/* Fail every connection waiting on the server longer than the timeout. */
void conn_check_timeouts(struct worker *w, int64_t now);
/* splitmix64/xorshift bytes for message seq of connection id. */
void fill_payload(unsigned char *p, size_t n, unsigned long id, uint64_t seq);

/* ---- the workers (worker.c) ---- */

/* Connect every connection before the clock starts; how many opened. */
unsigned long bench_connect_all(struct run *r, struct worker *ws, unsigned long nw,
                                uint64_t *errors);
/* Run the workers until the window closes and they finish; returns the
 * window's start.  measure(arg, 0|1) is called at its start and end. */
int64_t bench_run_workers(struct run *r, struct worker *ws, unsigned long nw,
                          void (*measure)(void *arg, int end), void *arg);

/* ---- reporting (report.c) ---- */

struct totals {
    int64_t elapsed;               /* the measured window, ns */
    uint64_t msgs, bytes, errors;
    unsigned long threads;
    const struct hist *hist;
    int have_cpu;                  /* --server-pid measured it */
    uint64_t cpu_user_us, cpu_sys_us;
};

void bench_info_line(const struct cfg *cfg, unsigned long nw);
void bench_summary(const struct cfg *cfg, const struct totals *t);

#endif
