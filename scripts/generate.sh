#!/usr/bin/env bash
# Regenerates every committed *.pb.swift / *.rpc.swift from its .proto with protoc-gen-quad.
# Usage: scripts/generate.sh [OUTPUT_ROOT]   (default: the repository; check-generated.sh passes a temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${1:-$ROOT}
PLUGIN=${PLUGIN:-}
if [[ -z "$PLUGIN" ]]; then
  swift build --product protoc-gen-quad >&2
  PLUGIN="$(swift build --product protoc-gen-quad --show-bin-path)/protoc-gen-quad"
fi
INC=/usr/include   # Debian's protobuf-compiler / libprotobuf-dev / libprotoc-dev .proto files

gen() { # gen OUTDIR OPTIONS -I... files...
  local dir="$OUT/$1" opts=$2
  shift 2
  rm -f "$dir"/*.pb.swift "$dir"/*.rpc.swift
  mkdir -p "$dir"
  protoc --plugin=protoc-gen-quad="$PLUGIN" --quad_out="$dir" --quad_opt="$opts" "$@"
}

# Well-known types and descriptor.proto: the runtime's own.
gen Sources/QuadProtobuf/Generated "Visibility=Public,FileNaming=PathToUnderscores" -I "$INC" \
  google/protobuf/any.proto google/protobuf/api.proto google/protobuf/descriptor.proto \
  google/protobuf/duration.proto google/protobuf/empty.proto google/protobuf/field_mask.proto \
  google/protobuf/source_context.proto google/protobuf/struct.proto google/protobuf/timestamp.proto \
  google/protobuf/type.proto google/protobuf/wrappers.proto

# Product protos (Protos/).
gen Sources/BenchService/Generated "Visibility=Package,FileNaming=PathToUnderscores" -I Protos -I "$INC" bench/v1/bench.proto quad/bench/v1/outbox.proto
# grpc.health.v1 (copied from grpc/grpc-proto).
gen Sources/HealthService/Generated "Visibility=Package,FileNaming=PathToUnderscores" -I Protos grpc/health/v1/health.proto
# google.rpc.Status and the standard error details (copied from googleapis), for
# grpc-status-details-bin.
gen Sources/QuadRPC/Generated "Visibility=Package,FileNaming=PathToUnderscores" -I Protos -I "$INC" \
  google/rpc/status.proto google/rpc/error_details.proto
# grpc.reflection v1 and v1alpha (copied from grpc/grpc and grpc/grpc-proto).
gen Sources/ReflectionService/Generated "Visibility=Package,FileNaming=PathToUnderscores" -I Protos \
  grpc/reflection/v1/reflection.proto grpc/reflection/v1alpha/reflection.proto
# quad.events.v1 (the event log over gRPC) and quad.v1's contract options.
gen Sources/EventsService/Generated "Visibility=Package,FileNaming=PathToUnderscores" -I Protos -I "$INC" \
  quad/v1/options.proto quad/events/v1/events.proto
# quad.admin.v1: the operator's view of a running quad (circuit breakers).
gen Sources/AdminService/Generated "Visibility=Package,FileNaming=PathToUnderscores" -I Protos quad/admin/v1/admin.proto
# OTLP/gRPC trace export (opentelemetry.proto.*, copied from open-telemetry/opentelemetry-proto).
gen Sources/OTLPTracing/Generated "Visibility=Package,FileNaming=PathToUnderscores" -I Protos \
  opentelemetry/proto/common/v1/common.proto opentelemetry/proto/resource/v1/resource.proto \
  opentelemetry/proto/trace/v1/trace.proto opentelemetry/proto/collector/trace/v1/trace_service.proto
# The campus contracts (campus.*.v1): every bounded context's service, commands, queries and events.
gen Sources/CampusContracts/Generated "Visibility=Package,FileNaming=PathToUnderscores" -I Protos -I "$INC" \
  $(cd Protos && find campus -name '*.proto' | sort)
# grpc.testing (the official interop protos, kept at their upstream paths).
gen Sources/InteropService/Generated "Visibility=Package,FileNaming=PathToUnderscores" -I Protos/grpc-interop \
  src/proto/grpc/testing/empty.proto src/proto/grpc/testing/messages.proto src/proto/grpc/testing/test.proto \
  quad/xds_update_health.proto

# plugin.proto: the generator's input and output types; options.proto: the (quad.v1.event)
# option it reads.
gen codegen/QuadCodeGen/Generated "Visibility=Internal,FileNaming=PathToUnderscores" -I "$INC" -I Protos \
  google/protobuf/compiler/plugin.proto quad/v1/options.proto

# Test messages.
gen Tests/TestMessages/Generated \
  "Visibility=Public,FileNaming=PathToUnderscores,ProtoPathModuleMappings=$ROOT/Tests/Protos/module-map.json" \
  -I Tests/Protos -I Protos -I "$INC" $(cd Tests/Protos && find . -name '*.proto' | sed 's|^\./||' | sort)

# libprotobuf-c types for the differential tests (protoc-c 1.4.1 rejects proto3 `optional`,
# so only everything.proto, which has none).
C_OUT="$OUT/Tests/CTestMessages"
rm -rf "$C_OUT/generated"
mkdir -p "$C_OUT/generated"
protoc-c -I Tests/Protos --c_out="$C_OUT/generated" quad/test/v1/everything.proto

# The wire benchmark's types (Benchmarks/Wire), from the shared yardstick's bench.proto.
if [[ -f ../shared/bench/wire/bench.proto ]]; then
  gen Benchmarks/Wire/Sources/ImplQuad/Generated "Visibility=Public" -I ../shared/bench/wire ../shared/bench/wire/bench.proto
fi
