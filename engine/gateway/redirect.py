"""The plain-HTTP port of a host that serves HTTPS (port 80): it answers the ACME HTTP-01
challenges a certificate authority asks while a certificate is issued or renewed (the files an
ACME client such as certbot writes under `<webroot>/.well-known/acme-challenge/`), and sends
everything else to HTTPS with a permanent redirect that keeps the method: the gateway's paths
to the gateway's HTTPS port, the rest (the web UI) to the UI's.
"""

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from engine.gateway.http import Answer, Request

CHALLENGES = Path(".well-known/acme-challenge")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # (ACME tokens are base64url: RFC 8555 §8.3)
_GATEWAY_PATHS = ("/v1/", "/beacon/", "/pixel/", "/sdk/", "/sourceConfig")
_TEXT = ("content-type", "text/plain; charset=utf-8")
_PATH = "/:@!$&'()*+,;=-._~"  # what a path keeps as it is (RFC 3986 pchar, and "/")
_QUERY = _PATH + "?%"  # (a query string arrives still encoded)


@dataclass(frozen=True)
class Redirects:
    webroot: Path  # the ACME client's webroot
    gateway_port: int  # the gateway's HTTPS port
    web_port: int | None  # the web UI's HTTPS port; None: the UI is not served over HTTPS here

    async def handle(self, request: Request) -> Answer:
        path = request.path
        challenge = f"/{CHALLENGES}/"
        if path.startswith(challenge):
            return self._challenge(request.method, path.removeprefix(challenge))
        host = _hostname(request.authority)
        gateway = path.startswith(_GATEWAY_PATHS) or path == "/health"
        port = self.gateway_port if gateway or self.web_port is None else self.web_port
        if not host:
            return 400, [_TEXT], b"this address answers only with a Host header: use HTTPS\n"
        # (the path as received was decoded: written out again, nothing in it can end the
        # header line or leave the path)
        target = f"https://{host}{'' if port == 443 else f':{port}'}{quote(path, safe=_PATH)}"
        if request.query_string:
            target += f"?{quote(request.query_string, safe=_QUERY)}"
        body = f"moved to {target}\n".encode()
        return 308, [("location", target), _TEXT], body

    def _challenge(self, method: str, token: str) -> Answer:
        if method not in ("GET", "HEAD") or not _TOKEN.fullmatch(token):
            return 404, [_TEXT], b"no such challenge\n"
        try:
            key_authorization = (self.webroot / CHALLENGES / token).read_bytes()
        except OSError:
            return 404, [_TEXT], b"no such challenge\n"
        return 200, [_TEXT], key_authorization


def _hostname(authority: str) -> str:
    """The host name of a Host header (without its port), or "" when it is not one."""
    host = authority.strip().lower()
    if host.startswith("["):  # an IPv6 address
        literal = host[1:].partition("]")[0]
        try:
            return f"[{ipaddress.IPv6Address(literal)}]"
        except ValueError:
            return ""
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return host if re.fullmatch(r"[a-z0-9.-]{1,253}", host) else ""
