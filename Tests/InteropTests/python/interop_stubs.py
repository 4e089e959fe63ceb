"""Generates the grpc.testing Python modules from Protos/grpc-interop with grpcio-tools (into a
temporary folder) and puts them on sys.path. Shared by the interop client and server."""
import os
import sys
import tempfile

from grpc_tools import protoc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PROTOS = os.path.join(ROOT, "Protos", "grpc-interop")


def load():
    out = tempfile.mkdtemp(prefix="quad-interop-py-")
    files = ["src/proto/grpc/testing/%s.proto" % n for n in ("empty", "messages", "test")]
    rc = protoc.main(["protoc", "-I" + PROTOS, "--python_out=" + out, "--grpc_python_out=" + out] + files)
    if rc != 0:
        raise SystemExit("grpc_tools.protoc failed with %d" % rc)
    sys.path.insert(0, out)
    from src.proto.grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc
    from src.proto.grpc.testing import test_pb2  # noqa: F401 (puts the services in the descriptor pool, for reflection)
    return empty_pb2, messages_pb2, test_pb2_grpc
