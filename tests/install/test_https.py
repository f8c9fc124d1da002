"""The installer's HTTPS, on a real systemd (a Debian bookworm container, as in test_install):
an HTTP install moved to HTTPS with `--domain`, whose certificate comes from a real ACME CA
(pebble, Debian's package, in the container, with pebble-challtestsrv as the DNS it asks),
through certbot and port 80; a renewal while events flow; a real browser SDK sending over
HTTPS from a page of another origin; then another domain, `--tls-cert/--tls-key` and
`--self-signed`, each a re-run switching the mode; a fresh HTTPS install, and `uninstall.sh
--purge`. The tests run in order and share the container."""

import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography import x509
from playwright.sync_api import sync_playwright

from appliance import certificates
from e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.install.conftest import SERVICES, active, install, wait_delivered
from tests.install.container import GUEST_ADDRESS, HOST_ADDRESS, Container
from tests.sink import Sink
from tests.site import site

DOMAIN = "sluice.test"
OTHER = "events.sluice.test"  # (a second domain, which takes over from the first)
ACME = "https://127.0.0.1:14000/dir"
PEBBLE_TRUST = "REQUESTS_CA_BUNDLE=/root/pebble/ca.pem"  # (pebble's own HTTPS, for certbot)
PEBBLE_CONFIG = {
    "pebble": {
        "listenAddress": "0.0.0.0:14000",
        "managementListenAddress": "0.0.0.0:15000",
        "certificate": "/root/pebble/cert.pem",
        "privateKey": "/root/pebble/key.pem",
        "httpPort": 80,  # where it checks HTTP-01 challenges: Sluice's gateway
        "tlsPort": 443,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
    }
}


class Installed:
    write_key = ""  # the default source's, as the first (plain HTTP) run said
    pebble_root = ""  # the root pebble signs with (PEM), from its management port


# --- what the container serves ------------------------------------------------------------


def served(name: str, port: int = 443, trusted: str | None = None) -> x509.Certificate:
    """The certificate the container serves on `port` to a client asking for `name`; with
    `trusted` (PEM), checked: its chain leads there and it is `name`'s."""
    context = ssl.create_default_context(cadata=trusted)
    if trusted is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((GUEST_ADDRESS, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def wait_served(port: int, new: Callable[[x509.Certificate], bool], name: str = DOMAIN) -> None:
    """Until every connection gets the `new` certificate, for 4 s: a renewal is put in service
    by each gateway process on its own, and the web UI starts a new process that shares the
    port with the old one for up to 3.5 s (granian's respawn interval)."""
    deadline = time.monotonic() + 40
    since = time.monotonic()
    while time.monotonic() - since < 4:
        certificate = served(name, port)
        if not new(certificate):
            since = time.monotonic()
        assert time.monotonic() < deadline, f"still served on {port}: {certificate.issuer}"
        time.sleep(0.1)


def client(trusted: str) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cadata=trusted), timeout=10)


def send_https(
    http: httpx.Client, events: list[dict[str, Any]], name: str = DOMAIN, key: str = ""
) -> httpx.Response:
    """A batch to the gateway's HTTPS port, as a client that resolves `name` to the container."""
    return http.post(
        f"https://{GUEST_ADDRESS}/v1/batch", json={"batch": events},
        auth=(key or Installed.write_key, ""), headers={"host": name},
        extensions={"sni_hostname": name},
    )  # fmt: skip


def send_plain(events: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(f"http://{GUEST_ADDRESS}:8080/v1/batch", json={"batch": events},
                      auth=(Installed.write_key, ""), timeout=10)  # fmt: skip


def events(prefix: str, count: int) -> list[dict[str, Any]]:
    return [{"type": "track", "userId": f"u{n % 3}", "event": prefix, "messageId": f"{prefix}-{n}"}
            for n in range(count)]  # fmt: skip


def ids(batch: list[dict[str, Any]]) -> set[str]:
    return {e["messageId"] for e in batch}


def setting(host: Container, name: str) -> str | None:
    config = (host.root / "etc/sluice/sluice.toml").read_text()
    found = re.findall(rf"^{name} *= *\"?([^\"\n]*)\"?$", config, re.M)
    return found[-1] if found else None


def said(done: subprocess.CompletedProcess[str]) -> str:
    return f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"


# --- the ACME CA ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pebble(host: Container) -> str:
    """pebble and pebble-challtestsrv running in the container: pebble's directory URL. Its
    own HTTPS certificate (the Debian package has none) is made here, for its addresses; the
    DNS knows no name until a test adds one."""
    folder = host.root / "root/pebble"
    certificates.self_signed(["localhost", "127.0.0.1", GUEST_ADDRESS], into=folder)
    (folder / "config.json").write_text(json.dumps(PEBBLE_CONFIG))
    host.run("apt-get update -q && DEBIAN_FRONTEND=noninteractive"
             " apt-get install -y -q --no-install-recommends pebble")  # fmt: skip
    host.run(
        "systemd-run --unit=challtestsrv pebble-challtestsrv -defaultIPv4 '' -defaultIPv6 ''"
        " -http01 '' -https01 '' -tlsalpn01 '' -dns01 127.0.0.1:8053 -management :8055"
    )
    host.run(
        "systemd-run --unit=pebble -E PEBBLE_VA_NOSLEEP=1 -E PEBBLE_WFE_NONCEREJECT=0"
        " pebble -config /root/pebble/config.json -dnsserver 127.0.0.1:8053"
    )
    ca = (folder / "ca.pem").read_text()
    deadline = time.monotonic() + 30
    while True:
        try:
            with client(ca) as http:
                http.get(f"https://{GUEST_ADDRESS}:14000/dir").raise_for_status()
                http.get(f"http://{GUEST_ADDRESS}:8055/")  # (the DNS's management: up?)
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, host.run(
                "journalctl -u pebble -u challtestsrv --no-pager", check=False
            ).stdout
            time.sleep(0.2)
    return ACME


# --- the tests -------------------------------------------------------------------------------


def test_a_plain_http_install_to_move_to_https(host: Container, sink: Sink) -> None:
    done = install(host)
    assert done.returncode == 0, said(done)
    key = re.search(r"curl -u '([^:']+):'", done.stdout)
    assert key is not None
    Installed.write_key = key[1]
    (host.root / "root/workspace.yaml").write_text(
        "destinations:\n"
        f"  - {{name: sink, type: webhook, config: {{webhookUrl: '{sink.url}/in'}}}}\n"
        "connections:\n  - {source: default, destination: sink}\n"
    )
    host.run("sluice config apply /root/workspace.yaml")
    batch = events("plain", 5)
    assert send_plain(batch).status_code == 200
    wait_delivered(sink, ids(batch))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--domain", "Sluice.test"], "--domain needs a host name in lowercase with at least"),
        (["--domain", "a-.sluice.test"], "--domain needs a host name"),
        (["--domain", "sluice"], "--domain needs a host name"),
        (["--domain", "10.0.0.1"], "--domain needs a host name"),
        (["--domain", "sluice.test", "--acme-directory", "http://ca.test/dir"],
         "--acme-directory needs an https:// URL"),
        (["--self-signed", "--public-url", 'https://a"b'], "--public-url and --web-address cannot"),
        (["--self-signed", "--web-address", "0.0.0.0\\"], "--public-url and --web-address cannot"),
        (["--domain", DOMAIN, "--roles", "worker,web"], "--domain needs the gateway on this host"),
    ],
)  # fmt: skip
def test_options_that_do_not_fit_are_refused_before_anything_changes(
    host: Container, options: list[str], message: str
) -> None:
    before = (host.root / "etc/sluice/sluice.toml").read_text()
    done = install(host, *options)
    assert done.returncode == 1, said(done)
    assert message in done.stderr
    assert (host.root / "etc/sluice/sluice.toml").read_text() == before


def test_a_domain_the_ca_cannot_check_says_why_and_serves_a_placeholder(
    host: Container, sink: Sink, pebble: str
) -> None:
    # A setting of the administrator's, which the move to HTTPS keeps.
    with (host.root / "etc/sluice/sluice.toml").open("a") as config:
        config.write("retention_days = 45.0\n")
    # pebble's DNS does not know sluice.test yet: the CA cannot reach this host.
    done = install(host, "--domain", DOMAIN, "--acme-directory", pebble, env=PEBBLE_TRUST)
    assert done.returncode == 1, said(done)
    assert setting(host, "retention_days") == "45.0"
    assert setting(host, "tls_cert") == "/etc/sluice/tls/cert.pem"
    assert f"certbot got no certificate for {DOMAIN} (its output is above)" in done.stderr
    assert f"Check that {DOMAIN}'s DNS" in done.stderr and "port 80" in done.stderr
    assert "Certbot failed to authenticate some domains" in done.stdout  # (its own words)
    assert f'could not resolve URL "http://{DOMAIN}:80/.well-known/acme-challenge/' in done.stdout
    # The move from HTTP opens the web UI to the network, which is said.
    assert "the web UI now answers on every address of this host, over HTTPS (port 8443)" in (
        done.stdout
    )
    assert (setting(host, "web_host"), setting(host, "web_port")) == ("0.0.0.0", "8443")
    # An upgrade: the plain port stays, said once.
    assert "the plain-HTTP gateway port 8080 stays open" in done.stdout
    assert setting(host, "gateway_port") == "8080"
    assert setting(host, "http_port") == "80" and setting(host, "gateway_tls_port") == "443"
    assert setting(host, "public_url") == f"https://{DOMAIN}"
    # The placeholder serves, for the domain, from the gateway and the web UI.
    for port in (443, 8443):
        placeholder = served(DOMAIN, port)
        assert "Sluice trial CA" in placeholder.issuer.rfc4514_string()
    # The write key and the destination are kept: events over the plain port and HTTPS arrive.
    batch = events("placeholder-plain", 5)
    assert send_plain(batch).status_code == 200
    ca = (host.root / "etc/sluice/tls/ca.pem").read_text()
    over_https = events("placeholder-https", 5)
    with client(ca) as http:
        assert send_https(http, over_https).status_code == 200
    wait_delivered(sink, ids(batch) | ids(over_https))
    assert active(host) == dict.fromkeys(SERVICES, "active")


def test_a_domain_gets_its_certificate_from_the_ca(
    host: Container, sink: Sink, pebble: str
) -> None:
    httpx.post(f"http://{GUEST_ADDRESS}:8055/add-a",
               json={"host": DOMAIN, "addresses": [GUEST_ADDRESS]}).raise_for_status()  # fmt: skip
    done = install(host, "--domain", DOMAIN, "--acme-directory", pebble, env=PEBBLE_TRUST)
    assert done.returncode == 0, said(done)
    assert f"  gateway: https://{DOMAIN}" in done.stdout
    assert f"  web UI:  https://{DOMAIN}:8443" in done.stdout
    assert "now answers on every address" not in done.stdout  # (it did already)
    pebble_ca = (host.root / "root/pebble/ca.pem").read_text()
    with client(pebble_ca) as http:
        root = http.get(f"https://{GUEST_ADDRESS}:15000/roots/0")
    root.raise_for_status()
    Installed.pebble_root = root.text
    for port in (443, 8443):  # the gateway and the web UI, put in service without a restart
        wait_served(port, lambda c: "Pebble" in c.issuer.rfc4514_string())
        leaf = served(DOMAIN, port, Installed.pebble_root)
        assert (
            x509.DNSName(DOMAIN)
            in leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        )
    # certbot, as root, writes the challenges to a directory of root's, which the gateway reads.
    assert setting(host, "acme_dir") == "/var/lib/sluice-acme"
    assert host.run("stat -c '%U %a' /var/lib/sluice-acme").stdout.split() == ["root", "755"]
    # Renewals: Debian's timer runs `certbot renew`, which calls the installer's deploy hook.
    assert host.run("systemctl is-enabled certbot.timer").stdout.strip() == "enabled"
    renewal = (host.root / f"etc/letsencrypt/renewal/{DOMAIN}.conf").read_text()
    assert "/usr/local/bin/sluice tls install" in renewal
    # The lineage the installer owns, the only one it ever deletes.
    assert (host.root / "etc/sluice/tls/certbot-lineage").read_text() == f"{DOMAIN}\n"
    capabilities = host.run("systemctl show -p CapabilityBoundingSet sluice-gateway").stdout
    assert capabilities.strip() == "CapabilityBoundingSet=cap_net_bind_service"
    batch = events("acme", 10)
    with client(Installed.pebble_root) as http:
        assert send_https(http, batch).status_code == 200
    wait_delivered(sink, ids(batch))


def test_the_web_ui_over_https_signs_in_with_secure_cookies(host: Container) -> None:
    admin = (host.root / "var/lib/sluice/initial-admin-password").read_text()
    password, email = re.fullmatch(r"(\S+)\n# the one-time password of (\S+);.*\n", admin,
                                   re.S).groups()  # type: ignore[union-attr]  # fmt: skip
    web = f"https://{GUEST_ADDRESS}:8443"
    options: dict[str, Any] = {"headers": {"host": f"{DOMAIN}:8443"},
                               "extensions": {"sni_hostname": DOMAIN}}  # fmt: skip
    with client(Installed.pebble_root) as http:
        page = http.get(f"{web}/login", **options)
        assert page.status_code == 200
        assert page.headers["strict-transport-security"] == "max-age=31536000"
        for cookie in page.headers.get_list("set-cookie"):
            assert cookie.startswith("__Host-") and "; secure" in cookie.lower(), cookie
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        signed_in = http.post(
            f"{web}/login", data={"_csrf_token": token[1], "email": email,
                                  "password": password, "next": "/"}, **options,
        )  # fmt: skip
        assert signed_in.status_code == 303, signed_in.text
        sessions = [c for c in signed_in.headers.get_list("set-cookie")
                    if c.startswith("__Host-sluice_session=")]  # fmt: skip
        assert len(sessions) == 1 and "; secure" in sessions[0].lower(), sessions
        # The session holds: where it leads (choosing one's own password) is shown.
        shown = signed_in
        for _ in range(3):
            path = urlsplit(shown.headers["location"])._replace(scheme="", netloc="").geturl()
            shown = http.get(f"{web}{path}", **options)
            if shown.status_code != 303:
                break
        assert shown.status_code == 200, shown.text
        assert "Sign out" in shown.text


def test_port_80_sends_everything_else_to_https(host: Container) -> None:
    for path, target in (("/v1/batch?a=1", f"https://{DOMAIN}/v1/batch?a=1"),
                         ("/login", f"https://{DOMAIN}:8443/login")):  # fmt: skip
        answer = httpx.get(f"http://{GUEST_ADDRESS}{path}", headers={"host": DOMAIN}, timeout=10)
        assert (answer.status_code, answer.headers["location"]) == (308, target)


def test_a_renewal_while_events_flow_loses_none(host: Container, sink: Sink) -> None:
    before = served(DOMAIN).serial_number
    accepted: list[str] = []
    answers: dict[str, int] = {}
    visits: dict[str, int] = {}
    stop = threading.Event()

    def count(into: dict[str, int], send: Callable[[], httpx.Response]) -> bool:
        try:
            status = str(send().status_code)
        except httpx.HTTPError as exc:
            status = type(exc).__name__
        into[status] = into.get(status, 0) + 1
        return status == "200"

    def traffic() -> None:  # like an SDK: a batch not accepted is sent again
        n = 0
        while not stop.is_set():
            batch = [{"type": "track", "userId": f"u{(n + i) % 7}", "event": "Renewal",
                      "messageId": f"renew-{n + i}"} for i in range(5)]  # fmt: skip
            with client(Installed.pebble_root) as http:  # (a new connection: a new handshake)
                if count(answers, partial(send_https, http, batch)):
                    accepted.extend(e["messageId"] for e in batch)
                    n += 5
            time.sleep(0.05)  # (about 60 events a second: enough to span it)

    def browsing() -> None:  # the web UI, a new connection each time too
        while not stop.is_set():
            with client(Installed.pebble_root) as http:
                count(visits, partial(
                    http.get, f"https://{GUEST_ADDRESS}:8443/login",
                    headers={"host": f"{DOMAIN}:8443"}, extensions={"sni_hostname": DOMAIN},
                ))  # fmt: skip
            time.sleep(0.05)

    threads = [threading.Thread(target=traffic), threading.Thread(target=browsing)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        # (without a terminal certbot first sleeps up to 8 minutes, to spread the CA's load)
        renewed = host.run(
            f"env {PEBBLE_TRUST} certbot renew --force-renewal --no-random-sleep-on-renew",
            check=False,
        )
        assert renewed.returncode == 0, said(renewed)
        for port in (443, 8443):  # (each process looks every 5 s)
            wait_served(port, lambda c: c.serial_number != before)
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    served(DOMAIN, trusted=Installed.pebble_root)
    # Not one refused or dropped by the renewal, on either port.
    assert set(answers) == {"200"}, answers
    assert set(visits) == {"200"} and visits["200"] > 20, visits
    assert len(accepted) > 50
    wait_delivered(sink, set(accepted))


def test_a_browser_sdk_on_another_https_site_sends_there(
    host: Container, sink: Sink, tmp_path: Path
) -> None:
    sdk = host.root / "var/lib/sluice/sdk"
    if not (sdk / "rudderstack").exists():  # (the container could not reach the npm registry)
        subprocess.run([sys.executable, "-m", "appliance", "sdk", "install"], check=True,
                       env={**os.environ, "SLUICE_SDK_DIR": str(tmp_path / "sdk"),
                            "SLUICE_CONFIG": os.devnull}, capture_output=True)  # fmt: skip
        subprocess.run(["cp", "-a", "-T", str(tmp_path / "sdk"), str(sdk)], check=True)
        host.run("chown -R sluice:sluice /var/lib/sluice/sdk")
    gateway = f"https://{DOMAIN}"
    html = f"""<!doctype html><html><body>
<script src="{gateway}/sdk/rudderstack/v3/modern/analytics.js"></script>
<script>
  const analytics = new window.rudderanalytics.RudderAnalytics();
  analytics.load("{Installed.write_key}", "{gateway}",
                 {{configUrl: "{gateway}", logLevel: "ERROR"}});
  analytics.track("Browser Over HTTPS", {{via: "sluice"}});
</script></body></html>"""
    # The browser trusts pebble's root and the site's CA from a certificate database of its
    # own (Chromium reads $HOME/.pki/nssdb), not by ignoring certificate errors.
    home = tmp_path / "home"
    nssdb = home / ".pki/nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True)
    (tmp_path / "pebble-root.pem").write_text(Installed.pebble_root)
    # The site, over HTTPS at this machine's address on the container's link.
    made, _ = certificates.self_signed([HOST_ADDRESS], into=tmp_path / "site")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(made.cert, made.key)
    with site(html, HOST_ADDRESS, tls) as url:
        for name, pem in (("pebble", tmp_path / "pebble-root.pem"),
                          ("site", tmp_path / "site/ca.pem")):  # fmt: skip
            subprocess.run(["certutil", "-A", "-d", f"sql:{nssdb}", "-n", name, "-t", "C,,",
                            "-i", str(pem)], check=True)  # fmt: skip
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {DOMAIN} {GUEST_ADDRESS}"],
                env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
            )
            failed: list[str] = []
            try:
                page = browser.new_page()
                page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
                page.goto(url)
                deadline = time.monotonic() + 60
                while not any(b.get("event") == "Browser Over HTTPS" for b in sink.bodies()):
                    assert time.monotonic() < deadline, f"nothing delivered; failed: {failed}"
                    page.wait_for_timeout(200)
            finally:
                browser.close()
    track = next(b for b in sink.bodies() if b.get("event") == "Browser Over HTTPS")
    assert track["properties"] == {"via": "sluice"}
    assert track["context"]["library"]["name"] == "RudderLabs JavaScript SDK"


def test_another_domain_takes_over_and_the_web_ui_stays_where_it_was(
    host: Container, sink: Sink, pebble: str
) -> None:
    # The administrator moved the web UI to another port and address since.
    config = host.root / "etc/sluice/sluice.toml"
    moved = config.read_text().replace("web_port = 8443", "web_port = 9443")
    config.write_text(moved.replace('web_host = "0.0.0.0"', f'web_host = "{GUEST_ADDRESS}"'))
    host.run("systemctl restart sluice-web")
    httpx.post(f"http://{GUEST_ADDRESS}:8055/add-a",
               json={"host": OTHER, "addresses": [GUEST_ADDRESS]}).raise_for_status()  # fmt: skip
    done = install(host, "--domain", OTHER, "--acme-directory", pebble, env=PEBBLE_TRUST)
    assert done.returncode == 0, said(done)
    assert (setting(host, "web_host"), setting(host, "web_port")) == (GUEST_ADDRESS, "9443")
    assert f"  web UI:  https://{GUEST_ADDRESS}:9443" in done.stdout
    assert setting(host, "public_url") == f"https://{OTHER}"  # (the old name is not served)
    assert (
        f"public_url (the gateway's URL for the SDKs) is now https://{OTHER}, was https://{DOMAIN}"
        in done.stdout
    )
    for port in (443, 9443):
        wait_served(port, lambda c: OTHER in c.subject.rfc4514_string(), OTHER)
        served(OTHER, port, Installed.pebble_root)
    # The first domain's lineage is let go of, once the new one serves: it renews no more.
    assert f"certbot no longer renews {DOMAIN}" in done.stdout
    lineages = host.run("certbot certificates").stdout
    assert f"Certificate Name: {OTHER}" in lineages and f"Name: {DOMAIN}\n" not in lineages
    assert (host.root / "etc/sluice/tls/certbot-lineage").read_text() == f"{OTHER}\n"
    batch = events("other-domain", 5)
    with client(Installed.pebble_root) as http:
        assert send_https(http, batch, OTHER).status_code == 200
    wait_delivered(sink, ids(batch))


def test_a_certificate_of_ones_own(host: Container, sink: Sink) -> None:
    given = host.root / "root/given"
    certificates.self_signed([DOMAIN, OTHER], into=given)  # (any CA's pair: this one is at hand)
    done = install(host, "--tls-cert", "/root/given/cert.pem", "--tls-key", "/root/given/key.pem")
    assert done.returncode == 0, said(done)
    assert f"certbot no longer renews {OTHER}" in done.stdout
    assert "No certificates found" in host.run("certbot certificates").stdout
    assert not (host.root / "etc/sluice/tls/certbot-lineage").exists()
    # The SDKs' URL stays: the certificate is valid for it too (its first name is another).
    assert setting(host, "public_url") == f"https://{OTHER}"
    chain = x509.load_pem_x509_certificates((given / "cert.pem").read_bytes())
    ca = (given / "ca.pem").read_text()
    for port in (443, 9443):
        wait_served(port, lambda c: c == chain[0])
        served(OTHER, port, ca)
    batch = events("own", 5)
    with client(ca) as http:
        assert send_https(http, batch, OTHER).status_code == 200
    wait_delivered(sink, ids(batch))


def test_a_self_signed_certificate_kept_when_run_again(host: Container, sink: Sink) -> None:
    done = install(host, "--self-signed")
    assert done.returncode == 0, said(done)
    assert "once they trust /etc/sluice/tls/ca.pem" in done.stdout
    name = host.run("hostname -f 2>/dev/null || hostname").stdout.strip()
    assert setting(host, "public_url") == f"https://{name}"  # (the other name is not served)
    ca = (host.root / "etc/sluice/tls/ca.pem").read_text()
    root = x509.load_pem_x509_certificate(ca.encode())
    for port in (443, 9443):
        wait_served(port, lambda c: c.issuer == root.subject, name)
        served(name, port, ca)
    batch = events("self-signed", 5)
    with client(ca) as http:  # (the certificate names the container's address too)
        answer = http.post(f"https://{GUEST_ADDRESS}/v1/batch", json={"batch": batch},
                           auth=(Installed.write_key, ""))  # fmt: skip
    assert answer.status_code == 200
    # The plain port of the HTTP install still answers, with the same write key.
    plain = events("still-plain", 5)
    assert send_plain(plain).status_code == 200
    wait_delivered(sink, ids(batch) | ids(plain))
    # Run again: the trial certificate is kept, and the clients that trust its CA.
    leaf = served(name)
    again = install(host, "--self-signed")
    assert again.returncode == 0, said(again)
    assert "    kept /etc/sluice/tls/cert.pem and /etc/sluice/tls/key.pem" in again.stdout
    assert (host.root / "etc/sluice/tls/ca.pem").read_text() == ca
    assert served(name, 443, ca) == leaf


def test_a_fresh_install_with_https_has_no_plain_port(host: Container, pebble: str) -> None:
    host.run("/root/sluice/installer/uninstall.sh --purge")
    # Ports 80 and 443 are other programs': the installer says which.
    host.run("systemd-run --unit=squatter python3 -m http.server 80")
    host.run("systemd-run --unit=squatter443 python3 -m http.server 443")
    first = install(host, "--domain", DOMAIN, "--acme-directory", pebble, env=PEBBLE_TRUST)
    assert first.returncode == 1, said(first)
    pids = [host.run(f"systemctl show -p MainPID --value {unit}").stdout.strip()
            for unit in ("squatter", "squatter443")]  # fmt: skip
    assert (
        f"install.sh: the gateway did not start: port 80 is taken by python3 (pid {pids[0]},"
        f" squatter.service): port 443 is taken by python3 (pid {pids[1]}, squatter443.service);"
        " its log: journalctl -u sluice-gateway\n"
    ) in first.stderr, said(first)
    assert "failed while" not in first.stderr
    key = re.search(r"curl -u '([^:']+):'", first.stdout)
    assert key is not None
    host.run("systemctl stop squatter squatter443")
    done = install(host, "--domain", DOMAIN, "--acme-directory", pebble, env=PEBBLE_TRUST)
    assert done.returncode == 0, said(done)
    assert "stays open" not in done.stdout
    assert setting(host, "gateway_port") == "0"
    wait_served(443, lambda c: "Pebble" in c.issuer.rfc4514_string())  # (after the placeholder)
    served(DOMAIN, 443, Installed.pebble_root)
    with client(Installed.pebble_root) as http:
        answer = send_https(http, events("new", 1), key=key[1])
    assert answer.status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{GUEST_ADDRESS}:8080/health", timeout=5)


def test_uninstall_purge_lets_go_of_the_certbot_lineage(host: Container) -> None:
    assert (host.root / "etc/sluice/tls/certbot-lineage").read_text() == f"{DOMAIN}\n"
    done = host.run("/root/sluice/installer/uninstall.sh --purge")
    assert f"certbot no longer renews {DOMAIN}" in done.stdout
    assert "No certificates found" in host.run("certbot certificates").stdout
    assert not (host.root / "etc/sluice").exists()
