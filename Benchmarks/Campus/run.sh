#!/usr/bin/env bash
# The campus load benchmark (issue 7), in one sitting on one PostgreSQL server
# (../shared/bench/outbox's private cluster: PostgreSQL 15, fsync on, durable commits):
#   (a) the yardstick: pgbench running the one-statement outbox transaction (outbox_cte.sql) at
#       32 clients;
#   (b) `quad bench-campus` against `quad serve` (every context): 500 concurrent callers, 80%
#       queries and 20% writes (RecordScan, RegisterStudent), for DURATION seconds; requests/s,
#       p50/p99/p99.9 per RPC, errors, and the analytics projection's lag when the load stops.
# The two cores carry PostgreSQL, quad and the load generator together. Not part of CI.
# Usage: Benchmarks/Campus/run.sh   (DURATION=60 PGBENCH_DURATION=30 CLIENTS=500 RUNS=1 by default)
# Needs: pgbench (postgresql), a release quad (QUAD_BIN, default .build/release/quad).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
YARD="${YARDSTICK:-$ROOT/../shared/bench/outbox}"
QUAD="${QUAD_BIN:-$ROOT/.build/release/quad}"
DURATION=${DURATION:-60}
# The yardstick's bench.sh stops pgbench after 55 s: its runs are shorter.
PGBENCH_DURATION=${PGBENCH_DURATION:-30}
CLIENTS=${CLIENTS:-500}
RUNS=${RUNS:-1}
OUT=${OUT_DIR:-$HERE}
LOCK=/tmp/anchor-bench.lock
[[ -x "$QUAD" ]] || { echo "no $QUAD: swift build -c release --product quad" >&2; exit 2; }

WORK=$(mktemp -d /tmp/quad-campus-bench-XXXXXX)
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
TSV="$OUT/results.tsv"
: > "$TSV"
for r in $(seq "$RUNS"); do
  line=$(RUNS=1 DURATION=$PGBENCH_DURATION "$WORK/bench.sh" cte outbox_cte.sql 32 on | tail -1)
  pg=$(cut -f6 <<< "$line")
  printf 'pgbench-cte\tclients=32\trun=%s\ttx_per_s=%s\n' "$r" "$pg" | tee -a "$TSV" >&2

  # A fresh quad serve on the same server (its logs at warning: a line per call would be the
  # benchmark's bottleneck).
  "$QUAD" serve --port 0 --metrics-port 0 --database-url "$CONN" --pool-size 32 --log-level warning \
    > "$WORK/server.out" 2> "$WORK/server.err" &
  SERVER_PID=$!
  for _ in $(seq 200); do grep -q serving "$WORK/server.out" 2>/dev/null && break; sleep 0.2; done
  PORT=$(grep -o '0.0.0.0:[0-9]*' "$WORK/server.out" | tail -1 | cut -d: -f2)
  [[ -n "$PORT" ]] || { cat "$WORK/server.err" >&2; exit 1; }
  flock "$LOCK" "$QUAD" bench-campus "127.0.0.1:$PORT" --clients "$CLIENTS" --connections 50 --duration "$DURATION" \
    | sed "s/^/run=$r\t/" | tee -a "$TSV" >&2
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
  psql -qAt -c "DROP SCHEMA IF EXISTS students, scans, analytics CASCADE; DROP TABLE IF EXISTS quad_events, quad_event_log, quad_consumer_groups, quad_idempotency, quad_snapshots, quad_parked_events, quad_schema_migrations CASCADE; DROP SEQUENCE IF EXISTS quad_event_position; DROP FUNCTION IF EXISTS quad_append_event, quad_claim_idempotency" >/dev/null 2>&1 || true
done

python3 - "$TSV" <<'PY'
import re, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
def kv(r): return dict(x.split("=", 1) for x in r if "=" in x)
for r in rows:
    if r[0] == "pgbench-cte": pg = float(kv(r)["tx_per_s"])
for r in rows:
    if len(r) > 1 and r[1] == "total":
        t = kv(r)
        w = float(t["writes_per_s"])
        print(f"requests/s {float(t['requests_per_s']):,.0f}; writes/s {w:,.0f} = {w / pg:.2f} of pgbench's {pg:,.0f} tx/s at 32 clients; "
              f"errors {t['errors']}; projection {t['projection_behind_events']} events behind at the end, caught up in {float(t['projection_caught_up_s']):.3f} s")
PY
