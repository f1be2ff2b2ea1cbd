# table.awk: the bench CSV as one markdown table, rows = scenario x server
# (the median round of each cell), then what the columns mean and why any
# cell failed.  Needs lib.awk first.

BEGIN { FS = ","; ncol = 8; rows = 0; nnotes = 0 }
NR == 1 {
    header()
    split("scenario|server|msgs/s|MB/s|p99 µs|CPU µs|peak RSS|procs/threads", head, "|")
    next
}
{
    sc = get("scenario"); st = get("status"); r = ++rows
    cell[r, 1] = (sc != last) ? sc : ""; last = sc
    cell[r, 2] = label(get("server"))
    if (st == "ok") {
        cell[r, 3] = rate(get("rate_per_s")); cell[r, 4] = mb(get("mb_per_s"))
        cell[r, 5] = int_or_dash(get("p99_us"))
        cell[r, 6] = cpu(get("cpu_us")) ((get("per") != "msg" && get("cpu_us") != "") ? "/" get("per") : "")
        cell[r, 7] = kib(get("peak_rss_kib")); cell[r, 8] = int_or_dash(get("procs_threads"))
    } else {
        cell[r, 3] = (st == "failed") ? "FAILED" : get("note")    # "...: not run"
        for (c = 4; c <= ncol; c++) cell[r, c] = "-"
        if (st == "failed") notes[++nnotes] = "FAILED " cell[r, 2] " " sc ": " get("note")
    }
}
# display width: µ is two bytes in mawk
function width(s) { gsub(/µ/, "u", s); return length(s) }
function pad(s, w, right,   n) {
    n = w - width(s)
    while (n-- > 0) s = right ? " " s : s " "
    return s
}
function line(r,   c, out, s) {
    out = "|"
    for (c = 1; c <= ncol; c++) {
        s = (r == 0) ? head[c] : cell[r, c]
        out = out " " pad(s, w[c], c > 2) " |"
    }
    print out
}
END {
    for (c = 1; c <= ncol; c++) {
        w[c] = width(head[c])
        for (r = 1; r <= rows; r++) if (width(cell[r, c]) > w[c]) w[c] = width(cell[r, c])
    }
    line(0)
    out = "|"
    for (c = 1; c <= ncol; c++) {
        s = ""; for (i = 0; i < w[c]; i++) s = s "-"
        out = out (c > 2 ? " " substr(s, 2) ": |" : " " s " |")
    }
    print out
    for (r = 1; r <= rows; r++) line(r)
    print ""
    print "msgs/s: verified round trips per second (churn: connections per second);"
    print "MB/s: echoed payload, 10^6 bytes/s one way; p99: round-trip latency;"
    print "CPU µs: the server's CPU time (user + system, every thread and child) in the"
    print "measured window per message (/conn: per connection; /MB: per MB echoed);"
    print "peak RSS: VmHWM, or for the process models the peak of PSS summed over the"
    print "parent and its children; procs/threads: peak threads + children."
    print "1x64, 50x64, 500x64: connections x 64-byte messages; -1cpu: the same with"
    print "server and echo_bench on one CPU; 50x4k: 50 x 4 KiB; stream: one connection"
    print "streaming; churn: a new connection per message, 4 at a time.  Pools"
    print "(--prefork N, --pool N): N = 8 at 1x64, stream and churn, 64 at 50x64 and"
    print "50x4k; not run at 500x64 (a pool of 64 leaves 436 clients in the backlog)."
    for (i = 1; i <= nnotes; i++) { if (i == 1) print ""; print "- " notes[i] }
}
