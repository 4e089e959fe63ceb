#!/usr/bin/env bash
# The whole test suite: installs what is missing, checks generated code, runs every test
# target, then the fuzzers for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
echo "== build" >&2
swift build --build-tests
scripts/check-imports.sh
echo "== generated code" >&2
PLUGIN="$(swift build --show-bin-path)/protoc-gen-quad" scripts/check-generated.sh
echo "== contracts (no breaking change against Protos/released)" >&2
scripts/check-contracts.sh
echo "== swift test" >&2
# Bounded (about 5 minutes on a warm 2-core machine): a hung test fails the run, with its
# backtraces and the names of the tests that did not finish, instead of stalling CI.
# The suites that time the network (keepalive PINGs, connection ages) run after the rest, on
# their own: beside the parallel end-to-end suites (dozens of quad serve and PostgreSQL
# processes on two cores) their event loops can starve for tens of seconds.
TIMED="ClientKeepaliveTests|ServerLifecycleTests|RateLimiterTests|HedgingTests"
set +e
scripts/bounded.sh "${SWIFT_TEST_SECONDS:-1500}" swift test --skip "$TIMED" 2>&1 | awk -f scripts/test-output.awk
status=${PIPESTATUS[0]}
if [[ $status -eq 0 ]]; then
  scripts/bounded.sh 600 swift test --skip-build --no-parallel --filter "$TIMED" 2>&1 | awk -f scripts/test-output.awk
  status=${PIPESTATUS[0]}
fi
set -e
[[ $status -eq 0 ]] || { echo "swift test failed ($status)" >&2; exit "$status"; }
echo "== deploy: manifests, Dockerfile, systemd unit; the Dockerfile's build steps" >&2
scripts/check-deploy.sh | grep -v '^INFO'
# The image's build stage (debug here, to bound CI's time; the image builds release), into a
# staging folder the runtime stage would copy; then the staged binary must start.
STAGING=$(mktemp -d)
deploy/build-steps.sh "$STAGING" debug
"$STAGING/usr/local/bin/quad" serve --help >/dev/null
rm -rf "$STAGING"
echo "== AddressSanitizer: the modules that wrap C" >&2
# Tests/ASan links those modules and their tests into a package of their own, so the sanitizer
# build leaves out everything else (BoringSSL, swift-crypto).
LSAN_OPTIONS="suppressions=$(pwd)/scripts/lsan-suppressions.txt" \
  scripts/bounded.sh "${ASAN_TEST_SECONDS:-1200}" swift test --package-path Tests/ASan --sanitize=address 2>&1 \
  | awk -f scripts/test-output.awk
status=${PIPESTATUS[0]}
[[ $status -eq 0 ]] || { echo "swift test --sanitize=address failed ($status)" >&2; exit "$status"; }
if [[ -f Tests/Fuzz/Package.swift ]]; then
  echo "== fuzz (${FUZZ_SECONDS:-60} s per target)" >&2
  scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
fi
echo "== rolling upgrade: the released quad and this one side by side on one PostgreSQL" >&2
timeout 900 scripts/upgrade-test.sh || { echo "rolling upgrade test failed ($?)" >&2; exit 1; }
