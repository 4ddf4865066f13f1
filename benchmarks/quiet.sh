#!/bin/bash
# Run "$@" with every other python process on this machine paused (SIGSTOP), re-checked every
# second (one ps + one awk per check) so that processes started meanwhile are paused too; all are
# resumed (SIGCONT) at the end. For figures of record on a shared machine:
#   benchmarks/quiet.sh .venv/bin/python benchmarks/inference_latency.py --rounds 3
"$@" &
me=$!
stopped=/tmp/quiet_stopped.$$
: > $stopped
trap 'for p in $(sort -u $stopped); do kill -CONT $p 2>/dev/null; done; rm -f $stopped' EXIT
while kill -0 $me 2>/dev/null; do
  pids=$(ps -eo pid=,ppid=,args= | awk -v me=$me -v self=$$ '
    { pid=$1; ppid[pid]=$2; $1=""; $2=""; args[pid]=$0 }
    END { for (p in args) { if (args[p] !~ /python|spine-/) continue;
            q=p; ours=0; while (q != "" && q > 1) { if (q == me || q == self) { ours=1; break }; q=ppid[q] }
            if (!ours) print p } }')
  for p in $pids; do kill -STOP $p 2>/dev/null && echo $p >> $stopped; done
  sleep 1
done
wait $me
