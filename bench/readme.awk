# readme.awk: put a bench run's summary (latest.md without its title)
# into README.md between its "<!-- bench table -->" and
# "<!-- end bench table -->" lines (make bench-reference).
#   awk -f bench/readme.awk bench/results/latest.md README.md > NEW
FNR == NR { if (FNR > 2) keep[++n] = $0; next }
/^<!-- bench table -->$/ { print; for (i = 1; i <= n; i++) print keep[i]; skip = 1; found = 1; next }
/^<!-- end bench table -->$/ { skip = 0 }
!skip { print }
END { if (!found) { print "readme.awk: no <!-- bench table --> in README.md" > "/dev/stderr"; exit 1 } }
