/* run: the test runner.  `build/tests/run [-v] [-l] [-j N] [-k TEXT]...`
 *
 * Runs every registered case (those whose name contains one of the -k
 * texts, if any), each in its own process group with its own timeout,
 * up to N at a time (default: TEST_JOBS or 1).  A case's output is kept
 * and shown when it fails (always with -v).  The last line is
 * "N passed, M failed"; the exit status is 1 if anything failed. */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/opt.h"
#include "common/sys.h"
#include "tests/test.h"

#define SKIP_STATUS 77
#define MAX_JOBS 16

struct tcase {
    char *name;
    void (*fn)(const void *);
    const void *arg;
    int timeout_s, flags;
};

struct job {
    struct tcase *tc;
    pid_t pid;
    FILE *log;          /* the case's stdout and stderr */
    int64_t start, deadline;
};

static struct tcase *cases;
static size_t ncases, capcases;

void test_add(const char *name, void (*fn)(const void *), const void *arg,
              int timeout_s, int flags)
{
    if (ncases == capcases) {
        capcases = capcases ? capcases * 2 : 64;
        cases = realloc(cases, capcases * sizeof *cases);
        if (cases == NULL)
            abort();
    }
    cases[ncases++] = (struct tcase){strdup(name), fn, arg, timeout_s, flags};
}

void test_addf(void (*fn)(const void *), const void *arg, int timeout_s,
               int flags, const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    test_add(name, fn, arg, timeout_s, flags);
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "    FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(NULL);
    _exit(1);
}

void test_skip(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "    skipped: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(NULL);
    _exit(SKIP_STATUS);
}

void test_log(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "    ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int selected(const struct tcase *tc, char **keys, int nkeys, int slow)
{
    if ((tc->flags & TEST_SLOW) && !slow)
        return 0;
    if (nkeys == 0)
        return 1;
    for (int i = 0; i < nkeys; i++)
        if (strstr(tc->name, keys[i]) != NULL)
            return 1;
    return 0;
}

static void start(struct job *j, struct tcase *tc)
{
    j->tc = tc;
    j->log = tmpfile();
    if (j->log == NULL) {
        perror("tmpfile");
        exit(1);
    }
    fflush(NULL);
    j->start = sys_now_ms();
    j->deadline = j->start + (int64_t)tc->timeout_s * 1000;
    j->pid = fork();
    if (j->pid == -1) {
        perror("fork");
        exit(1);
    }
    if (j->pid == 0) {
        setpgid(0, 0);
        int fd = fileno(j->log);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        setvbuf(stdout, NULL, _IONBF, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_IGN);
        tc->fn(tc->arg);
        fflush(NULL);
        _exit(0);
    }
    setpgid(j->pid, j->pid);
}

static void show_log(FILE *log)
{
    char line[4096];
    rewind(log);
    while (fgets(line, sizeof line, log) != NULL)
        fputs(line, stdout);
}

/* Kill whatever a finished case left behind: servers run in process
 * groups of their own, and when the case's process ends they are
 * orphaned to us (we are a subreaper).  Any child of ours that is not a
 * running case is such a leftover. */
static void sweep_orphans(const struct job *running, int njobs)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", (long)getpid(), (long)getpid());
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    long pid;
    while (fscanf(f, "%ld", &pid) == 1) {
        int ours = 0;
        for (int i = 0; i < njobs; i++)
            ours |= running[i].pid == (pid_t)pid;
        if (!ours) {
            kill(-(pid_t)pid, SIGKILL);
            kill((pid_t)pid, SIGKILL);
        }
    }
    fclose(f);
}

/* Report a finished case; returns 0 pass, 1 fail, 2 skip. */
static int finish(struct job *j, int status, int timed_out, int verbose, int n)
{
    /* whatever the case left running dies with its process group */
    kill(-j->pid, SIGKILL);
    double secs = (double)(sys_now_ms() - j->start) / 1000.0;
    int rc = 1;
    const char *word = "FAIL";
    if (!timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        rc = 0;
        word = "ok  ";
    } else if (!timed_out && WIFEXITED(status) && WEXITSTATUS(status) == SKIP_STATUS) {
        rc = 2;
        word = "skip";
    }
    printf("%s %3d %s (%.2f s)", word, n, j->tc->name, secs);
    if (timed_out)
        printf(" timed out after %d s", j->tc->timeout_s);
    else if (WIFSIGNALED(status))
        printf(" killed by signal %d", WTERMSIG(status));
    printf("\n");
    if (rc != 0 || verbose)
        show_log(j->log);
    fflush(stdout);
    fclose(j->log);
    j->pid = 0;
    return rc;
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Cases keep their files under one directory, removed at the end. */
static char *make_tmpdir(void)
{
    static char dir[] = "/tmp/echo-tests-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    setenv("TEST_TMPDIR", dir, 1);
    return dir;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: run [-v] [-l] [-j JOBS] [-k TEXT]...\n"
                 "  -k TEXT  run only cases whose name contains TEXT (repeatable)\n"
                 "  -j JOBS  cases at once (default $TEST_JOBS or 1)\n"
                 "  -l       list the cases and exit\n"
                 "  -v       show every case's output\n"
                 "TEST_SLOW=1 adds the slow cases.\n");
}

int main(int argc, char **argv)
{
    char *keys[64];
    int nkeys = 0, verbose = 0, list = 0, c;
    unsigned long long jobs = 1;
    const char *env_jobs = getenv("TEST_JOBS");
    if (env_jobs != NULL && opt_number(env_jobs, 1, MAX_JOBS, &jobs) == -1)
        jobs = 1;
    while ((c = getopt(argc, argv, "vlj:k:h")) != -1) {
        if (c == 'v')
            verbose = 1;
        else if (c == 'l')
            list = 1;
        else if (c == 'j' && opt_number(optarg, 1, MAX_JOBS, &jobs) == 0)
            continue;
        else if (c == 'k' && nkeys < 64)
            keys[nkeys++] = optarg;
        else {
            usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    const char *env_slow = getenv("TEST_SLOW");
    int slow = env_slow != NULL && strcmp(env_slow, "0") != 0 && *env_slow != '\0';

    unit_tests();
    uring_tests();
    server_tests();
    client_tests();
    model_tests();
    chat_tests();
    supervise_tests();
    fault_tests();
    docs_tests();
    stall_tests();
    bench_tests();

    if (list) {
        for (size_t i = 0; i < ncases; i++)
            if (selected(&cases[i], keys, nkeys, slow))
                printf("%s%s\n", cases[i].name, cases[i].flags & TEST_SLOW ? " (slow)" : "");
        return 0;
    }
    char *tmpdir = make_tmpdir();
    /* orphans of a case (a killed server's children) come back to us */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);

    struct job running[MAX_JOBS] = {{0}};
    int passed = 0, failed = 0, skipped = 0, n = 0, busy = 0;
    size_t next = 0;
    for (;;) {
        while (busy < (int)jobs && next < ncases) {
            struct tcase *tc = &cases[next++];
            if (!selected(tc, keys, nkeys, slow))
                continue;
            for (int i = 0; i < (int)jobs; i++) {
                if (running[i].pid == 0) {
                    start(&running[i], tc);
                    busy++;
                    break;
                }
            }
        }
        if (busy == 0)
            break;
        /* wait for a child to end or the nearest deadline */
        int64_t nearest = INT64_MAX;
        for (int i = 0; i < (int)jobs; i++)
            if (running[i].pid != 0 && running[i].deadline < nearest)
                nearest = running[i].deadline;
        int64_t wait_ms = nearest - sys_now_ms();
        if (wait_ms > 0) {
            struct timespec ts = {.tv_sec = (time_t)(wait_ms / 1000),
                                  .tv_nsec = (long)(wait_ms % 1000) * 1000000};
            sigtimedwait(&chld, NULL, &ts);
        }
        pid_t pid;
        int status;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < (int)jobs; i++) {
                if (running[i].pid == pid) {
                    int rc = finish(&running[i], status, 0, verbose, ++n);
                    passed += rc == 0;
                    failed += rc == 1;
                    skipped += rc == 2;
                    busy--;
                }
            }
        }
        sweep_orphans(running, (int)jobs);
        int64_t now = sys_now_ms();
        for (int i = 0; i < (int)jobs; i++) {
            if (running[i].pid != 0 && now >= running[i].deadline) {
                pid_t p = running[i].pid;
                kill(-p, SIGKILL);
                waitpid(p, NULL, 0);
                finish(&running[i], 0, 1, verbose, ++n);
                failed++;
                busy--;
            }
        }
    }
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    if (getenv("TEST_KEEP") == NULL)
        nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    if (skipped > 0)
        printf("%d skipped\n", skipped);
    printf("%d passed, %d failed\n", passed, failed);
    for (size_t i = 0; i < ncases; i++)
        free(cases[i].name);
    free(cases);
    return failed > 0 ? 1 : 0;
}
