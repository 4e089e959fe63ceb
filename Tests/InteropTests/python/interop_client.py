"""A gRPC interop client on Python grpcio, written from the gRPC interop test descriptions
(doc/interop-test-descriptions.md): the official flags, one test case or `all`.

Usage: interop_client.py --server_host H --server_port N --test_case NAME|all
Prints `PASS name` or `FAIL name: why` per case; exits 1 if any failed."""
import argparse
import queue
import sys
import threading

import grpc

import interop_stubs

empty_pb2, messages_pb2, test_pb2_grpc = interop_stubs.load()

CASES = [
    "empty_unary", "large_unary", "client_compressed_unary", "server_compressed_unary",
    "client_streaming", "server_streaming", "ping_pong", "empty_stream", "cancel_after_begin",
    "cancel_after_first_response", "timeout_on_sleeping_server", "custom_metadata",
    "status_code_and_message", "special_status_message", "unimplemented_method",
    "unimplemented_service",
]


def check(cond, why):
    if not cond:
        raise AssertionError(why)


def payload(size):
    return messages_pb2.Payload(body=b"\0" * size)


def expect_code(fn, code, message=None):
    try:
        fn()
    except grpc.RpcError as e:
        check(e.code() == code, "status %s, expected %s (%s)" % (e.code(), code, e.details()))
        if message is not None:
            check(e.details() == message, "message %r, expected %r" % (e.details(), message))
        return e
    raise AssertionError("call succeeded, expected %s" % code)


class Requests:
    """A request iterator the test feeds one message at a time (None ends it)."""

    def __init__(self):
        self.q = queue.Queue()

    def put(self, m):
        self.q.put(m)

    def __iter__(self):
        return self

    def __next__(self):
        m = self.q.get()
        if m is None:
            raise StopIteration
        return m


def empty_unary(stub, channel):
    r = stub.EmptyCall(empty_pb2.Empty())
    check(r == empty_pb2.Empty(), "not empty")


def large_unary(stub, channel):
    r = stub.UnaryCall(messages_pb2.SimpleRequest(response_size=314159, payload=payload(271828)))
    check(len(r.payload.body) == 314159 and r.payload.body == b"\0" * 314159, "wrong payload")


def client_compressed_unary(stub, channel):
    probe = messages_pb2.SimpleRequest(
        expect_compressed=messages_pb2.BoolValue(value=True), response_size=314159, payload=payload(271828))
    expect_code(lambda: stub.UnaryCall(probe), grpc.StatusCode.INVALID_ARGUMENT)
    r = stub.UnaryCall(probe, compression=grpc.Compression.Gzip)
    check(len(r.payload.body) == 314159, "compressed request: wrong payload")
    plain = messages_pb2.SimpleRequest(
        expect_compressed=messages_pb2.BoolValue(value=False), response_size=314159, payload=payload(271828))
    r = stub.UnaryCall(plain)
    check(len(r.payload.body) == 314159, "uncompressed request: wrong payload")


def server_compressed_unary(stub, channel):
    for compressed in (True, False):
        r = stub.UnaryCall(messages_pb2.SimpleRequest(
            response_compressed=messages_pb2.BoolValue(value=compressed), response_size=314159,
            payload=payload(271828)))
        check(len(r.payload.body) == 314159, "response_compressed=%s: wrong payload" % compressed)


def client_streaming(stub, channel):
    sizes = [27182, 8, 1828, 45904]
    r = stub.StreamingInputCall(iter([messages_pb2.StreamingInputCallRequest(payload=payload(n)) for n in sizes]))
    check(r.aggregated_payload_size == 74922, "aggregated %d" % r.aggregated_payload_size)


def server_streaming(stub, channel):
    sizes = [31415, 9, 2653, 58979]
    req = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=n) for n in sizes])
    got = [len(r.payload.body) for r in stub.StreamingOutputCall(req)]
    check(got == sizes, "sizes %s" % got)


def ping_pong(stub, channel):
    pairs = [(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)]
    reqs = Requests()
    call = stub.FullDuplexCall(reqs)
    for response_size, request_size in pairs:
        reqs.put(messages_pb2.StreamingOutputCallRequest(
            response_parameters=[messages_pb2.ResponseParameters(size=response_size)], payload=payload(request_size)))
        r = next(call)
        check(len(r.payload.body) == response_size, "response of %d bytes, expected %d" % (len(r.payload.body), response_size))
    reqs.put(None)
    check(list(call) == [], "responses after the last request")


def empty_stream(stub, channel):
    check(list(stub.FullDuplexCall(iter([]))) == [], "responses to an empty stream")


def cancel_after_begin(stub, channel):
    reqs = Requests()
    future = stub.StreamingInputCall.future(reqs)
    future.cancel()
    check(future.cancelled(), "not cancelled")
    reqs.put(None)


def cancel_after_first_response(stub, channel):
    reqs = Requests()
    call = stub.FullDuplexCall(reqs)
    reqs.put(messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=31415)], payload=payload(27182)))
    r = next(call)
    check(len(r.payload.body) == 31415, "first response")
    call.cancel()
    check(call.code() == grpc.StatusCode.CANCELLED, "code %s" % call.code())
    reqs.put(None)


def timeout_on_sleeping_server(stub, channel):
    reqs = Requests()
    call = stub.FullDuplexCall(reqs, timeout=0.001)
    reqs.put(messages_pb2.StreamingOutputCallRequest(payload=payload(27182)))
    try:
        for _ in call:
            pass
    except grpc.RpcError:
        pass
    check(call.code() == grpc.StatusCode.DEADLINE_EXCEEDED, "code %s" % call.code())
    reqs.put(None)


ECHO_INITIAL = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
ECHO_TRAILING = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")


def check_echo(initial, trailing):
    check(ECHO_INITIAL in list(initial), "initial metadata %s" % (initial,))
    check(ECHO_TRAILING in list(trailing), "trailing metadata %s" % (trailing,))


def custom_metadata(stub, channel):
    md = [ECHO_INITIAL, ECHO_TRAILING]
    _, call = stub.UnaryCall.with_call(
        messages_pb2.SimpleRequest(response_size=314159, payload=payload(271828)), metadata=md)
    check_echo(call.initial_metadata(), call.trailing_metadata())
    call = stub.FullDuplexCall(iter([messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=314159)], payload=payload(271828))]), metadata=md)
    got = [len(r.payload.body) for r in call]
    check(got == [314159], "duplex sizes %s" % got)
    check_echo(call.initial_metadata(), call.trailing_metadata())


def status_with(stub, message):
    status = messages_pb2.EchoStatus(code=2, message=message)
    expect_code(lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status)),
                grpc.StatusCode.UNKNOWN, message)
    return status


def status_code_and_message(stub, channel):
    status = status_with(stub, "test status message")
    call = stub.FullDuplexCall(iter([messages_pb2.StreamingOutputCallRequest(response_status=status)]))
    expect_code(lambda: list(call), grpc.StatusCode.UNKNOWN, "test status message")


def special_status_message(stub, channel):
    status_with(stub, "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n")


def unimplemented_method(stub, channel):
    expect_code(lambda: stub.UnimplementedCall(empty_pb2.Empty()), grpc.StatusCode.UNIMPLEMENTED)


def unimplemented_service(stub, channel):
    other = test_pb2_grpc.UnimplementedServiceStub(channel)
    expect_code(lambda: other.UnimplementedCall(empty_pb2.Empty()), grpc.StatusCode.UNIMPLEMENTED)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server_host", default="127.0.0.1")
    ap.add_argument("--server_port", type=int, required=True)
    ap.add_argument("--test_case", default="all")
    ap.add_argument("--use_tls", default="false")
    ap.add_argument("--ca_file", help="PEM of the CA to trust (with --use_tls=true)")
    ap.add_argument("--server_host_override")
    a = ap.parse_args()
    target = "%s:%d" % (a.server_host, a.server_port)
    cases = CASES if a.test_case == "all" else a.test_case.split(",")
    failed = 0
    if a.use_tls == "true":
        ca = open(a.ca_file, "rb").read() if a.ca_file else None
        options = [("grpc.ssl_target_name_override", a.server_host_override)] if a.server_host_override else []
        channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(ca), options=options)
    else:
        channel = grpc.insecure_channel(target)
    with channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        for name in cases:
            try:
                globals()[name](stub, channel)
                print("PASS " + name, flush=True)
            except Exception as e:  # noqa: BLE001 -- report every failure by case
                failed += 1
                print("FAIL %s: %s" % (name, str(e).replace("\n", "\\n")), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
