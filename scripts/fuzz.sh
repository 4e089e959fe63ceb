#!/usr/bin/env bash
# Builds the libFuzzer targets in Tests/Fuzz and runs each for SECONDS (default 60).
# Fails when a target crashes (the input is kept in Tests/Fuzz/artifacts/; copy it to
# Tests/QuadProtobufTests/FailCases/ so the unit tests replay it) or when libFuzzer reports no runs.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
cd Tests/Fuzz
swift build -c debug --sanitize=fuzzer >&2
BIN=$(swift build -c debug --sanitize=fuzzer --show-bin-path)
mkdir -p artifacts
status=0
for target in FuzzBinary FuzzJSON; do
  corpus=$(mktemp -d)
  cp ../QuadProtobufTests/FailCases/* "$corpus"/ 2>/dev/null || true
  rm -f "$corpus/README.md"
  log=$(mktemp)
  echo "fuzz: $target for ${SECONDS_PER_TARGET}s" >&2
  set +e
  "$BIN/$target" -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix=artifacts/"$target"- -print_final_stats=1 "$corpus" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || echo 0)
  grep -E '^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" | sed "s/^/  $target: /" >&2 || true
  if [[ $rc -ne 0 ]]; then
    echo "fuzz: $target FAILED (exit $rc); last lines:" >&2
    tail -40 "$log" >&2
    status=1
  elif [[ "$runs" -eq 0 ]]; then
    echo "fuzz: $target executed no runs" >&2
    status=1
  else
    echo "fuzz: $target ok, $runs runs" >&2
  fi
  rm -rf "$corpus" "$log"
done
exit $status
