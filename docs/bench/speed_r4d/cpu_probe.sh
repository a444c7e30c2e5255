#!/bin/bash
# bench-node in the background; per-thread CPU ticks (1/100 s) of the node and the bench process over 10 s of frames
cd /work/main
.venv/bin/python -m fornet_ros.cli bench-node --size 720 1280 --rate 5 --seconds 40 --threads 2 --backend ${B:-torch} --outputs labels --domain 93 > /tmp/cpu_probe_bench_${B:-torch}.json 2>/tmp/cpu_probe_bench.err &
bpid=$!
for i in $(seq 60); do npid=$(pgrep -P $bpid | head -1); [ -n "$npid" ] && break; sleep 1; done
# wait until the node subscribes and frames flow: its CPU ticks keep rising; give it 30 s
sleep ${WAIT:-30}
snap() { for p in $bpid $npid; do for t in /proc/$p/task/*; do echo "$p $(basename $t) $(cat $t/comm | tr ' ' _) $(awk '{print $14+$15}' $t/stat)"; done; done; }
snap > /tmp/s1; sleep 10; snap > /tmp/s2
join <(awk '{print $1"_"$2"_"$3, $4}' /tmp/s1 | sort) <(awk '{print $1"_"$2"_"$3, $4}' /tmp/s2 | sort) | awk '{d=$3-$2; if (d>0) print d, $1}' | sort -rn | head -12
echo "bench=$bpid node=$npid"
wait $bpid
