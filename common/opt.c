/* opt: getopt_long over SPEC.md's option table, with range checks. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/opt.h"

enum { OPT_MAX_FRAME = 256, OPT_DRAIN, OPT_OWN = 512, OWN_MAX = 8 };

static const struct option common_longopts[] = {
    {"bind", required_argument, NULL, 'b'},
    {"port", required_argument, NULL, 'p'},
    {"mode", required_argument, NULL, 'm'},
    {"max-clients", required_argument, NULL, 'c'},
    {"idle-timeout", required_argument, NULL, 't'},
    {"access-log", required_argument, NULL, 'l'},
    {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
    {"drain", required_argument, NULL, OPT_DRAIN},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
};
#define NCOMMON (sizeof common_longopts / sizeof common_longopts[0])

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
    for (size_t i = 0; i < NCOMMON; i++)
        if (common_longopts[i].val == val)
            return common_longopts[i].name;
    return "?";
}

int opt_range(const char *name, const char *arg, unsigned long long min,
              unsigned long long max, unsigned long long *out, char *err, size_t errlen)
{
    if (opt_number(arg, min, max, out) == 0)
        return 0;
    snprintf(err, errlen, "invalid --%s '%s' (expected %llu-%llu)", name, arg, min, max);
    return -1;
}

static int number_arg(int val, const char *arg, unsigned long long min,
                      unsigned long long max, unsigned long long *out,
                      char *err, size_t errlen)
{
    return opt_range(opt_name(val), arg, min, max, out, err, errlen);
}

/* "a, b or c" into out. */
static void list_names(const char *const *names, size_t n, char *out, size_t outlen)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && len < outlen; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        int w = snprintf(out + len, outlen - len, "%s%s", sep, names[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

int opt_choice(const char *name, const char *arg, const char *const *names,
               char *err, size_t errlen)
{
    size_t n = 0;
    for (; names[n] != NULL; n++)
        if (strcmp(arg, names[n]) == 0)
            return (int)n;
    char list[160];
    list_names(names, n, list, sizeof list);
    snprintf(err, errlen, "invalid --%s '%s' (expected %s)", name, arg, list);
    return -1;
}

/* The modes m offers, as "echo, line or framed". */
static void mode_list(unsigned modes, char *out, size_t outlen)
{
    const char *names[4];
    size_t n = 0;
    for (size_t i = 0; i < 4; i++)
        if (modes & OPT_MODE(i))
            names[n++] = mode_names[i];
    list_names(names, n, out, outlen);
}

/* Any mode parses (the main explains one it does not offer); an unknown
 * name lists the ones this server offers. */
static int set_mode(struct opts *o, unsigned modes, const char *arg, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++) {
        if (strcmp(arg, mode_names[i]) == 0) {
            o->mode = (enum mode)i;
            return 0;
        }
    }
    char list[64];
    mode_list(modes, list, sizeof list);
    snprintf(err, errlen, "invalid --mode '%s' (expected %s)", arg, list);
    return -1;
}

/* A byte count with an optional K, M or G (1024-based) suffix. */
static int bytes_arg(int val, const char *arg, unsigned long long min,
                     unsigned long long max, unsigned long long *out,
                     char *err, size_t errlen)
{
    char digits[32];
    size_t len = strlen(arg);
    unsigned shift = 0;
    if (len > 1 && len < sizeof digits) {
        const char *suffixes = "KkMmGg";
        const char *hit = strchr(suffixes, arg[len - 1]);
        if (hit != NULL && arg[len - 1] != '\0')
            shift = 10 * (unsigned)(1 + (hit - suffixes) / 2);
    }
    memcpy(digits, arg, shift > 0 ? len - 1 : 0);
    digits[shift > 0 ? len - 1 : 0] = '\0';
    unsigned long long v;
    if (shift > 0 && opt_number(digits, 0, max >> shift, &v) == 0 &&
        (v << shift) >= min) {
        *out = v << shift;
        return 0;
    }
    if (shift == 0 && opt_number(arg, min, max, out) == 0)
        return 0;
    snprintf(err, errlen, "invalid --%s '%s' (expected %llu-%llu; K, M, G suffixes allowed)",
             opt_name(val), arg, min, max);
    return -1;
}

/* One option; returns 0, or -1 with err set. */
static int apply(struct opts *o, const struct opt_model *m, int c, const char *arg,
                 char *err, size_t errlen)
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
        return set_mode(o, m->modes, arg, err, errlen);
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
        if (bytes_arg(c, arg, 1, 1u << 30, &v, err, errlen) == -1)
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
    default:
        if (c >= OPT_OWN && m->own != NULL) {
            const struct opt_own *own = &m->own[c - OPT_OWN];
            if (own->set != NULL)
                return own->set(o, arg, err, errlen);
            if (opt_range(own->name, arg, own->min, own->max, &v, err, errlen) == -1)
                return -1;
            unsigned u = (unsigned)v;
            memcpy((char *)o + own->field, &u, sizeof u);
            return 0;
        }
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

enum opt_result opt_parse(int argc, char **argv, const struct opt_model *m,
                          struct opts *o, char *err, size_t errlen)
{
    *o = (struct opts){
        .bind = "0.0.0.0", .port = "7878", .mode = MODE_ECHO,
        .max_clients = 1024, .idle_timeout = 0, .access_log = NULL,
        .max_frame = 1048576, .drain = 5, .quiet = 0,
        .backend = NULL, .workers = 1, .prefork = 0, .pool = 0,
    };
    struct option longopts[NCOMMON + OWN_MAX + 1];
    memcpy(longopts, common_longopts, sizeof common_longopts);
    size_t n = NCOMMON;
    for (size_t i = 0; m->own != NULL && m->own[i].name != NULL && i < OWN_MAX; i++)
        longopts[n++] = (struct option){m->own[i].name, required_argument, NULL,
                                        OPT_OWN + (int)i};
    longopts[n] = (struct option){NULL, 0, NULL, 0};
#ifdef __GLIBC__
    optind = 0; /* glibc: full re-initialisation */
#else
    optind = 1;
#endif
    opterr = 0;
    int c, prev_optind = optind > 0 ? optind : 1;
    while ((c = getopt_long(argc, argv, ":b:p:m:c:t:l:qhV", longopts, NULL)) != -1) {
        if (c == '?' || c == ':') {
            opt_getopt_error(c, argv, prev_optind, err, errlen);
            return OPT_ERROR;
        }
        if (c == 'h')
            return OPT_HELP;
        if (c == 'V')
            return OPT_VERSION;
        if (apply(o, m, c, optarg, err, errlen) == -1)
            return OPT_ERROR;
        prev_optind = optind;
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
        return OPT_ERROR;
    }
    if (m->check != NULL && m->check(o, err, errlen) == -1)
        return OPT_ERROR;
    return OPT_RUN;
}

void opt_usage(FILE *out, const struct opt_model *m)
{
    char modes[64];
    mode_list(m->modes, modes, sizeof modes);
    fprintf(out,
        "usage: %s [options]\n"
        "\n"
        "  -b, --bind ADDR         address to listen on: IPv4, IPv6 or host name\n"
        "                          (default 0.0.0.0; :: listens on IPv6)\n"
        "  -p, --port PORT         TCP port, 0 for any free port (default 7878)\n"
        "  -m, --mode MODE         %s (default echo)\n"
        "  -c, --max-clients N     concurrent clients; one more is refused (default 1024)\n"
        "  -t, --idle-timeout SEC  close a client idle this long, 0 = never (default 0)\n"
        "  -l, --access-log FILE   append one line per finished client\n"
        "      --max-frame BYTES   largest framed message and longest line; K, M, G\n"
        "                          suffixes (default 1048576 = 1M)\n"
        "      --drain SEC         on SIGINT/SIGTERM/SIGHUP, how long clients may finish;\n"
        "                          a second Ctrl-C stops at once (default 5)\n"
        "  -q, --quiet             no per-client status lines\n",
        m->prog, modes);
    for (size_t i = 0; m->own != NULL && m->own[i].name != NULL; i++)
        fputs(m->own[i].help, out);
    fprintf(out,
        "  -h, --help              show this help and exit\n"
        "  -V, --version           show the version and exit\n");
    if (m->about != NULL)
        fprintf(out, "\n%s", m->about);
}
