"""A gRPC interop server on Python grpcio, written from the gRPC interop test descriptions
(doc/interop-test-descriptions.md, "Server"): grpc.testing.TestService with requested payload
sizes, statuses, compression, and echoed metadata.

Usage: interop_server.py --port N   (prints `listening on N` when it accepts calls; serves until
stdin closes)"""
import argparse
import sys
import time
import zlib
from concurrent import futures

import grpc

import interop_stubs

empty_pb2, messages_pb2, test_pb2_grpc = interop_stubs.load()

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"


def echo_metadata(context):
    md = dict(context.invocation_metadata())
    if ECHO_INITIAL in md:
        context.send_initial_metadata([(ECHO_INITIAL, md[ECHO_INITIAL])])
    if ECHO_TRAILING in md:
        context.set_trailing_metadata([(ECHO_TRAILING, md[ECHO_TRAILING])])


def maybe_fail(request, context):
    if request.HasField("response_status") and request.response_status.code != 0:
        context.abort(grpc.StatusCode(_code(request.response_status.code)), request.response_status.message)


def _code(n):
    for c in grpc.StatusCode:
        if c.value[0] == n:
            return c.value
    return grpc.StatusCode.UNKNOWN.value


def payload(size):
    return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=b"\0" * size)


def parse(cls):
    """A request deserializer that also reports whether the message arrived compressed. The server
    runs with per-message decompression off, so a gzip-compressed message reaches us as gzip
    bytes (a protobuf message never starts with 0x1f 0x8b: field 3 with wire type 7)."""

    def deserialize(data):
        compressed = data[:2] == b"\x1f\x8b"
        if compressed:
            data = zlib.decompress(data, 16 + zlib.MAX_WBITS)
        return cls.FromString(data), compressed

    return deserialize


def check_compressed(request, compressed, context):
    if request.HasField("expect_compressed") and request.expect_compressed.value != compressed:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                      "expect_compressed=%s but the request was %scompressed" % (request.expect_compressed.value, "" if compressed else "not "))


def empty_call(request, context):
    echo_metadata(context)
    return empty_pb2.Empty()


def unary_call(request, context):
    request, compressed = request
    echo_metadata(context)
    check_compressed(request, compressed, context)
    maybe_fail(request, context)
    if request.HasField("response_compressed"):
        context.set_compression(grpc.Compression.Gzip if request.response_compressed.value else grpc.Compression.NoCompression)
    return messages_pb2.SimpleResponse(payload=payload(request.response_size))


def respond(request):
    for p in request.response_parameters:
        if p.interval_us:
            time.sleep(p.interval_us / 1e6)
        yield messages_pb2.StreamingOutputCallResponse(payload=payload(p.size))


def streaming_output_call(request, context):
    request, _ = request
    echo_metadata(context)
    maybe_fail(request, context)
    yield from respond(request)


def streaming_input_call(requests, context):
    echo_metadata(context)
    total = 0
    for request, compressed in requests:
        check_compressed(request, compressed, context)
        total += len(request.payload.body)
    return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)


def full_duplex_call(requests, context):
    echo_metadata(context)
    for request, _ in requests:
        maybe_fail(request, context)
        yield from respond(request)


def half_duplex_call(requests, context):
    echo_metadata(context)
    for request in [r for r, _ in requests]:
        maybe_fail(request, context)
        yield from respond(request)


def handlers():
    out = lambda m: m.SerializeToString()  # noqa: E731
    sr, so, si = messages_pb2.SimpleRequest, messages_pb2.StreamingOutputCallRequest, messages_pb2.StreamingInputCallRequest
    return grpc.method_handlers_generic_handler("grpc.testing.TestService", {
        "EmptyCall": grpc.unary_unary_rpc_method_handler(empty_call, parse(empty_pb2.Empty), out),
        "UnaryCall": grpc.unary_unary_rpc_method_handler(unary_call, parse(sr), out),
        "CacheableUnaryCall": grpc.unary_unary_rpc_method_handler(unary_call, parse(sr), out),
        "StreamingOutputCall": grpc.unary_stream_rpc_method_handler(streaming_output_call, parse(so), out),
        "StreamingInputCall": grpc.stream_unary_rpc_method_handler(streaming_input_call, parse(si), out),
        "FullDuplexCall": grpc.stream_stream_rpc_method_handler(full_duplex_call, parse(so), out),
        "HalfDuplexCall": grpc.stream_stream_rpc_method_handler(half_duplex_call, parse(so), out),
    })


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--use_tls", default="false")
    ap.add_argument("--cert_file")
    ap.add_argument("--key_file")
    ap.add_argument("--reflection", default="false", help="serve grpc.reflection.v1alpha (grpcio-reflection)")
    a = ap.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=[("grpc.per_message_decompression", 0)])
    server.add_generic_rpc_handlers([handlers()])
    if a.reflection == "true":
        from grpc_reflection.v1alpha import reflection
        reflection.enable_server_reflection(["grpc.testing.TestService", reflection.SERVICE_NAME], server)
    if a.use_tls == "true":
        creds = grpc.ssl_server_credentials([(open(a.key_file, "rb").read(), open(a.cert_file, "rb").read())])
        port = server.add_secure_port("127.0.0.1:%d" % a.port, creds)
    else:
        port = server.add_insecure_port("127.0.0.1:%d" % a.port)
    server.start()
    print("listening on %d" % port, flush=True)
    try:
        sys.stdin.read()  # serve until stdin closes
    finally:
        server.stop(0)


if __name__ == "__main__":
    main()
