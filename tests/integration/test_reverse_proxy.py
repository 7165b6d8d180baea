"""Behind a TLS-terminating reverse proxy listed in TRUSTED_PROXIES, the app sees the real client.

`python run.py` serves with production settings (DEBUG off, HTTPS redirect, HSTS); a small
reverse proxy in this process adds X-Forwarded-For and X-Forwarded-Proto: https, as nginx's
`proxy_set_header` lines in docs/operations.md do. Clients connect from distinct loopback
addresses (127.0.0.2, .3, .4) so the proxy has different clients to report.
"""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.test_run_script import free_port, start_run_py, wait_until_announced

pytestmark = [pytest.mark.integration]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "x-forwarded-proto"}


def proxy_to(app_port: int) -> type[BaseHTTPRequestHandler]:
    class ReverseProxy(BaseHTTPRequestHandler):
        """Terminates "TLS" (it says https) and forwards to the app like nginx would."""

        def do_GET(self) -> None:
            self.forward()

        def do_POST(self) -> None:
            self.forward()

        def forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            earlier = self.headers.get("X-Forwarded-For")
            client = self.client_address[0]
            headers["X-Forwarded-For"] = f"{earlier}, {client}" if earlier else client
            headers["X-Forwarded-Proto"] = "https"
            upstream = http.client.HTTPConnection("127.0.0.1", app_port, timeout=30)
            upstream.request(self.command, self.path, body or None, headers)
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    return ReverseProxy


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int, Path]]:
    """(proxy port, app port, run.py's folder) for a production-like ImageGen behind the proxy."""
    tmp_path = tmp_path_factory.mktemp("proxied")
    app_port = free_port()
    process = start_run_py(
        tmp_path,
        app_port,
        DEBUG="false",
        ALLOWED_HOSTS="imagegen.example,127.0.0.1",  # run.py's health probe says Host: imagegen.example
        SECRET_KEY="a-test-secret-key-that-is-long-enough-for-production-checks-0123456789",
        TRUSTED_PROXIES="127.0.0.1",
        LOGIN_RATE_LIMIT="3/15min",
        Q_WORKERS="1",
    )
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), proxy_to(app_port))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        wait_until_announced(tmp_path, process)
        yield proxy.server_address[1], app_port, tmp_path
    finally:
        proxy.shutdown()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def request(
    port: int, path: str, *, source: str, method: str = "GET", body: dict | None = None, **headers: str
) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    data = json.dumps(body).encode() if body is not None else None
    if data:
        headers["Content-Type"] = "application/json"
    connection.request(method, path, data, {k.replace("_", "-"): v for k, v in headers.items()})
    response = connection.getresponse()
    response.read()
    return response


def failed_login(port: int, source: str, username: str, **headers: str) -> int:
    wrong = {"username": username, "password": "wrong-password"}
    return request(port, "/api/v1/auth/token/", source=source, method="POST", body=wrong, **headers).status


def logged_clients(tmp_path: Path, request_id: str) -> set[str]:
    """The client addresses the request log has for the request(s) sent with this X-Request-ID."""
    log_file = tmp_path / "data" / "logs" / "imagegen.log"
    deadline = time.monotonic() + 10
    while request_id not in log_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    lines = [json.loads(line) for line in log_file.read_text().splitlines() if request_id in line]
    return {line["client_ip"] for line in lines if line["logger"] == "imagegen.request"}


def test_https_through_the_proxy_gets_hsts_and_no_redirect_loop(behind_proxy):
    proxy_port, _app_port, tmp_path = behind_proxy
    response = request(proxy_port, "/accounts/login/", source="127.0.0.2", X_Request_ID="via-proxy-0001")
    assert response.status == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert logged_clients(tmp_path, "via-proxy-0001") == {"127.0.0.2"}


def test_run_py_started_quietly_with_production_settings(behind_proxy):
    _proxy_port, _app_port, tmp_path = behind_proxy
    output = (tmp_path / "run.log").read_text()
    assert "ImageGen is up" in output
    assert "warning" not in output.lower() and "Invalid HTTP_HOST" not in output


def test_forwarding_headers_sent_directly_by_a_client_are_ignored(behind_proxy):
    _proxy_port, app_port, tmp_path = behind_proxy
    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9", "X-Request-ID": "forged-0001"}
    response = request(app_port, "/accounts/login/", source="127.0.0.3", **forged)
    assert response.status == 301  # still plain HTTP to Django: sent to HTTPS
    assert response.headers["Location"].startswith("https://")
    assert "Strict-Transport-Security" not in response.headers
    assert logged_clients(tmp_path, "forged-0001") == {"127.0.0.3"}


def test_failed_logins_are_counted_per_real_client_not_per_proxy(behind_proxy):
    proxy_port, _app_port, _tmp_path = behind_proxy
    statuses = [failed_login(proxy_port, "127.0.0.2", f"guess-{n}") for n in range(4)]
    assert statuses == [401, 401, 401, 429]
    # Another client behind the same proxy is not locked out by the first one's guesses...
    assert failed_login(proxy_port, "127.0.0.4", "guess-other") == 401
    # ...and a client cannot escape its own limit by writing X-Forwarded-For itself.
    forged = [failed_login(proxy_port, "127.0.0.5", f"forge-{n}", X_Forwarded_For=f"203.0.113.{n}") for n in range(4)]
    assert forged[3] == 429
