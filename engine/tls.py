"""HTTPS certificates: a server context from a PEM certificate chain and its key, kept up to
date while serving (a renewal replaces the files; the next handshakes use the new pair, the
connections already open keep theirs), and what a certificate says of itself.

A pair is only ever put in service whole and checked: while a renewal is half-written (the
certificate new, the key still the old one) the files do not match and the pair in service
stays, until they do.
"""

import contextlib
import os
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from engine.errors import SluiceError

Stamp = tuple[tuple[int, int, int, int], ...]
CHECK_EVERY = 5.0  # seconds between looks at the files for a renewal
REPORT_KEY = "tls_expires"  # in a heartbeat's report: when the certificate in service expires


class BadCertificate(SluiceError):
    """A certificate or key that cannot be served; the message says which file and why."""


@dataclass(frozen=True)
class Certificate:
    """What a server certificate (the first of its chain) says of itself."""

    subject: str  # its common name, else its first name
    names: tuple[str, ...]  # the host names and addresses it is valid for
    issuer: str
    not_after: datetime
    self_signed: bool

    @property
    def expires(self) -> int:
        """When it expires, in seconds since the epoch."""
        return int(self.not_after.timestamp())

    def said(self) -> str:
        return (
            f"{self.subject}, issued by {self.issuer}, "
            f"valid until {self.not_after:%Y-%m-%d %H:%M} UTC"
        )


def describe(cert_file: Path) -> Certificate:
    """The certificate at the head of `cert_file`'s chain; BadCertificate when there is none."""
    try:
        chain = x509.load_pem_x509_certificates(cert_file.read_bytes())
    except OSError as exc:
        raise BadCertificate(f"cannot read the certificate {cert_file}: {exc.strerror}") from exc
    except ValueError as exc:
        raise BadCertificate(f"{cert_file} holds no PEM certificate") from exc
    return _described(chain[0])


def _described(cert: x509.Certificate) -> Certificate:
    names: list[str] = []
    with contextlib.suppress(x509.ExtensionNotFound):
        alternative = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += alternative.get_values_for_type(x509.DNSName)
        names += [str(ip) for ip in alternative.get_values_for_type(x509.IPAddress)]
    common = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    issuer = [str(a.value) for a in cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return Certificate(
        subject=(common or names or [cert.subject.rfc4514_string()])[0],
        names=tuple(names),
        issuer=(issuer or [cert.issuer.rfc4514_string()])[0],
        not_after=cert.not_valid_after_utc,
        self_signed=cert.issuer == cert.subject,
    )


class Served:
    """A certificate and key in service, replaced when their files change.

    `context` is the one a listener is made with; each handshake is handed over to the
    context of the newest pair (its server-name callback runs for every client, with or
    without SNI), which is built whole and checked before it serves: a renewal from an RSA
    to an ECDSA key leaves nothing of the old pair behind.
    """

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self._stamp = self._refused = self._stamp_now()
        self.certificate, self._current = self._loaded()
        self.context = _new_context()
        _load(self.context, cert_file, key_file)  # (a fallback: the callback hands over first)
        self.context.sni_callback = self._hand_over

    def _hand_over(self, connection: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        connection.context = self._current

    def refresh(self) -> bool:
        """Put the files' pair in service if they changed and match: True when it was.
        BadCertificate (once for each change) when they do not make a pair: the pair in
        service stays."""
        stamp = self._stamp_now()
        if stamp in (self._stamp, self._refused):
            return False
        self._refused = stamp
        certificate, context = self._loaded()
        if self._stamp_now() != stamp:
            return False  # still being written: taken once it stands still
        self._stamp = stamp
        self.certificate, self._current = certificate, context
        return True

    def _loaded(self) -> tuple[Certificate, ssl.SSLContext]:
        """The files' pair in a context of its own, read once: what it checks is what it
        serves."""
        try:
            cert, key = self.cert_file.read_bytes(), self.key_file.read_bytes()
        except OSError as exc:
            raise BadCertificate(f"cannot read {exc.filename}: {exc.strerror}") from exc
        try:
            certificate = _described(x509.load_pem_x509_certificates(cert)[0])
        except ValueError as exc:
            raise BadCertificate(f"{self.cert_file} holds no PEM certificate") from exc
        context = _new_context()
        with _in_memory(cert) as cert_path, _in_memory(key) as key_path:
            _load(context, cert_path, key_path, shown=(self.cert_file, self.key_file))
        return certificate, context

    def _stamp_now(self) -> Stamp:
        stamps = []
        for path in (self.cert_file, self.key_file):
            try:
                status = path.stat()
            except OSError:
                stamps.append((0, 0, 0, 0))
            else:  # (the change time too: a file made readable is looked at again)
                stamps.append(
                    (status.st_ino, status.st_mtime_ns, status.st_ctime_ns, status.st_size)
                )
        return tuple(stamps)


def _new_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(["http/1.1"])
    return context


def _load(
    context: ssl.SSLContext, cert_file: Path, key_file: Path, shown: tuple[Path, Path] | None = None
) -> None:
    """Load the pair into `context`; BadCertificate naming the files as `shown` (default:
    as given) when it cannot be."""
    shown_cert, shown_key = shown or (cert_file, key_file)
    try:
        context.load_cert_chain(cert_file, key_file, password=_refuse_password(shown_key))
    except FileNotFoundError as exc:
        raise BadCertificate(f"no such file: {shown_key}") from exc  # (the certificate was read)
    except PermissionError as exc:
        raise BadCertificate(f"not allowed to read {shown_key}") from exc
    except ssl.SSLError as exc:
        mismatch = "KEY_VALUES_MISMATCH" in str(exc)
        reason = "the key is not the certificate's" if mismatch else exc.reason or str(exc)
        raise BadCertificate(f"{shown_cert} and {shown_key} cannot be served: {reason}") from exc
    except OSError as exc:
        raise BadCertificate(f"{shown_cert} and {shown_key} cannot be served: {exc}") from exc


def _refuse_password(key_file: Path) -> Callable[[], bytes]:
    """OpenSSL's question for an encrypted key's password, answered (rather than asked on a
    terminal, or failing with EINVAL without one)."""

    def refuse() -> bytes:
        raise BadCertificate(f"{key_file} is encrypted: give the key without a password")

    return refuse


@contextlib.contextmanager
def _in_memory(data: bytes) -> Iterator[Path]:
    """A path to `data` that no other process can change (a memory file of this process)."""
    fd = os.memfd_create("sluice-tls", os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        yield Path(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
