"""What the sender says when no answer comes: a sentence naming the host and port and the
cause a person can act on, never a Python repr and never the URL (it may hold a token)."""

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from engine.destinations.base import Request
from engine.pipeline.delivery.sender import MalformedRequest, Sender, TransportError

Serve = Callable[[socket.socket], None]


@contextmanager
def listening(serve: Serve) -> Iterator[int]:
    """A loopback TCP server treating each connection with `serve`; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed: the test is over
            serve(conn)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield port
    finally:
        server.close()


def free_port() -> int:
    """A port nothing listens on."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


async def refusal(
    url: str,
    timeout: float = 5,
    headers: dict[str, str] | None = None,
    error: type[Exception] = TransportError,
) -> str:
    """What the sender says when sending to `url` fails with `error`."""
    sender = Sender()
    await sender.start()
    try:
        with pytest.raises(error) as raised:
            await sender.send(Request("POST", url, headers or {}, body={"a": 1}), timeout)
    finally:
        await sender.close()
    said = str(raised.value)
    assert "token" not in said and "hush" not in said and "Error" not in said and "{" not in said
    return said


@pytest.mark.parametrize(
    ("url", "headers", "said"),
    [
        ("ftp://a.example.com/in?token=hush", {}, "URL scheme is not allowed"),
        ("/in?token=hush", {}, "relative URL without a base"),
        ("https://a.example.com/in", {"Authorization": "Bearer hush\n"}, "invalid header value"),
    ],
)
async def test_a_request_that_cannot_be_made_says_why_but_not_what_it_held(
    url: str, headers: dict[str, str], said: str
) -> None:
    told = await refusal(url, headers=headers, error=MalformedRequest)
    assert told == f"the request could not be made: {said}"


async def test_a_closed_port_is_a_refused_connection() -> None:
    port = free_port()
    said = await refusal(f"http://127.0.0.1:{port}/in?token=secret")
    assert said == f"could not connect to 127.0.0.1:{port}: connection refused"


async def test_a_name_that_does_not_resolve_says_so() -> None:
    said = await refusal("https://hooks.example.invalid/in?token=secret")
    assert said.startswith("could not connect to hooks.example.invalid:443: no such host")


async def test_a_silent_server_is_a_timeout_with_its_seconds() -> None:
    held: list[socket.socket] = []
    with listening(held.append) as port:  # accepts, reads nothing, never answers
        said = await refusal(f"http://127.0.0.1:{port}/in?token=secret", timeout=0.5)
    assert said == f"timed out after 0.5 s waiting for an answer from 127.0.0.1:{port}"


async def test_a_connection_closed_before_the_answer_says_so() -> None:
    def hang_up(conn: socket.socket) -> None:
        conn.recv(1000)
        conn.close()

    with listening(hang_up) as port:
        said = await refusal(f"http://127.0.0.1:{port}/in?token=secret")
    assert said == f"127.0.0.1:{port} closed the connection before answering"


async def test_an_untrusted_certificate_is_a_tls_sentence(tmp_path: Path) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed(tmp_path))

    def handshake(conn: socket.socket) -> None:
        with suppress(ssl.SSLError, OSError):  # the client hangs up: it does not trust it
            context.wrap_socket(conn, server_side=True)

    with listening(handshake) as port:
        said = await refusal(f"https://127.0.0.1:{port}/in?token=secret")
    assert said.startswith(f"TLS: certificate verify failed for 127.0.0.1:{port} (invalid peer")


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost no one vouches for, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert, pem = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))  # fmt: skip
    return cert, pem
