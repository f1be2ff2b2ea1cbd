/* opt: getopt_long over SPEC.md's option table, with range checks. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/opt.h"

enum { OPT_MAX_FRAME = 256, OPT_DRAIN, OPT_BACKEND, OPT_WORKERS, OPT_POOL };

static const struct option longopts[] = {
    {"bind", required_argument, NULL, 'b'},
    {"port", required_argument, NULL, 'p'},
    {"mode", required_argument, NULL, 'm'},
    {"max-clients", required_argument, NULL, 'c'},
    {"idle-timeout", required_argument, NULL, 't'},
    {"access-log", required_argument, NULL, 'l'},
    {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
    {"drain", required_argument, NULL, OPT_DRAIN},
    {"quiet", no_argument, NULL, 'q'},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"pool", required_argument, NULL, OPT_POOL},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static const char *const mode_names[] = {"echo", "line", "framed", "chat"};

const char *opt_mode_name(enum mode m)
{
    return mode_names[m];
}

int opt_number(const char *s, unsigned long long min, unsigned long long max,
               unsigned long long *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* The name a user typed for option val, for messages: "--port". */
static const char *opt_name(int val)
{
    for (const struct option *lo = longopts; lo->name != NULL; lo++)
        if (lo->val == val)
            return lo->name;
    return "?";
}

static int number_arg(int val, const char *arg, unsigned long long min,
                      unsigned long long max, unsigned long long *out,
                      char *err, size_t errlen)
{
    if (opt_number(arg, min, max, out) == 0)
        return 0;
    snprintf(err, errlen, "invalid --%s '%s' (expected %llu-%llu)",
             opt_name(val), arg, min, max);
    return -1;
}

static int set_mode(struct opts *o, const char *arg, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++) {
        if (strcmp(arg, mode_names[i]) == 0) {
            o->mode = (enum mode)i;
            return 0;
        }
    }
    snprintf(err, errlen, "invalid --mode '%s' (expected echo, line, framed or chat)", arg);
    return -1;
}

/* One option; returns 0, or -1 with err set. */
static int apply(struct opts *o, int c, const char *arg, char *err, size_t errlen)
{
    unsigned long long v;
    switch (c) {
    case 'b':
        if (*arg == '\0') {
            snprintf(err, errlen, "invalid --bind '' (expected an address or host name)");
            return -1;
        }
        o->bind = arg;
        return 0;
    case 'p':
        if (number_arg(c, arg, 0, 65535, &v, err, errlen) == -1)
            return -1;
        o->port = arg;
        return 0;
    case 'm':
        return set_mode(o, arg, err, errlen);
    case 'c':
        if (number_arg(c, arg, 1, 1000000, &v, err, errlen) == -1)
            return -1;
        o->max_clients = (unsigned long)v;
        return 0;
    case 't':
        if (number_arg(c, arg, 0, 1000000, &v, err, errlen) == -1)
            return -1;
        o->idle_timeout = (unsigned)v;
        return 0;
    case 'l':
        o->access_log = arg;
        return 0;
    case OPT_MAX_FRAME:
        if (number_arg(c, arg, 1, 1u << 30, &v, err, errlen) == -1)
            return -1;
        o->max_frame = (uint32_t)v;
        return 0;
    case OPT_DRAIN:
        if (number_arg(c, arg, 0, 3600, &v, err, errlen) == -1)
            return -1;
        o->drain = (unsigned)v;
        return 0;
    case 'q':
        o->quiet = 1;
        return 0;
    case OPT_BACKEND:
        if (strcmp(arg, "poll") != 0 && strcmp(arg, "select") != 0 &&
            strcmp(arg, "epoll") != 0) {
            snprintf(err, errlen, "invalid --backend '%s' (expected poll, select or epoll)", arg);
            return -1;
        }
#ifndef __linux__
        if (strcmp(arg, "epoll") == 0) {
            snprintf(err, errlen, "invalid --backend 'epoll' (Linux only; use poll or select)");
            return -1;
        }
#endif
        o->backend = arg;
        return 0;
    case OPT_WORKERS:
        if (number_arg(c, arg, 1, 64, &v, err, errlen) == -1)
            return -1;
        o->workers = (unsigned)v;
        return 0;
    case OPT_POOL:
        if (number_arg(c, arg, 1, 4096, &v, err, errlen) == -1)
            return -1;
        o->pool = (unsigned)v;
        return 0;
    default:
        snprintf(err, errlen, "unhandled option");
        return -1;
    }
}

void opt_getopt_error(int c, char **argv, int prev_optind, char *err, size_t errlen)
{
    const char *typed = argv[optind - 1];
    int is_long = optind != prev_optind && strncmp(typed, "--", 2) == 0;
    if (c == ':' && is_long)
        snprintf(err, errlen, "option '%s' needs a value", typed);
    else if (c == ':')
        snprintf(err, errlen, "option '-%c' needs a value", optopt);
    else if (is_long || optopt == 0)
        snprintf(err, errlen, "unrecognized option '%s'", typed);
    else
        snprintf(err, errlen, "unrecognized option '-%c'", optopt);
}

enum opt_result opt_parse(int argc, char **argv, enum model model,
                          struct opts *o, char *err, size_t errlen)
{
    *o = (struct opts){
        .bind = "0.0.0.0", .port = "7878", .mode = MODE_ECHO,
        .max_clients = 1024, .idle_timeout = 0, .access_log = NULL,
        .max_frame = 1048576, .drain = 5, .quiet = 0,
        .backend = "poll", .workers = 1,
    };
#ifdef __GLIBC__
    optind = 0; /* glibc: full re-initialisation */
#else
    optind = 1;
#endif
    opterr = 0;
    int c, backend_given = 0, workers_given = 0, pool_given = 0, prev_optind = optind > 0 ? optind : 1;
    while ((c = getopt_long(argc, argv, ":b:p:m:c:t:l:qhV", longopts, NULL)) != -1) {
        if (c == '?' || c == ':') {
            opt_getopt_error(c, argv, prev_optind, err, errlen);
            return OPT_ERROR;
        }
        if (c == 'h')
            return OPT_HELP;
        if (c == 'V')
            return OPT_VERSION;
        backend_given |= c == OPT_BACKEND;
        workers_given |= c == OPT_WORKERS;
        pool_given |= c == OPT_POOL;
        if (apply(o, c, optarg, err, errlen) == -1)
            return OPT_ERROR;
        prev_optind = optind;
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
        return OPT_ERROR;
    }
    if (model != MODEL_SELECT && (backend_given || workers_given)) {
        snprintf(err, errlen, "%s is a select_server option",
                 backend_given ? "--backend" : "--workers");
        return OPT_ERROR;
    }
    if (model != MODEL_THREAD && pool_given) {
        snprintf(err, errlen, "unrecognized option '--pool'");
        return OPT_ERROR;
    }
    if (model == MODEL_FORK && o->mode == MODE_CHAT) {
        snprintf(err, errlen, "--mode chat needs one shared list of clients, and "
                 "separate processes share none; use thread_server or select_server");
        return OPT_ERROR;
    }
    return OPT_RUN;
}

void opt_usage(FILE *out, const char *prog, enum model model, const char *about)
{
    fprintf(out,
        "usage: %s [options]\n"
        "\n"
        "  -b, --bind ADDR         address to listen on: IPv4, IPv6 or host name\n"
        "                          (default 0.0.0.0; :: listens on IPv6)\n"
        "  -p, --port PORT         TCP port, 0 for any free port (default 7878)\n"
        "  -m, --mode MODE         echo, line%s (default echo)\n"
        "  -c, --max-clients N     concurrent clients; one more is refused (default 1024)\n"
        "  -t, --idle-timeout SEC  close a client idle this long, 0 = never (default 0)\n"
        "  -l, --access-log FILE   append one line per finished client\n"
        "      --max-frame BYTES   largest framed message and longest line (default 1048576)\n"
        "      --drain SEC         on SIGINT/SIGTERM, how long clients may finish (default 5)\n"
        "  -q, --quiet             no per-client status lines\n",
        prog, model == MODEL_FORK ? " or framed" : ", framed or chat");
    if (model == MODEL_SELECT)
        fprintf(out,
            "      --backend NAME      event loop: poll, select or epoll (default poll)\n"
            "      --workers N         processes, each with its own event loop, sharing\n"
            "                          the port (default 1)\n");
    if (model == MODEL_THREAD)
        fprintf(out,
            "      --pool N            N threads started at start, each serving clients\n"
            "                          one after another; client N+1 waits (default off)\n");
    fprintf(out,
        "  -h, --help              show this help and exit\n"
        "  -V, --version           show the version and exit\n");
    if (about != NULL)
        fprintf(out, "\n%s", about);
}
