#!/usr/bin/env bash
# Fails on any wire- or JSON-breaking change to the campus contracts (Protos/campus) against
# the released ones (Protos/released/campus.binpb). `scripts/check-contracts.sh --release`
# records the contracts as they are now as the released ones (do it when you release).
# Usage: scripts/check-contracts.sh [--release] [PROTO_ROOT]   (the tests pass a mutated copy)
set -euo pipefail
cd "$(dirname "$0")/.."
RELEASE=0
if [[ "${1:-}" == "--release" ]]; then RELEASE=1; shift; fi
ROOT=${1:-Protos}
RELEASED=${RELEASED:-Protos/released/campus.binpb}   # the tests point it elsewhere
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
files=$(cd "$ROOT" && find campus -name '*.proto' | sort)
protoc --include_imports -I "$ROOT" -I /usr/include -o "$TMP/current.binpb" $files
if [[ $RELEASE -eq 1 ]]; then
  mkdir -p "$(dirname "$RELEASED")"
  cp "$TMP/current.binpb" "$RELEASED"
  echo "check-contracts: released $(echo $files | wc -w) files as $RELEASED"
  exit 0
fi
python3 scripts/check-contracts.py "$RELEASED" "$TMP/current.binpb"
