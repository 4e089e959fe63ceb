#!/usr/bin/env bash
# The main job for now: build protoc-gen-quad (release) and regenerate every Swift file from its
# .proto, then show what was generated. (`quad serve` arrives with the platform issues.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product protoc-gen-quad
PLUGIN="$(swift build -c release --show-bin-path)/protoc-gen-quad" scripts/generate.sh
echo "protoc-gen-quad: generated"
git status --short -- Sources codegen Tests | sed 's/^/  /' || true
find Sources/QuadProtobuf/Generated codegen/QuadCodeGen/Generated Tests/TestMessages/Generated -name '*.swift' | sort | sed 's/^/  /'
