#!/usr/bin/env bash
# The main job: install what is missing, build `quad` (release) and run `quad serve`: the event
# log's services on port 50051 (QUAD_PORT), on PostgreSQL from QUAD_DATABASE_URL, or on a private
# cluster in .quad/ (QUAD_DATA_DIR) when none is given. Extra arguments go to `quad serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product quad
exec "$(swift build -c release --show-bin-path)/quad" serve --port "${QUAD_PORT:-50051}" --data-dir "${QUAD_DATA_DIR:-.quad}" "$@"
