"""`sluice tls`: putting a certificate and key where the services read them, checked, replacing
the pair in place (the services put it in service without a restart); and a certificate made
here, for a trial.

A certificate authority's certificate comes from an ACME client: the installer has certbot
call `sluice tls install` after each issue and renewal (its deploy hook).
"""

import argparse
import contextlib
import grp
import ipaddress
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.settings import Settings
from engine import tls
from engine.control.overview import HostCertificate

DEFAULT_DIR = Path("/etc/sluice/tls")
CERT, KEY, ROOT = "cert.pem", "key.pem", "ca.pem"
_GROUP = "sluice"  # the services' group: it reads the pair, root alone writes it
_TRIAL_DAYS = 365
_KEPT_DAYS = 30  # a trial certificate with fewer days left is made anew by `self-signed --keep`


@dataclass(frozen=True)
class Installed:
    cert: Path
    key: Path
    certificate: tls.Certificate


def install(cert_file: Path, key_file: Path, into: Path = DEFAULT_DIR) -> Installed:
    """Copy the pair into `into` (cert.pem, key.pem), each replaced in one step, after checking
    that it can be served; BadCertificate, saying why, when it cannot (nothing is changed)."""
    try:
        chain, key = cert_file.read_bytes(), key_file.read_bytes()
    except OSError as exc:
        raise tls.BadCertificate(f"cannot read {exc.filename}: {exc.strerror}") from exc
    return _write(chain, key, into, shown=(cert_file, key_file))


def self_signed(names: list[str], into: Path = DEFAULT_DIR) -> tuple[Installed, Path]:
    """A certificate for `names` (host names or addresses) signed by a certificate authority
    made for it alone, whose key is thrown away once it has signed: trusting that authority's
    certificate (the path returned) trusts this one certificate, nothing else."""
    if not names:
        raise tls.BadCertificate("a self-signed certificate needs at least one host name")
    now = datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    # (named apart from every other trial CA: a client trusting two finds the right one)
    root_name = x509.Name([
        x509.NameAttribute(
            NameOID.COMMON_NAME, f"Sluice trial CA {secrets.token_hex(4)} for {names[0]}"
        ),
    ])  # fmt: skip
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=_TRIAL_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(root_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=_TRIAL_DAYS))
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    chain = leaf.public_bytes(pem) + root.public_bytes(pem)
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    done = _write(chain, key_pem, into, shown=None)
    _replace(into / ROOT, root.public_bytes(pem), mode=0o644)
    return done, into / ROOT


def kept_trial(names: list[str], into: Path = DEFAULT_DIR) -> Installed | None:
    """The trial certificate in `into`, when a second `self_signed` need not replace it: signed
    by the authority beside it (ca.pem, which clients may trust by now), matching its key,
    valid for every one of `names` and for more than 30 days."""
    try:
        certificate = tls.Served(into / CERT, into / KEY).certificate
        leaf = x509.load_pem_x509_certificates((into / CERT).read_bytes())[0]
        leaf.verify_directly_issued_by(x509.load_pem_x509_certificate((into / ROOT).read_bytes()))
    except (tls.BadCertificate, OSError, ValueError, TypeError, InvalidSignature):
        return None
    covered = {_general_name(n) for n in certificate.names}
    if not {_general_name(n) for n in names} <= covered:
        return None
    if certificate.not_after - datetime.now(UTC) <= timedelta(days=_KEPT_DAYS):
        return None
    return Installed(into / CERT, into / KEY, certificate)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        pass
    try:
        return x509.DNSName(name.lower())
    except ValueError as exc:  # (not ASCII: an IDN goes in its xn-- form)
        raise tls.BadCertificate(f"{name!r} is not a host name or an IP address") from exc


def _write(chain: bytes, key: bytes, into: Path, shown: tuple[Path, Path] | None) -> Installed:
    into.mkdir(parents=True, exist_ok=True)
    # Checked from copies no one else can change before anything is replaced.
    with tempfile.TemporaryDirectory(prefix=".check-", dir=into) as scratch:
        cert_copy, key_copy = Path(scratch) / CERT, Path(scratch) / KEY
        cert_copy.write_bytes(chain)
        key_copy.touch(mode=0o600)
        key_copy.write_bytes(key)
        try:
            certificate = tls.Served(cert_copy, key_copy).certificate
        except tls.BadCertificate as exc:
            message = str(exc)
            if shown is not None:
                message = message.replace(str(cert_copy), str(shown[0]))
                message = message.replace(str(key_copy), str(shown[1]))
            raise tls.BadCertificate(message) from exc
    if certificate.not_after <= datetime.now(UTC):
        raise tls.BadCertificate(
            f"the certificate expired on {certificate.not_after:%Y-%m-%d %H:%M} UTC"
        )
    # The key first: a service that looks in between sees a pair that does not match and keeps
    # serving the one it has, until the certificate follows.
    _replace(into / KEY, key, mode=0o640)
    _replace(into / CERT, chain, mode=0o640)
    return Installed(into / CERT, into / KEY, certificate)


def _replace(path: Path, data: bytes, *, mode: int) -> None:
    """Write `path` anew in one step (a rename), readable by the services' group."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        if os.geteuid() == 0:
            # (no sluice group on this host: the files stay root's)
            with contextlib.suppress(KeyError):
                os.fchown(fd, 0, grp.getgrnam(_GROUP).gr_gid)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def command(args: argparse.Namespace, settings: Settings) -> str:
    """`sluice tls install|self-signed|show`: what was done, or what is served."""
    match args.tls_command:
        case "install":
            done = install(args.cert, args.key, args.dir)
            return f"{_said(done)}\n{_configure(done, settings)}"
        case "self-signed":
            kept = kept_trial(args.names, args.dir) if args.keep else None
            if kept is None:
                done, root = self_signed(args.names, args.dir)
                said = f"{_said(done)}\n{_configure(done, settings)}"
            else:
                root = args.dir / ROOT
                said = f"{_said(kept, 'kept')}\n{_configure(kept, settings)}"
            return (
                f"{said}\n"
                f"Browsers and SDKs trust it once they trust {root}, e.g.:\n"
                f"  curl --cacert {root} https://{args.names[0]}/health\n"
                f"  Debian, Ubuntu: cp {root} /usr/local/share/ca-certificates/sluice-trial.crt"
                " && update-ca-certificates\n"
                "  Chrome, Firefox: Settings → Certificates → Authorities → Import"
            )
        case _:
            if settings.tls_cert is None:
                return "HTTPS is off: tls_cert and tls_key are not set"
            certificate = tls.describe(settings.tls_cert)
            served = HostCertificate(settings.node_name, certificate.not_after)
            return f"{settings.tls_cert}: {certificate.said()} ({served.said()})"


def _said(done: Installed, verb: str = "installed") -> str:
    names = ", ".join(done.certificate.names) or done.certificate.subject
    return f"{verb} {done.cert} and {done.key}: {done.certificate.said()}; for {names}"


def _configure(done: Installed, settings: Settings) -> str:
    if settings.tls_cert == done.cert and settings.tls_key == done.key:
        return "The services put it in service within seconds (no restart)."
    return (
        f'To serve it, set tls_cert = "{done.cert}" and tls_key = "{done.key}" (and '
        "gateway_tls_port = 443) in the configuration file, then restart sluice.target."
    )
