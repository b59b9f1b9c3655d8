#!/bin/sh
# Steady-window means of a `callsbench run` results directory (series.csv): sessions, SFU CPU
# cores, packets per second the receivers expected (≈ forwarded), µs of SFU CPU per expected
# packet, SFU RSS and RSS per session, loss, harness CPU.
# usage: reports/perf/steady.sh RESULTS_DIR
awk -F, 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next}
$c["phase"]=="steady"{n++;cpu+=$c["server_cpu_cores"];rss+=$c["server_rss_bytes"];s+=$c["sessions"];lost+=$c["lost"];ex+=$c["expected"];h+=$c["harness_cpu_cores"]}
END{if(n==0){print "no steady rows";exit 1}
printf "rows=%d sessions=%.0f sfu_cpu=%.3f cores expected/s=%.0f us/expected=%.2f rss=%.1f MB (%.0f KB/session) loss=%.2f%% harness_cpu=%.2f\n",
n,s/n,cpu/n,ex/n,cpu/n*1e6/(ex/n),rss/n/1e6,rss/n/1e3/(s/n),(ex>0?lost*100/ex:0),h/n}' "$1/series.csv"
