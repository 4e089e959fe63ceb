#!/usr/bin/env python3
"""Receiving Quad's webhook deliveries: verify the Quad-Signature header, then use the event.

Quad POSTs one JSON object per event (position, event_type, stream_type, stream_id,
stream_version, recorded_at_us, payload_base64, and payload as proto3 JSON when the type is
known) with

    Quad-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret>

`verify` is all a receiver needs (standard library only). Run as a program, this file is a
small receiver that prints verified deliveries and refuses the rest with 401:

    python3 verify_webhook.py --port 8080 --secret-file webhook.secret
"""
import argparse
import hashlib
import hmac
import http.server
import json
import sys
import time


def verify(secret: bytes, header: str, body: bytes, tolerance: int = 300, now: float = None) -> bool:
    """Whether `header` signs `body` with `secret`, dated within `tolerance` seconds of now."""
    timestamp, signatures = None, []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False  # unsigned, or a replay of an old delivery
    expected = hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port (printed first)")
    parser.add_argument("--secret-file", required=True)
    parser.add_argument("--out", help="append each verified delivery to this file, one JSON line each")
    parser.add_argument("--fail-first", type=int, default=0, help="answer 503 to the first N deliveries (to see retries)")
    args = parser.parse_args()
    secret = open(args.secret_file, "rb").read().rstrip(b"\r\n")
    state = {"failures_left": args.fail_first}

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if not verify(secret, self.headers.get("Quad-Signature", ""), body):
                self.send_response(401)
                self.end_headers()
                return
            if state["failures_left"] > 0:
                state["failures_left"] -= 1
                self.send_response(503)
                self.end_headers()
                return
            event = json.loads(body)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(event, sort_keys=True) + "\n")
            else:
                print(event["position"], event["event_type"], event["stream_id"], flush=True)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Receiver)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
