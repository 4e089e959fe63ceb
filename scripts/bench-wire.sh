#!/usr/bin/env bash
# Wire benchmark: Quad vs swift-protobuf 1.39.0 (same process, interleaved samples) and
# libprotobuf-c 1.4.1, on the shared yardstick's fixtures (../shared/bench/wire). Prints the
# byte-identity check and throughput tables with ratios. A benchmark, not a test: not in CI.
#   ROUNDS=3 SAMPLES=7 SAMPLE_MS=100 scripts/bench-wire.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WIRE="$ROOT/../shared/bench/wire"
[[ -d "$WIRE" ]] || { echo "bench-wire: $WIRE not found (../shared beside the repository)" >&2; exit 2; }
ROUNDS=${ROUNDS:-3}
SAMPLES=${SAMPLES:-7}
SAMPLE_MS=${SAMPLE_MS:-100}
LOCK=/tmp/anchor-bench.lock
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
scripts/install-deps.sh

echo "== build: wirebench (release: Quad + swift-protobuf)" >&2
# A path dependency's file list can be cached stale; drop it so new runtime files are seen.
rm -f Benchmarks/Wire/.build/release/description.json
(cd Benchmarks/Wire && swift build -c release --product wirebench 2>&1 | tail -1)
WIREBENCH="$ROOT/Benchmarks/Wire/.build/release/wirebench"

echo "== build: libprotobuf-c harness (a private copy, -O2)" >&2
cp -r "$WIRE/c" "$TMP/c"
cp "$WIRE/bench.proto" "$TMP/bench.proto"
make -s -C "$TMP/c"
BENCH_C="$TMP/c/build/bench_c"

echo "== identity: every implementation's re-encoding of every fixture" >&2
"$WIREBENCH" --data "$WIRE/data" --encoded "$TMP/encoded" --check-only
"$BENCH_C" --data "$WIRE/data" --encoded "$TMP/encoded" --check-only
for f in "$TMP"/encoded/quad/*.bin; do
  name=$(basename "$f")
  for other in swift-protobuf c-protobuf-c; do
    if [[ -f "$TMP/encoded/$other/$name" ]]; then
      if cmp -s "$f" "$TMP/encoded/$other/$name"; then
        echo "identity: quad $name == $other"
      else
        echo "identity: quad $name DIFFERS from $other"
      fi
    fi
  done
  cmp -s "$f" "$WIRE/data/$name" && echo "identity: quad $name == canonical data/$name" || echo "identity: quad $name DIFFERS from canonical"
done

echo "== timing: $ROUNDS rounds" >&2
mkdir -p "$TMP/results"
for ((r = 1; r <= ROUNDS; r++)); do
  flock "$LOCK" "$WIREBENCH" --data "$WIRE/data" --format binary --samples "$SAMPLES" --sample-ms "$SAMPLE_MS" \
    --out "$TMP/results/swift-binary.r$r.jsonl" > "$TMP/results/swift-binary.r$r.txt"
  flock "$LOCK" "$BENCH_C" --data "$WIRE/data" --samples "$SAMPLES" --sample-ms "$SAMPLE_MS" \
    --out "$TMP/results/c.r$r.jsonl" > "$TMP/results/c.r$r.txt"
  flock "$LOCK" "$WIREBENCH" --data "$WIRE/data" --format json --samples "$SAMPLES" --sample-ms "$SAMPLE_MS" \
    --out "$TMP/results/swift-json.r$r.jsonl" > "$TMP/results/swift-json.r$r.txt"
done
echo "== report (baseline swift-protobuf)"
python3 "$WIRE/report.py" "$TMP"/results/*.jsonl
echo "== report (baseline libprotobuf-c)"
python3 "$WIRE/report.py" --baseline c-protobuf-c "$TMP"/results/*.jsonl
