#!/usr/bin/env bash
# bounded.sh SECONDS COMMAND...: runs a test command with a wall-clock bound, so a hung test
# turns into a red run that says where it hung instead of a CI run that never ends.
#
# The command runs in a process group of its own, with its output line-buffered (stdbuf) so
# nothing is lost in a buffer when it is killed. At the bound, every test process in the group
# gets its threads' backtraces printed (gdb), then the whole session is terminated, so no child
# it left behind (a server, a peer) keeps the output pipe open. Exit status: the command's, or 124
# when it ran out of time.
set -uo pipefail
limit=$1
shift
setsid stdbuf -oL -eL "$@" &
leader=$!
deadline=$((SECONDS + limit))
while kill -0 "$leader" 2>/dev/null && ((SECONDS < deadline)); do
  sleep 1
done
if kill -0 "$leader" 2>/dev/null; then
  echo "bounded: $* still running after ${limit} s; backtraces of its test processes follow" >&2
  for pid in $(pgrep -s "$leader"); do
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-200)
    case "$cmd" in
      *xctest*|*swift-testing*|*PackageTests*)
        echo "== pid $pid: $cmd" >&2
        if command -v gdb >/dev/null; then
          timeout 120 gdb -batch -nx -p "$pid" -ex "thread apply all bt 25" 2>&1 \
            | grep -E '^(Thread|#)' | cut -c1-240 >&2
        fi
        ;;
    esac
  done
  echo "bounded: the processes still running:" >&2
  ps -o pid,etimes,args -s "$leader" 2>/dev/null | cut -c1-200 >&2
  # The whole session: children in process groups of their own (swift-test puts the test
  # binary in one) still hold the output pipe.
  pkill -TERM -s "$leader" 2>/dev/null
  sleep 10
  pkill -KILL -s "$leader" 2>/dev/null
  wait "$leader" 2>/dev/null
  exit 124
fi
wait "$leader"
