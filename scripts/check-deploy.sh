#!/usr/bin/env bash
# Checks deploy/ without a Docker engine or a cluster: Kubernetes' own kinds with
# kubernetes-validate, the CloudNativePG resources, HPA metrics and wiring with
# check-deploy.py, the Dockerfile with hadolint, the systemd unit with systemd-analyze (when the
# machine has it). The Dockerfile's build steps run as deploy/build-steps.sh (scripts/test.sh).
# Not checked here: the compose file against the Compose specification (no Compose
# implementation is installed; check-deploy.py checks its shape).
set -euo pipefail
cd "$(dirname "$0")/.."
K8S_VERSION=1.30.0
core=()
for f in deploy/k8s/*.yaml; do
  grep -q '^apiVersion: postgresql.cnpg.io/' "$f" || core+=("$f")
done
kubernetes-validate --strict --kubernetes-version "$K8S_VERSION" "${core[@]}"
python3 scripts/check-deploy.py
hadolint --config deploy/.hadolint.yaml deploy/Dockerfile
echo "check-deploy: hadolint passes deploy/Dockerfile"
if command -v systemd-analyze >/dev/null; then
  # The unit names /usr/local/bin/quad; verify it against a stand-in binary at that path.
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system"
  printf '#!/bin/sh\n' > "$root/usr/local/bin/quad"
  chmod +x "$root/usr/local/bin/quad"
  cp deploy/quad.service "$root/etc/systemd/system/"
  systemd-analyze verify --man=no --recursive-errors=no --root="$root" "$root/etc/systemd/system/quad.service"
  echo "check-deploy: systemd-analyze verifies deploy/quad.service"
else
  echo "check-deploy: systemd-analyze is not installed; deploy/quad.service not verified"
fi
