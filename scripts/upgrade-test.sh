#!/usr/bin/env bash
# The rolling-upgrade test: builds the released `quad` (UPGRADE_FROM, the commit whose contracts
# are Protos/released/) beside this one and runs Tests/Upgrade/rolling_upgrade.py with both.
# The old version builds in a worktree into this checkout's own .build (so the dependencies it
# shares are not rebuilt); this version's debug `quad` is copied aside first, and its own
# modules recompile on the next build here.
# Usage: scripts/upgrade-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
FROM=${UPGRADE_FROM:-b82f56ff0794fd6e85b18a2fc90cd8789f21c6da}
WORK=$(mktemp -d /tmp/quad-upgrade-XXXXXX)
chmod 755 "$WORK"
cleanup() {
  git worktree remove --force "$WORK/old" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
swift build -q --product quad
cp "$(swift build --show-bin-path)/quad" "$WORK/quad-new"
git worktree add --quiet --detach "$WORK/old" "$FROM"
(cd "$WORK/old" && swift build -q --scratch-path "$ROOT/.build" --product quad)
cp "$(swift build --show-bin-path)/quad" "$WORK/quad-old"
python3 Tests/Upgrade/rolling_upgrade.py "$WORK/quad-old" "$WORK/quad-new"
