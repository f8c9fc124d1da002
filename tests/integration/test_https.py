"""HTTPS served by Sluice itself: the gateway on its TLS port beside (or instead of) the plain
one, the web UI over TLS with HSTS and Secure cookies, the plain-HTTP port answering ACME
challenges and redirecting the rest, and a renewed certificate put in service while requests
keep coming — none refused, none lost."""

import asyncio
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from appliance import certificates
from engine.control import accounts
from engine.db import connection
from engine.tls import BadCertificate, describe
from tests.conftest import WRITE_KEY, ingested
from tests.servers import GatewayProcess, free_port, start_gateway, start_web

NAME = "localhost"


def _trial(into: Path) -> tuple[Path, Path, Path]:
    """A self-signed pair for localhost and 127.0.0.1 in `into`: (cert, key, the CA to trust)."""
    done, root = certificates.self_signed([NAME, "127.0.0.1"], into)
    return done.cert, done.key, root


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path, Path]:
    return _trial(tmp_path / "tls")


@dataclass
class Https:
    gateway: GatewayProcess
    url: str  # its HTTPS port's
    plain: str  # its redirecting plain-HTTP port's (http_port)


@pytest.fixture
def https_gateway(
    workspace_config: str, tmp_path: Path, pair: tuple[Path, Path, Path]
) -> Iterator[Https]:
    """A gateway with its plain port (for the health check), an HTTPS port and a redirecting
    port."""
    cert, key, _ = pair
    port, redirect = free_port(), free_port()
    gateway = start_gateway(
        workspace_config, tmp_path,
        {"tls_cert": str(cert), "tls_key": str(key), "gateway_tls_port": str(port),
         "http_port": str(redirect), "web_port": "8443",
         "acme_dir": str(tmp_path / "webroot")},
    )  # fmt: skip
    try:
        yield Https(gateway, f"https://{NAME}:{port}", f"http://127.0.0.1:{redirect}")
    finally:
        gateway.stop()


def _trust(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def _served(url: str, ca: Path | None = None) -> x509.Certificate:
    """The certificate a TLS handshake with `url`'s host and port presents."""
    host, port = url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca)) if ca else ssl._create_unverified_context()
    with (
        socket.create_connection(("127.0.0.1", int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as wrapped,
    ):
        der = wrapped.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _batch(n: int, prefix: str) -> dict[str, Any]:
    return {"batch": [
        {"type": "track", "event": "Secured", "userId": f"u{i % 7}", "messageId": f"{prefix}-{i}"}
        for i in range(n)
    ]}  # fmt: skip


def test_the_gateway_answers_https_and_says_so_to_browser_sdks(
    https_gateway: Https, pair: tuple[Path, Path, Path], database_url: str
) -> None:
    gateway, url = https_gateway.gateway, https_gateway.url
    with httpx.Client(base_url=url, verify=_trust(pair[2]), auth=(WRITE_KEY, "")) as client:
        answer = client.post("/v1/batch", json=_batch(3, "tls"))
        assert answer.status_code == 200, answer.text
        # With no public URL set, the settings browser SDKs read carry the URL they came by.
        settings = client.get(f"/v1/projects/{WRITE_KEY}/settings").json()
        segment = settings["integrations"]["Segment.io"]
        assert (segment["protocol"], segment["apiHost"]) == ("https", f"{url[8:]}/v1")
    assert {row["message_id"] for row in ingested(database_url)} >= {"tls-0", "tls-1", "tls-2"}
    assert gateway.proc.poll() is None


def test_the_plain_port_answers_challenges_and_redirects_the_rest(
    https_gateway: Https, tmp_path: Path
) -> None:
    url, plain = https_gateway.url, https_gateway.plain
    challenges = tmp_path / "webroot/.well-known/acme-challenge"  # (acme_dir)
    challenges.mkdir(parents=True)
    (challenges / "tok_EN-1").write_text("tok_EN-1.thumbprint")
    (tmp_path / "secret").write_text("not for the world")
    with httpx.Client(base_url=plain) as client:
        answer = client.get("/.well-known/acme-challenge/tok_EN-1")
        assert (answer.status_code, answer.text) == (200, "tok_EN-1.thumbprint")
        for probe in (
            "/.well-known/acme-challenge/..%2F..%2Fsecret",
            "/.well-known/acme-challenge/missing",
            "/.well-known/acme-challenge/",
        ):
            assert client.get(probe).status_code == 404, probe  # fmt: skip
        tls_port = url.rsplit(":", 1)[1]
        posted = client.post("/v1/batch?x=1", json=_batch(1, "plain"),
                             headers={"host": "events.example.com"})  # fmt: skip
        assert posted.status_code == 308  # the method and body are kept by who follows it
        assert posted.headers["location"] == f"https://events.example.com:{tls_port}/v1/batch?x=1"
        ui = client.get("/events/abc", headers={"host": "events.example.com:80"})
        assert ui.headers["location"] == "https://events.example.com:8443/events/abc"
        assert client.get("/", headers={"host": "bad host"}).status_code == 400
        assert client.get("/", headers={"host": "[a/b?c]"}).status_code == 400
        v6 = client.get("/", headers={"host": "[::1]:80"})
        assert v6.headers["location"] == "https://[::1]:8443/"
        # Nothing decoded from the path can end the header or leave the path.
        for path, written in (
            ("/%0d%0aSet-Cookie:%20sid=evil", "/%0D%0ASet-Cookie:%20sid=evil"),
            ("/x%E2%80%A8y", "/x%E2%80%A8y"),
            ("/caf%C3%A9", "/caf%C3%A9"),
            ("/a%2F..%2F..%2Fb", "/a/../../b"),
        ):
            answer = client.get(path, headers={"host": "h.example"})
            assert answer.status_code == 308, path
            assert answer.headers["location"] == f"https://h.example:8443{written}", path
            assert "set-cookie" not in answer.headers


def test_https_only_gateway_has_no_plain_port(
    workspace_config: str, tmp_path: Path, pair: tuple[Path, Path, Path]
) -> None:
    cert, key, ca = pair
    settings = {"tls_cert": str(cert), "tls_key": str(key)}
    gateway = start_gateway(workspace_config, tmp_path, settings, trusting=ca)
    try:
        listening = gateway.output()
        assert gateway.url.startswith("https://")
        assert httpx.get(f"{gateway.url}/health", verify=_trust(ca)).status_code == 200
        with pytest.raises((httpx.ConnectError, httpx.RemoteProtocolError)):  # (HTTPS only)
            httpx.get(gateway.url.replace("https:", "http:") + "/health", timeout=5)
        assert "Traceback" not in listening
    finally:
        gateway.stop()


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"tls_cert": "{cert}"}, "set both tls_cert and tls_key"),
        ({"gateway_tls_port": "8443"}, "gateway_tls_port needs tls_cert and tls_key"),
        ({"tls_cert": "{cert}", "tls_key": "{other_key}", "gateway_tls_port": "8443"},
         "cannot be served: the key is not the certificate's"),
        ({"tls_cert": "{key}", "tls_key": "{key}", "gateway_tls_port": "8443"},
         "holds no PEM certificate"),
        ({"tls_cert": "{cert}", "tls_key": "/nowhere/key.pem", "gateway_tls_port": "8443"},
         "cannot read /nowhere/key.pem: No such file or directory"),
        ({"gateway_port": "0"}, "the gateway has no port"),
        ({"http_port": "8081"}, "http_port redirects to HTTPS: it needs gateway_tls_port"),
        ({"tls_cert": "{cert}", "tls_key": "{key}", "gateway_tls_port": "8443",
          "http_port": "8443"}, "gateway_tls_port and http_port are both 8443"),
        ({"tls_cert": "{cert}", "tls_key": "{encrypted_key}", "gateway_tls_port": "8443"},
         "is encrypted: give the key without a password"),
    ],
)  # fmt: skip
def test_https_settings_that_do_not_fit_stop_the_gateway_saying_why(
    tmp_path: Path, settings: dict[str, str], said: str, database_url: str
) -> None:
    cert, key, _ = _trial(tmp_path / "one")
    _, other_key, _ = _trial(tmp_path / "two")
    encrypted_key = tmp_path / "encrypted.pem"
    encrypted_key.write_bytes(
        serialization.load_pem_private_key(key.read_bytes(), None).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )  # fmt: skip
    values = {"cert": cert, "key": key, "other_key": other_key, "encrypted_key": encrypted_key}
    env = {f"SLUICE_{k.upper()}": v.format(**values) for k, v in settings.items()}
    (tmp_path / "empty.toml").touch()
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "gateway"], capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "SLUICE_DATABASE_URL": database_url,
             "SLUICE_DATA_DIR": str(tmp_path), "SLUICE_CONFIG": str(tmp_path / "empty.toml"),
             "SLUICE_GATEWAY_PORT": str(free_port()), **env},
        timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert said in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


class Traffic:
    """Requests sent without pause from a thread, each on a new connection (a new handshake)
    or on one kept alive, as SDKs do; every answer counted."""

    def __init__(self, url: str, ca: Path, *, keep_alive: bool) -> None:
        self.url, self.ca, self.keep_alive = url, ca, keep_alive
        self.accepted: list[str] = []
        self.failures: list[str] = []
        self.serials: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Traffic":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        n = 0
        client = httpx.Client(verify=_trust(self.ca), auth=(WRITE_KEY, ""), timeout=10)
        while not self._stop.is_set():
            n += 1
            batch = _batch(5, f"{'k' if self.keep_alive else 'n'}{n}")
            if not self.keep_alive:
                client.close()
                client = httpx.Client(verify=_trust(self.ca), auth=(WRITE_KEY, ""), timeout=10)
            try:
                answer = client.post(f"{self.url}/v1/batch", json=batch)
            except httpx.HTTPError as exc:
                self.failures.append(repr(exc))
                continue
            if answer.status_code == 200:
                self.accepted += [e["messageId"] for e in batch["batch"]]
            else:
                self.failures.append(f"{answer.status_code} {answer.text}")
        client.close()


def _wait_serving(url: str, serial: int, *, steady: int = 1) -> None:
    """Until `steady` handshakes in a row with `url` present the certificate with `serial`."""
    deadline = time.monotonic() + 30
    seen = 0
    while seen < steady:
        seen = seen + 1 if _served(url).serial_number == serial else 0
        assert time.monotonic() < deadline, "the renewed certificate was not put in service"
        time.sleep(0.2)


def test_a_renewed_certificate_is_served_while_requests_keep_coming(
    https_gateway: Https,
    pair: tuple[Path, Path, Path],
    tmp_path: Path,
    database_url: str,
) -> None:
    gateway, url = https_gateway.gateway, https_gateway.url
    cert, _, ca = pair
    before = _served(url, ca).serial_number
    renewed = tmp_path / "renewal"
    with Traffic(url, ca, keep_alive=True) as kept, Traffic(url, ca, keep_alive=False) as fresh:
        while len(kept.accepted) < 50 or len(fresh.accepted) < 50:
            time.sleep(0.05)
        # A renewal the way `sluice tls install` writes it: the key first, then the chain. The
        # new pair is signed by another CA, so the clients are told to trust both.
        new_cert, new_key, new_ca = _trial(renewed)
        bundle = tmp_path / "both.pem"
        bundle.write_bytes(ca.read_bytes() + new_ca.read_bytes())
        kept.ca = fresh.ca = bundle
        time.sleep(0.5)  # (clients made from here on trust both)
        certificates.install(new_cert, new_key, cert.parent)
        serial = x509.load_pem_x509_certificate(new_cert.read_bytes()).serial_number
        assert serial != before
        _wait_serving(url, serial)
        counted = len(fresh.accepted)
        while len(fresh.accepted) < counted + 50:  # new handshakes, on the new certificate
            time.sleep(0.05)
    assert kept.failures == [] and fresh.failures == []
    stored = {row["message_id"] for row in ingested(database_url)}
    assert set(kept.accepted + fresh.accepted) <= stored
    assert "HTTPS certificate renewed" in gateway.output()


def test_a_half_written_renewal_keeps_the_pair_in_service(
    https_gateway: Https, pair: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    gateway, url = https_gateway.gateway, https_gateway.url
    cert, key, ca = pair
    before = _served(url, ca).serial_number
    new_cert, new_key, new_ca = _trial(tmp_path / "next")
    key.write_bytes(new_key.read_bytes())  # the key is new, the certificate not yet
    deadline = time.monotonic() + 30
    while "the HTTPS certificate in service stays" not in gateway.output():
        assert time.monotonic() < deadline, gateway.output()
        time.sleep(0.2)
    assert _served(url, ca).serial_number == before  # still served, still whole
    assert "the key is not the certificate's" in gateway.output()
    cert.write_bytes(new_cert.read_bytes())
    _wait_serving(url, x509.load_pem_x509_certificate(new_cert.read_bytes()).serial_number)
    assert httpx.get(f"{url}/health", verify=_trust(new_ca)).status_code == 200


def test_the_web_ui_over_https_sends_hsts_and_secure_cookies_and_takes_a_renewal(
    database_url: str, tmp_path: Path, pair: tuple[Path, Path, Path]
) -> None:
    cert, key, ca = pair

    async def admin() -> None:
        async with connection(database_url) as conn:
            await accounts.create(conn, "admin@example.com", "admin", "correct horse battery")

    asyncio.run(admin())
    web = start_web(database_url, tmp_path, {"tls_cert": str(cert), "tls_key": str(key)},
                    trusting=ca)  # fmt: skip
    try:
        base = web.url.replace("127.0.0.1", NAME)
        with httpx.Client(base_url=base, verify=_trust(ca)) as client:
            page = client.get("/login")
            assert page.headers["strict-transport-security"] == "max-age=31536000"
            token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            signed = client.post("/login", data={
                "_csrf_token": token[1], "next": "/", "email": "admin@example.com",
                "password": "correct horse battery",
            })  # fmt: skip
            assert signed.status_code == 303, signed.text
            cookie = next(v for k, v in signed.headers.multi_items() if k == "set-cookie"
                          and v.startswith("__Host-sluice_session="))  # fmt: skip
            assert "Secure" in cookie and "HttpOnly" in cookie
            assert client.get("/").status_code == 200
        # A renewal: granian starts a process on the new certificate, then stops the old one
        # (both take connections for a few seconds).
        new_cert, new_key, new_ca = _trial(tmp_path / "next")
        bundle = tmp_path / "both.pem"
        bundle.write_bytes(ca.read_bytes() + new_ca.read_bytes())
        answers: list[int | str] = []
        stop = threading.Event()

        def visits() -> None:  # each on a new connection: a new handshake
            while not stop.is_set():
                try:
                    answers.append(httpx.get(f"{base}/login", verify=_trust(bundle)).status_code)
                except httpx.HTTPError as exc:
                    answers.append(repr(exc))

        visitor = threading.Thread(target=visits)
        visitor.start()
        try:
            certificates.install(new_cert, new_key, cert.parent)
            serial = x509.load_pem_x509_certificate(new_cert.read_bytes()).serial_number
            _wait_serving(base, serial, steady=25)
        finally:
            stop.set()
            visitor.join()
        assert len(answers) > 20 and set(answers) == {200}, answers
        assert httpx.get(f"{base}/health", verify=_trust(new_ca)).status_code == 200
    finally:
        web.stop()


def test_tls_install_takes_an_rsa_key_and_refuses_an_expired_or_encrypted_one(
    tmp_path: Path,
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    traditional = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )  # fmt: skip
    assert traditional.startswith(b"-----BEGIN RSA PRIVATE KEY-----")

    def issued(days: int) -> bytes:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa.example.com")])
        now = datetime.now(UTC)
        built = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=400))
            .not_valid_after(now + timedelta(days=days))
            .sign(key, hashes.SHA256())
        )  # fmt: skip
        return built.public_bytes(serialization.Encoding.PEM)

    (tmp_path / "in.key").write_bytes(traditional)
    (tmp_path / "in.crt").write_bytes(issued(30))
    done = certificates.install(tmp_path / "in.crt", tmp_path / "in.key", tmp_path / "tls")
    assert done.key.read_bytes() == traditional
    assert done.certificate.subject == "rsa.example.com"
    for installed in (done.cert, done.key):  # root's, readable by the services' group only
        assert installed.stat().st_mode & 0o777 == 0o640
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )  # fmt: skip
    (tmp_path / "encrypted.key").write_bytes(encrypted)
    with pytest.raises(BadCertificate, match="encrypted: give the key without a password"):
        certificates.install(tmp_path / "in.crt", tmp_path / "encrypted.key", tmp_path / "tls")
    (tmp_path / "old.crt").write_bytes(issued(-1))
    with pytest.raises(BadCertificate, match="the certificate expired on"):
        certificates.install(tmp_path / "old.crt", tmp_path / "in.key", tmp_path / "tls")
    assert done.cert.read_bytes() == (tmp_path / "in.crt").read_bytes()  # nothing changed


def test_a_renewal_to_another_kind_of_key_leaves_nothing_of_the_old_pair(
    https_gateway: Https, pair: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """From RSA to ECDSA (certbot's default since 2.0): OpenSSL keeps a certificate per kind of
    key in a context, so a client that takes only RSA could have gone on getting the old one."""
    cert, _, _ = pair
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_pair = tmp_path / "rsa"
    rsa_pair.mkdir()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = datetime.now(UTC)
    issued = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=9))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (rsa_pair / "cert.pem").write_bytes(issued.public_bytes(serialization.Encoding.PEM))
    (rsa_pair / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))  # fmt: skip
    certificates.install(rsa_pair / "cert.pem", rsa_pair / "key.pem", cert.parent)
    _wait_serving(https_gateway.url, issued.serial_number)
    renewed, _ = certificates.self_signed([NAME], tmp_path / "ec")  # ECDSA
    certificates.install(renewed.cert, renewed.key, cert.parent)
    serial = x509.load_pem_x509_certificate(renewed.cert.read_bytes()).serial_number
    _wait_serving(https_gateway.url, serial)
    only_rsa = ssl._create_unverified_context()
    only_rsa.maximum_version = ssl.TLSVersion.TLSv1_2
    only_rsa.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
    port = int(https_gateway.url.rsplit(":", 1)[1])
    with (
        pytest.raises(ssl.SSLError),  # no RSA certificate any more: no handshake
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        only_rsa.wrap_socket(raw, server_hostname=NAME),
    ):
        pass


def test_the_gateway_reports_the_certificate_in_service_with_its_heartbeat(
    https_gateway: Https, pair: tuple[Path, Path, Path], tmp_path: Path, database_url: str
) -> None:
    cert, _, _ = pair

    def reported() -> set[int]:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT report->>'tls_expires' FROM heartbeats WHERE role = 'gateway'"
            ).fetchall()
        return {int(row[0]) for row in rows if row[0] is not None}

    first = describe(cert).expires
    deadline = time.monotonic() + 30
    while reported() != {first}:
        assert time.monotonic() < deadline, reported()
        time.sleep(0.2)
    renewed, _ = certificates.self_signed([NAME], tmp_path / "later")
    later = x509.load_pem_x509_certificate(renewed.cert.read_bytes())
    # (made a second later at least: its expiry differs)
    while int(later.not_valid_after_utc.timestamp()) == first:
        time.sleep(0.5)
        renewed, _ = certificates.self_signed([NAME], tmp_path / "later")
        later = x509.load_pem_x509_certificate(renewed.cert.read_bytes())
    certificates.install(renewed.cert, renewed.key, cert.parent)
    deadline = time.monotonic() + 30  # (reported at once: the renewal makes it beat)
    while reported() != {int(later.not_valid_after_utc.timestamp())}:
        assert time.monotonic() < deadline, reported()
        time.sleep(0.2)


def test_the_tls_command_installs_makes_and_shows_certificates(tmp_path: Path) -> None:
    def sluice(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        (tmp_path / "empty.toml").touch()
        env = {"PATH": "/usr/bin:/bin", "SLUICE_CONFIG": str(tmp_path / "empty.toml"),
               **{f"SLUICE_{k.upper()}": v for k, v in settings.items()}}  # fmt: skip
        return subprocess.run([sys.executable, "-m", "appliance", "tls", *args], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    made = sluice("self-signed", "events.example.com", "10.0.0.5", "--dir", str(tmp_path / "a"))
    assert made.returncode == 0, made.stderr
    assert "for events.example.com, 10.0.0.5" in made.stdout
    assert f"trust {tmp_path / 'a/ca.pem'}" in made.stdout
    assert f'set tls_cert = "{tmp_path / "a/cert.pem"}"' in made.stdout  # (not served yet)
    # --keep keeps a trial certificate that is still good for the names (clients trusting its
    # ca.pem go on trusting it), and makes a new one when it is not.
    first = (tmp_path / "a/ca.pem").read_bytes()
    kept = sluice("self-signed", "--keep", "10.0.0.5", "Events.example.com", "--dir",
                  str(tmp_path / "a"))  # fmt: skip
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.startswith(f"kept {tmp_path / 'a/cert.pem'} and ")
    assert (tmp_path / "a/ca.pem").read_bytes() == first
    for names in (["events.example.com", "10.0.0.6"], ["other.example.com"]):
        remade = sluice("self-signed", "--keep", *names, "--dir", str(tmp_path / "a"))
        assert remade.stdout.startswith("installed "), remade.stdout
        assert (tmp_path / "a/ca.pem").read_bytes() != first
        first = (tmp_path / "a/ca.pem").read_bytes()
    # Not one of its own: a pair whose authority is not the ca.pem beside it.
    shutil.copy(tmp_path / "a/ca.pem", tmp_path / "other-ca.pem")
    sluice("self-signed", "other.example.com", "--dir", str(tmp_path / "a"))
    shutil.copy(tmp_path / "other-ca.pem", tmp_path / "a/ca.pem")
    mixed = sluice("self-signed", "--keep", "other.example.com", "--dir", str(tmp_path / "a"))
    assert mixed.stdout.startswith("installed "), mixed.stdout
    installed = sluice(
        "install", str(tmp_path / "a/cert.pem"), str(tmp_path / "a/key.pem"),
        "--dir", str(tmp_path / "b"),
        tls_cert=str(tmp_path / "b/cert.pem"), tls_key=str(tmp_path / "b/key.pem"),
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    assert "put it in service within seconds (no restart)" in installed.stdout
    shown = sluice("show", tls_cert=str(tmp_path / "b/cert.pem"))
    assert re.search(r"valid until \S+ \S+ UTC \(expires \S+, in 36[45] days\)", shown.stdout)
    assert "HTTPS is off" in sluice("show").stdout
    refused = sluice("install", str(tmp_path / "a/key.pem"), str(tmp_path / "a/key.pem"))
    assert refused.returncode == 1
    assert refused.stderr == f"sluice: {tmp_path / 'a/key.pem'} holds no PEM certificate\n"


def test_a_trial_certificate_near_its_end_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made, _ = certificates.self_signed(["a.example.com"], tmp_path)
    assert certificates.kept_trial(["a.example.com"], tmp_path) == made
    monkeypatch.setattr(certificates, "_KEPT_DAYS", 366)  # (it is good for 365 days)
    assert certificates.kept_trial(["a.example.com"], tmp_path) is None
