/* harness: processes, sockets and /proc for the integration tests. */
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/io.h"
#include "common/sys.h"
#include "select_server/uring.h"
#include "tests/harness.h"
#include "tests/test.h"

extern char **environ;

const struct kind kinds[] = {
    {"fork_server", "fork_server", NULL, MODEL_FORK, {NULL}},
    {"thread_server", "thread_server", NULL, MODEL_THREAD, {NULL}},
    /* 128: every shared case fits (100 concurrent at most) but 900 silent
     * clients; valgrind runs at most 500 threads */
    {"thread_server/pool", "thread_server", NULL, MODEL_THREAD, {"--pool", KIND_POOL_N, NULL}},
    {"select_server/poll", "select_server", "poll", MODEL_SELECT, {NULL}},
    {"select_server/select", "select_server", "select", MODEL_SELECT, {NULL}},
    {"select_server/epoll", "select_server", "epoll", MODEL_SELECT, {NULL}},
    {"select_server/uring", "select_server", "uring", MODEL_SELECT, {NULL}},
    {"fork_server/prefork", "fork_server", NULL, MODEL_FORK, {"--prefork", "4", NULL}},
};
const size_t nkinds = sizeof kinds / sizeof kinds[0];

unsigned kind_pool(const struct kind *k)
{
    for (int i = 0; i + 1 < 3 && k->extra[i] != NULL; i++)
        if (strcmp(k->extra[i], "--prefork") == 0 || strcmp(k->extra[i], "--pool") == 0)
            return (unsigned)atoi(k->extra[i + 1]);
    return 0;
}

int kind_is_plain(const struct kind *k)
{
    return k->extra[0] == NULL && (k->backend == NULL || strcmp(k->backend, "poll") == 0);
}

const char *bin_path(const char *name, char *buf, size_t len)
{
    const char *dir = getenv("BIN_DIR");
    snprintf(buf, len, "%s/%s", dir != NULL ? dir : "bin", name);
    return buf;
}

const char *tmp_path(const char *name)
{
    static char dir[512];
    static char path[8][600];
    static int next;
    if (dir[0] == '\0') {
        const char *base = getenv("TEST_TMPDIR");
        snprintf(dir, sizeof dir, "%s/case-%ld", base != NULL ? base : "/tmp", (long)getpid());
        if (mkdir(dir, 0700) == -1 && errno != EEXIST)
            test_fail(__FILE__, __LINE__, "mkdir %s: %s", dir, strerror(errno));
    }
    char *p = path[next++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    return p;
}

int sanitizer_threads(void)
{
    const char *san = getenv("TEST_SANITIZE");
    return san != NULL && strcmp(san, "thread") == 0;
}

int rss_meaningful(void)
{
    const char *san = getenv("TEST_SANITIZE"), *w = getenv("TEST_WRAPPER");
    return (san == NULL || *san == '\0') && (w == NULL || *w == '\0');
}

int slow_factor(void)
{
    const char *w = getenv("TEST_WRAPPER");
    return w != NULL && *w != '\0' ? 10 : 1;
}

/* ---- processes ---- */

static void append(char **buf, size_t *len, const char *p, size_t n)
{
    char *b = realloc(*buf, *len + n + 1);
    if (b == NULL)
        abort();
    memcpy(b + *len, p, n);
    *len += n;
    b[*len] = '\0';
    *buf = b;
}

/* Collect the child's stdout and stderr until both close. */
static void *reader_main(void *arg)
{
    struct proc *p = arg;
    int open_fds = 2;
    struct pollfd pfd[2] = {{p->out_fd, POLLIN, 0}, {p->err_fd, POLLIN, 0}};
    char buf[65536];
    while (open_fds > 0) {
        /* a paused stdout is left unread (a stalled `| less`); the flag
         * is looked at again every 20 ms */
        int paused = atomic_load(&p->out_paused);
        pfd[0].events = paused ? 0 : POLLIN;
        if (poll(pfd, 2, paused ? 20 : -1) == -1) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (pfd[i].fd < 0 || pfd[i].revents == 0)
                continue;
            ssize_t r = read(pfd[i].fd, buf, sizeof buf);
            pthread_mutex_lock(&p->mu);
            if (r > 0 && i == 0)
                append(&p->out, &p->out_len, buf, (size_t)r);
            else if (r > 0)
                append(&p->err, &p->err_len, buf, (size_t)r);
            else if (r == 0 || errno != EINTR) {
                pfd[i].fd = -1;
                open_fds--;
            }
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

void srv_pause_stdout(struct proc *p, int paused)
{
    atomic_store(&p->out_paused, paused);
    if (paused)
        return;
    /* resumed: return once the reader has emptied the pipe (it signals
     * cv after every read) */
    int64_t deadline = sys_now_ms() + 10000 * slow_factor();
    pthread_mutex_lock(&p->mu);
    int left = 0;
    while (ioctl(p->out_fd, FIONREAD, &left) == 0 && left > 0 && sys_now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    pthread_mutex_unlock(&p->mu);
    CHECK_MSG(left == 0, "the server's stdout did not drain");
}

/* The child's side of proc_spawn: only async-signal-safe calls. */
static void child_exec(const char *const *argv, char *const *envp, int out, int err,
                       const struct spawn_opts *so)
{
    setpgid(0, 0);      /* its own process group, as a shell job: Ctrl-C is kill(-pid) */
    int in = open("/dev/null", O_RDONLY);
    if (in < 0 || dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
        dup2(err, STDERR_FILENO) < 0)
        _exit(127);
    if (so != NULL && so->nofile > 0) {
        struct rlimit rl = {(rlim_t)so->nofile, (rlim_t)so->nofile};
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
            _exit(127);
    }
    execvpe(argv[0], (char *const *)(uintptr_t)argv, envp);
    _exit(127);
}

struct proc *proc_spawn(const char *const *argv, const struct spawn_opts *so)
{
    struct proc *p = calloc(1, sizeof *p);
    int out[2], err[2];
    CHECK(p != NULL);
    CHECK_EQ(pipe2(out, O_CLOEXEC), 0);
    CHECK_EQ(pipe2(err, O_CLOEXEC), 0);
    /* the environment, built before fork: the child may not allocate */
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **envp = calloc(n + 8, sizeof *envp);
    CHECK(envp != NULL);
    memcpy(envp, environ, n * sizeof *envp);
    for (int i = 0; so != NULL && i < 4 && so->env[i] != NULL; i++)
        envp[n++] = (char *)(uintptr_t)so->env[i];
    p->pid = fork();
    CHECK_MSG(p->pid >= 0, "fork: %s", strerror(errno));
    if (p->pid == 0)
        child_exec(argv, envp, out[1], err[1], so);
    setpgid(p->pid, p->pid);
    free(envp);
    close(out[1]);
    close(err[1]);
    p->out_fd = out[0];
    p->err_fd = err[0];
    p->out = calloc(1, 1);
    p->err = calloc(1, 1);
    p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
    CHECK_MSG(p->pidfd >= 0, "pidfd_open: %s", strerror(errno));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    CHECK_EQ(pthread_create(&p->reader, NULL, reader_main, p), 0);
    return p;
}

const char *fault_shim_preload(void)
{
    static char env[300];
    const char *dir = getenv("TEST_SHIM_DIR");
    snprintf(env, sizeof env, "LD_PRELOAD=%s/fault_shim.so", dir != NULL ? dir : "build/tests");
    return env;
}

/* The uring kind skips, with the reason, where it cannot run. */
static void need_backend(const struct kind *k)
{
    static char why[256];
    static int probed, ok;
    if (k->backend == NULL || strcmp(k->backend, "uring") != 0)
        return;
    if (!probed) {
        /* in a child: a ring's teardown may queue task work that
         * interrupts this process's blocking socket calls with EINTR */
        int fds[2];
        CHECK_EQ(pipe(fds), 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            int rc = uring_probe(why, sizeof why);
            if (rc == -1)
                (void)!write(fds[1], why, strlen(why));
            _exit(rc == 0 ? 0 : 1);
        }
        close(fds[1]);
        ssize_t n = io_read_all(fds[0], why, sizeof why - 1);
        why[n > 0 ? n : 0] = '\0';
        close(fds[0]);
        int st;
        CHECK_EQ(waitpid(pid, &st, 0), pid);
        ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        probed = 1;
    }
    if (!ok)
        test_skip("io_uring unavailable: %s", why);
}

struct proc *srv_startv(const struct kind *k, const struct spawn_opts *so,
                        const char *const *args)
{
    need_backend(k);
    const char *argv[64];
    int n = 0;
    const char *wrap_env = getenv("TEST_WRAPPER");
    char *wrapper = wrap_env != NULL ? strdup(wrap_env) : NULL;
    for (char *save = NULL, *w = wrapper ? strtok_r(wrapper, " ", &save) : NULL;
         w != NULL && n < 32; w = strtok_r(NULL, " ", &save))
        argv[n++] = w;
    char path[256];
    argv[n++] = bin_path(k->bin, path, sizeof path);
    argv[n++] = "-p";
    argv[n++] = "0";
    if (k->backend != NULL) {
        argv[n++] = "--backend";
        argv[n++] = k->backend;
    }
    for (int i = 0; i < 3 && k->extra[i] != NULL; i++)
        argv[n++] = k->extra[i];
    for (int i = 0; args != NULL && args[i] != NULL && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    struct proc *p = proc_spawn(argv, so);
    free(wrapper);
    p->k = k;
    if (srv_wait_text(p, "listening on ", 1, 15000 * slow_factor()) == -1) {
        char *e = srv_stderr(p);
        test_fail(__FILE__, __LINE__, "%s printed no listening line; stderr: %s", k->label, e);
    }
    pthread_mutex_lock(&p->mu);
    char *at = strstr(p->out, "listening on ");
    char *nl = strchr(at, '\n');
    char *colon = at;
    for (char *c = at; c < nl; c++)
        if (*c == ':')
            colon = c;
    p->port = (unsigned)strtoul(colon + 1, NULL, 10);
    pthread_mutex_unlock(&p->mu);
    CHECK_MSG(p->port > 0, "no port in the listening line");
    snprintf(p->portstr, sizeof p->portstr, "%u", p->port);
    return p;
}

/* The NULL-terminated variadic arguments into args[32]. */
#define COLLECT_ARGS(args, last)                                              \
    do {                                                                      \
        int n_ = 0;                                                           \
        va_list ap_;                                                          \
        va_start(ap_, last);                                                  \
        for (const char *a_; n_ < 31 && (a_ = va_arg(ap_, const char *)) != NULL;) \
            (args)[n_++] = a_;                                                \
        va_end(ap_);                                                          \
        (args)[n_] = NULL;                                                    \
    } while (0)

struct proc *srv_start(const struct kind *k, ...)
{
    const char *args[32];
    COLLECT_ARGS(args, k);
    return srv_startv(k, NULL, args);
}

struct proc *srv_start_opts(const struct kind *k, const struct spawn_opts *so, ...)
{
    const char *args[32];
    COLLECT_ARGS(args, so);
    return srv_startv(k, so, args);
}

static int count_in(const char *hay, const char *needle)
{
    int c = 0;
    size_t nl = strlen(needle);
    for (const char *s = hay; (s = strstr(s, needle)) != NULL; s += nl)
        c++;
    return c;
}

static int wait_text(struct proc *p, char *const *where, const char *text, int count,
                     int timeout_ms)
{
    int64_t deadline = sys_now_ms() + timeout_ms;
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    while (count_in(*where, text) < count) {
        int64_t left = deadline - sys_now_ms();
        if (left <= 0) {
            rc = -1;
            break;
        }
        struct timeval now;
        gettimeofday(&now, NULL);
        int64_t until_us = (int64_t)now.tv_sec * 1000000 + now.tv_usec + (left < 50 ? left : 50) * 1000;
        struct timespec ts = {.tv_sec = (time_t)(until_us / 1000000),
                              .tv_nsec = (long)(until_us % 1000000) * 1000};
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int srv_wait_text(struct proc *p, const char *text, int count, int timeout_ms)
{
    return wait_text(p, &p->out, text, count, timeout_ms);
}

int srv_wait_text_err(struct proc *p, const char *text, int count, int timeout_ms)
{
    return wait_text(p, &p->err, text, count, timeout_ms);
}

void srv_expect(struct proc *p, const char *text, int count)
{
    if (srv_wait_text(p, text, count, 10000 * slow_factor()) == -1) {
        char *out = srv_stdout(p);
        test_fail(__FILE__, __LINE__, "expected %d x \"%s\" from %s; stdout:\n%.3000s",
                  count, text, p->k != NULL ? p->k->label : "process", out);
    }
}

int srv_count(struct proc *p, const char *text)
{
    pthread_mutex_lock(&p->mu);
    int c = count_in(p->out, text);
    pthread_mutex_unlock(&p->mu);
    return c;
}

char *srv_stdout(struct proc *p)
{
    pthread_mutex_lock(&p->mu);
    char *s = strdup(p->out);
    pthread_mutex_unlock(&p->mu);
    return s;
}

char *srv_stderr(struct proc *p)
{
    pthread_mutex_lock(&p->mu);
    char *s = strdup(p->err);
    pthread_mutex_unlock(&p->mu);
    return s;
}

/* Sanitizer and valgrind reports fail the case. */
static void check_reports(struct proc *p)
{
    char *e = srv_stderr(p);
    CHECK_MSG(strstr(e, "Sanitizer") == NULL && strstr(e, "runtime error:") == NULL,
              "sanitizer report from %s:\n%s", p->k ? p->k->label : "process", e);
    /* valgrind --track-fds: every descriptor open at exit other than
     * those inherited from us is a leak.  Lines of several processes
     * (fork_server's children) interleave: follow the "==PID==" prefix. */
    for (const char *s = e; (s = strstr(s, "Open file descriptor ")) != NULL; s++) {
        const char *bol = s;
        while (bol > e && bol[-1] != '\n')
            bol--;
        size_t plen = (size_t)(s - bol);       /* "==PID== " */
        const char *next = strchr(s, '\n');
        while (next != NULL && strncmp(next + 1, bol, plen) != 0)
            next = strchr(next + 1, '\n');
        const char *end = next != NULL ? strchr(next + 1, '\n') : NULL;
        /* a descriptor the program opened is shown with the stack that
         * opened it ("at 0x..."); with 900 children exiting at once their
         * lines interleave, so only that is taken as a leak */
        int opened_here = end != NULL && memmem(next, (size_t)(end - next), " at 0x", 6) != NULL;
        CHECK_MSG(!opened_here, "descriptor left open at exit:\n%s", e);
    }
    CHECK_MSG(strstr(e, "definitely lost: ") == NULL || strstr(e, "definitely lost: 0 bytes") != NULL,
              "valgrind found a leak:\n%s", e);
    free(e);
}

int srv_wait_exit(struct proc *p, int timeout_ms)
{
    if (!p->exited) {
        struct pollfd pfd = {p->pidfd, POLLIN, 0};
        int r;
        while ((r = poll(&pfd, 1, timeout_ms)) == -1 && errno == EINTR)
            ;
        CHECK_MSG(r == 1, "%s did not exit within %d ms", p->k ? p->k->label : "process",
                  timeout_ms);
        CHECK_EQ(waitpid(p->pid, &p->status, 0), p->pid);
        p->exited = 1;
        pthread_join(p->reader, NULL);   /* all output collected */
    }
    check_reports(p);
    return p->status;
}

void srv_stop(struct proc *p)
{
    kill(p->pid, SIGTERM);
    int st = srv_wait_exit(p, 15000 * slow_factor());
    char *e = srv_stderr(p);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "%s ended with status %d (signal %d); stderr:\n%s", p->k ? p->k->label : "process",
              WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0, e);
    free(e);
}

void srv_free(struct proc *p)
{
    kill(-p->pid, SIGKILL);   /* the server's group: workers, children */
    if (!p->exited) {
        waitpid(p->pid, NULL, 0);
        pthread_join(p->reader, NULL);
    }
    close(p->out_fd);
    close(p->err_fd);
    close(p->pidfd);
    free(p->out);
    free(p->err);
    free(p);
}

/* ---- the client side ---- */

int tc_try_connect(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == -1) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    struct timeval tv = {.tv_sec = 20 * slow_factor(), .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

void tc_connect_n(struct proc *p, int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        char line[64];
        fds[i] = tc_connect(p->port);
        snprintf(line, sizeof line, "client %d connected", i + 1);
        srv_expect(p, line, 1);
    }
}

int tc_connect(unsigned port)
{
    int fd = tc_try_connect(port);
    CHECK_MSG(fd >= 0, "connect 127.0.0.1:%u: %s", port, strerror(errno));
    return fd;
}

void tc_send(int fd, const void *p, size_t n)
{
    CHECK_MSG(io_write_all(fd, p, n) == (ssize_t)n, "send: %s", strerror(errno));
}

void tc_send_str(int fd, const char *s)
{
    tc_send(fd, s, strlen(s));
}

void tc_recv_str(int fd, const char *want)
{
    size_t n = strlen(want);
    char *buf = malloc(n + 1);
    CHECK(buf != NULL);
    size_t got = tc_recv(fd, buf, n);
    buf[got] = '\0';
    CHECK_STR(buf, want);
    free(buf);
}

size_t tc_recv(int fd, void *buf, size_t n)
{
    ssize_t r = io_read_all(fd, buf, n);
    CHECK_MSG(r >= 0, "recv: %s", strerror(errno));
    return (size_t)r;
}

void tc_expect_closed(int fd, int ms)
{
    CHECK_MSG(tc_wait_close(fd, ms * slow_factor(), NULL) == 1, "server kept the connection open");
}

void tc_expect_quiet(int fd, int ms)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    CHECK_MSG(poll(&pfd, 1, ms) == 0, "unexpected data or close");
}

int tc_wait_close(int fd, int timeout_ms, size_t *extra)
{
    int64_t deadline = sys_now_ms() + timeout_ms;
    char buf[65536];
    for (;;) {
        int64_t left = deadline - sys_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            return 1;
        if (r > 0 && extra != NULL)
            *extra += (size_t)r;
    }
}

void tc_echo(int fd, const void *data, size_t n)
{
    const char *p = data;
    char *back = malloc(n > 0 ? n : 1);
    CHECK(back != NULL);
    size_t sent = 0, got = 0;
    int64_t deadline = sys_now_ms() + 60000;
    while (got < n) {
        CHECK_MSG(sys_now_ms() < deadline, "echo of %zu bytes stalled at %zu", n, got);
        struct pollfd pfd = {fd, (short)(POLLIN | (sent < n ? POLLOUT : 0)), 0};
        if (poll(&pfd, 1, 1000) <= 0)
            continue;
        if (pfd.revents & POLLOUT) {
            ssize_t w = send(fd, p + sent, n - sent > 65536 ? 65536 : n - sent, MSG_DONTWAIT);
            CHECK_MSG(w >= 0 || errno == EAGAIN, "send: %s", strerror(errno));
            sent += w > 0 ? (size_t)w : 0;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(fd, back + got, n - got, MSG_DONTWAIT);
            CHECK_MSG(r != 0, "EOF after %zu of %zu echoed bytes", got, n);
            CHECK_MSG(r > 0 || errno == EAGAIN, "recv: %s", strerror(errno));
            got += r > 0 ? (size_t)r : 0;
        }
    }
    CHECK_MSG(memcmp(back, data, n) == 0, "echo of %zu bytes differs", n);
    free(back);
}

/* ---- commands ---- */

int have_program(const char *name)
{
    const char *path = getenv("PATH");
    if (path == NULL)
        return 0;
    char *copy = strdup(path), *save = NULL;
    int found = 0;
    for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char full[1024];
        snprintf(full, sizeof full, "%s/%s", d, name);
        found = access(full, X_OK) == 0;
    }
    free(copy);
    return found;
}

int run_cmd(const char *const *argv, const char *in_path, const char *out_path,
            char *err, size_t errlen, int timeout_ms)
{
    const char *err_path = tmp_path("cmd.stderr");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, in_path ? in_path : "/dev/null",
                                     O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path ? out_path : "/dev/null",
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)(uintptr_t)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    CHECK_MSG(rc == 0, "spawn %s: %s", argv[0], strerror(rc));
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    CHECK(pidfd >= 0);
    struct pollfd pfd = {pidfd, POLLIN, 0};
    int r;
    while ((r = poll(&pfd, 1, timeout_ms)) == -1 && errno == EINTR)
        ;
    if (r != 1)
        kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    close(pidfd);
    if (err != NULL) {
        int fd = open(err_path, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, err, errlen - 1) : 0;
        err[n > 0 ? n : 0] = '\0';
        if (fd >= 0)
            close(fd);
    }
    CHECK_MSG(r == 1, "%s did not finish within %d ms", argv[0], timeout_ms);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- /proc ---- */

int proc_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/fd", (long)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static long status_field(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, field, fl) == 0)
            v = strtol(line + fl, NULL, 10);
    fclose(f);
    return v;
}

int proc_threads(pid_t pid)
{
    return (int)status_field(pid, "Threads:");
}

long proc_rss_kb(pid_t pid)
{
    return status_field(pid, "VmRSS:");
}

/* The children of pid (of all its threads): up to max into out; the
 * count found. */
int children_of(pid_t pid, pid_t *out, int max)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%ld/task", (long)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char cpath[400];
        snprintf(cpath, sizeof cpath, "/proc/%ld/task/%s/children", (long)pid, e->d_name);
        FILE *f = fopen(cpath, "r");
        long child;
        while (f != NULL && fscanf(f, "%ld", &child) == 1) {
            if (n < max)
                out[n] = (pid_t)child;
            n++;
        }
        if (f != NULL)
            fclose(f);
    }
    closedir(d);
    return n;
}

int is_zombie(pid_t pid)
{
    char path[64], stat[256] = "";
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    int z = 0;
    if (f != NULL && fgets(stat, sizeof stat, f) != NULL) {
        const char *rp = strrchr(stat, ')');
        z = rp != NULL && rp[1] == ' ' && rp[2] == 'Z';
    }
    if (f != NULL)
        fclose(f);
    return z;
}

#define MAX_KIDS 4096

int proc_children(pid_t pid, int *zombies)
{
    static pid_t kids[MAX_KIDS];
    int n = children_of(pid, kids, MAX_KIDS);
    if (zombies != NULL) {
        *zombies = 0;
        for (int i = 0; i < n && i < MAX_KIDS; i++)
            *zombies += is_zombie(kids[i]);
    }
    return n;
}

long proc_tree_rss_kb(pid_t pid)
{
    static pid_t kids[MAX_KIDS];
    long kb = proc_rss_kb(pid);
    int n = children_of(pid, kids, MAX_KIDS);
    for (int i = 0; i < n && i < MAX_KIDS; i++)
        kb += proc_rss_kb(kids[i]);
    return kb;
}

/* ---- data ---- */

void fill_pattern(void *p, size_t n, unsigned seed)
{
    unsigned char *b = p;
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (unsigned char)x;
    }
}

const char *make_file(const char *name, size_t n, unsigned seed)
{
    const char *path = tmp_path(name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    char *buf = malloc(1 << 20);
    CHECK(buf != NULL);
    for (size_t off = 0; off < n; off += 1 << 20) {
        size_t k = n - off < (1 << 20) ? n - off : (1 << 20);
        fill_pattern(buf, k, seed + (unsigned)(off >> 20));
        CHECK(io_write_all(fd, buf, k) == (ssize_t)k);
    }
    free(buf);
    close(fd);
    return path;
}

int same_file(const char *a, const char *b)
{
    int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
    int same = fa >= 0 && fb >= 0;
    char *x = malloc(1 << 16), *y = malloc(1 << 16);
    while (same) {
        ssize_t ra = io_read_all(fa, x, 1 << 16), rb = io_read_all(fb, y, 1 << 16);
        if (ra != rb || ra < 0 || memcmp(x, y, (size_t)ra) != 0)
            same = 0;
        if (ra <= 0)
            break;
    }
    free(x);
    free(y);
    if (fa >= 0)
        close(fa);
    if (fb >= 0)
        close(fb);
    return same;
}
