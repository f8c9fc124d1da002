"""`sluice status`: which Sluice processes run where, what waits in the gateway spool, and
when each host's HTTPS certificate expires.

This host's spool is read from its disk, so the command answers while the database is away
(which is when the spool fills); the processes, and every host's spool, come from the
heartbeats in the database. Exit status 1 when the database cannot be reached.
"""

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from engine import heartbeats
from engine.control.overview import HostCertificate, certificates, spools
from engine.db import connection
from engine.errors import DatabaseError
from engine.gateway import spool


async def status_command(args: argparse.Namespace, url: str, spool_dir: Path) -> int:
    local = spool.report(spool_dir)
    beats: list[heartbeats.Beat] | None = None
    unreachable = ""
    try:
        async with connection(url) as conn:
            beats = await heartbeats.recent(conn)
    except DatabaseError as exc:
        unreachable = str(exc)
    if args.json:
        print(json.dumps({
            "spool": {"directory": str(spool_dir), **local},
            "database": "unreachable: " + unreachable if beats is None else "ok",
            "processes": [_process(b) for b in beats or []],
            "certificates": [_certificate(c) for c in certificates(beats or [])],
        }))  # fmt: skip
    else:
        print(_text(spool_dir, local, beats, unreachable))
    return 0 if beats is not None else 1


def _process(beat: heartbeats.Beat) -> dict[str, object]:
    return {
        "role": beat.role, "host": beat.host, "pid": beat.pid, "alive": beat.alive,
        "started_at": beat.started_at.isoformat(), "seen_at": beat.seen_at.isoformat(),
        **beat.report,
    }  # fmt: skip


def _certificate(certificate: HostCertificate) -> dict[str, object]:
    return {
        "host": certificate.host, "expires": certificate.expires.isoformat(),
        "days_left": certificate.days_left(), "state": certificate.state(),
    }  # fmt: skip


def _text(
    spool_dir: Path, local: dict[str, int], beats: list[heartbeats.Beat] | None, unreachable: str
) -> str:
    held = _spool_text(local["spool_bytes"], local["spool_files"], local["spool_damaged"])
    lines = [f"spool on this host ({spool_dir}): {held}"]
    if beats is None:
        lines.append(f"database: unreachable ({unreachable})")
        return "\n".join(lines)
    for host in spools(beats):
        held = _spool_text(host.bytes, host.files, host.damaged)
        lines.append(f"spool on {host.host}: {held} (as of {host.seen_at:%Y-%m-%d %H:%M:%S} UTC)")
    for certificate in certificates(beats):
        lines.append(f"HTTPS certificate on {certificate.host}: {_certificate_text(certificate)}")
    if not beats:
        lines.append("no Sluice process has been heard from in the last day")
        return "\n".join(lines)
    now = datetime.now(UTC)
    lines.append(f"{'ROLE':<16}  {'HOST':<20}  {'PID':>7}  {'UP SINCE (UTC)':<19}  LAST SEEN")
    for b in beats:
        seen = f"{(now - b.seen_at).total_seconds():.0f} s ago"
        state = "" if b.alive else "  (not running)"
        lines.append(
            f"{b.role:<16}  {b.host[:20]:<20}  {b.pid:>7}  {b.started_at:%Y-%m-%d %H:%M:%S}  "
            f"{seen}{state}"
        )
    return "\n".join(lines)


def _certificate_text(certificate: HostCertificate) -> str:
    state = certificate.state()
    if state == "ok":
        return certificate.said()
    renew = "renew it" if state == "warning" else "renew it now"
    return f"{certificate.said()}: {renew} (`sluice tls install CERT KEY`)"


def _spool_text(held: int, files: int, damaged: int) -> str:
    text = f"{held:,} bytes in {files} file(s) wait for the database" if held else "empty"
    if damaged:
        text += f"; {damaged} damaged file(s) set aside (.bad): see the gateway log"
    return text
