# lib.awk: shared by table.awk and chart.awk (POSIX awk).
#   awk -v labels=fork:fork_server,... -f bench/lib.awk -f bench/table.awk CSV
# Columns are found by name in the header of bench/results/latest.csv.

function header(   i) {
    for (i = 1; i <= NF; i++) col[$i] = i
    init_labels()
}
function get(name) { return (name in col) ? $(col[name]) : "" }
function init_labels(   n, i, a, k) {
    n = split(labels, a, ",")
    for (i = 1; i <= n; i++) {
        k = index(a[i], ":")
        if (k) label_of[substr(a[i], 1, k - 1)] = substr(a[i], k + 1)
    }
}
function label(s) { return (s in label_of) ? label_of[s] : s }

# The key figure of a scenario: MB/s for 50x4k and stream, else msgs/s
# (connections/s for churn).
function key_col(sc) { return (sc == "stream" || sc == "50x4k") ? "mb_per_s" : "rate_per_s" }
function key_unit(sc) {
    if (key_col(sc) == "mb_per_s") return "MB/s"
    return sc == "churn" ? "conn/s" : "msgs/s"
}

# Plain numbers: 112.6k, 1.05M, 2110, 5.08, 1.8 MiB; "-" when empty.
function rate(x) {
    if (x == "") return "-"
    x += 0
    if (x >= 1e6) return sprintf("%.2fM", x / 1e6)
    if (x >= 1e3) return sprintf("%.1fk", x / 1e3)
    return sprintf("%d", x)
}
function mb(x) {
    if (x == "") return "-"
    x += 0
    if (x >= 100) return sprintf("%d", x + 0.5)
    if (x >= 10) return sprintf("%.1f", x)
    return sprintf("%.2f", x)
}
function kib(x) {
    if (x == "") return "-"
    x += 0
    if (x >= 1048576) return sprintf("%.1f GiB", x / 1048576)
    if (x >= 1024) return sprintf("%.1f MiB", x / 1024)
    return sprintf("%d KiB", x)
}
function int_or_dash(x) { return x == "" ? "-" : sprintf("%d", x) }
# CPU µs per unit: 3 significant digits
function cpu(x) {
    if (x == "") return "-"
    x += 0
    if (x >= 100) return sprintf("%d", x + 0.5)
    if (x >= 10) return sprintf("%.1f", x)
    return sprintf("%.2f", x)
}
# What a CPU figure is per: msg, conn or MB (the CSV's per column)
function cpu_unit(per) { return "µs/" per }
function fmt(what, x) {
    if (what == "rate_per_s") return rate(x)
    if (what == "cpu_us") return cpu(x)
    if (what == "mb_per_s") return mb(x)
    if (what == "peak_rss_kib") return kib(x)
    return int_or_dash(x)
}
