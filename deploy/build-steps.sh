#!/usr/bin/env bash
# The build steps of deploy/Dockerfile, as a script: the image's build stage runs exactly this,
# and a test runs it on this machine (Tests/DeployTests), so the image's steps are exercised
# without a Docker engine.
#
# Usage: deploy/build-steps.sh STAGING_DIR [CONFIGURATION]
#   Builds `quad` (release unless CONFIGURATION says debug) with the Swift runtime linked in
#   statically, and lays out what the runtime image copies: STAGING_DIR/usr/local/bin/quad,
#   the licence, and the Debian runtime packages the binary needs (runtime-packages.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
STAGING=${1:?usage: deploy/build-steps.sh STAGING_DIR [release|debug]}
CONFIGURATION=${2:-release}
case "$CONFIGURATION" in release|debug) ;; *) echo "build-steps: configuration must be release or debug" >&2; exit 2 ;; esac

# 1. Build dependencies (the C libraries quad wraps, and pkg-config to find them).
need=()
for p in libnghttp2-dev libpq-dev zlib1g-dev pkg-config; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [[ ${#need[@]} -gt 0 ]]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# 2. The binary, with the Swift runtime inside it (the runtime image has no Swift toolchain).
# Its own scratch folder, so these flags never invalidate the development build in .build/.
SCRATCH=${QUAD_DEPLOY_SCRATCH:-.build-deploy}
swift build -c "$CONFIGURATION" --product quad --static-swift-stdlib --scratch-path "$SCRATCH"
BIN="$(swift build -c "$CONFIGURATION" --product quad --static-swift-stdlib --scratch-path "$SCRATCH" --show-bin-path)/quad"

# 3. The staging tree the runtime stage copies.
mkdir -p "$STAGING/usr/local/bin" "$STAGING/usr/share/doc/quad"
install -m 0755 "$BIN" "$STAGING/usr/local/bin/quad"
cp deploy/runtime-packages.txt "$STAGING/usr/share/doc/quad/"

# 4. Every shared library the binary names (its NEEDED entries) must come from a package the
# runtime image installs (their own dependencies come with those packages).
missing=""
for soname in $(readelf -d "$STAGING/usr/local/bin/quad" | awk '/NEEDED/ {gsub(/[][]/, "", $5); print $5}'); do
  path=$(ldd "$STAGING/usr/local/bin/quad" | awk -v s="$soname" '$1 == s {print $3}')
  [[ "$soname" == ld-linux* ]] && continue
  pkg=""
  [[ -n "$path" ]] && pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1 || true)
  [[ -z "$pkg" && -n "$path" ]] && pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1 || true)
  if [[ -z "$pkg" ]] || ! grep -qx "$pkg" deploy/runtime-packages.txt deploy/base-packages.txt; then
    missing+="  $soname (${path:-not found}, package ${pkg:-none})"$'\n'
  fi
done
if [[ -n "$missing" ]]; then
  echo "build-steps: the binary needs libraries the runtime image would not have:" >&2
  printf '%s' "$missing" >&2
  exit 1
fi
"$STAGING/usr/local/bin/quad" --help >/dev/null
echo "build-steps: $STAGING/usr/local/bin/quad ($CONFIGURATION) needs only $(tr '\n' ' ' < deploy/runtime-packages.txt)and the base image"
