/* report: what echo_bench prints.  Each mode prints only what it
 * measured: messages give msgs/s and latencies, churn connections/s and
 * latencies (connect to echo), a stream MB/s; --csv names the same
 * figures in its header. */
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "common/log.h"

void bench_info_line(const struct cfg *cfg, unsigned long nw)
{
    char target[300], secs[48] = "";
    int v6 = strchr(cfg->host, ':') != NULL;
    snprintf(target, sizeof target, "%s%s%s:%s", v6 ? "[" : "", cfg->host,
             v6 ? "]" : "", cfg->port);
    if (cfg->dur_ns > 0 || cfg->stream == 0) {
        /* "5.0", "0.25": at least one decimal, no trailing zeros */
        char num[32];
        int n = snprintf(num, sizeof num, "%.6f",
                         (double)(cfg->dur_ns > 0 ? cfg->dur_ns : 5 * NS) / NS);
        while (n > 2 && num[n - 1] == '0' && num[n - 2] != '.')
            num[--n] = '\0';
        snprintf(secs, sizeof secs, " for %s%s s", cfg->stream > 0 ? "at most " : "", num);
    }
    if (cfg->stream > 0)
        log_warn("%lu conns streaming %llu B to %s%s, %lu threads", cfg->conns,
                 (unsigned long long)cfg->stream, target, secs, nw);
    else
        log_warn("%lu conns x %llu B to %s%s, %lu threads%s%s", cfg->conns,
                 (unsigned long long)cfg->size, target, secs, nw,
                 cfg->framed ? ", framed" : "", cfg->churn ? ", churn" : "");
}

static unsigned long long us(uint64_t ns)
{
    return (unsigned long long)((ns + 500) / 1000);
}

void bench_summary(const struct cfg *cfg, const struct totals *t)
{
    double secs = (double)t->elapsed / NS;
    double rate = t->elapsed > 0 ? (double)t->msgs / secs : 0.0;
    double mbs = t->elapsed > 0 ? (double)t->bytes / secs / 1e6 : 0.0;
    unsigned long long p50 = us(hist_pct(t->hist, 50)), p99 = us(hist_pct(t->hist, 99));
    unsigned long long mx = us(t->hist->max), errors = (unsigned long long)t->errors;
    /* server CPU per unit: a message, a connection, or a MB streamed */
    double units = cfg->stream > 0 ? (double)t->bytes / 1e6 : (double)t->msgs;
    double cpu = units > 0 ? (double)(t->cpu_user_us + t->cpu_sys_us) / units : 0.0;
    const char *per = cfg->stream > 0 ? "mb" : cfg->churn ? "conn" : "msg";
    const char *mode = cfg->stream > 0 ? "stream" : cfg->churn ? "churn"
                     : cfg->framed ? "framed" : "echo";
    char cpu_text[160] = "";
    if (cfg->csv) {
        if (t->have_cpu)
            snprintf(cpu_text, sizeof cpu_text, ",%llu,%llu,%.2f",
                     (unsigned long long)t->cpu_user_us, (unsigned long long)t->cpu_sys_us, cpu);
        const char *cpu_head = !t->have_cpu ? ""
            : cfg->stream > 0 ? ",server_user_us,server_sys_us,server_cpu_us_per_mb"
            : cfg->churn ? ",server_user_us,server_sys_us,server_cpu_us_per_conn"
            : ",server_user_us,server_sys_us,server_cpu_us_per_msg";
        if (cfg->stream > 0) {
            printf("mode,conns,bytes,seconds,threads,mb_per_s,errors%s\n", cpu_head);
            printf("%s,%lu,%llu,%.3f,%lu,%.2f,%llu%s\n", mode, cfg->conns,
                   (unsigned long long)t->bytes, secs, t->threads, mbs, errors, cpu_text);
        } else {
            const char *count = cfg->churn ? "conns_done,conns_per_s" : "msgs,msgs_per_s";
            printf("mode,conns,bytes,seconds,threads,%s,mb_per_s,p50_us,p99_us,max_us,errors%s\n",
                   count, cpu_head);
            printf("%s,%lu,%llu,%.3f,%lu,%llu,%.0f,%.2f,%llu,%llu,%llu,%llu%s\n", mode,
                   cfg->conns, (unsigned long long)cfg->size, secs, t->threads,
                   (unsigned long long)t->msgs, rate, mbs, p50, p99, mx, errors, cpu_text);
        }
    } else {
        if (t->have_cpu)
            snprintf(cpu_text, sizeof cpu_text, "  cpu/%s %.1f  user %llu  sys %llu",
                     cfg->stream > 0 ? "MB" : per, cpu, (unsigned long long)t->cpu_user_us,
                     (unsigned long long)t->cpu_sys_us);
        if (cfg->stream > 0)
            printf("MB/s %.2f  bytes %llu  seconds %.3f  errors %llu%s\n", mbs,
                   (unsigned long long)t->bytes, secs, errors, cpu_text);
        else
            printf("%s %.0f  MB/s %.2f  p50 %llu  p99 %llu  max %llu  errors %llu%s\n",
                   cfg->churn ? "connections/s" : "msgs/s", rate, mbs, p50, p99, mx, errors,
                   cpu_text);
    }
    fflush(stdout);
}
