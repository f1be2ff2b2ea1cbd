/* opt: the command line every server shares (SPEC.md's option table),
 * plus the options each server's main declares for its own model. */
#ifndef ECHO_OPT_H
#define ECHO_OPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum mode { MODE_ECHO, MODE_LINE, MODE_FRAMED, MODE_CHAT };
#define OPT_MODE(m) (1u << (m))
#define OPT_MODES_ALL (OPT_MODE(MODE_ECHO) | OPT_MODE(MODE_LINE) | \
                       OPT_MODE(MODE_FRAMED) | OPT_MODE(MODE_CHAT))

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
    /* the models' own options: only the main that declares one sets it */
    const char *backend;       /* select_server --backend: NULL until set */
    unsigned workers;          /* select_server --workers: 1 */
    unsigned prefork;          /* fork_server --prefork: 0 = off */
    unsigned pool;             /* thread_server --pool: 0 = off */
};

/* One option of a model's own (long form only, with a value).  set
 * stores the value in o, or returns -1 with one line in err; a NULL set
 * makes it a number in [min, max] stored in the unsigned field at offset
 * field of struct opts (OPT_OWN_NUMBER). */
struct opt_own {
    const char *name;          /* "workers": typed as --workers */
    const char *help;          /* its --help lines, "      --workers N ...\n" */
    int (*set)(struct opts *o, const char *arg, char *err, size_t errlen);
    unsigned min, max;
    size_t field;
};
#define OPT_OWN_NUMBER(name, help, min, max, member) \
    {name, help, NULL, min, max, offsetof(struct opts, member)}

/* What a server's main declares about its command line. */
struct opt_model {
    const char *prog;          /* "fork_server" */
    unsigned modes;            /* OPT_MODE() bits it offers (help, messages) */
    const struct opt_own *own; /* its own options, {NULL}-terminated, or NULL */
    const char *about;         /* notes for the end of --help, or NULL */
    /* After parsing (may be NULL): fill the model's defaults, refuse
     * combinations it cannot serve (-1, one line in err: a usage error). */
    int (*check)(struct opts *o, char *err, size_t errlen);
};

enum opt_result { OPT_RUN, OPT_HELP, OPT_VERSION, OPT_ERROR };

/* Fill o from argv for the server m describes.  An option m does not
 * declare is unknown ("unrecognized option '--workers'").  OPT_ERROR
 * leaves one line naming the problem in err (without the program name);
 * the caller prints it and "Try 'NAME --help'." and exits 2.  Can be
 * called again (it resets getopt). */
enum opt_result opt_parse(int argc, char **argv, const struct opt_model *m,
                          struct opts *o, char *err, size_t errlen);

/* The --help text: "usage: ..." and every option, then m->about. */
void opt_usage(FILE *out, const struct opt_model *m);

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

/* A model's option value in [min, max], or -1 with the standard message
 * "invalid --NAME 'ARG' (expected MIN-MAX)" in err. */
int opt_range(const char *name, const char *arg, unsigned long long min,
              unsigned long long max, unsigned long long *out, char *err, size_t errlen);

/* A model's option value that must be one of names (NULL-terminated), or
 * -1 with "invalid --NAME 'ARG' (expected A, B or C)" in err. */
int opt_choice(const char *name, const char *arg, const char *const *names,
               char *err, size_t errlen);

#endif
