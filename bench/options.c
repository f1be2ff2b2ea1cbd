/* options: echo_bench's command line. */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "common/opt.h"

#define MAX_CONNS 100000UL
#define MAX_THREADS 256UL
#define MAX_MSG (16ULL << 20)
#define MAX_STREAM (1ULL << 50)
#define MAX_SECONDS 1000000ULL
#define MAX_TIMEOUT 3600ULL
#define DEFAULT_TIMEOUT_NS (5 * NS)

enum { OPT_FRAMED = 256, OPT_CHURN, OPT_STREAM, OPT_CPU, OPT_CSV, OPT_TIMEOUT, OPT_SERVER_PID };

static const struct option longopts[] = {
    {"framed", no_argument, NULL, OPT_FRAMED},
    {"churn", no_argument, NULL, OPT_CHURN},
    {"stream", required_argument, NULL, OPT_STREAM},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"server-pid", required_argument, NULL, OPT_SERVER_PID},
    {"cpu", required_argument, NULL, OPT_CPU},
    {"csv", no_argument, NULL, OPT_CSV},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void usage(void)
{
    printf("usage: " PROG " [options] HOST PORT\n"
        "\n"
        "Load generator for the echo servers: each connection sends a message,\n"
        "reads the whole echo back, checks every byte, and repeats.\n"
        "\n"
        "  -c CONNS          connections, or concurrent slots with --churn\n"
        "                    (default 1, at most 100000)\n"
        "  -s BYTES          message size, 1 B to 16 MiB, K/M suffixes allowed\n"
        "                    (default 64)\n"
        "  -d SECONDS        how long to measure, decimals allowed (default 5;\n"
        "                    with --stream: no limit unless given)\n"
        "  -t THREADS        threads, each with its own epoll set, 1-256\n"
        "                    (default: CONNS or the usable CPUs, whichever is less)\n"
        "      --framed      send each message as a frame: 4-byte big-endian length\n"
        "                    and payload (the server runs with -m framed)\n"
        "      --churn       a new connection per message: connect, send, read the\n"
        "                    echo, half-close, expect EOF; reports connections/s\n"
        "      --stream BYTES  send BYTES in total (split over the connections)\n"
        "                    while reading the echo; reports MB/s; suffixes\n"
        "                    K, M, G mean KiB, MiB, GiB\n"
        "      --timeout SECONDS  an echo (stream: the next echoed byte) later\n"
        "                    than this is an error (default 5, decimals allowed)\n"
        "      --server-pid PID  also measure that server's CPU time (its threads\n"
        "                    and child processes) over the measured window\n"
        "      --cpu N       pin the process to CPU N\n"
        "      --csv         a CSV header line and one row instead of the summary\n"
        "  -q, --quiet       no info or progress lines on stderr\n"
        "  -h, --help        show this help and exit\n"
        "  -V, --version     show the version and exit\n"
        "\n"
        "Output (latencies in microseconds; MB/s counts echoed payload, 10^6 bytes):\n"
        "  messages: msgs/s N  MB/s X  p50 US  p99 US  max US  errors N\n"
        "  --churn:  connections/s N  MB/s X  p50 US  p99 US  max US  errors N\n"
        "  --stream: MB/s X  bytes N  seconds S  errors N\n"
        "with --server-pid, then: cpu/msg US (cpu/conn, cpu/MB)  user US  sys US.\n"
        "Exit status: 0 if every echo matched, 1 on any error, 2 on usage errors.\n");
}

int bench_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char digits[32];
    size_t len = strlen(s);
    unsigned long long v, mult = 1;
    if (len == 0 || len >= sizeof digits)
        return -1;
    memcpy(digits, s, len + 1);
    switch (digits[len - 1]) {
    case 'K': case 'k': mult = 1ULL << 10; break;
    case 'M': case 'm': mult = 1ULL << 20; break;
    case 'G': case 'g': mult = 1ULL << 30; break;
    default: break;
    }
    if (mult > 1)
        digits[--len] = '\0';
    if (opt_number(digits, 0, max / mult, &v) == -1 || v * mult < min)
        return -1;
    *out = v * mult;
    return 0;
}

int bench_parse_seconds(const char *s, unsigned long long max_s, int64_t *ns)
{
    char whole[16];
    const char *dot = strchr(s, '.');
    size_t wlen = dot != NULL ? (size_t)(dot - s) : strlen(s);
    unsigned long long sec = 0;
    int64_t frac = 0, scale = NS / 10;
    if (wlen >= sizeof whole || (wlen == 0 && (dot == NULL || dot[1] == '\0')))
        return -1;
    memcpy(whole, s, wlen);
    whole[wlen] = '\0';
    if (wlen > 0 && opt_number(whole, 0, max_s, &sec) == -1)
        return -1;
    for (const char *p = dot != NULL ? dot + 1 : ""; *p != '\0'; p++, scale /= 10) {
        if (*p < '0' || *p > '9')
            return -1;
        frac += (*p - '0') * scale;
    }
    *ns = (int64_t)sec * NS + frac;
    return *ns > 0 && (sec < max_s || frac == 0) ? 0 : -1;
}

/* One option into cfg; 0, or -1 with err set. */
static int apply(struct cfg *cfg, int c, const char *arg, char *err, size_t errlen)
{
    unsigned long long v;
    switch (c) {
    case 'c':
        if (opt_number(arg, 1, MAX_CONNS, &v) == 0) {
            cfg->conns = (unsigned long)v;
            return 0;
        }
        snprintf(err, errlen, "invalid -c '%s' (expected 1-%lu)", arg, MAX_CONNS);
        return -1;
    case 's':
        if (bench_parse_size(arg, 1, MAX_MSG, &cfg->size) == 0)
            return 0;
        snprintf(err, errlen, "invalid -s '%s' (expected 1-%llu bytes, or with K/M)",
                 arg, MAX_MSG);
        return -1;
    case 'd':
        if (bench_parse_seconds(arg, MAX_SECONDS, &cfg->dur_ns) == 0)
            return 0;
        snprintf(err, errlen, "invalid -d '%s' (expected seconds > 0, e.g. 5 or 0.5)", arg);
        return -1;
    case OPT_TIMEOUT:
        if (bench_parse_seconds(arg, MAX_TIMEOUT, &cfg->timeout_ns) == 0)
            return 0;
        snprintf(err, errlen, "invalid --timeout '%s' (expected seconds > 0, at most %llu)",
                 arg, MAX_TIMEOUT);
        return -1;
    case 't':
        if (opt_number(arg, 1, MAX_THREADS, &v) == 0) {
            cfg->threads = (unsigned long)v;
            return 0;
        }
        snprintf(err, errlen, "invalid -t '%s' (expected 1-%lu)", arg, MAX_THREADS);
        return -1;
    case OPT_STREAM:
        if (bench_parse_size(arg, 1, MAX_STREAM, &cfg->stream) == 0)
            return 0;
        snprintf(err, errlen, "invalid --stream '%s' (expected bytes, e.g. 1048576, 512K, 2G)",
                 arg);
        return -1;
    case OPT_SERVER_PID:
        if (opt_number(arg, 1, 4194304, &v) == 0) {
            cfg->server_pid = (pid_t)v;
            return 0;
        }
        snprintf(err, errlen, "invalid --server-pid '%s' (expected a process id)", arg);
        return -1;
    case OPT_CPU:
        if (opt_number(arg, 0, CPU_SETSIZE - 1, &v) == 0) {
            cfg->cpu = (long)v;
            return 0;
        }
        snprintf(err, errlen, "invalid --cpu '%s' (expected 0-%d)", arg, CPU_SETSIZE - 1);
        return -1;
    case OPT_FRAMED: cfg->framed = 1; return 0;
    case OPT_CHURN: cfg->churn = 1; return 0;
    case OPT_CSV: cfg->csv = 1; return 0;
    case 'q': cfg->quiet = 1; return 0;
    default:
        snprintf(err, errlen, "unhandled option");
        return -1;
    }
}

int bench_parse_args(int argc, char **argv, struct cfg *cfg)
{
    char err[256];
    int c, prev_optind = optind;
    unsigned long long port;
    *cfg = (struct cfg){.conns = 1, .size = 64, .cpu = -1, .timeout_ns = DEFAULT_TIMEOUT_NS};
    opterr = 0;
    for (; (c = getopt_long(argc, argv, ":c:s:d:t:qhV", longopts, NULL)) != -1;
         prev_optind = optind) {
        if (c == 'h') {
            usage();
            return 0;
        }
        if (c == 'V') {
            printf(PROG " " VERSION "\n");
            return 0;
        }
        if (c == '?' || c == ':')
            opt_getopt_error(c, argv, prev_optind, err, sizeof err);
        if (c == '?' || c == ':' || apply(cfg, c, optarg, err, sizeof err) == -1)
            goto usage_error;
    }
    if (argc - optind < 2) {
        snprintf(err, sizeof err, argc == optind ? "missing HOST and PORT" : "missing PORT");
        goto usage_error;
    }
    if (argc - optind > 2) {
        snprintf(err, sizeof err, "unexpected argument '%s'", argv[optind + 2]);
        goto usage_error;
    }
    cfg->host = argv[optind];
    cfg->port = argv[optind + 1];
    if (opt_number(cfg->port, 1, 65535, &port) == -1) {
        snprintf(err, sizeof err, "invalid port '%s' (expected 1-65535)", cfg->port);
        goto usage_error;
    }
    if (cfg->stream > 0 && (cfg->churn || cfg->framed)) {
        snprintf(err, sizeof err, "--stream cannot be combined with %s",
                 cfg->churn ? "--churn" : "--framed");
        goto usage_error;
    }
    return -1;
usage_error:
    fprintf(stderr, PROG ": %s\nTry '" PROG " --help'.\n", err);
    return 2;
}
