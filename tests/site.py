"""A web site of its own origin, serving one page: where the browser SDKs' tests load them."""

import contextlib
import http.server
import ssl
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def site(html: str, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """`html` served at / on a free port of `host` (over HTTPS with `tls`): the site's URL."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((host, 0), Page)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        scheme = "http" if tls is None else "https"
        yield f"{scheme}://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
