"""A platform's webhook receiver for tests, on 127.0.0.1: verifies each request's signature
and replay window the way the module docstring of bastion.actions.webhooks tells platforms
to, records what it accepted, and can be taken down (answers 503) or made to hang."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bastion.actions.webhooks import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify


@dataclass
class Received:
    """One accepted request."""

    path: str
    key: str
    body: dict[str, Any]


@dataclass
class Receiver:
    """The receiver's state; ``url`` is its base URL."""

    secret: bytes
    url: str = ""
    received: list[Received] = field(default_factory=list)
    rejected: int = 0
    down: bool = False
    #: When set, the request numbered ``hold_from`` (0-based) and later ones wait until
    #: this event is set (``arrived`` is set when the first of them arrives).
    hold: threading.Event | None = None
    hold_from: int = 0
    requests: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keys(self) -> list[str]:
        with self.lock:
            return [r.key for r in self.received]


def start_receiver(secret: bytes) -> tuple[Receiver, ThreadingHTTPServer]:
    """Start a receiver on an ephemeral 127.0.0.1 port (stop it with ``server.shutdown()``)."""
    state = Receiver(secret)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with state.lock:
                n = state.requests
                state.requests += 1
            if state.hold is not None and n >= state.hold_from:
                state.arrived.set()
                state.hold.wait(60)
            if state.down:
                self.send_response(503)
                self.end_headers()
                return
            sig = self.headers.get(SIGNATURE_HEADER, "")
            if not verify(state.secret, sig, body):
                with state.lock:
                    state.rejected += 1
                self.send_response(401)
                self.end_headers()
                return
            with state.lock:
                state.received.append(Received(self.path, self.headers[IDEMPOTENCY_HEADER],
                                               json.loads(body)))
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state, server
