"""A tiny local HTTP server for tests: each test scripts the responses a real remote would send."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Handler = Callable[[Recorded], Reply]


@dataclass
class FakeServer:
    url: str
    requests: list[Recorded]
    routes: dict[tuple[str, str], Handler]

    def route(self, method: str, path: str, handler: Handler | Reply) -> None:
        self.routes[(method, path)] = handler if callable(handler) else (lambda _request: handler)


@contextmanager
def fake_server() -> Iterator[FakeServer]:
    """Serve scripted replies on 127.0.0.1 at a free port; unknown routes answer 404 JSON."""
    recorded: list[Recorded] = []
    routes: dict[tuple[str, str], Handler] = {}

    class RequestHandler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Recorded(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
            recorded.append(request)
            handler = routes.get((self.command, self.path.split("?")[0]))
            reply = handler(request) if handler else Reply(404, {"error": "no such route"})
            if reply.delay:
                threading.Event().wait(reply.delay)
            body = reply.body
            if isinstance(body, dict | list):
                body = json.dumps(body).encode()
                reply.headers.setdefault("Content-Type", "application/json")
            elif isinstance(body, str):
                body = body.encode()
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FakeServer(f"http://127.0.0.1:{server.server_port}", recorded, routes)
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def trickling_server(pause: float = 0.1, lasts: float | None = None) -> Iterator[str]:
    """Answers a status line, then one header byte every `pause` seconds, for ever (until closed)
    or, with `lasts`, until that many seconds have passed (then it hangs up)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(5)
        with contextlib.suppress(OSError):
            connection, _address = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                ends = None if lasts is None else time.monotonic() + lasts
                while not stop.wait(pause) and (ends is None or time.monotonic() < ends):
                    connection.sendall(b"a")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)
