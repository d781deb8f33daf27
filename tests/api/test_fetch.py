"""URL fetching: SSRF refusals (loopback, private, link-local, IPv6 loopback, IPv4-mapped,
names resolving to loopback, redirects to loopback) and a fetch that works through an
explicit allow-list. Test servers listen on 127.0.0.1/127.0.0.2 only; the private and
link-local addresses are refused before any connection is attempted."""

from __future__ import annotations

import http.server
import ipaddress
import threading
from collections.abc import Callable, Iterator

import pytest
from tests.api.conftest import BRIDGE, Api

from bastion.api.fetch import FetchFailed, FetchPolicy, FetchRefused, fetch
from bastion.errors import LimitExceeded

BODY = BRIDGE.read_bytes()


class _Handler(http.server.BaseHTTPRequestHandler):
    redirect_to: str | None = None

    def do_GET(self) -> None:
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", type(self).redirect_to or "/")
            self.end_headers()
            return
        if self.path.startswith("/big"):
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            self.wfile.write(b"\0" * 600_000)
            return
        self.send_response(200)
        # A lie on purpose: the type must be sniffed from the bytes.
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Callable[[str], tuple[str, type[_Handler]]]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(host: str) -> tuple[str, type[_Handler]]:
        handler = type("H", (_Handler,), {})
        srv = http.server.ThreadingHTTPServer((host, 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://{host}:{srv.server_address[1]}", handler

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _policy(*nets: str, **kw: object) -> FetchPolicy:
    return FetchPolicy(True, tuple(ipaddress.ip_network(n) for n in nets), **kw)  # type: ignore[arg-type]


def test_disabled_by_default() -> None:
    with pytest.raises(FetchRefused, match="disabled"):
        fetch("http://example.com/", FetchPolicy())


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/x.jpg",
    "http://10.0.0.1/x.jpg",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:{port}/x.jpg",
    "http://[::ffff:127.0.0.1]:{port}/x.jpg",
    "http://localhost:{port}/x.jpg",
    "http://0.0.0.0:{port}/",
    "http://224.0.0.1/",
    "ftp://example.com/x",
    "file:///etc/passwd",
    "http://user:pw@example.com/",
])
def test_non_public_addresses_are_refused(server: Callable[[str], tuple[str, type[_Handler]]],
                                          url: str) -> None:
    base, _ = server("127.0.0.1")
    port = base.rsplit(":", 1)[1]
    with pytest.raises(FetchRefused):
        fetch(url.format(port=port), _policy())


def test_allow_list_lets_a_fetch_through_and_redirects_are_checked(
    server: Callable[[str], tuple[str, type[_Handler]]],
) -> None:
    allowed, handler = server("127.0.0.2")
    refused, _ = server("127.0.0.1")
    policy = _policy("127.0.0.2/32")
    got = fetch(allowed + "/picture.txt", policy)
    assert got.data == BODY and got.address == "127.0.0.2"
    handler.redirect_to = refused + "/x.jpg"
    with pytest.raises(FetchRefused, match="loopback"):
        fetch(allowed + "/redirect", policy)
    handler.redirect_to = allowed + "/again"
    got = fetch(allowed + "/redirect", policy)
    assert got.redirects == 1
    handler.redirect_to = "/redirect"  # a loop
    with pytest.raises(FetchFailed, match="redirects"):
        fetch(allowed + "/redirect", policy)
    with pytest.raises(LimitExceeded):
        fetch(allowed + "/big", _policy("127.0.0.2/32", max_bytes=500_000))


def test_api_fetches_through_the_allow_list_and_sniffs_the_type(
    make_api: Callable[..., Api], server: Callable[[str], tuple[str, type[_Handler]]],
) -> None:
    allowed, _ = server("127.0.0.2")
    refused, _ = server("127.0.0.1")
    api = make_api(fetch_urls=True, fetch_allow_networks="127.0.0.2/32", fetch_max_bytes=500_000)
    h = api.h("content:submit")
    r = api.client.post("/v1/content", headers=h,
                        json={"content_id": "u1", "fetch_url": allowed + "/photo.txt"})
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["status"] == "match" and v["media_type"] == "image"
    r = api.client.post("/v1/content", headers=h,
                        json={"content_id": "u2", "fetch_url": refused + "/photo.jpg"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "fetch_url"
    r = api.client.post("/v1/content", headers=h,
                        json={"content_id": "u3", "fetch_url": allowed + "/big"})
    assert r.status_code == 413
