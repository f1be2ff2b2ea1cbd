/* opt: the command line every server shares (SPEC.md's option table). */
#ifndef ECHO_OPT_H
#define ECHO_OPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum mode { MODE_ECHO, MODE_LINE, MODE_FRAMED, MODE_CHAT };
enum model { MODEL_FORK, MODEL_THREAD, MODEL_SELECT };

struct opts {
    const char *bind;          /* "0.0.0.0" */
    const char *port;          /* digits only, "7878" */
    enum mode mode;
    unsigned long max_clients; /* 1024 */
    unsigned idle_timeout;     /* seconds, 0 = never */
    const char *access_log;    /* NULL = none */
    uint32_t max_frame;        /* 1048576 */
    unsigned drain;            /* seconds */
    int quiet;
    const char *backend;       /* select_server: "poll" */
    unsigned workers;          /* select_server: 1 */
    unsigned pool;             /* thread_server: --pool N threads, 0 = off */
};

enum opt_result { OPT_RUN, OPT_HELP, OPT_VERSION, OPT_ERROR };

/* Fill o from argv for a server of the given model.  OPT_ERROR leaves one
 * line naming the problem in err (without the program name); the caller
 * prints it and "Try 'NAME --help'." and exits 2.  Can be called again
 * (it resets getopt). */
enum opt_result opt_parse(int argc, char **argv, enum model model,
                          struct opts *o, char *err, size_t errlen);

/* The --help text: "usage: ..." and every option, then the model's own
 * notes (about, may be NULL). */
void opt_usage(FILE *out, const char *prog, enum model model, const char *about);

const char *opt_mode_name(enum mode m);

/* The one-line message for getopt_long's '?' or ':' (c), naming what was
 * typed: "option '-p' needs a value", "unrecognized option '--foo'".
 * prev_optind is optind before that getopt_long call: an error inside a
 * cluster of short options ("-qx") leaves optind where it was.  Every
 * program of the suite uses it, with opterr = 0 and ':' first in its
 * option string. */
void opt_getopt_error(int c, char **argv, int prev_optind, char *err, size_t errlen);

/* Parse a whole decimal number in [min, max]: no sign, no spaces, no
 * suffix.  0 or -1. */
int opt_number(const char *s, unsigned long long min, unsigned long long max,
               unsigned long long *out);

#endif
