#!/usr/bin/env bash
# House style rule 1: every import states its access level (public/package/internal/...).
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(grep -rnE '^import [A-Za-z_]+' --include='*.swift' Sources codegen Tests Benchmarks/Wire/Sources/ImplQuad \
  | grep -v '\.build/' | grep -v 'Package.swift' || true)
if [[ -n "$bad" ]]; then
  echo "check-imports: imports without an access level:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "check-imports: every import has an access level"
