/* harness: start server binaries, talk to them, look at them through /proc.
 * Every wait has a timeout; failures end the test case (test_fail). */
#ifndef ECHO_HARNESS_H
#define ECHO_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/opt.h"

/* Which server binary a kind runs (tests skip or adapt by model). */
enum model { MODEL_FORK, MODEL_THREAD, MODEL_SELECT };

/* One server under test: a binary and, for select_server, a backend;
 * variants of a model (a pool, a pre-forked set) add their options. */
struct kind {
    const char *label;      /* "select_server/epoll" */
    const char *bin;        /* "select_server" */
    const char *backend;    /* NULL, or "poll" / "select" / "epoll" */
    enum model model;
    const char *extra[3];   /* the variant's options, NULL-terminated */
};

/* The plain binary (no variant options): the one cases about the binary
 * itself (--help, bad options) run against. */
int kind_is_plain(const struct kind *k);

/* A pool variant's size (--prefork N, --pool N): it serves that many
 * clients at once, the rest wait in the backlog.  0 for the others. */
unsigned kind_pool(const struct kind *k);
#define KIND_POOL_N "128"   /* thread_server/pool's size */

extern const struct kind kinds[];
extern const size_t nkinds;

/* A running server and everything it has printed so far. */
struct proc {
    pid_t pid;
    int pidfd;
    const struct kind *k;
    unsigned port;
    char portstr[12];
    pthread_t reader;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *out, *err;          /* stdout and stderr so far, NUL-terminated */
    size_t out_len, err_len;
    int out_fd, err_fd;
    int exited, status;
    atomic_int out_paused;    /* srv_pause_stdout */
};

/* Path of a built program: "bin/NAME" (BIN_DIR overrides "bin"). */
const char *bin_path(const char *name, char *buf, size_t len);

/* A fresh per-case temporary file path. */
const char *tmp_path(const char *name);

/* Extra threads a sanitizer may add to a server (ThreadSanitizer starts
 * one of its own at some point): 0 or 1. */
int sanitizer_threads(void);

/* 0 when servers run under a sanitizer or valgrind, whose allocators
 * (quarantines, shadow memory) make RSS say nothing about the server. */
int rss_meaningful(void);

/* Multiply time bands by this under TEST_WRAPPER (valgrind): 1 or 10. */
int slow_factor(void);

/* How to start a process beyond its arguments (all optional). */
struct spawn_opts {
    long nofile;            /* RLIMIT_NOFILE (soft and hard), 0: inherit */
    const char *env[4];     /* extra NAME=VALUE strings, NULL-terminated */
};

/* Start k with extra arguments (NULL-terminated; "-p 0" and the backend
 * are added), wait for its listening line.  TEST_WRAPPER (e.g. valgrind
 * with options) is put in front of the command when set. */
struct proc *srv_start(const struct kind *k, ...);
struct proc *srv_start_opts(const struct kind *k, const struct spawn_opts *so, ...);
struct proc *srv_startv(const struct kind *k, const struct spawn_opts *so,
                        const char *const *args);

/* Start any command with stdout/stderr captured, in a process group of
 * its own; no listening line wait. */
struct proc *proc_spawn(const char *const *argv, const struct spawn_opts *so);

/* The fault-injection library (tests/fault_shim.c) for spawn_opts.env:
 * "LD_PRELOAD=..." */
const char *fault_shim_preload(void);

/* Wait until stdout holds text at least count times.  Returns 0, or -1
 * when timeout_ms passes first. */
int srv_wait_text(struct proc *p, const char *text, int count, int timeout_ms);
/* The same for stderr. */
int srv_wait_text_err(struct proc *p, const char *text, int count, int timeout_ms);
/* The same, failing the case (showing stdout) after 10 s (x slow_factor). */
void srv_expect(struct proc *p, const char *text, int count);
int srv_count(struct proc *p, const char *text);
/* The server's stdout holds text (safe while its reader thread runs). */
#define CHECK_OUT(p, text)                                                    \
    do {                                                                      \
        char *o_ = srv_stdout(p);                                             \
        CHECK_HAS(o_, text);                                                  \
        free(o_);                                                             \
    } while (0)

/* Stop reading the server's stdout (paused 1), so its pipe fills as
 * behind a paused pager; 0 reads on. */
void srv_pause_stdout(struct proc *p, int paused);

/* A copy of stdout (or stderr) so far; free() it. */
char *srv_stdout(struct proc *p);
char *srv_stderr(struct proc *p);

/* Wait for the process to exit (returns the waitpid status) or fail the
 * case after timeout_ms.  Also fails on sanitizer or valgrind reports in
 * its stderr. */
int srv_wait_exit(struct proc *p, int timeout_ms);
/* kill(sig) then srv_wait_exit; the case fails unless it exits 0. */
void srv_stop(struct proc *p);
void srv_free(struct proc *p);

/* Client side, 127.0.0.1:port.  tc_connect fails the case on error and
 * sets 20 s read/write timeouts; tc_try_connect returns -1 with errno. */
int tc_connect(unsigned port);
/* Connect clients 1..n of a fresh server in order, each seen by the
 * server ("client N connected") before the next. */
void tc_connect_n(struct proc *p, int *fds, int n);
int tc_try_connect(unsigned port);
void tc_send(int fd, const void *p, size_t n);
/* Send a string; receive exactly strlen(want) bytes and compare. */
void tc_send_str(int fd, const char *s);
void tc_recv_str(int fd, const char *want);
/* Read up to n bytes, stopping early only at EOF; returns the count. */
size_t tc_recv(int fd, void *buf, size_t n);
/* 1 if the peer closes (EOF or reset) within timeout_ms, 0 if not;
 * bytes that arrive meanwhile are counted into *extra if not NULL. */
int tc_wait_close(int fd, int timeout_ms, size_t *extra);
/* The server closes fd within ms (x slow_factor), or the case fails;
 * nothing at all arrives on fd within ms, or the case fails. */
void tc_expect_closed(int fd, int ms);
void tc_expect_quiet(int fd, int ms);
/* Send n bytes while reading the echo; fails unless it comes back exact. */
void tc_echo(int fd, const void *p, size_t n);

/* Run a command, stdin from in_path, stdout to out_path (NULL: /dev/null),
 * stderr kept in err (may be NULL, errlen bytes).  Returns the exit
 * status (0..255), or fails the case after timeout_ms. */
int run_cmd(const char *const *argv, const char *in_path, const char *out_path,
            char *err, size_t errlen, int timeout_ms);
/* 1 if the program is on PATH. */
int have_program(const char *name);

/* /proc views of a process. */
int proc_fds(pid_t pid);
int proc_threads(pid_t pid);
int proc_children(pid_t pid, int *zombies);
long proc_rss_kb(pid_t pid);
/* The children of pid (of all its threads): up to max into out; the
 * count found, -1 if pid is gone.  1 if pid is a zombie. */
int children_of(pid_t pid, pid_t *out, int max);
int is_zombie(pid_t pid);
/* RSS of pid and its children together (fork_server's clients). */
long proc_tree_rss_kb(pid_t pid);

/* Fill p with n bytes that differ by seed. */
void fill_pattern(void *p, size_t n, unsigned seed);
/* Write n pattern bytes to a new file; returns its path. */
const char *make_file(const char *name, size_t n, unsigned seed);
/* 1 if two files have the same contents. */
int same_file(const char *a, const char *b);

#endif
