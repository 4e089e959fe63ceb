#!/usr/bin/env bash
# The outbox benchmark, in one sitting on one PostgreSQL server (../shared/bench/outbox's
# private cluster: PostgreSQL 15, fsync on, durable commits):
#   (a) write RPCs/s through Quad's outbox (quad.bench.v1.OutboxBench/RecordScan: a scan row and
#       its event in one transaction, gRPC over h2load) at 1, 8, 32, 64 concurrent clients,
#       interleaved with pgbench running the one-statement outbox (bench/outbox_cte.sql);
#   (b) commit-to-subscriber latency with 1 and 100 subscribers at 1,000 writes/s;
#   (c) catch-up: events/s delivered to 10 subscribers reading a 1,000,000-event log.
# Not part of CI. Usage: Benchmarks/Outbox/run.sh   (RUNS=3 DURATION=10 LOG_LEVEL=warning by default)
# Needs: h2load (nghttp2-client), pgbench (postgresql-contrib / postgresql), a release quad
# (QUAD_BIN, default .build/release/quad: `swift build -c release --product quad`).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
YARD="${YARDSTICK:-$ROOT/../shared/bench/outbox}"
QUAD="${QUAD_BIN:-$ROOT/.build/release/quad}"
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-"1 8 32 64"}
# The server's log level: at info it writes a JSON line per event (as quad serve does), which
# pgbench does not; warning, as in Benchmarks/Campus.
LOG_LEVEL=${LOG_LEVEL:-warning}
PARTS=${PARTS:-"writes latency catchup"}   # which of (a), (b), (c) to run
OUT=${OUT_DIR:-$HERE}
LOCK=/tmp/anchor-bench.lock
[[ -x "$QUAD" ]] || { echo "no $QUAD: swift build -c release --product quad" >&2; exit 2; }
command -v h2load >/dev/null || { echo "h2load missing: apt-get install nghttp2-client" >&2; exit 2; }

# The yardstick's scripts write their .pgenv and results beside themselves: run a copy.
WORK=$(mktemp -d /tmp/quad-outbox-bench-XXXXXX)
cp -r "$YARD"/. "$WORK/"
rm -f "$WORK/.pgenv"
"$WORK/pg-start.sh" >/dev/null
# shellcheck disable=SC1091
source "$WORK/.pgenv"
SERVER_PID=""
cleanup() {
  [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  "$WORK/pg-stop.sh" >/dev/null 2>&1 || true
}
trap cleanup EXIT
psql -qAt -v ON_ERROR_STOP=1 -f "$WORK/schema.sql" >/dev/null
CONN="host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE"

"$QUAD" bench-outbox-server --port 0 --database-url "$CONN" --pool-size 80 --log-level "$LOG_LEVEL" > "$WORK/server.out" 2> "$WORK/server.err" &
SERVER_PID=$!
for _ in $(seq 100); do grep -q serving "$WORK/server.out" 2>/dev/null && break; sleep 0.2; done
PORT=$(grep -o '0.0.0.0:[0-9]*' "$WORK/server.out" | cut -d: -f2)
[[ -n "$PORT" ]] || { cat "$WORK/server.err" >&2; exit 1; }

# One RecordScan request, gRPC-framed, with a 200-byte payload (pgbench's size).
python3 - "$WORK/body.bin" <<'PY'
import struct, sys
def field(n, wt, b): return bytes([(n << 3) | wt]) + bytes([len(b)]) + b if len(b) < 128 else bytes([(n << 3) | wt]) + bytes([len(b) & 0x7F | 0x80, len(b) >> 7]) + b
msg = field(1, 2, b"S4242") + field(2, 2, b"gate-3") + field(3, 2, bytes([0xA5]) * 200)
open(sys.argv[1], "wb").write(b"\x00" + struct.pack(">I", len(msg)) + msg)
PY

q() { psql -qAt -v ON_ERROR_STOP=1 -c "$1"; }
TSV="$OUT/writes.tsv"
has() { [[ " $PARTS " == *" $1 "* ]]; }
if has writes; then
printf 'impl\tclients\trun\ttx_per_s\tcommitted\n' > "$TSV"
for c in $CLIENTS; do
  for r in $(seq "$RUNS"); do
    # pgbench, the one-statement outbox (its bench.sh resets its tables and checkpoints).
    line=$(RUNS=1 DURATION=$DURATION "$WORK/bench.sh" cte outbox_cte.sql "$c" on | tail -1)
    printf 'pgbench-cte\t%s\t%s\t%s\t-\n' "$c" "$r" "$(cut -f6 <<< "$line")" >> "$TSV"
    # Quad: the same two rows through the gRPC write path.
    q "TRUNCATE bench_scans, quad_events CASCADE" && q "CHECKPOINT"
    flock "$LOCK" h2load -t "$(( c < 2 ? 1 : 2 ))" -c "$c" -m 1 -D "$DURATION" --warm-up-time 1 -d "$WORK/body.bin" \
      -H 'content-type: application/grpc' -H 'te: trailers' \
      "http://127.0.0.1:$PORT/quad.bench.v1.OutboxBench/RecordScan" > "$WORK/h2load.out" 2>&1 || true
    rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' "$WORK/h2load.out")
    committed=$(q "SELECT count(*) FROM quad_events")
    printf 'quad\t%s\t%s\t%s\t%s\n' "$c" "$r" "${rps:-nan}" "$committed" >> "$TSV"
    echo "clients $c run $r: pgbench $(cut -f6 <<< "$line") tx/s, quad ${rps:-nan} RPC/s ($committed events committed)" >&2
  done
done
fi

# (b) commit-to-subscriber latency at 1,000 writes/s.
if has latency; then
LAT="$OUT/latency.tsv"
: > "$LAT"
for s in 1 100; do
  q "TRUNCATE bench_scans, quad_events CASCADE"
  flock "$LOCK" "$QUAD" bench-events "127.0.0.1:$PORT" --mode latency --subscribers "$s" --rate 1000 --duration "$DURATION" | tee -a "$LAT" >&2
done
fi

# (c) catch-up: a 1,000,000-event log read by 10 subscribers at once.
if has catchup; then
q "TRUNCATE bench_scans, quad_events CASCADE"
q "INSERT INTO quad_events (writer_xid, position, stream_type, stream_id, stream_version, event_type, payload, metadata)
   SELECT pg_current_xact_id(), nextval('quad_event_position'), 'scan', 's' || g, 1, 'quad.bench.v1.ScanRecorded',
          decode(repeat('a5', 200), 'hex'), '' FROM generate_series(1, 1000000) g"
q "VACUUM ANALYZE quad_events"
flock "$LOCK" "$QUAD" bench-events "127.0.0.1:$PORT" --mode catchup --subscribers 10 --expect 1000000 | tee "$OUT/catchup.tsv" >&2
fi
has writes || exit 0

python3 - "$TSV" <<'PY'
import statistics, sys, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
by = collections.defaultdict(list)
for impl, c, _, tps, _ in rows:
    if tps not in ("nan", "", "-"): by[(impl, int(c))].append(float(tps))
print("| clients | pgbench one-statement outbox (tx/s, median) | Quad RecordScan over gRPC (RPC/s, median) | Quad / pgbench |")
print("|---:|---:|---:|---:|")
for c in sorted({c for _, c in by}):
    if not by[("pgbench-cte", c)] or not by[("quad", c)]: continue
    p, q = statistics.median(by[("pgbench-cte", c)]), statistics.median(by[("quad", c)])
    print(f"| {c} | {p:,.0f} | {q:,.0f} | {q / p:.2f} |")
PY
