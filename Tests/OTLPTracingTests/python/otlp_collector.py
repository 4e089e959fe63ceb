"""A test OpenTelemetry collector: an OTLP/gRPC TraceService on grpcio, decoding requests with
the official opentelemetry-proto package (an implementation independent of Quad's). Prints
"listening PORT", then appends one JSON line per received span to OUTPUT.
Usage: otlp_collector.py OUTPUT [--fail-first N]   (the first N exports get UNAVAILABLE)"""
import json
import sys
import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


def value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind) if kind else None


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, output, fail_first):
        self.output = output
        self.failures_left = fail_first
        self.lock = threading.Lock()

    def Export(self, request, context):
        with self.lock:
            if self.failures_left > 0:
                self.failures_left -= 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "collector warming up")
            with open(self.output, "a") as out:
                for rs in request.resource_spans:
                    resource = {kv.key: value(kv.value) for kv in rs.resource.attributes}
                    for ss in rs.scope_spans:
                        for s in ss.spans:
                            out.write(json.dumps({
                                "resource": resource, "scope": ss.scope.name,
                                "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                                "parent_span_id": s.parent_span_id.hex(), "name": s.name, "kind": s.kind,
                                "flags": s.flags, "start": s.start_time_unix_nano, "end": s.end_time_unix_nano,
                                "attributes": {kv.key: value(kv.value) for kv in s.attributes},
                                "status": s.status.code, "events": [e.name for e in s.events],
                            }, sort_keys=True) + "\n")
        return trace_service_pb2.ExportTraceServiceResponse()


def main():
    output = sys.argv[1]
    fail_first = int(sys.argv[sys.argv.index("--fail-first") + 1]) if "--fail-first" in sys.argv else 0
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Collector(output, fail_first), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("listening %d" % port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
