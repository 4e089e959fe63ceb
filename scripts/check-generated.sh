#!/usr/bin/env bash
# Regenerates all generated code into a temporary folder and fails on any difference from the
# committed files.
set -euo pipefail
cd "$(dirname "$0")/.."
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# Copy the inputs the generator reads (module maps) so paths resolve the same way.
mkdir -p "$TMP/Tests/Protos" "$TMP/Protos"
cp -r Tests/Protos/. "$TMP/Tests/Protos/"
cp -r Protos/. "$TMP/Protos/"
scripts/generate.sh "$TMP" >/dev/null
status=0
# Every folder the generator wrote (so a new generated module is checked without listing it here).
for dir in $(cd "$TMP" && find . -type d \( -name Generated -o -name generated \) | sed 's|^\./||' | sort); do
  if ! diff -ru "$dir" "$TMP/$dir"; then
    echo "check-generated: $dir differs from a fresh generation; run 'make generate'" >&2
    status=1
  fi
done
[[ $status -eq 0 ]] && echo "check-generated: all generated code is up to date"
exit $status
