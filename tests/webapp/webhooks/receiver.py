"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 in a thread of the test,
answering each POST with the next status of a script, and keeping what it received; a
dripping one sends its answer a byte at a time."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    def signed_with(self, secret: str, tolerance: float = 300) -> bool:
        """What docs/portal.md tells a receiver to do with the signature header."""
        fields = dict(
            part.split("=", 1) for part in self.headers["X-AutoCall-Signature"].split(",")
        )
        message = fields["t"].encode() + b"." + self.body
        expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(fields["t"])) <= tolerance
        return fresh and hmac.compare_digest(expected, fields["v1"])


class Receiver:
    """`Receiver(500, 200)` answers 500 to the first POST and 200 to the rest (the last
    status repeats). `drip=1.0` sends each answer a byte a second (until the client goes);
    `arrived` is set when a POST has come in whole."""

    def __init__(self, *statuses: int, drip: float | None = None) -> None:
        self.statuses = list(statuses or (200,))
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    index = min(len(receiver.received), len(receiver.statuses) - 1)
                    status = receiver.statuses[index]
                    receiver.received.append(Received(dict(self.headers), body, status))
                receiver.arrived.set()
                if drip is not None:
                    self.drip(status, drip)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def drip(self, status: int, interval: float) -> None:
                self.close_connection = True
                answer = f"HTTP/1.1 {status} Slow\r\nContent-Length: 0\r\n\r\n".encode()
                try:
                    for byte in answer:
                        self.wfile.write(bytes([byte]))
                        time.sleep(interval)
                except OSError:  # the client gave up
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks?source=autocall"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
