"""`sluice run` on a fresh data directory: embedded PostgreSQL, every role, a clean stop."""

import json
import os
import queue
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg
import psycopg.conninfo

from appliance import certificates
from appliance.embedded import WAREHOUSE_NICE, WAREHOUSE_SETTINGS, EmbeddedPostgres
from tests.servers import free_port, server_dir
from tests.sink import Sink


class SluiceRun:
    """A `sluice run` child process whose output is read line by line as it comes."""

    def __init__(self, data_dir: Path, ports: dict[str, int], **settings: str) -> None:
        env = {
            **os.environ,
            "SLUICE_DATA_DIR": str(data_dir),
            "SLUICE_CONFIG": os.devnull,
            "SLUICE_GATEWAY_HOST": "127.0.0.1",
            "SLUICE_GATEWAY_PORT": str(ports["gateway"]),
            "SLUICE_WEB_PORT": str(ports["web"]),
            "SLUICE_EMBEDDED_DB_PORT": str(ports["db"]),
            "SLUICE_EMBEDDED_WAREHOUSE_PORT": str(ports["warehouse"]),
            "SLUICE_GATEWAY_WORKERS": "1",
            "SLUICE_WORKER_METRICS_PORT": str(ports["metrics"]),
            **{f"SLUICE_{name.upper()}": value for name, value in settings.items()},
        }
        env.pop("SLUICE_DATABASE_URL", None)
        self.env = env
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "run"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self._lines.put(line)

    def read_until(self, pattern: str, timeout: float = 60) -> str:
        """Everything printed up to the line matching `pattern`."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError("timed out; output so far:\n" + "".join(seen)) from None
            seen.append(line)
            if re.search(pattern, line):
                return "".join(seen)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        return code


def test_run_starts_everything_and_the_printed_command_sends_an_event() -> None:
    ports = {"gateway": free_port(), "web": free_port(), "db": free_port(), "metrics": free_port(),
             "warehouse": free_port()}  # fmt: skip
    with server_dir() as data_dir, Sink() as sink:
        run = SluiceRun(data_dir, ports)
        try:
            said = run.read_until(r"curl -u ")
            said += run.read_until(r"Stop with Ctrl-C")
            curl = next(
                line.strip() for line in said.splitlines() if line.strip().startswith("curl")
            )
            assert f"http://127.0.0.1:{ports['gateway']}/v1/track" in curl
            assert f"web UI:  http://127.0.0.1:{ports['web']}" in said
            # the first admin's one-time password signs in, and must be changed first
            password = said.split("then choose your own:\n", 1)[1].splitlines()[0].strip()
            with httpx.Client(base_url=f"http://127.0.0.1:{ports['web']}") as web:
                form = web.get("/login").text
                token = re.search(r'name="_csrf_token" value="([^"]+)"', form)
                assert token is not None
                signed = web.post(
                    "/login",
                    data={
                        "_csrf_token": token[1],
                        "next": "/users",
                        "email": "admin@localhost",
                        "password": password,
                    },
                )
                assert signed.status_code == 303 and signed.headers["location"] == "/users"
                assert web.get("/users").headers["location"] == "/account/password"
            # a local warehouse was made, on a server of its own, its destination ready to be
            # connected
            psql = next(line for line in said.splitlines() if "psql -h 127.0.0.1" in line)
            assert f"-p {ports['warehouse']} -U sluice warehouse" in psql
            assert 'PGPASSWORD="$(cat ' in psql  # the password is never printed
            local = EmbeddedPostgres.local_warehouse(
                data_dir, ports["warehouse"]
            ).warehouse_settings()
            assert local["port"] == str(ports["warehouse"])
            # at a lower CPU priority than Sluice's own server, as is every session it starts
            postmaster = int((data_dir / "warehouse" / "postgres" / "postmaster.pid")
                             .read_text().split()[0])  # fmt: skip
            assert os.getpriority(os.PRIO_PROCESS, postmaster) == WAREHOUSE_NICE
            hook = data_dir / "hook.yaml"
            hook.write_text(
                "destinations: [{name: hook, type: webhook, "
                f"config: {{webhookUrl: '{sink.url}'}}}}, {{name: Local warehouse, "
                f"type: postgres, config: {json.dumps(local)}, delivery: {{file_seconds: 1}}}}]\n"
                "connections: [{source: default, destination: hook}, "
                "{source: default, destination: Local warehouse}]\n"
            )
            applied = subprocess.run(
                [sys.executable, "-m", "appliance", "config", "apply", str(hook)],
                env=run.env, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert applied.returncode == 0, applied.stderr
            sent = subprocess.run(curl, shell=True, capture_output=True, text=True, timeout=30)
            assert sent.stdout == "OK", sent.stdout + sent.stderr
            [delivered] = sink.wait_for(1)  # the worker role delivers it
            assert delivered.json()["event"] == "Hello Sluice"
            loaded = ""
            deadline = time.monotonic() + 60
            while "loaded" not in loaded:  # (once the worker has staged it: within seconds)
                assert time.monotonic() < deadline, loaded
                synced = subprocess.run(
                    [sys.executable, "-m", "appliance", "warehouse", "sync",
                     "--destination", "Local warehouse", "--wait", "30"],
                    env=run.env, capture_output=True, text=True, timeout=60, check=False,
                )  # fmt: skip
                assert synced.returncode == 0, synced.stderr
                loaded = synced.stdout
            warehouse = psycopg.conninfo.make_conninfo(
                "", **{k: v for k, v in local.items() if k != "database"}, dbname="warehouse"
            )
            with psycopg.connect(warehouse) as conn:
                rows = conn.execute("SELECT event_text FROM _default.tracks").fetchall()
                [(backend,)] = conn.execute("SELECT pg_backend_pid()").fetchall()
                assert os.getpriority(os.PRIO_PROCESS, backend) == WAREHOUSE_NICE
                flush = conn.execute("SHOW backend_flush_after").fetchall()
            assert flush == [(WAREHOUSE_SETTINGS["backend_flush_after"],)]
            assert rows == [("Hello Sluice",)]

            url = EmbeddedPostgres(data_dir, ports["db"]).url
            with psycopg.connect(url) as conn:
                events = conn.execute("SELECT payload->>'event' FROM ingested").fetchall()
                listen = conn.execute("SHOW listen_addresses").fetchone()
                owner = conn.execute("SELECT current_setting('data_directory')").fetchone()
            assert events == [("Hello Sluice",)]

            # the admin commands find the embedded database of this data directory by themselves
            exported = subprocess.run(
                [sys.executable, "-m", "appliance", "config", "export"],
                env={**run.env, "SLUICE_CONFIG": os.devnull},
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert exported.returncode == 0, exported.stderr
            assert "name: default" in exported.stdout
            assert listen == ("127.0.0.1",)
            assert owner == (str(data_dir / "postgres"),)
        finally:
            code = run.stop()
        assert code == 0
        assert not (data_dir / "postgres" / "postmaster.pid").exists()  # stopped cleanly
        assert not (data_dir / "warehouse" / "postgres" / "postmaster.pid").exists()
        if os.geteuid() == 0:
            assert (data_dir / "postgres").stat().st_uid != 0  # never runs as root

        # a second start keeps the data and creates no second source
        again = SluiceRun(data_dir, ports)
        try:
            said = again.read_until(r"Stop with Ctrl-C")
            assert "curl -u" not in said and "sluice generate-events" in said
            assert "one-time password" not in said  # the admin exists already
            with psycopg.connect(EmbeddedPostgres(data_dir, ports["db"]).url) as conn:
                assert conn.execute("SELECT count(*) FROM ingested").fetchone() == (1,)
                assert conn.execute("SELECT count(*) FROM sources").fetchone() == (1,)
        finally:
            again.stop()


def test_a_local_warehouse_an_earlier_sluice_made_stays_in_the_embedded_server() -> None:
    ports = {"gateway": free_port(), "web": free_port(), "db": free_port(), "metrics": free_port(),
             "warehouse": free_port()}  # fmt: skip
    with server_dir() as data_dir:
        earlier = EmbeddedPostgres(data_dir, ports["db"])
        try:  # as Sluice left it before the local warehouse had a server of its own
            url = earlier.start()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE DATABASE warehouse")
        finally:
            earlier.stop()
        run = SluiceRun(data_dir, ports)
        try:
            said = run.read_until(r"Stop with Ctrl-C")
            assert f"-p {ports['db']} -U sluice warehouse" in said  # where it was
        finally:
            assert run.stop() == 0
        assert not (data_dir / "warehouse").exists()  # no second server


def test_sluice_runs_without_a_local_warehouse_whose_server_cannot_start() -> None:
    ports = {"gateway": free_port(), "web": free_port(), "db": free_port(), "metrics": free_port(),
             "warehouse": free_port()}  # fmt: skip
    with server_dir() as data_dir, socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["warehouse"]))  # another program has the port
        taken.listen()
        run = SluiceRun(data_dir, ports)
        try:
            said = run.read_until(r"Stop with Ctrl-C")
            assert "the local warehouse's PostgreSQL did not start" in said
            assert "SLUICE_EMBEDDED_WAREHOUSE_PORT" in said and "psql -h" not in said
            assert "curl -u" in said  # Sluice itself runs
        finally:
            assert run.stop() == 0


def test_run_over_https_says_its_https_addresses_once_they_answer(tmp_path: Path) -> None:
    done, ca = certificates.self_signed(["localhost", "127.0.0.1"], tmp_path / "tls")
    ports = {name: free_port() for name in ("gateway", "tls", "web", "db", "metrics", "warehouse")}
    with server_dir() as data_dir:
        run = SluiceRun(
            data_dir, ports, tls_cert=str(done.cert), tls_key=str(done.key),
            gateway_tls_port=str(ports["tls"]), gateway_port="0",
        )  # fmt: skip
        try:
            said = run.read_until(r"Stop with Ctrl-C", timeout=120)
            assert f"gateway: https://127.0.0.1:{ports['tls']}" in said
            assert f"web UI:  https://127.0.0.1:{ports['web']}" in said
            trusting = ssl.create_default_context(cafile=str(ca))
            for port in (ports["tls"], ports["web"]):  # (announced once both answer)
                health = httpx.get(f"https://localhost:{port}/health", verify=trusting)
                assert health.status_code == 200
        finally:
            assert run.stop() == 0
