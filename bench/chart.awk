# chart.awk: one grouped bar chart (standalone SVG) from the bench CSV.
#   awk -v what=throughput|cpu|memory|latency -v labels=... -v subtitle=TEXT \
#       -f bench/lib.awk -f bench/chart.awk bench/results/latest.csv > X.svg
# One group per scenario, one bar per server.  Each group is scaled to its
# own largest value (that bar is 100 %) and every bar carries its value.
# throughput: the scenario's key figure; cpu: server CPU µs per message
# (connection, MB); memory: peak RSS; latency: p99.
# A scenario without the figure (no latency in stream mode) is left out.

BEGIN {
    FS = ","; nsc = 0; nsv = 0
    split("#4e79a7 #f28e2b #e15759 #59a14f #b07aa1 #edc948 #76b7b2 #ff9da7 #9c755f", color, " ")
    if (what == "cpu") {
        title = "Server CPU time per message (lower is better)"
        foot = "User + system time of the server (threads and children) in the measured window, per message; churn: per connection; stream: per MB."
    } else if (what == "memory") {
        title = "Peak server memory (lower is better)"
        foot = "Peak RSS (VmHWM) over all rounds; process models: peak PSS summed over the parent and its children."
    } else if (what == "latency") {
        title = "Round-trip latency, p99 (lower is better)"
        foot = "p99 of the median round, in microseconds."
    } else {
        what = "throughput"; title = "Throughput (higher is better)"
        foot = "The key figure of each scenario, median round: msgs/s, MB/s (10^6 B echoed) or new connections/s."
    }
}
NR == 1 { header(); next }
{
    sc = get("scenario"); sv = get("server")
    if (!(sc in seen_sc)) { seen_sc[sc] = 1; all_sc[++nall] = sc }
    if (!(sv in seen_sv)) { seen_sv[sv] = 1; svs[++nsv] = sv }
    status[sc, sv] = get("status")
    if (what == "cpu") { c = "cpu_us"; unit[sc] = cpu_unit(get("per")) }
    else if (what == "memory") { c = "peak_rss_kib"; unit[sc] = "peak RSS" }
    else if (what == "latency") { c = "p99_us"; unit[sc] = "p99 µs" }
    else { c = key_col(sc); unit[sc] = key_unit(sc) }
    v = get(c); value[sc, sv] = v; text[sc, sv] = fmt(c, v)
    if (status[sc, sv] != "ok") next
    has_ok[sc] = 1
    if (v != "") has_value[sc] = 1
    if (v != "" && v + 0 > top[sc]) top[sc] = v + 0
}
function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s); return s }
function vtext(x, y, s, attrs) {   # text reading upwards from (x, y)
    printf "<text x=\"%.1f\" y=\"%.1f\" transform=\"rotate(-90 %.1f %.1f)\" %s>%s</text>\n", x, y, x, y, attrs, esc(s)
}
END {
    for (i = 1; i <= nall; i++)
        if (!(all_sc[i] in has_ok) || (all_sc[i] in has_value)) scs[++nsc] = all_sc[i]
    bw = 26; gpad = 14; gw = nsv * bw + 2 * gpad; left = 60
    W = left + nsc * gw + 20
    if (W < left + 10 * length(title)) W = left + 10 * length(title)
    if (W < left + 6.2 * length(subtitle)) W = left + 6.2 * length(subtitle)
    if (W < left + 6.2 * length(foot)) W = left + 6.2 * length(foot)
    plot_top = 100; plot_h = 250; base = plot_top + plot_h; H = base + 80
    printf "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n", W, H, W, H
    printf "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n"
    printf "<text x=\"%d\" y=\"24\" font-size=\"16\" font-weight=\"bold\">%s</text>\n", left, esc(title)
    printf "<text x=\"%d\" y=\"42\" fill=\"#555555\">%s</text>\n", left, esc(subtitle)
    x = left                                          # legend
    for (j = 1; j <= nsv; j++) {
        printf "<rect x=\"%d\" y=\"56\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x, color[(j - 1) % 9 + 1]
        printf "<text x=\"%d\" y=\"66\">%s</text>\n", x + 16, esc(label(svs[j]))
        x += 16 + 6.5 * length(label(svs[j])) + 16
    }
    for (k = 0; k <= 4; k++) {                        # grid: % of each group's largest
        y = base - plot_h * k / 4
        printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\"/>\n", left, y, left + nsc * gw, y, k ? "#e4e4e4" : "#333333"
        printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#555555\">%d%%</text>\n", left - 6, y + 4, 25 * k
    }
    vtext(16, base - 10, "% of the largest in its group", "fill=\"#555555\"")
    for (i = 1; i <= nsc; i++) {
        sc = scs[i]; gx = left + (i - 1) * gw
        if (i % 2 == 0) printf "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#000000\" fill-opacity=\"0.03\"/>\n", gx, plot_top, gw, plot_h
        for (j = 1; j <= nsv; j++) {
            sv = svs[j]; x = gx + gpad + (j - 1) * bw
            st = status[sc, sv]; v = value[sc, sv]; t = text[sc, sv]
            if (st == "") continue
            if (st != "ok" || v == "" || top[sc] <= 0) {
                t = (st == "failed") ? "FAILED" : (st == "skipped") ? "skipped" : "n/a"
                vtext(x + bw / 2 + 4, base - 4, t, "fill=\"" (st == "failed" ? "#c00000" : "#888888") "\" font-weight=\"bold\"")
                continue
            }
            h = plot_h * v / top[sc]; if (h < 1) h = 1
            printf "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\"><title>%s</title></rect>\n", x + 2, base - h, bw - 4, h, color[(j - 1) % 9 + 1], esc(label(sv) ", " sc ": " t " " unit[sc])
            tw = 6.5 * length(t) + 8                  # the value inside a tall bar, else above it
            if (h > tw) vtext(x + bw / 2 + 4, base - h + tw - 2, t, "fill=\"#ffffff\"")
            else vtext(x + bw / 2 + 4, base - h - 4, t, "fill=\"#222222\"")
        }
        printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-weight=\"bold\">%s</text>\n", gx + gw / 2, base + 18, esc(sc)
        printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#555555\">%s</text>\n", gx + gw / 2, base + 33, esc(unit[sc])
    }
    printf "<text x=\"%d\" y=\"%d\" fill=\"#555555\">%s Each group is scaled to its largest value.</text>\n", left, H - 14, esc(foot)
    printf "</svg>\n"
}
