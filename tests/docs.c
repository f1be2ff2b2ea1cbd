/* docs: documentation that cannot rot.
 *
 * - Every README block marked <!-- runnable: SERVER ARGS --> is run with
 *   bash against a fresh SERVER (started with ARGS on a free port, which
 *   replaces 7878 in the block); each line of the ```text block after it
 *   must be a line of what it printed.
 * - Every option in each binary's --help appears in its man page and in
 *   the README's option table for it. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"
#include "tests/test.h"

#define MS(x) ((x) * slow_factor())

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(m);
    fclose(f);
    return buf;
}

/* The fenced block starting at the next "```" after p: its body (copied)
 * and where the text after it starts. */
static char *fenced(const char *p, const char **after)
{
    const char *open = strstr(p, "```");
    const char *body = open != NULL ? strchr(open, '\n') : NULL;
    const char *close = body != NULL ? strstr(body + 1, "\n```") : NULL;
    CHECK_MSG(close != NULL, "unterminated code block in README.md");
    *after = close + 4;
    return strndup(body + 1, (size_t)(close - body));
}

/* Replace every "7878" in s by port. */
static char *with_port(const char *s, const char *port)
{
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    for (const char *p = s; *p != '\0';) {
        if (strncmp(p, "7878", 4) == 0) {
            fputs(port, m);
            p += 4;
        } else {
            fputc(*p++, m);
        }
    }
    fclose(m);
    return out;
}

static const struct kind *kind_named(const char *bin)
{
    for (size_t i = 0; i < nkinds; i++)
        if (strcmp(kinds[i].bin, bin) == 0 && kind_is_plain(&kinds[i]))
            return &kinds[i];   /* select_server: the poll backend, its default */
    test_fail(__FILE__, __LINE__, "README names an unknown server '%s'", bin);
}

/* Run one runnable block; fail unless every expected line was printed. */
static void run_block(const char *marker, const char *script, const char *expected)
{
    char spec[256];
    const char *end = strstr(marker, "-->");
    snprintf(spec, sizeof spec, "%.*s", (int)(end - marker), marker);
    const char *args[16];
    int n = 0;
    char *save = NULL, *bin = strtok_r(spec, " ", &save);
    for (char *a; n < 15 && (a = strtok_r(NULL, " ", &save)) != NULL;)
        args[n++] = a;
    args[n] = NULL;
    struct proc *p = srv_startv(kind_named(bin), NULL, args);
    char *text = with_port(script, p->portstr);
    const char *path = tmp_path("block.sh"), *out = tmp_path("block.out");
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
    char err[2048];
    const char *argv[] = {"bash", "-e", "-o", "pipefail", path, NULL};
    int rc = run_cmd(argv, NULL, out, err, sizeof err, MS(60000));
    char *printed = slurp(out);
    CHECK_MSG(rc == 0, "README block exited %d:\n%s\nstdout:\n%s\nstderr:\n%s", rc, text,
              printed, err);
    /* each expected line is a line of the output */
    char *exp = strdup(expected), *s2 = NULL;
    for (char *line = strtok_r(exp, "\n", &s2); line != NULL; line = strtok_r(NULL, "\n", &s2)) {
        int found = 0;
        char *copy = strdup(printed), *s3 = NULL;
        for (char *o = strtok_r(copy, "\n", &s3); o != NULL && !found; o = strtok_r(NULL, "\n", &s3))
            found = fnmatch(line, o, FNM_NOESCAPE) == 0;
        free(copy);
        CHECK_MSG(found, "README block:\n%s\ndid not print \"%s\"; it printed:\n%s", text, line,
                  printed);
    }
    free(exp);
    free(printed);
    free(text);
    srv_stop(p);
    srv_free(p);
}

/* The optional tool (nc, socat) a block runs that this machine lacks, or
 * NULL: such a block is skipped, not failed (make test needs only a C
 * compiler and make). */
static const char *missing_tool(const char *script)
{
    static const char *const optional[] = {"nc", "socat"};
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
        size_t len = strlen(optional[i]);
        for (const char *at = script; (at = strstr(at, optional[i])) != NULL; at += len) {
            int starts = at == script || at[-1] == '\n' || at[-1] == ' ' || at[-1] == '|';
            if (starts && at[len] == ' ' && !have_program(optional[i]))
                return optional[i];
        }
    }
    return NULL;
}

static void t_readme_runs(const void *arg)
{
    (void)arg;
    char *readme = slurp("README.md");
    int blocks = 0, skipped = 0;
    const char *lacking = NULL;
    for (const char *p = readme; (p = strstr(p, "<!-- runnable: ")) != NULL;) {
        const char *marker = p + strlen("<!-- runnable: "), *after;
        char *script = fenced(marker, &after);
        char *expected = strdup("");
        const char *next = after;
        while (*next == '\n')
            next++;
        if (strncmp(next, "```text", 7) == 0) {
            free(expected);
            expected = fenced(next, &after);
        }
        const char *tool = missing_tool(script);
        if (tool != NULL) {
            lacking = tool;
            skipped++;
        } else {
            run_block(marker, script, expected);
            blocks++;
        }
        free(script);
        free(expected);
        p = after;
    }
    test_log("%d runnable README blocks ran as written", blocks);
    CHECK_INT(blocks + skipped, >=, 4);
    free(readme);
    if (skipped > 0)
        test_skip("ran %d README blocks; %d need %s, which is not installed", blocks, skipped,
                  lacking);
}

/* ---- options ---- */

/* The options in text: "--word" and "-x" tokens that start an option
 * line of --help (its first 24 columns). */
static int help_options(const char *help, char opts[][32], int max)
{
    int n = 0;
    char *copy = strdup(help), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "  -", 3) != 0 && strncmp(line, "      --", 8) != 0)
            continue;
        for (char *t = line; *t != '\0' && t - line < 24 && n < max; t++) {
            if (*t != '-' || (t > line && t[-1] != ' ' && t[-1] != '-'))
                continue;
            size_t len = strspn(t, "-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
            if (len >= 2 && len < 32 && t[len - 1] != '-') {
                snprintf(opts[n++], 32, "%.*s", (int)len, t);
                t += len - 1;
            }
        }
    }
    free(copy);
    return n;
}

/* The README table lines ("|...") after <!-- options: NAME -->. */
static char *readme_table(const char *readme, const char *name)
{
    char marker[64];
    snprintf(marker, sizeof marker, "<!-- options: %s -->", name);
    const char *p = strstr(readme, marker);
    CHECK_MSG(p != NULL, "README.md has no %s", marker);
    p = strchr(p, '\n') + 1;
    const char *end = p;
    while (*end == '|') {
        const char *nl = strchr(end, '\n');
        end = nl != NULL ? nl + 1 : end + strlen(end);
    }
    return strndup(p, (size_t)(end - p));
}

/* Man pages write "-" as "\-": drop the backslashes. */
static char *man_text(const char *bin)
{
    char path[64];
    snprintf(path, sizeof path, "man/%s.1", bin);
    char *s = slurp(path), *w = s;
    for (const char *r = s; *r != '\0'; r++)
        if (*r != '\\')
            *w++ = *r;
    *w = '\0';
    return s;
}

static void t_options_documented(const void *arg)
{
    (void)arg;
    static const char *const bins[][2] = {
        {"fork_server", "servers"}, {"thread_server", "servers"}, {"select_server", "servers"},
        {"echo_client", "echo_client"}, {"echo_bench", "echo_bench"},
    };
    char *readme = slurp("README.md");
    for (size_t b = 0; b < sizeof bins / sizeof bins[0]; b++) {
        char path[256];
        const char *out = tmp_path("help.txt");
        const char *argv[] = {bin_path(bins[b][0], path, sizeof path), "--help", NULL};
        CHECK_EQ(run_cmd(argv, NULL, out, NULL, 0, 5000), 0);
        char *help = slurp(out), *man = man_text(bins[b][0]);
        char *table = readme_table(readme, bins[b][1]);
        char opts[64][32];
        int n = help_options(help, opts, 64);
        CHECK_MSG(n >= 4, "found only %d options in %s --help", n, bins[b][0]);
        for (int i = 0; i < n; i++) {
            CHECK_MSG(strstr(man, opts[i]) != NULL, "%s: %s is in --help, not in man/%s.1",
                      bins[b][0], opts[i], bins[b][0]);
            CHECK_MSG(strstr(table, opts[i]) != NULL,
                      "%s: %s is in --help, not in the README's option table", bins[b][0],
                      opts[i]);
        }
        test_log("%s: %d options in --help, the man page and the README", bins[b][0], n);
        free(help);
        free(man);
        free(table);
    }
    free(readme);
}

void docs_tests(void)
{
    test_add("docs: README's runnable examples print what it says", t_readme_runs, NULL,
             120 * slow_factor(), 0);
    test_add("docs: every --help option is in the man page and the README",
             t_options_documented, NULL, 30, 0);
}
