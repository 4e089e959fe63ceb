#!/usr/bin/env python3
"""A grpcio client for the Quad server tests: raw-bytes unary calls (no generated code).

  unary_client.py PORT   prints one line per check: NAME RESULT
"""
import sys
from concurrent.futures import ThreadPoolExecutor

import grpc

port = sys.argv[1]


def raw(payload):
    """Sends bytes on a fresh socket; returns how the server ended it (it must close it)."""
    import socket
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as s:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            return "closed while sending"
        received = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return f"closed {len(received)}"
                received += chunk
        except socket.timeout:
            return "open"
        except ConnectionResetError:
            return f"closed reset after {len(received)}"


print("garbage", raw(b"\xff" * 4096))
print("http1", raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
channel = grpc.insecure_channel(f"127.0.0.1:{port}")
grpc.channel_ready_future(channel).result(timeout=10)


def call(path, payload, **kw):
    method = channel.unary_unary(path)  # no serializers: bytes in, bytes out
    try:
        response, rpc = method.with_call(payload, **kw)
        return "OK " + response.hex() + " " + ",".join(f"{k}={v}" for k, v in rpc.trailing_metadata() or [])
    except grpc.RpcError as e:
        return f"{e.code().name} " + (e.details() or "").replace("\n", "\\n")


print("echo", call("/quad.test.v1.Echo/Say", b"hello"))
print("empty", call("/quad.test.v1.Echo/Say", b""))
print("metadata", call("/quad.test.v1.Echo/Metadata", b"", metadata=[("x-user", "ada"), ("x-blob-bin", b"\x00\xff")]))
print("unimplemented", call("/quad.test.v1.Echo/Missing", b"x"))
print("unknown_service", call("/nope.Service/Say", b"x"))
print("status", call("/quad.test.v1.Echo/Fail", b""))
print("leak", call("/quad.test.v1.Echo/Crash", b""))
print("deadline", call("/quad.test.v1.Echo/Slow", b"", timeout=0.3))
print("large", call("/quad.test.v1.Echo/Say", b"\x07" * (3 * 1024 * 1024)).split(" ")[0])
print("too_large", call("/quad.test.v1.Echo/Say", b"\x07" * (5 * 1024 * 1024))[:40])
gz = grpc.insecure_channel(f"127.0.0.1:{port}", compression=grpc.Compression.Gzip)
try:
    r = gz.unary_unary("/quad.test.v1.Echo/Say")(b"z" * 10000)
    print("gzip", "OK", len(r))
except grpc.RpcError as e:
    print("gzip", e.code().name, e.details())
with ThreadPoolExecutor(8) as pool:
    results = list(pool.map(lambda i: call("/quad.test.v1.Echo/Say", bytes([i % 256]) * 100), range(400)))
print("concurrent", sum(r.startswith("OK") for r in results))


def stream(path, payload, limit=None, stall=0.0):
    method = channel.unary_stream(path)
    got = []
    call_ = method(payload)
    try:
        for m in call_:
            got.append(m)
            if limit is not None and len(got) >= limit:
                import time
                time.sleep(stall)  # stop reading: only flow control holds the server back now
                call_.cancel()
                break
        return "OK", got
    except grpc.RpcError as e:
        return e.code().name, got


code, got = stream("/quad.test.v1.Echo/Count", (10000).to_bytes(4, "big"))
ordered = all(int.from_bytes(m[:4], "big") == i and len(m) == 100 for i, m in enumerate(got))
print("stream", code, len(got), "ordered" if ordered else "DISORDERED")
code, got = stream("/quad.test.v1.Echo/StreamFail", b"")
print("stream_fail", code, len(got))
code, got = stream("/quad.test.v1.Echo/Endless", b"", limit=10, stall=1.5)
print("stream_cancel", code, len(got))
