#!/bin/sh
# SFU-side cost of the embedded SFU during a run: CPU (utime+stime from /proc), datagrams it sent
# (net:net_dev_xmit in its threads), its UDP syscalls; µs of CPU per datagram sent. Needs perf
# (Debian: linux-perf) and root. Start it while `callsbench run` is in its steady window.
# usage: reports/perf/probe.sh DIR_OF_CALLSREF_BINARY SECONDS
pid=$(pgrep -f "$1/callsref sfu" | head -1)
[ -n "$pid" ] || { echo "no $1/callsref sfu running" >&2; exit 1; }
tck=$(getconf CLK_TCK)
out=$(mktemp)
t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
perf stat -x, -o "$out" -p "$pid" -e net:net_dev_xmit,syscalls:sys_enter_sendto \
    -e syscalls:sys_enter_sendmmsg,syscalls:sys_enter_recvfrom,syscalls:sys_enter_recvmmsg \
    -- sleep "$2" >/dev/null 2>&1
t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
awk -F, -v ticks=$((t1 - t0)) -v tck="$tck" -v w="$2" -v rss="$rss" '
/net_dev_xmit/{x=$1} /sendto/{st=$1} /sendmmsg/{sm=$1} /recvfrom/{rf=$1} /recvmmsg/{rm=$1}
END{cpu=ticks/tck/w; printf "sfu_cpu=%.3f cores sent/s=%.0f us/sent=%.2f sendto/s=%.0f sendmmsg/s=%.0f recvfrom/s=%.0f recvmmsg/s=%.0f rss=%d MB\n",
cpu,x/w,(x>0?cpu*1e6/(x/w):0),st/w,sm/w,rf/w,rm/w,rss/1024}' "$out"
rm -f "$out"
